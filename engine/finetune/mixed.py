"""Mixed precision for LoRA on a CPU with native bf16: bf16 matmuls, everything else in float32.

The frozen base's Linear and Embedding weights are held in bf16 (half the memory, and the matmuls
run on the CPU's AVX-512 BF16 / AMX units, 2.2–2.9× fp32 here), but each of them hands float32 to
the rest of the model: the residual stream, the norms, attention (sdpa is faster in fp32 on this
CPU anyway), the softmax and the loss, and the LoRA adapters with their gradients and optimizer
state stay float32. A whole-bf16 model rounds every LoRA contribution into a bf16 result, where the
small early updates of the adapters vanish (measured: +1.8 % validation loss after 5 steps); here
they add to a float32 result. Autograd runs the backward matmuls of the frozen weights in bf16 too.

LoRA dropout is also cheaper (it was 12 % of a step): the modules that read the same tensor (q, k
and v; gate and up) share one mask, and the mask is the positions of the dropped elements, drawn as
geometric gaps (about p random numbers per element instead of one, ``bernoulli_``), applied in one pass.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

COMPUTE = torch.float32  # what every bf16 module hands to the rest of the model
LOW = torch.bfloat16


class Bf16Linear(nn.Linear):
    """A frozen Linear with a bf16 weight: bf16 matmul, float32 in and out (a Linear, so peft targets it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.to(self.weight.dtype), self.weight)  # [..., out_features], bf16
        out = out.to(x.dtype)
        return out if self.bias is None else out + self.bias


class Bf16Embedding(nn.Embedding):
    """A frozen Embedding with a bf16 table (possibly tied to a Bf16Linear output layer): float32 out."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids).to(COMPUTE)


def to_mixed_precision(model: nn.Module) -> nn.Module:
    """Turn ``model`` (loaded in bf16 or float32) into bf16 weights with float32 compute, in place.

    Linear and Embedding weights become frozen bf16 (tied weights stay tied: one bf16 tensor);
    every other parameter and buffer (norms, rotary frequencies) becomes float32. A training step's
    loss is then computed without materialising the logits, where the architecture allows
    (use_chunked_loss).
    """
    for module in model.modules():
        kind = {nn.Linear: Bf16Linear, nn.Embedding: Bf16Embedding}.get(type(module))
        if kind is not None:
            # Swapping the class keeps the module's parameters, ties and hooks; the subclass only
            # changes forward(), so it holds no state of its own.
            module.__class__ = kind
            module.weight.requires_grad_(False)
            module.weight.data = module.weight.data.to(LOW)
            if getattr(module, "bias", None) is not None:
                module.bias.data = module.bias.data.to(COMPUTE)
            continue
        for param in module.parameters(recurse=False):
            if param.is_floating_point():
                param.data = param.data.to(COMPUTE)
        for name, buffer in module.named_buffers(recurse=False):
            if buffer.is_floating_point():
                setattr(module, name, buffer.to(COMPUTE))
    model.config.use_cache = False
    use_fused_rms_norm(model)
    use_chunked_loss(model)
    return model


# The RMSNorm classes whose forward is exactly ``weight * (x / sqrt(mean(x²) + eps))`` in float32 (Gemma's scales
# by 1 + weight: not here).
RMS_NORMS = frozenset({"LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "Phi3RMSNorm",
                       "SmolLM3RMSNorm"})
_FUSED_NORMS: dict[type, type] = {}


def use_fused_rms_norm(model: nn.Module) -> int:
    """Compute the model's RMSNorms with torch's ``F.rms_norm`` (the same numbers; fewer passes forward and
    backward: 1.85 against 2.2–3.0 ms for 4 × 256 × 576 here); returns how many."""
    count = 0
    for module in model.modules():
        cls = type(module)
        if cls.__name__ not in RMS_NORMS or not hasattr(module, "variance_epsilon"):
            continue
        if cls not in _FUSED_NORMS:
            _FUSED_NORMS[cls] = type(cls.__name__, (FusedRMSNormMixin, cls), {"__module__": cls.__module__})
        module.__class__ = _FUSED_NORMS[cls]
        count += 1
    return count


class FusedRMSNormMixin:
    """An RMSNorm (one of RMS_NORMS) through ``F.rms_norm`` when input and weight are float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != COMPUTE or self.weight.dtype != COMPUTE:
            return super().forward(x)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.variance_epsilon)


def is_mixed(model: nn.Module) -> bool:
    return any(isinstance(m, Bf16Linear) for m in model.modules())


