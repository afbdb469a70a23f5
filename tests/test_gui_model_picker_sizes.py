"""The Model box shows each model's file size and the memory it is expected to take."""

from __future__ import annotations

from gguf_files import tiny_gguf


def test_a_gguf_row_shows_its_size_and_memory(qtbot, tmp_path):
    from engine.gguf.memory import footprint
    from gui.model_picker import ModelPicker

    path = str(tiny_gguf(tmp_path, quant="Q4_0"))
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.addItem("tiny", path)
    picker._add_footprint(picker.count() - 1, path, "tiny")
    expected = footprint(path)
    assert expected is not None and expected.memory_bytes > 0
    text = picker.itemText(picker.count() - 1)
    assert text == f"tiny · {expected.label()}" and "file" in text and "in memory" in text
    assert path in picker.itemData(picker.count() - 1, 3)


def test_a_folder_counts_its_weights(tiny_model_dir):
    from engine.gguf.memory import footprint

    size = footprint(tiny_model_dir)
    weights = sum(p.stat().st_size for p in tiny_model_dir.glob("*.safetensors"))
    assert size is not None and size.file_bytes == weights and size.memory_bytes >= weights


def test_unknown_paths_have_no_footprint(tmp_path):
    from engine.gguf.memory import footprint

    assert footprint(tmp_path / "missing.gguf") is None
    assert footprint("remote://host/model") is None
