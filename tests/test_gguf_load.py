"""GGUF files run on their own quantization: logits agree with transformers on the dequantized weights."""

from __future__ import annotations

import pytest
import torch

from gguf_files import tiny_gguf

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf")


def _load(path):
    from engine import LoadConfig, load_model

    return load_model(LoadConfig(path=str(path), device="cpu"))


def _reference_logits(path, ids):
    """transformers' own GGUF loading: every tensor dequantized to fp32, its own forward."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()
    from engine.gguf.full_model import dequantized

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 quantization_config=dequantized())
    with torch.no_grad():
        return model(ids).logits[0]


@pytest.mark.parametrize("arch,quant,extra", [
    ("llama", "Q4_K_M", {}), ("llama", "Q4_0", {}), ("llama", "Q4_1", {}), ("llama", "Q5_0", {}),
    ("llama", "Q6_K", {}), ("llama", "Q8_0", {"tied": False}), ("llama", "F16", {}), ("llama", "BF16", {}),
    ("qwen2", "Q4_K_M", {}),  # q/k/v biases, and q/k rows in transformers' order (llama.cpp's NEOX RoPE)
    ("qwen3", "Q4_0", {"heads": 2, "kv_heads": 1}),  # q/k norms; transformers reads qwen3 GGUFs as head_dim 128
])
def test_quantized_logits_match_a_dequantized_reference(gguf_dir, arch, quant, extra):
    path = tiny_gguf(gguf_dir, arch=arch, quant=quant, **extra)
    lm = _load(path)
    assert lm.is_quantized_gguf and lm.describe()["quantization"]
    ids = torch.tensor([lm.tokenizer("The sea is wide, and the waves are high tonight.")["input_ids"]])
    ours = lm.model(ids).logits[0]
    reference = _reference_logits(path, ids)
    assert ours.shape == reference.shape
    # bf16 activations, bf16 group scales, per-row int8 for the non-4-bit types: close, not equal
    cosine = torch.nn.functional.cosine_similarity(ours.flatten(), reference.flatten(), dim=0)
    assert cosine > 0.999
    assert (ours - reference).abs().max() <= 0.08 * reference.abs().max()
    assert (ours.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.9


def test_the_decoder_continues_what_the_logits_say(gguf_dir):
    from engine import SamplingConfig, generate

    lm = _load(tiny_gguf(gguf_dir, quant="Q4_K_M"))
    prompt = lm.tokenizer("Hello there")["input_ids"]
    result = generate(lm, prompt, SamplingConfig(max_new_tokens=6, temperature=0.0))
    assert result.decoder.startswith("fast GGUF")
    assert result.new_tokens >= 1
    # greedy: the first new token is the argmax of the full forward's last position
    logits = lm.model(torch.tensor([prompt])).logits[0, -1]
    assert result.token_ids[0] == int(logits.argmax())


def test_no_converted_copy_is_written(gguf_dir, data_dir):
    from engine import ChatMessage, SamplingConfig, chat

    lm = _load(tiny_gguf(gguf_dir, quant="Q4_0"))
    reply = chat(lm, [ChatMessage("user", "Hi")], SamplingConfig(max_new_tokens=4, temperature=0.0))
    assert reply.new_tokens >= 1
    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert written == []


def test_memory_estimate_is_about_the_file(gguf_dir):
    from engine.gguf.memory import quick_estimate

    path = tiny_gguf(gguf_dir, quant="Q4_0_ALL", tied=False)
    estimate = quick_estimate(path)
    assert estimate is not None and estimate.file_bytes == path.stat().st_size
    assert 0.8 * estimate.file_bytes <= estimate.weights <= 1.3 * estimate.file_bytes
    assert estimate.kv_cache == 2 * 2 * 2 * 64 * 512 * 4  # layers, k+v, kv heads, head dim, context, fp32


@pytest.mark.parametrize("fbgemm", ["0", "1"])
def test_a_tied_quantized_embedding_is_held_once(gguf_dir, monkeypatch, fbgemm):
    """The tied Q8_0 output matrix lives once: as fbgemm's packed copy (no int8 tensor beside it), its token
    lookups reading the file's own rows; or, where fbgemm is missing, as the int8 matrix lookups read."""
    import numpy as np
    from gguf.quants import dequantize

    from engine.fastpath import dynamic_int8
    from engine.gguf.embedding import LinearRows, QuantizedEmbedding
    from engine.gguf.reader import open_gguf

    monkeypatch.setenv("HEARTH_FBGEMM", fbgemm)  # opt-in (dynamic_int8.py says why)
    monkeypatch.setattr(dynamic_int8, "_available", None)
    path = tiny_gguf(gguf_dir, quant="Q8_0")
    lm = _load(path)
    packed = lm.extras["decoder"]._prepared.forward.w
    if not dynamic_int8.available():
        assert isinstance(packed.embed, LinearRows) and packed.embed.linear is packed.lm_head
        return
    assert packed.lm_head.q is None and packed.lm_head.fb is not None
    assert isinstance(packed.embed, QuantizedEmbedding) and isinstance(packed.embed.raw, np.memmap)
    f = open_gguf(path)
    try:
        t = f.tensor("token_embd.weight")
        ids = [0, 5, int(t.shape[-1]) - 1]
        want = dequantize(np.array(t.data)[ids], t.tensor_type)
    finally:
        f.close()
    assert torch.equal(packed.embed[torch.tensor(ids)], torch.from_numpy(want.astype(np.float32)))
    # Every position's logits (no int8 matrix: a row at a time on fbgemm) equal the one-row calls.
    x = torch.randn(3, packed.lm_head.shape[1])
    rows = torch.cat([packed.lm_head(x[i:i + 1]) for i in range(3)])
    assert torch.equal(packed.lm_head(x), rows)
    q, s = packed.lm_head.fb.unpacked()  # and the matrix comes back for a cache or another device
    assert q.shape == packed.lm_head.shape and torch.equal(s, packed.lm_head.s)


