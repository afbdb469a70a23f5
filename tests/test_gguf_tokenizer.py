"""The GGUF tokenizer is built without a second copy of its backend, and is the same tokenizer as before."""

from __future__ import annotations

import pytest

from gguf_files import tiny_gguf

TEXTS = ["Hello there, how are you?", "  leading spaces\tand tabs\n\nnew lines", "<|im_start|>user\nhi<|im_end|>",
         "Ünïcödé 日本語 🎉 12345 don't", "def f(x):\n    return x**2  # comment"]
MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi! What's 2+2?"},
            {"role": "assistant", "content": "4."}, {"role": "user", "content": "Thanks"}]


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf-tokenizer")


def _copied_way(path):
    """The tokenizer as transformers builds it from the same metadata: the backend deep-copied."""
    from transformers import PreTrainedTokenizerFast

    import engine.gguf.tokenizer as T
    from engine.gguf.reader import open_gguf

    plain = T.wrap_backend
    T.wrap_backend = lambda backend, kwargs: PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    try:
        f = open_gguf(path)
        return T.build_tokenizer(f)
    finally:
        T.wrap_backend = plain
        f.close()


def _summary(tok) -> dict:
    from engine.chat_template import render

    return {"ids": [tok(t)["input_ids"] for t in TEXTS],
            "plain": [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS],
            "decoded": [tok.decode(tok(t)["input_ids"]) for t in TEXTS],
            "chat": render(tok, MESSAGES), "template": tok.chat_template, "class": type(tok).__name__,
            "specials": (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id), "size": len(tok),
            "added": {i: str(t) for i, t in tok.added_tokens_decoder.items()},
            "backend": tok.backend_tokenizer.to_str()}


@pytest.mark.parametrize("arch", ["llama", "gemma2", "phi3"])  # byte-level BPE, and two sentencepiece builders
def test_handed_over_backend_gives_the_same_tokenizer(gguf_dir, arch):
    from engine.gguf.reader import open_gguf
    from engine.gguf.tokenizer import build_tokenizer

    path = tiny_gguf(gguf_dir, arch=arch, quant="F32", layers=1)
    f = open_gguf(path)
    try:
        tok = build_tokenizer(f)
    finally:
        f.close()
    assert _summary(tok) == _summary(_copied_way(path))


def test_wrap_backend_keeps_the_backend_it_is_given():
    from tokenizers import Tokenizer
    from tokenizers.models import BPE

    from engine.gguf.tokenizer import wrap_backend

    backend = Tokenizer(BPE(vocab={"a": 0, "b": 1, "ab": 2, "<eos>": 3}, merges=[("a", "b")]))
    tok = wrap_backend(backend, {"eos_token": "<eos>"})
    assert tok.backend_tokenizer is backend
    assert tok("ab", add_special_tokens=False)["input_ids"] == [2] and tok.eos_token_id == 3


@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_metadata_strings_read_in_place_equal_the_stock_readers(gguf_dir, arch):
    from gguf import GGUFReader

    from engine.gguf.reader import open_gguf

    path = tiny_gguf(gguf_dir, arch=arch, quant="F32", layers=1)
    stock = GGUFReader(path, "r")
    f = open_gguf(path)
    try:
        keys = [k for k in stock.fields if not k.startswith("GGUF.")]
        assert "tokenizer.ggml.tokens" in keys
        for key in keys:
            assert f.value(key) == stock.fields[key].contents(), key
    finally:
        f.close()


def test_a_string_array_past_the_end_of_the_file_is_a_bad_file(gguf_dir, tmp_path):
    import struct

    from engine.errors import BadModelFileError
    from engine.gguf.reader import open_gguf

    data = bytearray(tiny_gguf(gguf_dir, quant="F32", layers=1).read_bytes())
    key = b"tokenizer.ggml.tokens"
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key) + 4 + 4 + 8  # the first token's length
    data[at:at + 8] = struct.pack("<Q", 1 << 40)
    path = tmp_path / "long-token.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(BadModelFileError, match="truncated or corrupt .a metadata array of strings reaches byte"):
        open_gguf(path)
