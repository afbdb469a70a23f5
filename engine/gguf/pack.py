"""Build the lean forward's weights straight from a GGUF file, tensor by tensor.

Per layer: q, k and v become one linear and gate and up another (or a
``Concat`` where the file stores them in different formats; phi3 files hold
them fused already); o and down stay alone. The norm weights stay vectors
(they cannot be folded into int4 groups; gemma files hold them as 1 + w).
q/k rows are put in interleaved RoPE order where the file has transformers'
"halves" order (qwen, gemma, phi3: only the rotary part of each head); llama
files already have it.
Each tensor's file pages are released once it is repacked.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any, Callable

import torch

from engine.cancel import CancelToken
from engine.fastpath.families import rope_permutation
from engine.fastpath.linear import Concat, Dense, Int4, Int8
from engine.fastpath.weights import LayerWeights, PackedWeights
from engine.gguf import quants
from engine.gguf.embedding import LinearRows, embedding_from, mapped_embedding
from engine.gguf.metadata import ModelMeta
from engine.gguf.reader import GGUFFile
from engine.gguf.trim import trim

INT8_CHUNK_ROWS = 1024  # dequantize big matrices in slices of rows: bounds the fp32 copy


def build_weights(f: GGUFFile, meta: ModelMeta, *, device: torch.device,
                  on_progress: Callable[[float, str], None], cancel: CancelToken) -> PackedWeights:
    q_perm, k_perm, head_perm = _rope_perms(meta)
    layers = []
    for i in range(meta.layers):
        cancel.raise_if_cancelled()
        on_progress(0.1 + 0.8 * i / meta.layers, f"Reading {f.path.name}: layer {i + 1} of {meta.layers}…")
        layers.append(_to_device(_layer(f, meta, f"blk.{i}.", q_perm, k_perm, head_perm), device))
        f.release_all()
        trim()  # the layer's temporary copies go back to the OS before the next layer's are made
    cancel.raise_if_cancelled()
    on_progress(0.9, f"Reading {f.path.name}: embeddings…")
    lm_head, embed = _head_and_embedding(f, meta, device)
    return PackedWeights(mode="gguf", layers=layers, lm_head=lm_head,
                         final_norm=_vector(f, "output_norm.weight").to(device), embed=embed)


def _head_and_embedding(f: GGUFFile, meta: ModelMeta, device: torch.device) -> tuple[Any, Any]:
    """The output matrix and what the forward indexes for token embeddings."""
    token_embd = f.tensor("token_embd.weight")
    if meta.tied and device.type == "cpu" and _fbgemm_head(token_embd):
        # A tied int8 output matrix lives only as fbgemm's copy; token lookups read the file's own rows.
        lm_head, embed = _int8_fbgemm(f, token_embd), mapped_embedding(f.path, token_embd, meta.hidden)
        f.release_all()
        trim()
        return lm_head, embed
    lm_head = _linear(f, ["token_embd" if meta.tied else "output"])
    f.release_all()
    trim()
    if device.type != "cpu":
        lm_head = _dense_on(lm_head, device)
    if meta.tied:
        return lm_head, LinearRows(lm_head)
    embed = embedding_from(token_embd, meta.hidden)
    f.release(token_embd)
    if device.type != "cpu":
        embed = (embed if isinstance(embed, torch.Tensor) else embed[torch.arange(meta.vocab)]).to(device)
    return lm_head, embed


def _rope_perms(meta: ModelMeta) -> tuple:
    """Row orders of q, k (and of one head, for q/k norms) that put the file's "halves" RoPE layout into
    interleaved pairs; None where the file has them already (llama)."""
    if meta.interleaved_rope:
        return None, None, None
    H, KV, Dh, r = meta.heads, meta.kv_heads, meta.head_dim, meta.rotary
    return rope_permutation(H, Dh, r), rope_permutation(KV, Dh, r), rope_permutation(1, Dh, r)


def _layer(f: GGUFFile, meta: ModelMeta, b: str, q_perm: Any, k_perm: Any, head_perm: Any) -> LayerWeights:
    """One layer's linears and norm vectors (``b``: "blk.N.")."""
    if meta.fused:  # phi3: one q | k | v matrix, and ffn_up holding gate | up
        perm = None
        if q_perm is not None:
            q_rows, kv_rows = meta.heads * meta.head_dim, meta.kv_heads * meta.head_dim
            perm = torch.cat([q_perm, q_rows + k_perm, torch.arange(q_rows + kv_rows, q_rows + 2 * kv_rows)])
        qkv, gate_up = _linear(f, [b + "attn_qkv"], [perm]), _linear(f, [b + "ffn_up"])
    else:
        qkv = _linear(f, [b + "attn_q", b + "attn_k", b + "attn_v"], [q_perm, k_perm, None])
        gate_up = _linear(f, [b + "ffn_gate", b + "ffn_up"])
    layer = LayerWeights(qkv=qkv, o=_linear(f, [b + "attn_output"]), gate_up=gate_up,
                         down=_linear(f, [b + "ffn_down"]), attn_norm=_vector(f, b + "attn_norm.weight"),
                         ffn_norm=_vector(f, b + "ffn_norm.weight"))
    if meta.qk_norm:
        layer.q_norm = _vector(f, b + "attn_q_norm.weight", head_perm)
        layer.k_norm = _vector(f, b + "attn_k_norm.weight", head_perm)
    if meta.post_norms:  # gemma2/3 (ffn_norm above is their pre-MLP norm)
        layer.post_attn_norm = _vector(f, b + "post_attention_norm.weight")
        layer.post_ff_norm = _vector(f, b + "post_ffw_norm.weight")
    return layer


