"""A decode step's decoder layers in one C call (step.c), where the kernels run and the weights suit them.

``layers_step(forward)`` returns a callable ``step(x [1, D] fp32, pos)`` that runs
every layer of the lean forward on one token, in place, writing the KV cache at
``pos``, or None where it cannot (no kernels here, a dense or CUDA model, a
weight format step.c does not read). ``LeanForward`` asks once per cache
allocation: the call holds the cache's and the RoPE tables' addresses.

The structs below mirror step.c's; ``keep`` holds every tensor they point to.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import torch

from engine.fastpath.kernels import build, gemv
from engine.fastpath.linear import Concat, Int4, Int8

if TYPE_CHECKING:
    from engine.fastpath.forward import LeanForward

MAX_PARTS = 4  # step.c's HearthLinear


class Part(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("pairs", ctypes.c_int32), ("p", ctypes.c_void_p), ("sz", ctypes.c_void_p),
                ("bias", ctypes.c_void_p), ("n_out", ctypes.c_int64), ("npad", ctypes.c_int64), ("k", ctypes.c_int64)]


class Linear(ctypes.Structure):
    _fields_ = [("parts", Part * MAX_PARTS), ("n_parts", ctypes.c_int32)]


class Layer(ctypes.Structure):
    _fields_ = [(name, Linear) for name in ("qkv", "o", "gate_up", "down")] + \
        [(name, ctypes.c_void_p) for name in ("attn_norm", "ffn_norm", "q_norm", "k_norm", "post_attn_norm",
                                             "post_ff_norm", "cache", "rope")] + [("window", ctypes.c_int64)]


class Shape(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("hidden", "heads", "kv_heads", "head_dim", "intermediate",
                                                    "capacity")] + \
        [("eps", ctypes.c_float), ("scale", ctypes.c_float), ("attn_softcap", ctypes.c_float), ("gelu", ctypes.c_int32)]


class _Unsupported(Exception):
    """A weight or vector step.c cannot read: the layers stay in Python."""


def _part(w: Any, keep: list) -> Part:
    if isinstance(w, Int4) and gemv._int4_ok(w.p, w.sz) and gemv._bias_ok(w.b, w.out):
        keep += [w.p, w.sz, w.b]
        return Part(4, w.sz.shape[2], w.p.data_ptr(), w.sz.data_ptr(), gemv._ptr(w.b), w.out, w.p.shape[0],
                    w.p.shape[1] * 2)
    if isinstance(w, Int8) and gemv._int8_ok(w.q, w.s, w.b):
        keep += [w.q, w.s, w.b]
        return Part(8, 0, w.q.data_ptr(), w.s.data_ptr(), gemv._ptr(w.b), w.q.shape[0], 0, w.q.shape[1])
    raise _Unsupported(type(w).__name__)


def _linear(w: Any, keep: list) -> Linear:
    parts = w.parts if isinstance(w, Concat) else [w]
    if len(parts) > MAX_PARTS:
        raise _Unsupported(f"{len(parts)} parts")
    linear = Linear()
    for i, part in enumerate(parts):
        linear.parts[i] = _part(part, keep)
    linear.n_parts = len(parts)
    return linear


def _vector(t: torch.Tensor | None, keep: list) -> int | None:
    """An fp32 contiguous copy (or the tensor itself) kept alive for step.c; None for None."""
    if t is None:
        return None
    t = t.detach().float().contiguous()
    keep.append(t)
    return t.data_ptr()


class LayersStep:
    __slots__ = ("fn", "shape", "layers", "count", "isa", "keep")

    def __init__(self, fn, shape, layers, keep: list) -> None:
        """``shape``: a pointer to a Shape; ``layers``: a ctypes array of Layer."""
        self.fn, self.shape, self.layers, self.count, self.keep = fn, shape, layers, len(layers), keep
        self.isa = build.isa()

    def __call__(self, x: torch.Tensor, pos: int) -> None:
        """x [1, D] fp32 contiguous, updated in place."""
        if self.fn(self.shape, self.layers, self.count, x.data_ptr(), pos, torch.get_num_threads(), self.isa):
            raise RuntimeError("the C decode step refused its arguments")


def layers_step(fwd: LeanForward) -> LayersStep | None:
    """The lean forward's layers as one C call, or None where step.c cannot run them (see the module doc)."""
    s = fwd.spec
    if fwd.device.type != "cpu" or fwd.dtype != torch.float32 or fwd.cache is None or fwd.w.mode == "exact":
        return None
    lib = build.load()
    if lib is None:
        return None
    keep: list = []
    try:
        layers = (Layer * s.layers)()
        for i, w in enumerate(fwd.w.layers):
            layer = layers[i]
            for name in ("qkv", "o", "gate_up", "down"):
                setattr(layer, name, _linear(getattr(w, name), keep))
            for name in ("attn_norm", "ffn_norm", "q_norm", "k_norm", "post_attn_norm", "post_ff_norm"):
                setattr(layer, name, _vector(getattr(w, name), keep))
            layer.cache = fwd.layer_cache[i].data_ptr()
            table = torch.view_as_real(fwd.freqs[fwd.layer_rope[i]][:, 0])  # [capacity, Dh / 2, 2]
            if not table.is_contiguous():
                raise _Unsupported("RoPE table")
            layer.rope = table.data_ptr()
            layer.window = fwd.layer_window[i] or 0
    except _Unsupported:
        return None
    keep += [fwd.cache, *fwd.freqs.values()]
    shape = Shape(s.hidden, s.heads, s.kv_heads, s.head_dim, s.intermediate, fwd.capacity, s.eps, s.scale,
                  s.attn_softcap or 0.0, 1 if s.act == "gelu_tanh" else 0)
    fn = lib.hearth_decode_layers
    fn.argtypes = [ctypes.POINTER(Shape), ctypes.POINTER(Layer), ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                   ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return LayersStep(fn, ctypes.pointer(shape), layers, keep)
