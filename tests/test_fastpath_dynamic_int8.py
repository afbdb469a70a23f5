"""fbgemm's dynamic int8 linear for one-row calls of an Int8 weight (engine/fastpath/dynamic_int8.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from engine.fastpath import dynamic_int8
from engine.fastpath.linear import Int8
from engine.fastpath.weights import LayerWeights, PackedWeights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch):
    """Opted in (HEARTH_FBGEMM=1: it is off by default), with the once-per-process check forgotten, so a test
    can change what it finds."""
    monkeypatch.setenv("HEARTH_FBGEMM", "1")
    monkeypatch.setattr(dynamic_int8, "_available", None)


def _here() -> bool:
    return dynamic_int8._works()


def _weight(rows=300, cols=128, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.05
    b = torch.randn(rows, generator=g) if bias else None
    return Int8.quantize(w, b)


@pytest.mark.skipif(not _here(), reason="this torch build has no fbgemm dynamic int8 linear")
@pytest.mark.parametrize("bias", [False, True])
def test_one_row_on_fbgemm_is_close_to_the_int8_kernel(bias):
    lin = _weight(bias=bias)
    x = torch.randn(1, 128) * 2
    reference = lin(x).float()  # torch._weight_int8pack_mm, bf16 activations
    exact = x @ lin.dequantized().float().t() + (lin.b.float() if bias else 0)
    assert lin.use_fbgemm() and lin.fb is not None
    out = lin(x)
    assert out.dtype == torch.float32 and out.shape == (1, 300)
    scale = exact.abs().max()
    # Both round the activation (bf16: 8 bits of mantissa; fbgemm: 8-bit levels over the row's range).
    assert (out - exact).abs().max() < 0.02 * scale
    assert (out - reference).abs().max() < 0.03 * scale
    assert torch.corrcoef(torch.stack([out[0], exact[0]]))[0, 1] > 0.999


@pytest.mark.skipif(not _here(), reason="this torch build has no fbgemm dynamic int8 linear")
def test_several_rows_keep_the_per_row_kernels():
    """fbgemm quantizes all rows of a call with one scale: prompts stay on the bf16 / int8pack kernels."""
    lin, plain = _weight(), _weight()
    lin.use_fbgemm()
    x = torch.randn(9, 128)
    for rows in (x[:3], x):  # _weight_int8pack_mm, then the dequantized bf16 matmul
        assert torch.equal(lin(rows), plain(rows))


def test_the_int8_kernel_stays_when_the_op_is_missing(fresh_check, monkeypatch):
    monkeypatch.setattr(dynamic_int8, "_ops", lambda: types.SimpleNamespace())  # no linear_prepack / _dynamic
    assert not dynamic_int8.available()
    lin, plain = _weight(), _weight()
    assert not lin.use_fbgemm() and lin.fb is None
    x = torch.randn(1, 128)
    assert torch.equal(lin(x), plain(x))


def test_the_int8_kernel_stays_when_the_op_gives_wrong_numbers(fresh_check, monkeypatch):
    real = dynamic_int8._ops()
    broken = types.SimpleNamespace(linear_prepack=real.linear_prepack,
                                   linear_dynamic=lambda x, packed: real.linear_dynamic(x, packed) * 2)
    monkeypatch.setattr(dynamic_int8, "_ops", lambda: broken)
    assert not dynamic_int8.available()
    assert dynamic_int8.prepack(torch.ones(64, 64, dtype=torch.int8), torch.ones(64), None) is None


@pytest.mark.parametrize("value", [None, "0"])
def test_it_is_off_unless_asked_for(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("HEARTH_FBGEMM")
    else:
        monkeypatch.setenv("HEARTH_FBGEMM", value)
    assert not dynamic_int8.available()
    assert not _weight().use_fbgemm()


def test_an_int8_output_matrix_uses_it_and_layers_do_not():
    layer = LayerWeights(qkv=_weight(192, 64), o=_weight(64, 64), gate_up=_weight(256, 64), down=_weight(64, 128))
    packed = PackedWeights(mode="int8", layers=[layer], lm_head=_weight(), final_norm=None, embed=torch.zeros(300, 128))
    assert (packed.lm_head.fb is not None) == dynamic_int8.available()
    assert all(getattr(layer, name).fb is None for name in ("qkv", "o", "gate_up", "down"))
    assert set(packed.to_state()) >= {"lm_head.q", "lm_head.s"}  # the cache keeps the int8 matrix, not fbgemm's


def test_no_deprecation_warning_reaches_the_user():
    """torch warns (once per process) that quantized tensors are deprecated; the check and the packing hide it."""
    code = ("import torch, warnings; warnings.simplefilter('error');"
            "from engine.fastpath.linear import Int8;"
            "lin = Int8.quantize(torch.randn(64, 64)); lin.use_fbgemm(); lin(torch.randn(1, 64)); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, "HEARTH_FBGEMM": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deprecated" not in done.stderr