def return_freed_memory() -> bool:
    """Serve every allocation of 1 MiB or more with its own mapping (glibc ``M_MMAP_THRESHOLD``); whether it could.

    glibc raises that threshold each time a large block is freed, up to 32 MiB, after which a step's
    activations ([tokens, hidden] float32: 4–64 MB) come from the heap, whose holes it keeps: a 1 B LoRA step
    on 512 tokens peaked at 5.35 GiB against 4.08 GiB with the threshold fixed, and the resident set after
    the step stayed near the peak instead of falling back to the weights (bench/README.md). Fixing the
    threshold through mallopt also stops the raising. Elsewhere than glibc, nothing is changed.

    It costs speed: every mapping is page faults when touched and a munmap (a TLB shootdown on every core) when
    freed. The default model's step took 7.1 s with it against 3.5 s without, in a fresh process (bench/README.md
    "The last stretch to 2×"), so it is only for runs where memory is tight (``lean_heap_wanted``).
    """
    from engine.gguf.trim import fixed_mmap_threshold

    return fixed_mmap_threshold(1 << 20)


def lean_heap_wanted(need_bytes: int, available_bytes: int, checkpointing: bool) -> bool:
    """Whether a CPU run should trade speed for memory with return_freed_memory: with gradient checkpointing (chosen,
    or turned on by the estimate, to save memory; the heap's holes doubled its peak: 3.2 → 6.0 GiB for the 1 B base)
    or when the estimated need (``need_bytes``, weights included) is over half of what is free with the weights
    loaded (``available_bytes``; 0: unknown), so that even a heap that keeps its holes has room."""
    return checkpointing or not available_bytes or 2 * need_bytes > available_bytes


class SharedDropout(nn.Module):
    """Dropout whose mask is shared by every module of one model that reads the same input tensor.

    q, k and v read the same normalised hidden state (gate and up too): each still sees dropout with
    probability ``p`` and the same expectation, from one mask per tensor instead of one per module.
    The memo holds weak references only, so no activation outlives its step because of it.
    """

    def __init__(self, p: float, memo: "DropoutMemo") -> None:
        super().__init__()
        self.p, self.memo = p, memo

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        out = self.memo.lookup(x, self.p)
        if out is None:
            out = fast_dropout(x, self.p)
            self.memo.remember(x, self.p, out)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}, shared"


class DropoutMemo:
    """The last input seen by a model's SharedDropout modules and its dropped-out output."""

    def __init__(self) -> None:
        self._input: Any = None
        self._output: Any = None
        self._key: tuple = ()

    def lookup(self, x: torch.Tensor, p: float) -> torch.Tensor | None:
        if self._input is None or self._input() is not x or self._key != (p, x._version):
            return None
        return self._output()

    def remember(self, x: torch.Tensor, p: float, out: torch.Tensor) -> None:
        self._input, self._output, self._key = weakref.ref(x), weakref.ref(out), (p, x._version)


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout, each element dropped independently with probability ``p``, ~3× cheaper than F.dropout."""
    return _Dropout.apply(x, p)


def _drop_positions(n: int, p: float, device: torch.device) -> torch.Tensor:
    """The sorted flat indices of the dropped elements of ``n``, each dropped independently with probability ``p``.

    The gaps between dropped elements are geometric, drawn as ``floor(log(1 - U) / log(1 - p)) + 1`` from
    uniform U: about n·p random numbers instead of one per element (CPU random numbers cost per draw, and
    the generator runs on one thread: 1.2 ms for the 16-bit draws of one 4 × 256 × 576 mask, 0.4 ms this way).
    """
    if p <= 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    log_keep = math.log1p(-p)
    parts, start = [], 0  # start: the first element not decided yet
    while start < n:
        expected = (n - start) * p
        draws = int(expected + 8 * math.sqrt(expected) + 16)  # enough but once in ~10¹⁵
        u = torch.rand(draws, dtype=torch.float64, device=device)
        gaps = torch.log1p(u.neg_()).div_(log_keep).floor_().add_(1)  # [draws], ≥ 1, P(gap > k) = (1 - p)^k
        positions = gaps.cumsum_(0).add_(start - 1).to(torch.int64)  # exact: integers below 2^53
        cut = int(torch.searchsorted(positions, n))
        parts.append(positions[:cut])
        start = n if cut < draws else int(positions[-1]) + 1
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _zeroed(x: torch.Tensor, scale: float, positions: torch.Tensor) -> torch.Tensor:
    """``x · scale`` with the elements at ``positions`` (flat, row-major) set to zero: one pass over ``x``."""
    out = torch.mul(x, scale).contiguous()
    out.view(-1).index_fill_(0, positions, 0.0)
    return out


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        positions = _drop_positions(x.numel(), p, x.device)  # int64, ~p × 8 bytes per element
        ctx.scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(positions)
        return _zeroed(x, ctx.scale, positions)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (positions,) = ctx.saved_tensors
        return _zeroed(grad, ctx.scale, positions), None


def share_lora_dropout(model: nn.Module) -> int:
    """Replace the peft LoRA dropout modules of ``model`` with SharedDropout; returns how many."""
    memo, count = DropoutMemo(), 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if isinstance(dropout, nn.Dropout) and dropout.p > 0:
                dropouts[name] = SharedDropout(dropout.p, memo)
                count += 1
    return count


def fuse_lora_forward(model: nn.Module) -> int:
    """Make peft's plain LoRA Linear layers add ``scaling · B(A(dropout(x)))`` to the base output in one
    ``addmm`` (no separate scale and add passes over the output, forward and backward); returns how many."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    count = 0
    for parent in model.modules():
        for names in SIBLINGS:
            group = [getattr(parent, n, None) for n in names]
            if all(type(m) is LoraLinear for m in group):
                siblings = _Siblings(group)
                for m in group:
                    m._hearth_siblings = siblings
    for module in model.modules():
        if type(module) is LoraLinear:
            module.__class__ = FusedLoraLinear  # forward() only: see FusedLoraLinear
            count += 1
    return count


