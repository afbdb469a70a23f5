"""The fixed-shape decode step (what a CUDA graph records) computes what the lean forward computes.

On CPU the step runs eagerly, so its logic is checked here; the graph capture itself needs CUDA
(bench/gpu.sh runs it on a GPU machine).
"""

from __future__ import annotations

import pytest
import torch

from engine.fastpath.graph import StaticStep
from test_fastpath_architectures import VOCAB, lean, tiny


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "qwen3", "phi3"])
def test_static_step_matches_the_lean_forward(family):
    model = tiny(family)
    ids = torch.randint(3, VOCAB, (14,), generator=torch.Generator().manual_seed(3))
    plain, static = lean(model, "exact"), lean(model, "exact")
    for fwd in (plain, static):
        fwd.reserve(20)
        fwd.forward(ids[:5], 0, logits=False)
    step = StaticStep(static)
    assert not step.use_graph  # CPU: eager
    for t in range(5, len(ids)):  # past every sliding window (4 and 6 positions)
        want = plain.forward(ids[t:t + 1], t)
        got = step(int(ids[t]), t)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=f"{family}, position {t}")
    torch.testing.assert_close(static.cache[:, :, :len(ids)], plain.cache[:, :, :len(ids)])


def test_a_new_cache_needs_a_new_step():
    fwd = lean(tiny("qwen3"), "exact")
    fwd.reserve(10)
    step = StaticStep(fwd)
    assert step.valid_for(fwd)
    fwd.reserve(300)  # grows past one CACHE_STEP: a new tensor
    assert not step.valid_for(fwd)


def test_decoder_with_static_steps_decodes_like_transformers(tiny_lm):
    from engine.config import SamplingConfig
    from engine.fastpath import FastDecoder
    from engine.generation import generate_ids

    greedy = SamplingConfig(temperature=0.0, max_new_tokens=16, repetition_penalty=1.0, repetition_guard=False)
    ids = tiny_lm.tokenizer("The sea is wide and")["input_ids"]
    original = tiny_lm.extras.get("decoder")
    try:
        tiny_lm.extras["decoder"] = None
        plain = generate_ids(tiny_lm, ids, greedy)
        tiny_lm.extras["decoder"] = FastDecoder(tiny_lm, "exact", static_step=True)
        fast = generate_ids(tiny_lm, ids, greedy)
        assert fast.token_ids == plain.token_ids and fast.decoder == "fast exact"
        turn = ids + list(fast.token_ids)
        again = generate_ids(tiny_lm, turn, greedy)  # the next turn reuses the cache
        tiny_lm.extras["decoder"] = None
        assert again.token_ids == generate_ids(tiny_lm, turn, greedy).token_ids
    finally:
        tiny_lm.extras["decoder"] = original


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_replays_the_step():
    from engine.fastpath.forward import LeanForward
    from engine.fastpath.spec import describe, rope_tables
    from engine.fastpath.weights import pack

    model = tiny("gemma2").cuda()
    spec = describe(model)
    fwd = LeanForward(pack(model, spec, "exact", torch.float32), spec, rope_tables(model, spec),
                      torch.device("cuda"), torch.float32)
    ids = torch.randint(3, VOCAB, (10,), generator=torch.Generator().manual_seed(4)).cuda()
    fwd.reserve(16)
    fwd.forward(ids[:5], 0, logits=False)
    step = StaticStep(fwd)
    assert step.use_graph
    with torch.inference_mode():
        ref = model(ids[None]).logits[0].float()
    for t in range(5, 10):
        torch.testing.assert_close(step(int(ids[t]), t), ref[t], atol=1e-4, rtol=1e-4)
    assert step.graph is not None
