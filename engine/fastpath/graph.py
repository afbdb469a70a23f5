"""One decode step with fixed shapes, captured once in a CUDA graph and replayed for every token.

A decode step on a GPU is a few hundred tiny kernels; launching them from
Python costs more than running them. A CUDA graph records the launches once
and replays them with one call, but a graph replays fixed shapes and fixed
addresses, so this step differs from ``LeanForward.forward`` for one token in
three ways: the token and its position live in device tensors (written before
each replay), the new key/value goes into the cache with ``index_copy_`` at
that position, and attention runs over the whole cache with a mask that hides
the positions not written yet (and those outside a sliding window). The
function is the same; the tests check it against ``LeanForward`` on CPU, where
the step runs eagerly (no graph).

The graph is captured again whenever the cache is reallocated (it grows in
steps, see ``forward.CACHE_STEP``); the decoder reserves the whole reply up
front, so that is once per reply at most.
"""

from __future__ import annotations

import torch

from engine.fastpath.forward import LeanForward

WARMUP_STEPS = 2  # eager runs on a side stream before capture (allocations and lazy initialisation)


class StaticStep:
    def __init__(self, fwd: LeanForward, use_graph: bool | None = None) -> None:
        if fwd.cache is None:
            raise ValueError("reserve the KV cache before building a static step")
        self.fwd = fwd
        device = fwd.device
        self.use_graph = device.type == "cuda" if use_graph is None else use_graph
        self.cache = fwd.cache  # the graph holds this tensor's address: a reallocated cache needs a new step
        self.token = torch.zeros(1, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.positions = torch.arange(fwd.capacity, device=device)  # [T]
        self.graph = None
        self.out: torch.Tensor | None = None

    def valid_for(self, fwd: LeanForward) -> bool:
        return self.fwd is fwd and fwd.cache is self.cache

    @torch.inference_mode()
    def __call__(self, token: int, pos: int) -> torch.Tensor:
        """Logits [V] fp32 for ``token`` at ``pos``; the key/value are written into the cache."""
        self.token.fill_(token)
        self.pos.fill_(pos)
        if not self.use_graph:
            return self.run()
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.out

    def run(self) -> torch.Tensor:
        """The step itself, static shapes only (what the graph records)."""
        fwd, spec = self.fwd, self.fwd.spec
        freqs = {key: table.index_select(0, self.pos) for key, table in fwd.freqs.items()}  # [1, 1, Dh / 2]
        seen = self.positions <= self.pos  # [T]: written so far, this token included
        masks = {w: seen if w is None else seen & (self.positions > self.pos - w) for w in set(spec.windows or [None])}

        def attend(i: int, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
            layer_cache = self.cache[i]  # [2 KV, T, Dh]
            layer_cache.index_copy_(1, self.pos, kv.transpose(0, 1).to(layer_cache.dtype))
            return self._attend(q, layer_cache, masks[spec.window(i)])

        x = fwd.embed(self.token)
        for i, layer in enumerate(fwd.w.layers):
            x = fwd.layer(i, layer, x, freqs[fwd.layer_rope[i]], attend)
        return fwd.logits(x)

    def _attend(self, q: torch.Tensor, layer_cache: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """As LeanForward._attend_one, over all T positions with ``mask`` [T]. Returns [1, H Dh]."""
        s = self.fwd.spec
        KV, Dh = s.kv_heads, s.head_dim
        keys, values = layer_cache[:KV], layer_cache[KV:]  # [KV, T, Dh]
        scores = torch.bmm(q.view(KV, s.group, Dh), keys.transpose(1, 2)).mul_(s.scale)  # [KV, G, T]
        if s.attn_softcap:
            scores = scores.div_(s.attn_softcap).tanh_().mul_(s.attn_softcap)
        scores = scores.masked_fill(~mask, float("-inf"))
        probs = scores.softmax(-1, dtype=torch.float32).to(values.dtype)
        return torch.bmm(probs, values).view(1, s.heads * Dh)

    def _capture(self) -> None:
        """Warm up on a side stream, then record one step. The cache is restored to what it held."""
        position = int(self.pos.item())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_STEPS):
                self.run()  # rewrites the same position with the same values: harmless
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self.run()
        self.graph = graph
        self.pos.fill_(position)  # recording ran nothing; the replay after this computes the real step