# Linear layers of one block that read the same tensor (llama, mistral, qwen2/3, smollm3; phi3 has them fused).
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _Siblings:
    """LoRA layers reading one tensor: their A matrices applied in one matmul, ``d @ [A_q; A_k; A_v]ᵀ``, whose
    columns each takes its own of (one read of the input and one input gradient instead of three). Remembered
    for the last input only, through weak references, like DropoutMemo; a layer given another input computes
    the product for that input itself (the same numbers, only slower)."""

    def __init__(self, layers: list) -> None:
        self.layers = [weakref.ref(m) for m in layers]
        self._input: Any = None
        self._output: Any = None
        self._key: tuple = ()

    def hidden(self, layer: Any, name: str, d: torch.Tensor) -> torch.Tensor | None:
        """``lora_A[name](d)`` of ``layer`` as a slice of the group's product; None where the group cannot."""
        layers = [ref() for ref in self.layers]
        if any(m is None or name not in m.lora_A for m in layers):
            return None
        weights = [m.lora_A[name].weight for m in layers]
        key = (name, d._version, *(w._version for w in weights))
        out = self._output() if self._input is not None and self._input() is d and self._key == key else None
        if out is None:
            if any(w.dtype != d.dtype or m.lora_A[name].bias is not None for m, w in zip(layers, weights)):
                return None
            out = F.linear(d, torch.cat(weights))  # [..., sum of the ranks]
            self._input, self._output, self._key = weakref.ref(d), weakref.ref(out), key
        start = 0
        for m, w in zip(layers, weights):
            if m is layer:
                return out[..., start:start + w.shape[0]]
            start += w.shape[0]
        return None


def _fused_class():
    from peft.tuners.lora.layer import Linear as LoraLinear

    class FusedLoraLinear(LoraLinear):
        """peft's LoRA Linear; its common case (one active adapter, not merged, no DoRA or other variant,
        no bias in B, everything float32) computed as ``addmm(base, A(dropout(x)), Bᵀ, alpha=scaling)``.
        Every other case is peft's own forward."""

        def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            name = self.active_adapters[0] if len(self.active_adapters) == 1 else None
            if (args or kwargs or name is None or self.disable_adapters or self.merged
                    or name not in self.lora_A or name in self.lora_variant):
                return super().forward(x, *args, **kwargs)
            a, b = self.lora_A[name], self.lora_B[name]
            if b.bias is not None or not x.dtype == a.weight.dtype == b.weight.dtype:
                return super().forward(x, *args, **kwargs)
            result = self.base_layer(x)  # [..., out_features]
            if result.dtype != x.dtype:
                return super().forward(x, *args, **kwargs)
            d = self.lora_dropout[name](x)  # shared by the siblings reading x (SharedDropout)
            siblings = getattr(self, "_hearth_siblings", None)
            h = siblings.hidden(self, name, d) if siblings is not None else None
            h = a(d) if h is None else h  # [..., r]
            out = torch.addmm(result.reshape(-1, result.shape[-1]), h.reshape(-1, h.shape[-1]), b.weight.t(),
                              alpha=self.scaling[name])
            return out.view(result.shape)

    return FusedLoraLinear


FusedLoraLinear = _fused_class()


IGNORE = -100  # the label of a position without a target (padding, prompts)


LOSS_ROWS = 256  # rows of the chunked loss at a time (engine/finetune/estimate.py counts its buffers)


