"""Hearth's many-row int4 GEMM (engine/fastpath/kernels/gemm.c): every activation row rounded to int8 per block
of 32, times the exact int4 weight; on every ISA path, any thread count, and torch's int4 kernel where the
kernels do not build."""

from __future__ import annotations

import sys
import threading

import pytest
import torch

from engine.fastpath import linear
from engine.fastpath.kernels import build, gemm
from engine.fastpath.linear import Int4, unpack_int4
import test_fastpath_kernels as kernel_tests


def _paths() -> list[str]:
    build.reset()
    isa = build.isa() if build.load() is not None else 0
    build.reset()
    return ["generic"] + (["native"] if isa >= 2 else [])


PATHS = _paths()


@pytest.fixture(params=PATHS)
def isa(request, monkeypatch):
    """Each ISA path the library has here: HEARTH_KERNELS=generic forces the plain C one."""
    monkeypatch.setenv("HEARTH_KERNELS", "generic" if request.param == "generic" else "1")
    build.reset()
    assert build.load() is not None, build.reason()
    yield request.param
    build.reset()


def _int4(n: int, k: int, bias: bool, symmetric: bool, seed: int = 0) -> Int4:
    """Q4_1-like groups (scale and offset), or Q4_0-like (offset -8 scale: sz keeps the scales only)."""
    return kernel_tests._int4(n, k, bias, seed=seed, symmetric=symmetric)


def _exact(w: Int4) -> torch.Tensor:
    """[out, K] fp64: (q - 8) * scale + zero, no bf16 rounding."""
    q = unpack_int4(w.p)[:w.out].double() - 8
    parts = [t[:, :w.out].t().double().repeat_interleave(32, dim=1) for t in w.sz.unbind(-1)]
    return q * parts[0] + (parts[1] if len(parts) == 2 else 0)


def _rounded(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] rounded as the kernel rounds it: int8 per block of 32, scale amax / 127, half to even in fp32.
    Returns (x̂, half a step per input) as fp64 [M, K]."""
    m, k = x.shape
    blocks = x.float().view(m, k // 32, 32)
    d = blocks.abs().amax(dim=-1, keepdim=True) / 127
    inverse = torch.where(d > 0, 1 / torch.where(d > 0, d, 1), 0)
    q = torch.round(blocks * inverse)
    d = d.double()
    return (q.double() * d).view(m, k), (d / 2).expand_as(blocks).reshape(m, k)


def _check(y: torch.Tensor, w: Int4, x: torch.Tensor) -> None:
    """y [M, N] against the exact weight times x rounded as the kernel rounds it (up to fp32 sums and y's own
    rounding), and within the rounding's bound of the unrounded product."""
    exact_w = _exact(w)
    bias = 0 if w.b is None else w.b.double()
    x_hat, half_step = _rounded(x)
    rounded = x_hat @ exact_w.t() + bias
    exact = x.double() @ exact_w.t() + bias
    assert y.shape == (x.shape[0], w.out)
    scale = float(exact.abs().max())
    out_step = 2.0 ** -8 if y.dtype == torch.bfloat16 else 0.0  # y's own rounding, relative
    slack = rounded.abs() * out_step + 1e-5 * scale + 1e-5
    assert ((y.double() - rounded).abs() <= slack).all()  # the same rounding, fp32 sums
    bound = half_step @ exact_w.abs().t()  # |Σ w (x - x̂)| ≤ Σ |w| step / 2
    assert ((y.double() - exact).abs() <= bound * 1.001 + slack + exact.abs() * out_step).all()


@pytest.mark.parametrize("n,k,bias,symmetric", [(64, 32, False, False), (100, 96, True, False),
                                                (589, 576, True, False), (130, 1536, False, True),
                                                (300, 2048, True, True), (257, 2048, False, False)])
@pytest.mark.parametrize("rows", [4, 7, 13])  # whole register tiles of 6 rows and the last few
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gemm_is_the_exact_weight_times_the_rounded_activation(isa, n, k, bias, symmetric, rows, dtype):
    w = _int4(n, k, bias, symmetric)
    kernel = gemm.int4_gemm(w.p, w.sz, w.b, w.out)
    assert kernel is not None
    x = torch.randn(rows, k).to(dtype)
    x[1, 5] = 40.0  # an outlier dimension: only its own row's block's step grows
    x[2, :32] = 0.0  # an all-zero block: scale 0
    y = kernel(x)
    assert y.dtype == torch.bfloat16
    _check(y, w, x)
    _check(kernel(x, dtype=torch.float32), w, x)


