"""Hearth's one-row int4/int8 kernels (engine/fastpath/kernels): the product of the dequantized weights with
the activation rounded to int8 per block of 32, on every ISA path, any thread count, and torch's kernels
where they cannot build."""

from __future__ import annotations

import math

import pytest
import torch

from engine.fastpath.kernels import build, gemv
from engine.fastpath.linear import Int4, Int8, unpack_int4
from gguf_files import tiny_gguf


def _paths() -> list[str]:
    build.reset()
    isa = build.isa() if build.load() is not None else 0
    build.reset()
    return ["generic"] + (["avx2"] if isa >= 1 else []) + (["native"] if isa >= 2 else [])


PATHS = _paths()
CHOICE = {"generic": "generic", "avx2": "avx2", "native": "1"}  # path -> HEARTH_KERNELS


@pytest.fixture(params=PATHS)
def isa(request, monkeypatch):
    """Each ISA path the library has here (HEARTH_KERNELS: generic the plain C one, avx2 a library compiled
    without AVX-512, 1 the best one, AVX-512 where the CPU has it)."""
    monkeypatch.setenv("HEARTH_KERNELS", CHOICE[request.param])
    build.reset()
    assert build.load() is not None, build.reason()
    yield request.param
    build.reset()


def _int4(n: int, k: int, bias: bool, seed: int = 0, symmetric: bool = False) -> Int4:
    """Q4_1-like groups (scale and offset), or Q4_0-like (offset -8 scale: sz keeps the scales only)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8, generator=g)
    scale = torch.rand(n, k // 32, generator=g) * 0.02 + 0.001
    offset = -8 * scale if symmetric else -torch.rand(n, k // 32, generator=g) * 0.1
    w = Int4.from_groups(q, scale, offset, torch.randn(n, generator=g) if bias else None)
    assert w.sz.shape[-1] == (1 if symmetric else 2)
    return w


def _int8(n: int, k: int, bias: bool, seed: int = 0) -> Int8:
    g = torch.Generator().manual_seed(seed)
    return Int8.quantize(torch.randn(n, k, generator=g), torch.randn(n, generator=g) if bias else None)


def _exact4(w: Int4) -> torch.Tensor:
    """[out, K] fp64: (q - 8) * scale + zero without a bf16 rounding (``dequantized()`` gives bf16)."""
    q = unpack_int4(w.p)[:w.out].double() - 8
    parts = [t[:, :w.out].t().double().repeat_interleave(32, dim=1) for t in w.sz.unbind(-1)]
    return q * parts[0] + (parts[1] if len(parts) == 2 else 0)


def _exact8(w: Int8) -> torch.Tensor:
    return w.q.double() * w.s.double()[:, None]


def _rounded(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [K] rounded as the kernels do: int8 per block of 32, scale amax / 127. Returns (x̂, error bound)."""
    blocks = x.float().view(-1, 32)
    d = blocks.abs().amax(dim=1, keepdim=True) / 127  # fp32 arithmetic, step by step, as the C code does
    inverse = torch.where(d > 0, 1 / torch.where(d > 0, d, 1), 0)
    q = torch.round(blocks * inverse)  # half to even, as nearbyintf / vcvtps2dq
    d = d.double()
    return (q.double() * d).view(-1), (d / 2).expand_as(blocks).reshape(-1)


