"""Preparation (disk cache, background), stale weights, KV reuse across calls, and the sampler."""

from __future__ import annotations

import pytest
import torch

from engine import LoadConfig, load_model
from engine.config import SamplingConfig
from engine.fastpath import FastDecoder
from engine.fastpath.sampler import Sampler
from engine.generation import generate_ids

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=20, repetition_penalty=1.0, repetition_guard=False)


@pytest.fixture
def own_lm(tiny_model_dir):
    """A tiny model of this test's own (these tests change weights or the decoder)."""
    return load_model(LoadConfig(path=str(tiny_model_dir), device="cpu"))


def tokens(lm, prompt, sampling=GREEDY):
    return generate_ids(lm, lm.tokenizer(prompt)["input_ids"], sampling).token_ids


def test_int8_weights_are_cached_on_disk_and_reused(own_lm, data_dir):
    first = FastDecoder(own_lm, "int8")
    assert first.prepare()
    files = list((data_dir / "fastpath").glob("*.safetensors"))
    assert len(files) == 1
    own_lm.extras["decoder"] = first
    expected = tokens(own_lm, "The sea")
    stamp = files[0].stat().st_mtime_ns
    second = FastDecoder(own_lm, "int8")
    assert second.prepare()
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    own_lm.extras["decoder"] = second
    assert tokens(own_lm, "The sea") == expected


def test_a_corrupt_cache_file_is_rebuilt(own_lm, data_dir):
    assert FastDecoder(own_lm, "int8").prepare()
    (path,) = (data_dir / "fastpath").glob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    decoder = FastDecoder(own_lm, "int8")
    assert decoder.prepare()
    own_lm.extras["decoder"] = decoder
    assert len(tokens(own_lm, "The sea")) == GREEDY.max_new_tokens


def test_background_preparation_never_blocks_and_switches_when_ready(own_lm):
    decoder = own_lm.extras["decoder"]
    calls = []
    original = decoder._decode
    decoder._decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    release = __import__("threading").Event()
    build = decoder._build
    decoder._build = lambda lm: release.wait(30) and build(lm)
    own_lm.extras["prepare_fast_path"](own_lm)  # what load_task calls
    assert not decoder.supports(GREEDY)  # still preparing: the plain path answers
    before = tokens(own_lm, "The sea")
    assert calls == []
    release.set()
    assert decoder.wait_ready(30) and decoder.supports(GREEDY)
    decoder._decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    assert len(tokens(own_lm, "The sea")) == len(before) and calls == [1]


def test_changed_weights_are_noticed_and_repacked(own_lm):
    decoder = FastDecoder(own_lm, "exact")
    own_lm.extras["decoder"] = decoder
    tokens(own_lm, "Hello there")
    old = decoder._prepared
    with torch.no_grad():  # what training in place does
        own_lm.model.model.layers[0].mlp.down_proj.weight.mul_(-3.0)
    changed = tokens(own_lm, "Hello there")
    assert decoder._prepared is not old
    own_lm.extras["decoder"] = None
    assert changed == tokens(own_lm, "Hello there")


def test_a_cached_prompt_prefix_gives_the_same_tokens(own_lm):
    decoder = FastDecoder(own_lm, "exact")
    own_lm.extras["decoder"] = decoder
    first = tokens(own_lm, "The sea is wide and the waves")
    assert decoder._cached_ids  # kept for the next call
    follow_up = "The sea is wide and the waves are high"
    reused = tokens(own_lm, follow_up)
    decoder.forget()
    assert tokens(own_lm, follow_up) == reused
    assert first and tokens(own_lm, "The sea is wide and the waves") == first


def test_long_prompts_run_in_chunks(own_lm, monkeypatch):
    from engine.fastpath import decoder as decoder_module

    monkeypatch.setattr(decoder_module, "PREFILL_CHUNK", 7)
    prompt = "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20, commas; colons: and periods."
    own_lm.extras["decoder"] = None
    plain = tokens(own_lm, prompt)
    own_lm.extras["decoder"] = FastDecoder(own_lm, "exact")
    assert tokens(own_lm, prompt) == plain


def test_past_the_fast_paths_length_it_hands_over(own_lm):
    decoder = FastDecoder(own_lm, "exact")
    assert decoder.prepare()
    object.__setattr__(decoder._prepared.spec, "max_positions", 8)  # frozen dataclass: test-only poke
    own_lm.extras["decoder"] = decoder
    calls = []
    original = decoder._decode
    decoder._decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    assert len(tokens(own_lm, "The sea is wide and the waves")) == GREEDY.max_new_tokens
    assert calls == []


@pytest.mark.parametrize("cfg", [
    dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.0, repetition_penalty=1.1),
    dict(temperature=1.3, top_k=0, top_p=0.8, min_p=0.05, repetition_penalty=1.0),
    dict(temperature=0.5, top_k=5, top_p=1.0, min_p=0.1, repetition_penalty=0.8),
])
def test_sampler_keeps_the_distribution_of_transformers(cfg):
    from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                        RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    sampling = SamplingConfig(**cfg)
    torch.manual_seed(0)
    vocab, seen = 300, [3, 7, 7, 250]
    logits = torch.randn(vocab) * 3
    procs = LogitsProcessorList()
    if sampling.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    procs.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k:
        procs.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        procs.append(TopPLogitsWarper(sampling.top_p))
    if sampling.min_p:
        procs.append(MinPLogitsWarper(sampling.min_p))
    expected = procs(torch.tensor([seen]), logits[None].clone())[0].softmax(-1)
    sampler = Sampler(sampling, vocab, seen, torch.device("cpu"))
    warped, candidates = sampler.warped(sampler.penalised(logits.clone()))
    ours = torch.zeros(vocab)
    ours[candidates if candidates is not None else torch.arange(vocab)] = warped.softmax(-1)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_sampler_greedy_applies_the_repetition_penalty():
    sampling = SamplingConfig(temperature=0.0, repetition_penalty=2.0)
    logits = torch.tensor([0.0, 3.0, 2.0, -1.0])
    assert Sampler(sampling, 4, [1], torch.device("cpu"))(logits.clone()) == 2  # 3 / 2 < 2
    assert Sampler(sampling.with_(repetition_penalty=1.0), 4, [1], torch.device("cpu"))(logits.clone()) == 1


def test_a_fault_in_the_fast_path_falls_back_before_the_reply_starts(own_lm):
    decoder = FastDecoder(own_lm, "exact")
    assert decoder.prepare()
    own_lm.extras["decoder"] = None
    expected = tokens(own_lm, "The sea")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    decoder._prepared.forward.forward = broken
    own_lm.extras["decoder"] = decoder
    assert tokens(own_lm, "The sea") == expected  # answered by the plain path
    assert decoder.describe()["status"] == "off" and "boom" in decoder.describe()["reason"]
    assert not decoder.supports(GREEDY)


def test_an_overwritten_model_folder_replaces_its_cache_file(tmp_path, data_dir):
    from tiny_model import make_tiny_model

    folder = make_tiny_model(tmp_path / "m", seed=1)
    assert FastDecoder(load_model(LoadConfig(path=str(folder), device="cpu")), "int8").prepare()
    (first,) = (data_dir / "fastpath").glob("*.safetensors")
    make_tiny_model(folder, seed=2)  # e.g. a fine-tune saved over it
    lm = load_model(LoadConfig(path=str(folder), device="cpu"))
    assert FastDecoder(lm, "int8").prepare()
    (second,) = (data_dir / "fastpath").glob("*.safetensors")
    assert second != first