def test_paths_threads_and_strided_rows_give_the_same_numbers(monkeypatch):
    """Each output is one thread's sum in a fixed order: bit for bit the same on 1-3 threads, on both ISA paths,
    and for rows that are a strided view."""
    w = _int4(1000, 2048, True, False)
    wide = torch.randn(37, 2048 + 64).to(torch.bfloat16)
    x = wide[:, 64:]  # rows 2112 apart
    results = []
    for path in PATHS:
        monkeypatch.setenv("HEARTH_KERNELS", "generic" if path == "generic" else "1")
        build.reset()
        kernel = gemm.int4_gemm(w.p, w.sz, w.b, w.out)
        runs = [kernel(x, threads) for threads in (1, 2, 3)] + [kernel(x.contiguous(), 2)]
        assert all(torch.equal(run, runs[0]) for run in runs[1:])
        results.append(runs[0])
    build.reset()
    assert all(torch.equal(other, results[0]) for other in results[1:])  # the same fp32 operations in C


def test_the_kernel_refuses_layouts_it_cannot_read():
    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    w = _int4(128, 64, True, False)
    assert gemm.int4_gemm(w.p[:, :16].contiguous(), w.sz, w.b, w.out) is None  # K does not match sz
    assert gemm.int4_gemm(w.p, w.sz.float(), w.b, w.out) is None
    assert gemm.int4_gemm(w.p, w.sz, w.b.float(), w.out) is None
    assert gemm.int4_gemm(w.p, w.sz, w.b, 129) is None  # more outputs than rows
    kernel = gemm.int4_gemm(w.p, w.sz, w.b, w.out)
    assert kernel(torch.randn(0, 64)).shape == (0, 128)


@pytest.mark.parametrize("symmetric", [False, True])
def test_int4_prompts_run_on_the_gemm_and_agree_with_torchs_int4_kernel(symmetric):
    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    w = _int4(589, 2048, True, symmetric)
    x = torch.randn(40, 2048).to(torch.bfloat16)
    y = w(x)
    assert isinstance(w.gemm, gemm.Gemm) and y.shape == (40, 589) and y.dtype == torch.bfloat16
    ref = torch._weight_int4pack_mm_for_cpu(x, w.p, 32, w._pairs())[:, :589] + w.b  # bf16 activations
    scale = float(ref.float().abs().max())
    assert (y.float() - ref.float()).abs().max() <= 0.02 * scale  # int8 against bf16 activations
    fewer = Int4(w.p, w.sz, w.b, out=w.out)
    short = fewer(x[:linear.INT4_GEMM_ROWS - 1])  # fewer rows: torch's int4 kernel, unchanged
    assert fewer.gemm is linear._PENDING
    assert torch.equal(short, ref[:linear.INT4_GEMM_ROWS - 1])
    assert w(x[:1]).dtype == torch.float32  # one row: the gemv kernel
    narrow = _int4(128, 576, True, symmetric)  # rows shorter than INT4_GEMM_INPUTS (the default model's)
    xs = torch.randn(40, 576).to(torch.bfloat16)
    assert torch.equal(narrow(xs), torch._weight_int4pack_mm_for_cpu(xs, narrow.p, 32, narrow._pairs()) + narrow.b)
    assert narrow.gemm is linear._PENDING


def test_without_the_kernels_prompts_stay_on_torchs_int4_kernel(monkeypatch):
    monkeypatch.setenv("HEARTH_KERNELS", "0")
    build.reset()
    try:
        w = _int4(200, 2048, True, True)
        x = torch.randn(linear.INT4_GEMM_ROWS + 20, 2048).to(torch.bfloat16)
        y = w(x)
        assert w.gemm is None and y.dtype == torch.bfloat16
        assert torch.equal(y, torch._weight_int4pack_mm_for_cpu(x, w.p, 32, w._pairs())[:, :200] + w.b)
    finally:
        build.reset()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_finished_threads_buffers_are_released():
    """Each calling thread keeps its rounded rows (M x K bytes) for its next call; a thread that ends unmaps them."""
    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    w = _int4(64, 8192, False, True)
    kernel = gemm.int4_gemm(w.p, w.sz, w.b, w.out)
    x = torch.randn(1024, 8192).to(torch.bfloat16)  # 8.8 MiB of rounded rows per calling thread

    def one_thread() -> None:
        worker = threading.Thread(target=kernel, args=(x, 1))
        worker.start()
        worker.join()

    one_thread()
    before = _rss_kib()
    for _ in range(10):
        one_thread()
    assert _rss_kib() - before < 30 * 1024  # kept by each ended thread: 88 MiB (60 read with 512 rows)
