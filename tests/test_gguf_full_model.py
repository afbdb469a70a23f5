"""The full-precision model of a GGUF (for training and the lab), read with Hearth's own reader:
the same weights as transformers' GGUF loading, tensor for tensor."""

from __future__ import annotations

import pytest
import torch

from gguf_files import tiny_gguf


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf")


def _transformers_model(path, dtype):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    from engine.gguf.full_model import dequantized

    logging.set_verbosity_error()
    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype,
                                                quantization_config=dequantized())


@pytest.mark.parametrize("arch,quant,extra", [
    ("llama", "Q4_K_M", {}),  # q/k rows back from llama.cpp's interleaved order
    ("llama", "Q8_0", {"tied": False}),  # its own output matrix
    ("llama", "BF16", {}),
    ("qwen2", "Q4_K_M", {}),  # q/k/v biases, rows already in transformers' order
    ("qwen3", "Q4_0", {"heads": 2, "kv_heads": 1}),  # q/k norms
])
def test_the_direct_build_has_the_weights_transformers_reads(gguf_dir, arch, quant, extra):
    from engine.gguf.full_model import build_full_model

    path = tiny_gguf(gguf_dir, arch=arch, quant=quant, **extra)
    ours = build_full_model(path, dtype=torch.float32).state_dict()
    reference = _transformers_model(path, torch.float32).state_dict()
    assert set(ours) == set(reference)
    for name, tensor in ours.items():
        assert torch.equal(tensor, reference[name]), name


def test_the_direct_build_ties_and_casts(gguf_dir):
    from engine.gguf.full_model import build_full_model

    model = build_full_model(tiny_gguf(gguf_dir, arch="llama", quant="Q4_0"), dtype=torch.bfloat16)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits.float()).all()


def test_other_architectures_fall_back_to_transformers(gguf_dir, monkeypatch):
    from engine.gguf import full_model

    path = tiny_gguf(gguf_dir, arch="llama", quant="Q8_0")
    monkeypatch.setattr(full_model, "_build_direct", lambda path, dtype: None)  # as for an unmapped architecture
    model = full_model.build_full_model(path, dtype=torch.float32)
    reference = _transformers_model(path, torch.float32)
    assert torch.equal(model.model.embed_tokens.weight, reference.model.embed_tokens.weight)
