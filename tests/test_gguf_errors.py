"""Bad GGUF files: one sentence naming the file and the reason, and the loaded model stays loaded."""

from __future__ import annotations

import struct

import pytest

from engine.errors import BadModelFileError, ModelLoadError, NotEnoughMemoryError
from gguf_files import tensor_info_offset, tiny_gguf

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return tiny_gguf(tmp_path_factory.mktemp("gguf"), quant="Q4_0")


def _load(path):
    from engine import LoadConfig, load_model

    return load_model(LoadConfig(path=str(path), device="cpu"))


def _one_sentence(message: str) -> bool:
    body = message.rstrip(".")
    return "\n" not in message and ". " not in body.replace("e.g. ", "")


def _copy(good, tmp_path, name: str, edit) -> object:
    data = bytearray(good.read_bytes())
    edit(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_a_file_that_is_not_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("just some text, not a model")
    with pytest.raises(BadModelFileError) as info:
        _load(path)
    assert str(path) in str(info.value) and "not a GGUF file" in str(info.value)
    assert _one_sentence(str(info.value))


def test_a_truncated_file(good, tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadModelFileError) as info:
        _load(path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)
    assert _one_sentence(str(info.value))


def test_a_file_cut_inside_its_header(good, tmp_path):
    path = tmp_path / "header.gguf"
    path.write_bytes(good.read_bytes()[:300])
    with pytest.raises(BadModelFileError, match="truncated or corrupt"):
        _load(path)


def test_an_unknown_quantization_type(good, tmp_path):
    def edit(data):
        at = tensor_info_offset(bytes(data), "blk.0.attn_q.weight")
        data[at:at + 4] = struct.pack("<I", 99)

    path = _copy(good, tmp_path, "unknown-type.gguf", edit)
    with pytest.raises(BadModelFileError) as info:
        _load(path)
    assert "quantization type (number 99)" in str(info.value) and str(path) in str(info.value)


def test_a_quantization_type_hearth_does_not_run(good, tmp_path):
    from gguf import GGMLQuantizationType as T

    def edit(data):  # TQ1_0 is a type gguf knows; the byte count will not match, but the type is checked first
        at = tensor_info_offset(bytes(data), "blk.0.attn_output.weight")
        data[at:at + 4] = struct.pack("<I", int(T.TQ1_0))

    path = _copy(good, tmp_path, "tq.gguf", edit)
    with pytest.raises(BadModelFileError) as info:
        _load(path)
    assert str(path) in str(info.value)


def test_architecture_metadata_missing_a_key(good, tmp_path):
    def edit(data):
        at = bytes(data).index(b"llama.block_count")
        data[at:at + 17] = b"llama.block_cnunt"  # same length: the key is simply absent now

    path = _copy(good, tmp_path, "no-layers.gguf", edit)
    with pytest.raises(BadModelFileError) as info:
        _load(path)
    assert "'llama.block_count'" in str(info.value) and str(path) in str(info.value)
    assert _one_sentence(str(info.value))


def test_not_enough_memory_says_both_numbers(good, monkeypatch):
    from engine.gguf import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(NotEnoughMemoryError) as info:
        _load(good)
    message = str(info.value)
    assert "only 1.0 KB is available" in message and "needs about" in message and str(good) in message
    assert info.value.needed > info.value.available == 1000
    assert isinstance(info.value, ModelLoadError)


def test_the_loaded_model_stays_loaded_after_a_bad_file(good, tmp_path):
    from engine.config import LoadConfig
    from engine.session import Session
    from engine.tasks import load_task

    session = Session()
    load_task(session, config=LoadConfig(path=str(good), device="cpu"))
    before = session.model
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 50)
    with pytest.raises(BadModelFileError):
        load_task(session, config=LoadConfig(path=str(bad), device="cpu"))
    assert session.model is before


def test_a_model_folder_that_will_not_fit_is_refused_too(tiny_model_dir, monkeypatch):
    from engine.gguf import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(NotEnoughMemoryError, match="only 1.0 KB is available"):
        _load(tiny_model_dir)