def _check(y: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> None:
    """y [1, N] against W [N, K] (fp64) times x [1, K]: exact up to float sums with x rounded as the kernel
    rounds it, and within the rounding's bound of the unrounded product."""
    bias = 0 if b is None else b.double()
    x_hat, half_step = _rounded(x[0].float())
    rounded = w @ x_hat + bias
    exact = w @ x[0].double() + bias
    assert y.shape == (1, w.shape[0]) and y.dtype == torch.float32
    scale = float(exact.abs().max())
    assert (y[0].double() - rounded).abs().max() <= 1e-5 * scale + 1e-5  # the same rounding, float sums
    bound = w.abs() @ half_step  # |Σ w (x - x̂)| ≤ Σ |w| step / 2
    assert ((y[0].double() - exact).abs() <= bound * 1.001 + 1e-5 * scale + 1e-5).all()


@pytest.mark.parametrize("n,k,bias,symmetric", [(64, 32, False, False), (100, 96, True, False),
                                                (589, 576, True, False), (130, 1536, False, False),
                                                (100, 96, True, True), (589, 576, False, True),
                                                (300, 2048, True, False), (257, 2048, False, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int4_kernel_is_the_dequantized_product(isa, n, k, bias, symmetric, dtype):
    w = _int4(n, k, bias, symmetric=symmetric)
    kernel = gemv.int4_kernel(w.p, w.sz, w.b, w.out)
    assert kernel is not None
    x = torch.randn(1, k).to(dtype)
    x[0, 5] = 40.0  # an outlier dimension: only its own block's step grows
    _check(kernel(x), _exact4(w), w.b, x)


@pytest.mark.parametrize("n,k,bias", [(1, 32, False), (7, 96, True), (513, 576, True), (40, 2048, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_kernel_is_the_dequantized_product(isa, n, k, bias, dtype):
    w = _int8(n, k, bias)
    kernel = gemv.int8_kernel(w.q, w.s, w.b)
    assert kernel is not None
    x = torch.randn(1, k).to(dtype)
    x[0, -1] = -25.0
    _check(kernel(x), _exact8(w), w.b, x)


def test_the_paths_agree_and_threads_change_nothing(monkeypatch):
    int4, int8 = _int4(1000, 2048, True), _int8(3000, 576, True)  # K 2048: two int4 row blocks at a time
    x = torch.randn(1, 2048)
    results = []
    for path in PATHS:
        monkeypatch.setenv("HEARTH_KERNELS", CHOICE[path])
        build.reset()
        assert build.isa() == {"generic": 0, "avx2": 1}.get(path, 2)
        k4, k8 = gemv.int4_kernel(int4.p, int4.sz, int4.b, int4.out), gemv.int8_kernel(int8.q, int8.s, int8.b)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = (k4(x), k8(x[:, :576]))
            torch.set_num_threads(2)
            two = (k4(x), k8(x[:, :576]))
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])  # rows split, sums unchanged
        results.append(one)
    build.reset()
    for other in results[1:]:  # summation order differs between paths: float rounding only
        assert torch.allclose(other[0], results[0][0], rtol=1e-4, atol=1e-4)
        assert torch.allclose(other[1], results[0][1], rtol=1e-4, atol=1e-4)


def test_scales_only_weights_give_what_scale_and_zero_give():
    """A Q4_0-like weight keeps sz [K / 32, N, 1]: prompts (torch's kernel, zeros added), rows and the
    dequantized matrix agree with the same weight stored with explicit zero offsets."""
    sym = _int4(130, 96, True, symmetric=True)
    full = Int4(sym.p, torch.cat([sym.sz, torch.zeros_like(sym.sz)], dim=-1), sym.b, out=sym.out)
    x = torch.randn(5, 96)
    assert torch.equal(sym(x), full(x))
    assert torch.equal(sym.dequantized(), full.dequantized())
    ids = torch.tensor([0, 63, 64, 129])
    assert torch.equal(sym.rows(ids), full.rows(ids))
    assert torch.allclose(sym(x[:1]), full(x[:1]))


def test_linears_use_the_kernel_for_one_row_only():
    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    w = _int4(200, 576, True)
    x = torch.randn(3, 576)
    many = w(x)  # torch's int4 kernel, bf16
    assert many.dtype == torch.bfloat16 and w.gemv is not None and not isinstance(w.gemv, gemv._Kernel)
    one = w(x[:1])
    assert one.dtype == torch.float32 and isinstance(w.gemv, gemv._Kernel)
    assert torch.allclose(one, many[:1].float(), rtol=0.02, atol=0.05 * float(many.abs().max()))
    w8 = _int8(300, 576, False)
    assert w8(x[:1]).dtype == torch.float32 and isinstance(w8.gemv, gemv._Kernel)


def test_without_a_compiler_torch_kernels_stay(monkeypatch, data_dir):
    monkeypatch.setattr(build, "compiler", lambda: None)
    monkeypatch.setenv("HEARTH_KERNELS", "1")
    build.reset()
    try:
        assert build.load() is None and "no C compiler" in build.reason()
        assert "torch's kernels" in build.describe()
        w = _int4(100, 64, True)
        y = w(torch.randn(1, 64))
        assert w.gemv is None and y.dtype == torch.bfloat16 and y.shape == (1, 100)
        w8 = _int8(10, 64, True)
        assert w8(torch.randn(1, 64)).shape == (1, 10) and w8.gemv is None
    finally:
        build.reset()


def test_a_failed_compile_falls_back(monkeypatch, data_dir, tmp_path):
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: error: this compiler is broken' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(build, "compiler", lambda: str(fake))
    build.reset()
    try:
        assert build.load() is None and "could not compile" in build.reason()
    finally:
        build.reset()


def test_the_library_is_built_once_into_the_data_folder(data_dir):
    build.reset()
    try:
        if build.compiler() is None:
            pytest.skip("no C compiler here")
        first = build.build(data_dir / "kernels", reuse=False)
        assert first.is_file() and first.parent == data_dir / "kernels"
        mtime = first.stat().st_mtime_ns
        assert build.build(data_dir / "kernels", reuse=False) == first and first.stat().st_mtime_ns == mtime
    finally:
        build.reset()


def _decode_route(lm, ids: list[int]) -> tuple[float, list[int]]:
    """Perplexity of ``ids`` one token at a time (the decode route), and 12 greedy tokens after them."""
    forward = lm.extras["decoder"].ready_for(lm).forward
    lm.extras["decoder"].forget()
    nll = 0.0
    with torch.inference_mode():
        for i in range(len(ids) - 1):
            logits = forward.forward(torch.tensor([ids[i]]), i)
            nll -= float(torch.log_softmax(logits.float(), -1)[ids[i + 1]])
        greedy, token, pos = [], int(forward.forward(torch.tensor([ids[-1]]), len(ids) - 1).argmax()), len(ids)
        for _ in range(12):
            greedy.append(token)
            token = int(forward.forward(torch.tensor([token]), pos).argmax())
            pos += 1
    lm.extras["decoder"].forget()
    return math.exp(nll / (len(ids) - 1)), greedy


def test_the_lean_forward_on_the_kernels_stays_with_torchs(tmp_path_factory, monkeypatch, one_torch_thread):
    """A tiny Q4_0 model (Q8_0 tied output): perplexity token by token and greedy tokens, kernels vs torch."""
    from engine import LoadConfig, load_model

    build.reset()
    if build.load() is None:
        pytest.skip(f"the kernels do not build here: {build.reason()}")
    path = tiny_gguf(tmp_path_factory.mktemp("gguf"), quant="Q4_0", hidden=256, intermediate=512, std=0.08)
    results = {}
    for choice in ("1", "0"):
        monkeypatch.setenv("HEARTH_KERNELS", choice)
        build.reset()
        lm = load_model(LoadConfig(path=str(path), device="cpu"))
        text = "The sea is wide, and the waves are high tonight; the boats stay in the harbour. " * 6
        ids = lm.tokenizer(text)["input_ids"][:160]  # long enough that single int8 rounding flips average out
        results[choice] = _decode_route(lm, ids)
        forward = lm.extras["decoder"].ready_for(lm).forward
        assert (forward.c_step() is not None) == (choice == "1")  # the layers in C, on the kernels (step.c)
        assert isinstance(forward.w.lm_head.gemv, gemv._Kernel) == (choice == "1")
        kernels = lm.extras["decoder"].describe()["kernels"]  # what the status and the bench show
        assert ("Hearth's" in kernels) == (choice == "1") and ("HEARTH_KERNELS=0" in kernels) == (choice == "0")
    build.reset()
    (ppl_ours, greedy_ours), (ppl_torch, greedy_torch) = results["1"], results["0"]
    assert abs(ppl_ours / ppl_torch - 1) < 0.01
    assert sum(a == b for a, b in zip(greedy_ours, greedy_torch)) >= 9


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_values_do_not_saturate(isa, sign):
    """The AVX2 path sums byte products in int16 (vpmaddubsw): every nibble 15 and every activation byte
    +-127 (a whole group of 32: 60960 before the widening), an int8 weight of -128 against -127."""
    n, k = 64, 128
    w = Int4.from_groups(torch.full((n, k), 15, dtype=torch.uint8), torch.full((n, k // 32), 0.01),
                         torch.zeros(n, k // 32))
    x = torch.full((1, k), sign)
    x[0, 64:] = -sign  # one group of each sign
    _check(gemv.int4_kernel(w.p, w.sz, w.b, w.out)(x), _exact4(w), None, x)
    q = torch.full((n, k), -128, dtype=torch.int8)
    q[1::2] = 127
    s = torch.full((n,), 0.01).to(torch.bfloat16)
    y = gemv.int8_kernel(q, s, None)(x)
    _check(y, q.double() * s.double()[:, None], None, x)


def test_the_avx2_path_runs_prompts_row_by_row(monkeypatch):
    """gemm.c has no AVX2 code (its plain C is far slower than torch's int4 kernel): on the AVX2 path prompts of
    Int4 run the one-row kernel on each row, which rounds each row as the GEMM does."""
    if "avx2" not in PATHS:
        pytest.skip("no AVX2 here")
    from engine.fastpath.kernels import gemm

    monkeypatch.setenv("HEARTH_KERNELS", "avx2")
    build.reset()
    try:
        w = _int4(200, 2048, True)  # rows long enough for the GEMM (linear.INT4_GEMM_INPUTS)
        x = torch.randn(5, 2048)
        many = w(x)
        assert build.isa() == 1 and isinstance(w.gemm, gemm.Gemm) and many.dtype == torch.bfloat16
        rows = torch.cat([w(x[i:i + 1]) for i in range(5)])  # the one-row kernel, fp32
        assert torch.equal(many, rows.to(torch.bfloat16))
        assert torch.equal(w.gemm(x, dtype=torch.float32), rows)
        assert "AVX2" in build.describe()
    finally:
        build.reset()


_TORCH_AVX2 = """
import torch
from engine.fastpath.kernels import build
from engine.fastpath.linear import Int4
assert torch.backends.cpu.get_cpu_capability() == "AVX2" and build.isa() == 1, build.reason()
g = torch.Generator().manual_seed(0)
q = torch.randint(0, 16, (128, 64), dtype=torch.uint8, generator=g)
w = Int4.from_groups(q, torch.full((128, 2), 0.01), torch.full((128, 2), -0.08))
exact = (q.double() - 8) * 0.01
from engine.fastpath import linear
assert not linear.torch_reads_int4_layout()
wide = Int4.from_groups(torch.randint(0, 16, (128, 2048), dtype=torch.uint8, generator=g),
                        torch.full((128, 64), 0.01), torch.full((128, 64), -0.08))
for weight in (w, wide):  # rows of fewer / more inputs than linear.INT4_GEMM_INPUTS
    exact = weight.dequantized().double()
    for rows in (1, 2, 3, 5):
        x = torch.randn(rows, exact.shape[1], generator=g)
        want = x.double() @ exact[:128].t()
        err = (weight(x).double() - want).abs().max()
        assert err < 0.01 * float(want.abs().max()), (rows, float(err))
"""


def test_int4_is_right_under_torchs_avx2_kernels(data_dir):
    """torch packs int4 for its AVX2 (and plain) kernels in another layout than the AVX-512 one Int4 keeps: on an
    AVX2 CPU one row and prompts run Hearth's AVX2 kernels, which read Int4's layout (a process with torch's
    AVX2 kernels, as on such a CPU)."""
    import os
    import subprocess
    import sys

    if "avx2" not in PATHS:
        pytest.skip("no AVX2 here")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", HEARTH_KERNELS="avx2", HEARTH_DATA_DIR=str(data_dir))
    run = subprocess.run([sys.executable, "-c", _TORCH_AVX2], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


_TORCH_PLAIN = _TORCH_AVX2.replace('"AVX2" and build.isa() == 1', '"DEFAULT" and build.load() is None')


def test_int4_is_right_where_neither_torchs_nor_hearths_kernels_read_its_layout(data_dir):
    """torch's plain kernels (a CPU without AVX2, Apple's) and no Hearth kernels (no compiler): rows dequantized
    with torch ops, slow but right."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", HEARTH_KERNELS="0", HEARTH_DATA_DIR=str(data_dir))
    run = subprocess.run([sys.executable, "-c", _TORCH_PLAIN], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_without_a_compiler_the_kernels_compiled_ahead_run(monkeypatch, data_dir, tmp_path):
    """The packaged app on a machine with no compiler: the best library `prebuild` made for this CPU's level."""
    if "native" not in PATHS and "avx2" not in PATHS:
        pytest.skip("no AVX2 or AVX-512 here")
    made = build.prebuild(tmp_path / "prebuilt")
    assert {p.name for p in made} == {"kernels-avx512.so", "kernels-avx2.so"}
    monkeypatch.setattr(build, "PREBUILT", tmp_path / "prebuilt")
    monkeypatch.setattr(build, "compiler", lambda: None)
    monkeypatch.setenv("HEARTH_KERNELS", "1")
    build.reset()
    try:
        assert build.load() is not None, build.reason()
        assert build.isa() == (2 if "native" in PATHS else 1) and "compiled ahead" in build.describe()
        w = _int4(200, 576, True)
        x = torch.randn(1, 576)
        _check(w(x), _exact4(w), w.b, x)  # the product, within the int8 rounding's bound
    finally:
        build.reset()
    monkeypatch.setattr(build, "cpu_flags", lambda: {"avx2", "fma", "f16c", "bmi2"})  # an AVX2-only desktop
    assert build.prebuilt(tmp_path / "prebuilt").name == "kernels-avx2.so"
    monkeypatch.setattr(build, "cpu_flags", lambda: {"sse4_2"})
    assert build.prebuilt(tmp_path / "prebuilt") is None