def _vector(f: GGUFFile, name: str, perm: torch.Tensor | None = None) -> torch.Tensor:
    t = f.tensor(name)
    v = quants.dequantized(t.data, t.tensor_type, (1, int(t.n_elements)))[0]
    f.release(t)
    return v if perm is None else v[perm].contiguous()


def _linear(f: GGUFFile, names: list[str], perms: list[torch.Tensor | None] | None = None) -> Any:
    """One linear over the outputs of ``names`` (GGUF tensors without ``.weight``), stacked in that order."""
    perms = perms or [None] * len(names)
    members = []
    for name, perm in zip(names, perms):
        t = f.tensor(name + ".weight")
        members.append((t, f.tensor(name + ".bias", required=False), perm))
    try:
        kinds = [quants.kind_of(t.tensor_type) for t, _, _ in members]
    except ValueError as exc:
        from engine.errors import BadModelFileError

        raise BadModelFileError(f.path, f"{exc} (in {names[0]}.weight).") from exc
    any_bias = any(bias is not None for _, bias, _ in members)
    parts = []
    for kind, run in groupby(zip(kinds, members), key=lambda pair: pair[0]):
        run = [m for _, m in run]
        parts.append({"int4": _int4, "int8": _int8, "dense": _dense}[kind](f, run, any_bias))
    return parts[0] if len(parts) == 1 else Concat(parts)


def _shape(t: Any) -> tuple[int, int]:
    return int(t.shape[1]), int(t.shape[0])  # GGUF lists the input dimension first


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _bias(f: GGUFFile, run: list, any_bias: bool) -> torch.Tensor | None:
    if not any_bias:
        return None
    parts = []
    for t, bias, perm in run:
        v = torch.zeros(_shape(t)[0]) if bias is None else _vector(f, bias.name)
        parts.append(v if perm is None else v[perm])
    return torch.cat(parts)


def _rows(x: torch.Tensor, perm: torch.Tensor | None) -> torch.Tensor:
    return x if perm is None else x[perm]


def _int4(f: GGUFFile, run: list, any_bias: bool) -> Int4:
    qs, scales, offsets = [], [], []
    for t, _, perm in run:
        q, scale, offset = quants.q4_groups(t.data, t.tensor_type, _shape(t)[1])
        qs.append(_rows(q, perm))
        scales.append(_rows(scale, perm))
        offsets.append(_rows(offset, perm))
        f.release(t)
    return Int4.from_groups(_cat(qs), _cat(scales), _cat(offsets), _bias(f, run, any_bias))


def _int8(f: GGUFFile, run: list, any_bias: bool) -> Int8:
    """Dequantized and made int8 per row in slices of rows, written into one preallocated matrix."""
    total, cols = sum(_shape(t)[0] for t, _, _ in run), _shape(run[0][0])[1]
    q, s = torch.empty(total, cols, dtype=torch.int8), torch.empty(total, dtype=torch.bfloat16)
    at = 0
    for t, _, perm in run:
        rows = _shape(t)[0]
        _int8_rows(f, t, 0, rows, q[at:at + rows], s[at:at + rows])
        if perm is not None:  # rows of one head-major tensor, reordered in place
            q[at:at + rows], s[at:at + rows] = q[at:at + rows][perm], s[at:at + rows][perm]
        at += rows
        f.release(t)
    bias = _bias(f, run, any_bias)
    return Int8(q, s, None if bias is None else bias.to(torch.bfloat16))


