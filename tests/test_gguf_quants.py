"""GGUF blocks read as the file stores them: Q4 groups, int4 packing, row lookups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.fastpath.linear import Int4, Int8, pack_int4, unpack_int4

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_blocks(qtype_name: str, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    from gguf import GGMLQuantizationType as T

    from engine.gguf.synthetic import _random_tensor

    return _random_tensor(np.random.default_rng(seed), "w", rows, cols, T[qtype_name], 0.05)


@pytest.mark.parametrize("qtype_name", ["Q4_0", "Q4_1", "Q4_K"])
def test_q4_groups_give_the_files_values(qtype_name):
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize

    from engine.gguf.quants import q4_groups

    data = _random_blocks(qtype_name, 8, 512)
    q, scale, offset = q4_groups(data, T[qtype_name], 512)
    assert q.dtype == torch.uint8 and int(q.max()) <= 15
    ours = q.float() * scale.repeat_interleave(32, 1) + offset.repeat_interleave(32, 1)
    reference = torch.from_numpy(dequantize(data, T[qtype_name]))
    assert torch.allclose(ours, reference, atol=1e-6, rtol=1e-5)


def test_int4_packing_is_torchs_layout():
    q = torch.randint(0, 16, (128, 96), dtype=torch.uint8)
    packed = pack_int4(q)
    assert torch.equal(packed, torch._convert_weight_to_int4pack_for_cpu(q.int(), 2))
    assert torch.equal(unpack_int4(packed), q)


def test_int4_linear_matches_its_groups_and_pads_odd_rows():
    torch.manual_seed(0)
    q = torch.randint(0, 16, (100, 64), dtype=torch.uint8)  # 100 rows: padded to 128 inside
    scale, offset = torch.rand(100, 2) * 0.02 + 0.001, -torch.rand(100, 2) * 0.1
    lin = Int4.from_groups(q, scale, offset)
    weight = q.float() * scale.repeat_interleave(32, 1) + offset.repeat_interleave(32, 1)
    x = torch.randn(3, 64)
    expected = x @ weight.t()
    for rows in (x[:1], x):  # the int4 kernel (one row) and the dequantized matmul share the result
        out = lin(rows).float()
        assert out.shape == (rows.shape[0], 100)
        assert torch.allclose(out, expected[:rows.shape[0]], atol=0.05, rtol=0.02)
    ids = torch.tensor([0, 31, 32, 63, 64, 99])
    assert torch.allclose(lin.rows(ids), weight[ids], atol=2e-3, rtol=1e-2)


def test_int8_rows_are_the_dequantized_rows():
    lin = Int8.quantize(torch.randn(40, 32))
    ids = torch.tensor([1, 39])
    assert torch.allclose(lin.rows(ids), lin.dequantized().float()[ids], atol=1e-2)


def test_every_block_type_has_a_kind():
    from gguf import GGMLQuantizationType as T

    from engine.gguf.quants import kind_of

    assert kind_of(T.Q4_K) == "int4" and kind_of(T.Q6_K) == "int8" and kind_of(T.BF16) == "dense"
    with pytest.raises(ValueError, match="TQ1_0"):
        kind_of(T.TQ1_0)


def test_off_cpu_linears_become_the_same_bf16_matrices():
    """On CUDA the CPU int4/int8 kernels do not apply: pack.py turns each linear into bf16 Dense (checked here
    on the CPU, with the same conversion)."""
    from engine.fastpath.linear import Concat
    from engine.gguf.pack import _dense_on

    torch.manual_seed(0)
    q4 = Int4.from_groups(torch.randint(0, 16, (64, 64), dtype=torch.uint8), torch.rand(64, 2) * 0.02,
                          -torch.rand(64, 2) * 0.1, torch.randn(64))
    q8 = Int8.quantize(torch.randn(32, 64))
    x = torch.randn(2, 64)
    for linear in (q4, q8, Concat([q4, q8])):
        dense = _dense_on(linear, torch.device("cpu"))
        assert dense.w.dtype == torch.bfloat16
        assert torch.allclose(dense(x).float(), linear(x).float(), atol=0.05, rtol=0.02)