def test_transformers_style_generate_matches_the_fast_decoder(gguf_dir):
    """``hf_decode`` (transformers' generate API, with forward hooks) works on the quantized model too."""
    from engine import SamplingConfig
    from engine.generation import hf_decode

    lm = _load(tiny_gguf(gguf_dir, quant="Q4_K_M"))
    prompt = lm.tokenizer("The waves are high")["input_ids"]
    sampling = SamplingConfig(max_new_tokens=5, temperature=0.0, repetition_penalty=1.0)
    seen = []
    hook = lm.model.register_forward_hook(lambda module, args, output: seen.append(output.logits[0, -1]))
    try:
        plain = hf_decode(lm, prompt, sampling, on_tokens=lambda ids: None, should_stop=lambda: False)
    finally:
        hook.remove()
    fast = lm.extras["decoder"].decode(lm, prompt, sampling, on_tokens=lambda ids: None, should_stop=lambda: False)
    assert plain == fast and len(seen) >= len(plain)


def test_the_full_model_is_built_on_demand_with_an_estimate_first(gguf_dir):
    from engine.gguf.full_model import full_model_estimate, full_model_for
    from engine.gguf.model import NeedsFullModelError

    path = tiny_gguf(gguf_dir, quant="Q4_0")
    lm = _load(path)
    ids = torch.tensor([lm.tokenizer("Hello")["input_ids"]])
    with pytest.raises(NeedsFullModelError):
        lm.model(ids, output_attentions=True)
    assert full_model_estimate(path) >= 2 * lm.describe()["parameters"]
    full = full_model_for(lm)
    assert full is not lm and full_model_for(lm) is full and full.tokenizer is lm.tokenizer
    assert torch.allclose(full.model(ids).logits[0].float(), lm.model(ids).logits[0], atol=0.1, rtol=0.05)
    from engine.lab.inspect import attention_maps

    maps = attention_maps(lm, "Hello there")  # the lab's attention view, on the quantized model
    assert maps.weights.shape[:2] == (2, 4)


def test_perplexity_of_the_quantized_model(gguf_dir):
    """``hearth-cli finetune ppl`` on a GGUF scores the file's own quantized model (labels give a loss)."""
    import math

    from engine.finetune.perplexity import perplexity

    lm = _load(tiny_gguf(gguf_dir, quant="Q4_0"))
    result = perplexity(lm.model, lm.tokenizer, "The sea is wide and the waves are high. " * 4, seq_len=32)
    ids = torch.tensor([lm.tokenizer("The sea is wide")["input_ids"]])
    loss = lm.model(ids, labels=ids).loss
    expected = torch.nn.functional.cross_entropy(lm.model(ids).logits[0, :-1], ids[0, 1:])
    assert math.isfinite(result.perplexity) and result.perplexity > 1
    assert torch.allclose(loss, expected)


def test_slow_repacks_are_cached_and_read_back(gguf_dir, data_dir, monkeypatch):
    from engine.gguf import cache

    path = tiny_gguf(gguf_dir, quant="Q4_K_M", tied=False)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    monkeypatch.setattr(cache, "CACHE_AFTER_S", float("inf"))
    assert not list(data_dir.rglob("*.safetensors")) and _load(path).model(ids).logits is not None
    assert not list(data_dir.rglob("*.safetensors"))  # a quick repack writes nothing
    monkeypatch.setattr(cache, "CACHE_AFTER_S", 0.0)
    fresh = _load(path).model(ids).logits
    written = list(data_dir.rglob("*.safetensors"))
    assert len(written) == 1 and written[0].stat().st_size < 1.5 * path.stat().st_size
    calls = []
    monkeypatch.setattr("engine.gguf.load._repack", lambda *a, **k: calls.append(1))
    again = _load(path)
    assert calls == [] and torch.equal(again.model(ids).logits, fresh)