def _int8_rows(f: GGUFFile, t: Any, first: int, last: int, q: torch.Tensor, s: torch.Tensor) -> None:
    """Rows first..last of the file's matrix ``t``, made int8 per row into ``q`` [last - first, K] and ``s``,
    dequantized a slice of rows at a time (bounds the fp32 copy)."""
    cols = q.shape[1]
    for start in range(first, last, INT8_CHUNK_ROWS):
        stop = min(last, start + INT8_CHUNK_ROWS)
        part = Int8.quantize(quants.dequantized(t.data[start:stop], t.tensor_type, (stop - start, cols)))
        q[start - first:stop - first], s[start - first:stop - first] = part.q, part.s
        del part
        f.release(t, (start, stop))  # a big matrix's file pages leave as its rows are done
        trim()


def _fbgemm_head(t: Any) -> bool:
    """An int8 output matrix (Q5/Q6/Q8 in the file) that fbgemm's one-row kernel can run here."""
    from engine.fastpath import dynamic_int8

    return quants.kind_of(t.tensor_type) == "int8" and dynamic_int8.available()


def _int8_fbgemm(f: GGUFFile, t: Any) -> Int8:
    """Like _int8, but each slice of rows goes straight into fbgemm's packed copy: no whole int8 matrix is
    ever held beside it (on the default model that second copy was 27 MiB of its 94 MiB file)."""
    from engine.fastpath import dynamic_int8

    rows, cols = _shape(t)
    packed, s = dynamic_int8.Packed(cols), torch.empty(rows, dtype=torch.bfloat16)
    for chunk in range(0, rows, dynamic_int8.CHUNK_ROWS):
        end = min(rows, chunk + dynamic_int8.CHUNK_ROWS)
        q = torch.empty(end - chunk, cols, dtype=torch.int8)  # one chunk of int8 rows: 4.5 MB at 576 wide
        _int8_rows(f, t, chunk, end, q, s[chunk:end])
        packed.add(q, s[chunk:end], None)
        del q
    return Int8.packed_only(packed, s)


def _dense(f: GGUFFile, run: list, any_bias: bool) -> Dense:
    ws = []
    for t, _, perm in run:
        ws.append(_rows(quants.to_bf16(t.data, t.tensor_type, _shape(t)), perm))
        f.release(t)
    bias = _bias(f, run, any_bias)
    return Dense(torch.cat(ws).contiguous() if len(ws) > 1 else ws[0].contiguous(),
                 None if bias is None else bias.to(torch.bfloat16))


def _dense_on(linear: Any, device: torch.device) -> Dense:
    """Off the CPU the int4/int8 CPU kernels do not apply: bf16 on the device."""
    if isinstance(linear, Dense):
        w = linear.w
    elif isinstance(linear, Concat):
        w = torch.cat([_dense_on(p, torch.device("cpu")).w for p in linear.parts])
    else:
        w = linear.dequantized()
    b = getattr(linear, "b", None)
    if isinstance(linear, Concat) and any(getattr(p, "b", None) is not None for p in linear.parts):
        b = torch.cat([p.b if p.b is not None else torch.zeros(_out(p)) for p in linear.parts])
    return Dense(w.to(device, torch.bfloat16), None if b is None else b.to(device, torch.bfloat16))


def _out(linear: Any) -> int:
    return linear.out if isinstance(linear, Int4) else (linear.shape if isinstance(linear, Int8) else linear.w.shape)[0]


def _to_device(layer: LayerWeights, device: torch.device) -> LayerWeights:
    if device.type == "cpu":
        return layer
    for name in ("qkv", "o", "gate_up", "down"):
        setattr(layer, name, _dense_on(getattr(layer, name), device))
    for name in ("attn_norm", "ffn_norm", "q_norm", "k_norm", "post_attn_norm", "post_ff_norm"):
        if getattr(layer, name) is not None:
            setattr(layer, name, getattr(layer, name).to(device))
    return layer
