"""Loading: good folders, and every kind of bad input gets a ModelLoadError naming the file."""

import json

import pytest

from engine import DataDirError, LoadConfig, ModelLoadError, load_model
from engine.paths import data_dir


def test_loads_a_model_folder(tiny_model_dir):
    lm = load_model(LoadConfig(path=str(tiny_model_dir), device="cpu"))
    assert lm.context_length == 256 and lm.name == tiny_model_dir.name
    assert lm.eos_token_ids == {lm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    assert lm.describe()["parameters"] > 0


def test_missing_path(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(LoadConfig(path=str(tmp_path / "nope")))


def test_folder_without_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(LoadConfig(path=str(tmp_path)))


def test_truncated_safetensors(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated") as info:
        load_model(LoadConfig(path=str(broken)))
    assert "model.safetensors" in str(info.value)


def test_corrupt_config(tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "badconfig"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(LoadConfig(path=str(broken)))


def test_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(ModelLoadError, match="not a model"):
        load_model(LoadConfig(path=str(path)))


def test_a_gguf_that_is_not_gguf(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        load_model(LoadConfig(path=str(path)))


def test_gguf_of_an_architecture_transformers_cannot_read(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(path), "alienformer")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError) as info:
        load_model(LoadConfig(path=str(path)))
    assert "alien.gguf" in str(info.value)
    from engine.paths import models_dir

    assert not [p for p in models_dir().iterdir() if p.name.startswith("alien")]  # nothing half-written kept


def test_data_dir_that_is_a_file(tmp_path, monkeypatch):
    target = tmp_path / "afile"
    target.write_text("x")
    monkeypatch.setenv("HEARTH_DATA_DIR", str(target))
    with pytest.raises(DataDirError, match="is a file"):
        data_dir()


def test_read_only_data_dir(tmp_path, monkeypatch):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    monkeypatch.setenv("HEARTH_DATA_DIR", str(ro))
    with pytest.raises(DataDirError, match="not writable"):
        data_dir()


def test_interrupted_conversion_is_not_mistaken_for_a_finished_one(monkeypatch, tmp_path):
    """A folder without the completion marker is converted again, never loaded as-is."""
    from engine import convert

    target = tmp_path / "models" / "X"
    target.mkdir(parents=True)
    (target / "config.json").write_text(json.dumps({}))
    assert not convert._is_complete(target)
    (target / convert.SOURCE_FILE).write_text("{}")
    assert convert._is_complete(target)
