"""gemma / gemma2 / gemma3 / phi3 GGUF files are read in place, and compute what transformers computes.

Each tiny random file (engine/gguf/synthetic.py, laid out as llama.cpp's converter writes these families:
gemma norms stored as 1 + w, phi3's fused q/k/v and gate/up) is checked against transformers' own forward:
its GGUF loading where it reads the family (gemma2, gemma3, phi3), else the same weights dequantized into
its model class (gemma). Sequences run past the sliding windows.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gguf_files import tiny_gguf

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = {  # arch -> SyntheticConfig fields (gemma2/3's head size 256: transformers' query scale for them)
    "gemma": dict(arch="gemma", heads=2, kv_heads=1, head_size=128, vocab=512),
    "gemma2": dict(arch="gemma2", heads=2, kv_heads=1, head_size=256, window=8, vocab=512),
    "gemma3": dict(arch="gemma3", heads=2, kv_heads=1, head_size=256, window=8, layers=6, vocab=512),
    "phi3": dict(arch="phi3", tied=False, window=64, vocab=512),  # transformers' GGUF phi3 has no window
}
IDS = torch.arange(5, 45)[None]  # 40 positions: five times gemma's windows


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf-families")


def _load(path):
    from engine import LoadConfig, load_model

    return load_model(LoadConfig(path=str(path), device="cpu"))


def _reference(path, arch: str) -> torch.Tensor:
    """transformers' logits for IDS on the file's weights dequantized to fp32."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    from engine.gguf.full_model import _build_direct, dequantized

    logging.set_verbosity_error()
    if arch == "gemma":  # transformers' GGUF loading does not read gemma (1) files
        model = _build_direct(path, torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                     quantization_config=dequantized())
    with torch.no_grad():
        return model(IDS).logits[0]


def _float_weights(monkeypatch):
    """Float tensors kept in fp32 instead of bf16 and run as the exact path runs them (fp32 activations), so the
    forward's algebra can be checked to fp32 rounding."""
    from engine.gguf import embedding, pack, quants

    def fp32(data, qtype, shape):
        return quants.dequantized(data, qtype, shape)

    def exact(*args, **kwargs):
        return dataclasses.replace(build(*args, **kwargs), mode="exact")

    build = pack.build_weights
    monkeypatch.setattr(quants, "to_bf16", fp32)
    monkeypatch.setattr(embedding, "to_bf16", fp32)
    monkeypatch.setattr(pack, "build_weights", exact)


def _perplexity(logits: torch.Tensor) -> float:
    return math.exp(float(torch.nn.functional.cross_entropy(logits[:-1].float(), IDS[0, 1:])))


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_a_float_file_is_read_in_place_and_matches_transformers(gguf_dir, arch, monkeypatch):
    path = tiny_gguf(gguf_dir, quant="F32", **FAMILIES[arch])
    reference = _reference(path, arch)
    lm = _load(path)
    assert lm.is_quantized_gguf and "gguf_converted" not in lm.extras  # in place, not converted
    assert lm.extras["gguf"]["architecture"] == arch
    ours = lm.model(IDS).logits[0]  # bf16 weights, as the app runs an F32 file
    assert torch.nn.functional.cosine_similarity(ours.flatten(), reference.flatten(), dim=0) > 0.999
    assert (ours - reference).abs().max() <= 0.02 * reference.abs().max()
    _float_weights(monkeypatch)
    exact = _load(path).model(IDS).logits[0]
    assert torch.allclose(exact, reference, atol=1e-4, rtol=1e-4), float((exact - reference).abs().max())


@pytest.mark.parametrize("arch,quant", [("gemma", "Q4_1"), ("gemma2", "Q4_K_M"), ("gemma3", "Q8_0"),
                                        ("phi3", "Q4_0")])
