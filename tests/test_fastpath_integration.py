"""The fast path on the real default model (integration: slower, needs the embedded GGUF)."""

from __future__ import annotations

import pytest

from engine.chat_generation import chat
from engine.config import ChatMessage, SamplingConfig
from engine.fastpath import FastDecoder
from engine.generation import generate_ids

pytestmark = pytest.mark.integration

GREEDY = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_new_tokens=24, repetition_guard=False)


@pytest.fixture(scope="module")
def transformers_lm(tmp_path_factory):
    """The default model as a transformers model (its converted folder): what these fast-path modes pack.
    (``default_lm`` itself runs from the GGUF on its own quantization: tests/test_gguf_default_integration.py.)"""
    import os

    from engine.config import LoadConfig
    from engine.loader import load_model

    old = os.environ.get("HEARTH_DATA_DIR")
    os.environ["HEARTH_DATA_DIR"] = str(tmp_path_factory.mktemp("converted-default"))
    try:
        return load_model(LoadConfig(device="cpu", fast=False))
    finally:
        if old is None:
            os.environ.pop("HEARTH_DATA_DIR", None)
        else:
            os.environ["HEARTH_DATA_DIR"] = old


@pytest.fixture
def restore_decoder(transformers_lm):
    original = transformers_lm.extras.get("decoder")
    yield transformers_lm
    transformers_lm.extras["decoder"] = original


def test_exact_path_matches_transformers_on_the_default_model(restore_decoder):
    lm = restore_decoder
    ids = lm.tokenizer.apply_chat_template([{"role": "user", "content": "Name three colours."}],
                                           add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    lm.extras["decoder"] = None
    plain = generate_ids(lm, ids, GREEDY).token_ids
    lm.extras["decoder"] = FastDecoder(lm, "exact")
    assert generate_ids(lm, ids, GREEDY).token_ids == plain


def test_int8_path_answers_sensibly(restore_decoder):
    lm = restore_decoder
    decoder = FastDecoder(lm, "int8")
    assert decoder.prepare()
    lm.extras["decoder"] = decoder
    result = chat(lm, [ChatMessage("user", "What is the capital of France?")], GREEDY.with_(max_new_tokens=32))
    assert "Paris" in result.text