@pytest.fixture
def mallopt(monkeypatch):
    """glibc's mallopt as a log of (parameter, value), from the heap state of a fresh process (an earlier test, a
    fine-tuning run, may have fixed a threshold for this one); engine.gguf.trim's state put back afterwards."""
    from engine.gguf import trim

    log = []
    monkeypatch.setattr(trim, "_mallopt", lambda param, value: log.append((param, value)) or True)
    for name, fresh in (("_fixed", None), ("_outside", None), ("_repacks", 0)):
        monkeypatch.setattr(trim, name, fresh)
    return log


def _threshold(log):
    from engine.gguf.trim import M_MMAP_THRESHOLD

    return [value for param, value in log if param == M_MMAP_THRESHOLD][-1]


def _spy_repack(monkeypatch, log):
    """The mmap threshold in force while the weights are built, in a list."""
    from engine.gguf import pack

    seen, build = [], pack.build_weights
    monkeypatch.setattr(pack, "build_weights", lambda *a, **k: seen.append(_threshold(log)) or build(*a, **k))
    return seen


@pytest.mark.parametrize("room", [True, False])
def test_the_mmap_threshold_is_fixed_only_while_repacking_where_memory_has_room(gguf_dir, data_dir, monkeypatch,
                                                                                  mallopt, room):
    from engine.gguf import trim

    monkeypatch.setattr("engine.gguf.load.heap_holes_fit", lambda meta, size: room)
    seen = _spy_repack(monkeypatch, mallopt)
    _load(tiny_gguf(gguf_dir, quant="Q4_0"))
    assert seen == [trim.MMAP_THRESHOLD]
    if room:  # glibc's heap policy afterwards: what its dynamic thresholds reach
        assert _threshold(mallopt) == trim.HEAP_MMAP_THRESHOLD
        assert mallopt[-1] == (trim.M_TRIM_THRESHOLD, trim.HEAP_TRIM_THRESHOLD)
    else:  # a model whose memory bound has no room for the heap's holes keeps its blocks mapped
        assert _threshold(mallopt) == trim.MMAP_THRESHOLD


def test_a_failed_load_leaves_the_heap_as_the_loaded_model_had_it(gguf_dir, data_dir, tmp_path, monkeypatch, mallopt):
    from engine.errors import BadModelFileError
    from engine.gguf import trim

    monkeypatch.setattr("engine.gguf.load.heap_holes_fit", lambda meta, size: True)
    _load(tiny_gguf(gguf_dir, quant="Q4_0"))
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    with pytest.raises(BadModelFileError):
        _load(bad)
    assert _threshold(mallopt) == trim.HEAP_MMAP_THRESHOLD


def test_a_threshold_fixed_for_the_process_comes_back_after_a_repack(gguf_dir, data_dir, monkeypatch, mallopt):
    from engine.gguf import trim

    monkeypatch.setattr("engine.gguf.load.heap_holes_fit", lambda meta, size: True)
    assert trim.fixed_mmap_threshold(1 << 20)  # as finetune/mixed.return_freed_memory does
    seen = _spy_repack(monkeypatch, mallopt)
    _load(tiny_gguf(gguf_dir, quant="Q4_1"))
    assert seen == [trim.MMAP_THRESHOLD] and _threshold(mallopt) == 1 << 20


def test_overlapping_repacks_restore_once_the_last_one_ends(mallopt):
    from engine.gguf import trim

    with trim.repack_heap():
        with trim.repack_heap():
            pass
        assert _threshold(mallopt) == trim.MMAP_THRESHOLD  # the outer repack is still running
    assert _threshold(mallopt) == trim.HEAP_MMAP_THRESHOLD


def test_only_a_file_with_room_in_its_bound_lets_the_heap_keep_a_prompt_pass(tmp_path):
    from types import SimpleNamespace

    from engine.gguf.load import heap_holes_fit

    default = SimpleNamespace(hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64)  # SmolLM2-135M
    one_b = SimpleNamespace(hidden=2048, intermediate=8192, heads=32, kv_heads=8, head_dim=64)  # the bench's 1 B
    assert not heap_holes_fit(default, 98_370_000)  # its Q4_1 file: ~4 MiB to spare under the bound
    assert heap_holes_fit(one_b, 618_000_000)  # its Q4_0 mix
    assert not heap_holes_fit(one_b, 60_000_000)


def test_the_heap_settings_reach_glibc_where_it_runs():
    import platform

    from engine.gguf import trim

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    with trim.repack_heap() as heap:
        assert heap.took is glibc