def test_a_quantized_file_keeps_the_perplexity_of_its_dequantized_weights(gguf_dir, arch, quant):
    path = tiny_gguf(gguf_dir, quant=quant, **FAMILIES[arch])
    ours = _load(path).model(IDS).logits[0]
    reference = _reference(path, arch)
    assert abs(_perplexity(ours) / _perplexity(reference) - 1) < 0.01
    assert (ours.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.9


def test_phi3_partial_rotary(gguf_dir, monkeypatch):
    """Only the first ``rope.dimension_count`` features of each head rotate (Phi-4-mini's layout); transformers'
    GGUF loading ignores that key, so the reference is its Phi3 model with partial_rotary_factor set."""
    path = tiny_gguf(gguf_dir, quant="F32", rotary=32, **FAMILIES["phi3"])
    _float_weights(monkeypatch)
    lm = _load(path)
    assert lm.extras["decoder"].ready_for(lm).spec.rotary == 32
    assert torch.allclose(lm.model(IDS).logits[0], _reference_direct(path), atol=1e-4, rtol=1e-4)


def _reference_direct(path) -> torch.Tensor:
    from engine.gguf.full_model import _build_direct

    model = _build_direct(path, torch.float32)
    assert model.config.partial_rotary_factor == 0.5
    with torch.no_grad():
        return model(IDS).logits[0]


def test_phi3_longrope_uses_the_short_factors_up_to_the_original_context(gguf_dir, monkeypatch):
    """A Phi-3 128k-style file (rope_factors_short/long, context 4x the original): transformers' own LongRoPE
    rotary (its Phi3 model, the file's factors) is the reference; the context stops at the original one."""
    from transformers import Phi3Config
    from transformers.models.phi3.modeling_phi3 import Phi3RotaryEmbedding

    from engine.gguf.full_model import _build_direct
    from engine.gguf.reader import open_gguf

    path = tiny_gguf(gguf_dir, quant="F32", rotary=32, longrope=True, **FAMILIES["phi3"])
    f = open_gguf(path)
    short, long = (f.tensor(f"rope_factors_{k}.weight").data.tolist() for k in ("short", "long"))
    f.close()
    model = _build_direct(path, torch.float32)
    c = model.config
    rope = {"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": short, "long_factor": long,
            "partial_rotary_factor": 0.5}
    model.model.rotary_emb = Phi3RotaryEmbedding(Phi3Config(
        hidden_size=c.hidden_size, num_attention_heads=c.num_attention_heads, vocab_size=c.vocab_size,
        pad_token_id=0, max_position_embeddings=4 * 512, original_max_position_embeddings=512,
        partial_rotary_factor=0.5, rope_parameters=rope))
    assert model.model.rotary_emb.attention_scaling > 1.05  # sqrt(1 + ln 4 / ln 512)
    with torch.no_grad():
        reference = model(IDS).logits[0]
    _float_weights(monkeypatch)
    lm = _load(path)
    assert lm.context_length == 512
    assert torch.allclose(lm.model(IDS).logits[0], reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("fields", [
    dict(FAMILIES["gemma3"], rope_linear=8.0),  # Gemma 3 4B+: linear scaling on the global layers only
    dict(arch="llama", rope_freqs=True),  # Llama 3's per-frequency factors (the full model failed on them)
])
def test_rope_scaling_from_the_file_matches_transformers_model_of_it(gguf_dir, monkeypatch, fields):
    """Against transformers' model class of the same file (its GGUF loading reads neither key): Hearth's reader
    builds it, transformers' own rotary applies gemma3's linear scaling; Llama 3's factors are set into it."""
    from engine.gguf.full_model import _build_direct

    path = tiny_gguf(gguf_dir, quant="F32", **fields)
    model = _build_direct(path, torch.float32)
    with torch.no_grad():
        reference = model(IDS).logits[0]
    _float_weights(monkeypatch)
    ours = _load(path).model(IDS).logits[0]
    assert torch.allclose(ours, reference, atol=1e-4, rtol=1e-4), float((ours - reference).abs().max())


@pytest.mark.parametrize("arch", ["gemma2", "gemma3"])
def test_decoding_past_the_window_continues_what_the_logits_say(gguf_dir, arch):
    """The fast decoder's cached steps (sliding-window layers, per-layer RoPE bases) agree with the full
    forward: greedy tokens are the argmax of the logits of the whole sequence so far."""
    from engine import SamplingConfig, generate

    lm = _load(tiny_gguf(gguf_dir, quant="Q8_0", **FAMILIES[arch]))
    prompt = IDS[0, :12].tolist()
    result = generate(lm, prompt, SamplingConfig(max_new_tokens=10, temperature=0.0, repetition_penalty=1.0))
    assert result.decoder.startswith("fast GGUF") and len(result.token_ids) == 10
    full = lm.model(torch.tensor([prompt + list(result.token_ids)])).logits[0]
    assert list(result.token_ids) == full[len(prompt) - 1:-1].argmax(-1).tolist()


@pytest.mark.parametrize("arch", ["gemma2", "phi3"])  # gemma's builder (transformers reads no gemma (1) GGUF)
def test_the_sentencepiece_tokenizer_comes_from_the_metadata(gguf_dir, arch):
    from transformers import AutoTokenizer

    path = tiny_gguf(gguf_dir, quant="Q8_0", **FAMILIES[arch])
    ours = _load(path).tokenizer
    theirs = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in ("the rain ends", " hello there, it is hot!", "tea\nand toast 42"):
        assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    ids = ours("the rain ends")["input_ids"]
    assert ids[0] == ours.bos_token_id and len(ids) < len("the rain ends")  # BOS, and merged pieces
    assert ours.decode(ids, skip_special_tokens=True) == "the rain ends"


def test_a_missing_family_tensor_is_one_sentence_naming_the_file(gguf_dir, tmp_path):
    from engine.errors import ModelLoadError

    data = bytearray(tiny_gguf(gguf_dir, quant="Q8_0", **FAMILIES["gemma2"]).read_bytes())
    at = data.index(b"blk.1.post_ffw_norm.weight")
    data[at:at + 26] = b"blk.1.post_fxw_norm.weight"
    bad = tmp_path / "damaged-gemma2.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as caught:
        _load(bad)
    message = str(caught.value)
    assert "damaged-gemma2.gguf" in message and "blk.1.post_ffw_norm.weight" in message
    assert message.count(". ") <= 1