def chunked_lm_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, rows: int = LOSS_ROWS) -> tuple:
    """Sum of the cross-entropy of ``hidden @ weightᵀ`` against ``labels``, and how many labels counted.

    ``hidden``: [N, H] float32; ``weight``: [V, H] bf16 (the output layer); ``labels``: [N], IGNORE where
    none. ``rows`` rows at a time (256 measured fastest here once the heap keeps its memory: loss and gradient
    of 1 024 tokens × 49 152 in ~460 ms against ~520 for 128 rows and ~480 for 512), so the float32 logits
    of the whole batch ([N, V], 200 MB for 4 × 256 tokens of a 49k vocabulary, and as much again for
    their log-softmax and its gradient) never exist at once. Their gradient is computed in the same
    pass (softmax − one-hot, in place), as a bf16 matmul.
    """
    return _ChunkedLoss.apply(hidden, weight, labels, rows), int((labels != IGNORE).sum())


class _ChunkedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, rows):
        grad_needed = ctx.needs_input_grad[0]
        total = hidden.new_zeros(())
        grad = torch.empty_like(hidden) if grad_needed else None  # d total / d hidden, [N, H]
        rows = min(rows, hidden.shape[0])
        # Reused for every chunk: [rows, V] float32 and bf16. Each line below is one pass over them.
        exp = torch.empty(rows, weight.shape[0], dtype=hidden.dtype, device=hidden.device)
        probs = torch.empty(rows, weight.shape[0], dtype=weight.dtype, device=hidden.device) if grad_needed else None
        for start in range(0, hidden.shape[0], rows):
            h, y = hidden[start:start + rows], labels[start:start + rows]
            n = h.shape[0]
            # Copies into buffers, not new tensors: a fresh 50 MB tensor costs ~18 ms of page faults here,
            # as much as the copy, the max, the subtraction, the sum and the scaling together.
            e = exp[:n].copy_(F.linear(h.to(weight.dtype), weight))  # [n, V] logits, float32
            valid = (y != IGNORE).unsqueeze(1)  # [n, 1]
            target = y.clamp(min=0).unsqueeze(1)  # [n, 1]
            top = e.amax(dim=-1, keepdim=True)  # [n, 1]
            picked = e.gather(1, target)
            sums = e.sub_(top).exp_().sum(dim=-1, keepdim=True)  # [n, 1]
            total += ((sums.log() + top - picked) * valid).sum()  # log-sum-exp − the target's logit
            if grad_needed:
                # softmax − one-hot, zero for rows without a target; the matmul in bf16. The one-hot goes in
                # before the bf16 copy: scatter_add_ into bf16 copies the whole chunk to float32 and back.
                p = probs[:n].copy_(e.mul_(valid / sums).scatter_add_(1, target, -valid.to(e.dtype)))
                grad[start:start + n] = F.linear(p, weight.t()).to(hidden.dtype)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, upstream):
        (grad,) = ctx.saved_tensors
        return grad * upstream, None, None, None


# Causal LMs whose forward is exactly ``loss(lm_head(backbone(...).last_hidden_state), labels)``: no logit
# scaling or soft-capping, so the chunked loss computes the same thing.
CHUNKED_LOSS_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "smollm3"})
_CHUNKED_CLASSES: dict[type, type] = {}


def use_chunked_loss(model: nn.Module) -> bool:
    """Train ``model`` (a mixed-precision causal LM) with chunked_lm_loss; whether it could."""
    head = getattr(model, "lm_head", None)
    if (getattr(model.config, "model_type", None) not in CHUNKED_LOSS_TYPES or not isinstance(head, Bf16Linear)
            or head.bias is not None or not hasattr(model, getattr(model, "base_model_prefix", "") or "-")):
        return False
    cls = type(model)
    if cls not in _CHUNKED_CLASSES:
        _CHUNKED_CLASSES[cls] = type(cls.__name__, (ChunkedLossMixin, cls), {"__module__": cls.__module__})
    model.__class__ = _CHUNKED_CLASSES[cls]
    return True


class ChunkedLossMixin:
    """A training step's loss without the logits (chunked_lm_loss); every other call is the model's own."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, **kwargs):
        items = kwargs.pop("num_items_in_batch", None)
        others = {k: v for k, v in kwargs.items() if v is not None and v is not False}
        if labels is None or others or input_ids is None or not (self.training and torch.is_grad_enabled()):
            if items is not None:
                kwargs["num_items_in_batch"] = items
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                   labels=labels, **kwargs)
        from transformers.modeling_outputs import CausalLMOutputWithPast

        backbone = getattr(self, self.base_model_prefix)
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).last_hidden_state  # [B, T, H]
        targets = F.pad(labels, (0, 1), value=IGNORE)[..., 1:]  # position t predicts token t + 1
        total, count = chunked_lm_loss(hidden.reshape(-1, hidden.shape[-1]), self.lm_head.weight,
                                       targets.reshape(-1).to(hidden.device))
        # As transformers' loss: summed over the batch's targets when the Trainer counts them (gradient
        # accumulation), else the mean.
        loss = total / (items.to(total.device) if torch.is_tensor(items) else items if items else count)
        return CausalLMOutputWithPast(loss=loss, logits=None)
