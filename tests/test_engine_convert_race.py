"""Two Hearths started at once both convert the default model; neither may spoil the other's."""

from engine.convert import SOURCE_FILE, _move_into_place


def _folder(path, marker):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_text(marker)
    (path / SOURCE_FILE).write_text("{}")
    return path


def test_finished_conversion_of_the_other_process_is_kept(tmp_path):
    target = _folder(tmp_path / "Model", "first")
    tmp = _folder(tmp_path / ".tmp-Model-2", "second")
    _move_into_place(tmp, target)
    assert (target / "model.safetensors").read_text() == "first"
    assert not list(tmp_path.glob(".broken-*"))


def test_incomplete_old_conversion_is_set_aside_not_deleted(tmp_path):
    target = tmp_path / "Model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # no SOURCE_FILE: interrupted long ago
    tmp = _folder(tmp_path / ".tmp-Model-2", "fresh")
    _move_into_place(tmp, target)
    assert (target / "model.safetensors").read_text() == "fresh"
    assert len(list(tmp_path.glob(".broken-Model-*"))) == 1
