"""One token through every layer in C (engine/fastpath/kernels/step.c) computes what the lean forward's Python
layers compute: for every family the fast path runs, int8 and GGUF int4 weights, each ISA path; and it stays
out of the way where it cannot run."""

from __future__ import annotations

import pytest
import torch

from engine.fastpath.kernels import build
from engine.fastpath.kernels.step import layers_step
from gguf_files import tiny_gguf
from test_fastpath_architectures import VOCAB, lean, tiny
from test_fastpath_kernels import CHOICE, PATHS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(params=PATHS)
def isa(request, monkeypatch):
    monkeypatch.setenv("HEARTH_KERNELS", CHOICE[request.param])
    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    yield request.param
    build.reset()


def _step_both_ways(fwd, token: int, pos: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits and the cache after one token at ``pos``, Python layers then C, from the same cache."""
    before = fwd.cache.clone()
    fwd.use_c_step = False
    want = fwd.forward(torch.tensor([token]), pos).clone()
    want_cache = fwd.cache.clone()
    fwd.cache.copy_(before)
    fwd.use_c_step = True
    got = fwd.forward(torch.tensor([token]), pos)
    return got, want, fwd.cache, want_cache


def _check_steps(fwd, ids: torch.Tensor, first: int, label: str) -> None:
    """Same roundings in the same order but for float sums, so equal to a few ulps of the largest value, except
    where a sum's last bits flip one activation's int8 rounding (one level of one block; on these tiny models
    up to a third of the steps): then some % at most. A wrong rotation, norm or window misses at every step."""
    close = []
    with torch.inference_mode():
        fwd.forward(ids[:first], 0, logits=False)  # the prompt: Python layers (many rows)
        assert fwd.c_step() is not None, label
        for t in range(first, len(ids)):
            got, want, cache, want_cache = _step_both_ways(fwd, int(ids[t]), t)
            error = float((got - want).abs().max()) / float(want.abs().max())
            cache_error = float((cache - want_cache).abs().max()) / float(want_cache.abs().max())
            assert error < 0.15 and cache_error < 0.15, f"{label}, position {t}: {error:.3g}, cache {cache_error:.3g}"
            close.append(error < 2e-5 and cache_error < 2e-5)
    assert sum(close) >= 0.5 * len(close), f"{label}: {close}"


@pytest.mark.parametrize("family", ["mistral", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "phi3_longrope"])
def test_the_c_step_computes_the_python_layers(isa, family):
    """int8 weights (a model folder's fast path); past every sliding window (4 and 6 positions)."""
    fwd = lean(tiny(family), "int8")
    ids = torch.randint(3, VOCAB, (16,), generator=torch.Generator().manual_seed(1))
    _check_steps(fwd, ids, 5, family)


@pytest.mark.parametrize("quant, arch", [("Q4_K_M", "llama"), ("Q4_0", "llama"), ("Q4_K_M", "gemma2"),
                                         ("Q4_1", "qwen2"), ("Q8_0", "phi3")])
def test_the_c_step_runs_gguf_weights_as_the_python_layers(isa, tmp_path_factory, quant, arch):
    """The file's int4 groups, Q4_K_M's int8 (Q6_K) parts beside them in one linear, Q4_0's scales only, Qwen2's
    q/k/v biases, a Q8_0 file's int8 weights throughout."""
    from engine import LoadConfig, load_model

    extra = {"window": 4} if arch == "gemma2" else {}
    path = tiny_gguf(tmp_path_factory.mktemp("gguf"), quant=quant, arch=arch, std=0.08, **extra)
    lm = load_model(LoadConfig(path=str(path), device="cpu"))
    fwd = lm.extras["decoder"].ready_for(lm).forward
    ids = torch.randint(3, 300, (20,), generator=torch.Generator().manual_seed(2))
    _check_steps(fwd, ids, 6, f"{arch} {quant}")


def test_the_c_step_follows_the_cache_when_it_grows():
    """A new cache allocation (a longer reply) binds the C step again, to the new cache's address."""
    from engine.fastpath import forward as F

    if build.load() is None:
        pytest.skip(build.reason())
    fwd = lean(tiny("qwen3"), "int8")
    ids = torch.randint(3, VOCAB, (12,), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        fwd.forward(ids[:4], 0, logits=False)
        first = fwd.c_step()
        fwd.forward(ids[4:5], 4)
        fwd.reserve(F.CACHE_STEP + 1)  # reallocates, keeping what is cached
        assert fwd.c_step() is not first and fwd.c_step() is not None
        got = fwd.forward(ids[5:6], 5)
        fwd.use_c_step = False
        fwd.cache[:, :, 5] = 0
        want = fwd.forward(ids[5:6], 5)
    torch.testing.assert_close(got, want, atol=2e-4 * float(want.abs().max()), rtol=0)


def test_where_the_c_step_cannot_run_the_python_layers_do(monkeypatch):
    model = tiny("qwen3")
    exact = lean(model, "exact")  # dense weights: torch's matmuls
    exact.reserve(4)
    assert layers_step(exact) is None
    monkeypatch.setenv("HEARTH_KERNELS", "0")
    build.reset()
    try:
        fwd = lean(model, "int8")
        with torch.inference_mode():
            logits = fwd.forward(torch.tensor([5]), 0)
        assert fwd.c_step() is None and torch.isfinite(logits).all()
    finally:
        build.reset()
