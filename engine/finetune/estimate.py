"""Before starting: how much memory, time and disk a job needs on this machine.

Parameters are counted exactly from the weight files' headers (or, for a model
given only as a config, on a "meta" copy that holds no weights). Memory: weights
(bf16 for a LoRA base where supported) + gradients + AdamW state of the trainable
weights + activations (~34·hidden bytes per token per layer in bf16, doubled for
float32; with gradient checkpointing only each layer's input is kept) + logits.
Time: ~6·params FLOPs per token for full training, ~4·params for LoRA (no weight
gradients for the frozen base), plus ~2·params per validation token, against this
machine's measured matmul speed at a training efficiency of about 0.6.

A job whose memory is over what the machine has free is refused before anything
is loaded (``check_fits``), with both numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.finetune.config import JobConfig

TRAIN_EFFICIENCY = 0.6  # measured: SmolLM2-135M LoRA on a 2-core CPU ran at ~0.6 of the fp32 matmul speed
# bf16 matmuls are ~3x faster here (394 against 127 GFLOP/s on 2 threads, 182 against 69 on one), the rest of
# a step is not: a 4 x 512 LoRA step of SmolLM2-135M ran at 0.27 of the bf16 matmul speed on 2 threads and
# 0.38 on one (the window's count), a 1 x 128 step of the 1 B synthetic model at 0.4
BF16_EFFICIENCY = 0.3


@dataclass
class Estimate:
    params: int
    trainable: int
    steps: int
    tokens: int  # trained tokens over the whole run
    memory_bytes: int
    seconds: float
    disk_bytes: int
    device: str
    warnings: list[str] = field(default_factory=list)
    available_bytes: int = 0  # memory free on this machine (0: unknown)
    precision: str = "fp32"
    validation: str = ""  # "validating on 64 of 796 held-out sequences (…)"
    validation_plan: dict = field(default_factory=dict)  # ValidationPlan's numbers: sample, held_out, …
    coverage: str = ""  # what one pass of the steps reads, when it is not all of the training data
    checkpointing: bool = False  # gradient checkpointing on (asked for, or turned on so the job fits)
    notes: list[str] = field(default_factory=list)  # e.g. "Gradient checkpointing is on so the job fits …"

    @property
    def fits(self) -> bool:
        return not self.available_bytes or self.memory_bytes <= self.available_bytes

    def summary(self) -> str:
        from engine.finetune.progress import format_duration

        how = f"{self.precision}, gradient checkpointing" if self.checkpointing else self.precision
        return (f"{_count(self.trainable)} of {_count(self.params)} weights trained ({how}) · "
                f"{self.steps} steps, {self.tokens:,} tokens · memory ≈ {_gb(self.memory_bytes)}"
                f"{f' of {_gb(self.available_bytes)} free' if self.available_bytes else ''} · "
                f"time ≈ {format_duration(self.seconds)} on {self.device} · disk ≈ {_gb(self.disk_bytes)}")

    def refusal(self) -> str:
        from engine.finetune.progress import format_duration

        even = " even with gradient checkpointing" if self.checkpointing else ""
        advice = ("LoRA, a smaller batch or sequence length, or a smaller model" if self.checkpointing else
                  "LoRA with gradient checkpointing, a smaller batch or sequence length, or a smaller model")
        return (f"This job needs about {_gb(self.memory_bytes)} of memory{even}, but only "
                f"{_gb(self.available_bytes)} is free here (and would take about {format_duration(self.seconds)}). "
                f"Use {advice}.")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def count_parameters(job: JobConfig) -> tuple[int, int, dict]:
    """(all parameters, trainable parameters, model config dict), from the weight files' headers.

    No model is built: reading the safetensors headers takes milliseconds and never
    holds the interpreter lock for long (building even a "meta" model froze the window).
    LoRA adds ``rank * (rows + cols)`` per adapted matrix; "all-linear" means every
    2-D weight except the embeddings and the output layer (as in peft).
    """
    folder = Path(job.base_model)
    from engine.gguf.full_model import gguf_config, is_gguf

    if is_gguf(folder):  # a GGUF base is trained as its full-precision model: count that one
        config = gguf_config(folder)
        shapes = meta_shapes(config)
    else:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        shapes = _weight_shapes(folder) if any(folder.glob("*.safetensors")) else meta_shapes(config)
    total = sum(_numel(shape) for shape in shapes.values())
    if job.train.method == "full":
        return total, total, config
    targets = job.train.target_modules
    trainable = 0
    for name, shape in shapes.items():
        if len(shape) != 2 or not name.endswith(".weight") or "embed" in name or "lm_head" in name:
            continue
        module = name[: -len(".weight")].rsplit(".", 1)[-1]
        if targets == ("all-linear",) or module in targets:
            trainable += job.train.lora_rank * (shape[0] + shape[1])
    return total, trainable, config


def meta_shapes(config: dict) -> dict[str, list[int]]:
    """Weight shapes of a model known only by its config, built on the "meta" device (no memory)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return {name: list(p.shape) for name, p in model.named_parameters()}


def _weight_shapes(folder: Path) -> dict[str, list[int]]:
    import struct

    shapes: dict[str, list[int]] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with path.open("rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    if not shapes:
        from engine.finetune.errors import TrainingError

        raise TrainingError(f"{folder}: no .safetensors weights to count (a .bin-only model cannot be estimated).")
    return shapes


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


_MEASURED: dict[tuple[str, int], float] = {}


def matmul_flops(dtype: str = "float32", threads: int | None = None) -> float:
    """This machine's matmul speed (FLOP/s) in ``dtype`` on ``threads`` threads (default: torch's count now),
    measured once per pair (a fraction of a second). The fastest of a few runs is kept: a run that another
    thread or process interrupted says nothing about the machine."""
    import torch

    threads = threads or torch.get_num_threads()
    key = (dtype, threads)
    if key not in _MEASURED:
        n = 1024
        a, b = torch.randn(n, n, dtype=getattr(torch, dtype)), torch.randn(n, n, dtype=getattr(torch, dtype))
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            a @ b  # warm-up: thread pool start
            best = float("inf")
            for _ in range(4):
                begin = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - begin)
        finally:
            torch.set_num_threads(before)
        _MEASURED[key] = 2 * n**3 / max(1e-6, best)
    return _MEASURED[key]


def memory_needed(job: JobConfig, total: int, trainable: int, cfg: dict, batch: int | None = None) -> int:
    """Bytes of memory for training ``job``: weights, trainable state, activations, the loss."""
    from engine.finetune.train import use_bf16_base

    t = job.train
    batch = batch or t.batch_size
    bf16 = use_bf16_base(job)
    weights = total * (2 if bf16 else 4)
    state = trainable * (4 + 4 + 8)  # fp32 weight (LoRA: the adapter), gradient, AdamW moments
    work = activation_bytes(job, cfg, batch) + loss_bytes(job, cfg, batch)
    return int((weights + state + work) * 1.1) + 300 * 2**20  # + the runtime itself


def activation_bytes(job: JobConfig, cfg: dict, batch: int) -> int:
    """What autograd keeps for the backward pass of one step of ``batch`` sequences.

    Counted from the tensors a llama layer saves on the CPU's mixed path (engine/finetune/mixed.py, bench/README.md
    "fine-tuning memory"), per token: float32 activations of 4 × the MLP width (gate, up, their product, the
    down projection's input) + 7 × the hidden size (norm inputs and outputs, q, the attention output, the
    adapters' inputs) + 2 × the key/value width, and with LoRA dropout a one-byte mask of the MLP width + 3 ×
    the hidden size. Activations are float32 on a CPU (a bf16 base hands float32 to the rest of the model);
    a GPU's bf16 autocast keeps about half. With checkpointing each layer keeps only its float32 input, and one
    layer's activations exist at a time, while it is recomputed.
    """
    from engine.finetune.train import use_bf16_base

    t, tokens = job.train, batch * job.data.seq_len
    hidden, layers = cfg.get("hidden_size", 768), cfg.get("num_hidden_layers", 12)
    width = cfg.get("intermediate_size") or 4 * hidden
    heads = cfg.get("num_attention_heads") or max(1, hidden // 64)
    kv = (cfg.get("num_key_value_heads") or heads) * (cfg.get("head_dim") or hidden // heads)
    act = 2 if use_bf16_base(job) and _on_gpu(job) else 4
    masks = width + 3 * hidden if t.method == "lora" and t.lora_dropout > 0 else 0
    layer = tokens * ((4 * width + 7 * hidden + 2 * kv) * act + masks)
    if t.gradient_checkpointing:
        return tokens * hidden * 4 * layers + layer
    return layer * layers


def loss_bytes(job: JobConfig, cfg: dict, batch: int) -> int:
    """The loss's working memory: the chunked loss of the CPU's mixed path (mixed.chunked_lm_loss) never holds
    the logits, only its gradient for the last hidden states and two chunks of logits; elsewhere the float32
    logits, their softmax and its gradient."""
    from engine.finetune.mixed import CHUNKED_LOSS_TYPES, LOSS_ROWS
    from engine.finetune.train import mixed_precision

    tokens, hidden = batch * job.data.seq_len, cfg.get("hidden_size", 768)
    vocab = cfg.get("vocab_size", 32000)
    if mixed_precision(job) and cfg.get("model_type") in CHUNKED_LOSS_TYPES:
        return tokens * hidden * 4 + LOSS_ROWS * vocab * (4 + 2)
    return tokens * vocab * 4 * 3


def fit_to_memory(job: JobConfig) -> tuple[JobConfig, str]:
    """The job as it can run in this machine's free memory, and a notice if it had to change.

    Gradient checkpointing is turned on when that alone makes the job fit; a job that cannot fit
    even so is refused before anything is loaded, with the memory it needs and the memory free.
    """
    from dataclasses import replace

    from engine.errors import OutOfMemoryError

    total, trainable, cfg = count_parameters(job)
    free = _available_memory()
    if not free or _on_gpu(job) or memory_needed(job, total, trainable, cfg) <= free:
        return job, ""
    if not job.train.gradient_checkpointing:
        checkpointed = job.with_(train=replace(job.train, gradient_checkpointing=True))
        need = memory_needed(checkpointed, total, trainable, cfg)
        if need <= free:
            return checkpointed, (f"Gradient checkpointing is on so the job fits in memory (about {_gb(need)} of "
                                  f"{_gb(free)} free); steps are about a third slower.")
        job = checkpointed
    stats = {"train_examples": job.train.batch_size, "train_tokens": job.train.batch_size * job.data.seq_len}
    raise OutOfMemoryError(estimate_for(job, total, trainable, cfg, stats).refusal())


def _on_gpu(job: JobConfig) -> bool:
    import torch

    return torch.cuda.is_available() and job.train.device != "cpu"


def estimate(job: JobConfig, stats: dict, *, threads: int | None = None) -> Estimate:
    """The job as Start runs it (``stats``: the dataset's figures, ``BuiltDataset.stats``; ``threads``: the CPU
    threads it will train on, default every core).

    As ``fit_to_memory`` does when training starts, gradient checkpointing is turned on where the job does
    not fit without it; the estimate then counts it, and says so in ``notes``.
    """
    total, trainable, cfg = count_parameters(job)
    est = estimate_for(job, total, trainable, cfg, stats, threads=threads)
    if est.fits or job.train.gradient_checkpointing or _on_gpu(job):
        return est
    from dataclasses import replace

    checkpointed = estimate_for(job.with_(train=replace(job.train, gradient_checkpointing=True)), total,
                                trainable, cfg, stats, threads=threads)
    if checkpointed.fits:
        checkpointed.notes.append(f"Gradient checkpointing will be on so the job fits in memory (about "
                                  f"{_gb(checkpointed.memory_bytes)} of {_gb(checkpointed.available_bytes)} free; "
                                  f"{_gb(est.memory_bytes)} without it); steps are about a third slower.")
    return checkpointed


def estimate_for(job: JobConfig, total: int, trainable: int, cfg: dict, stats: dict, *,
                 threads: int | None = None) -> Estimate:
    from engine.finetune.data import coverage_text
    from engine.finetune.train import steps_for, use_bf16_base
    from engine.finetune.validation import plan_validation

    t, seq = job.train, job.data.seq_len
    batch = min(t.batch_size, max(1, stats["train_examples"]))
    steps = steps_for(job, stats["train_examples"], batch)
    per_seq = min(seq, stats["train_tokens"] / max(1, stats["train_examples"]))
    tokens = int(steps * batch * t.grad_accum * per_seq)
    memory = memory_needed(job, total, trainable, cfg, batch)
    flops_per_token = (6 if t.method == "full" else 4) * total
    cuda = _on_gpu(job)
    bf16 = use_bf16_base(job)
    speed = 5e13 * TRAIN_EFFICIENCY if cuda else (
        matmul_flops("bfloat16", threads or os.cpu_count()) * BF16_EFFICIENCY if bf16
        else matmul_flops("float32", threads or os.cpu_count()) * TRAIN_EFFICIENCY)
    plan = plan_validation(t, seq_len=seq, steps=steps, batch=batch, held_out=stats.get("val_examples", 0),
                           estimated=bool(stats.get("val_estimated", stats.get("estimated"))))
    eval_tokens = plan.evaluations * plan.sample * per_seq * 2 * total
    if t.final_full_eval:
        eval_tokens += stats.get("val_tokens", 0) * 2 * total
    if t.gradient_checkpointing:
        flops_per_token += 2 * total  # the forward pass runs twice
    seconds = (tokens * flops_per_token + eval_tokens) / speed
    kept = trainable * 4 * 3 * 2  # weights + AdamW moments, best and last checkpoints
    disk = kept + (trainable * 4 if t.method == "lora" else total * 4)
    est = Estimate(total, trainable, steps, tokens, memory, seconds, disk, "GPU" if cuda else "CPU",
                   available_bytes=0 if cuda else _available_memory(),
                   precision="bf16 base, fp32 adapter" if bf16 else "fp32", validation=plan.describe(),
                   validation_plan=plan.to_dict(), checkpointing=t.gradient_checkpointing)
    if t.max_steps:
        est.coverage = coverage_text(stats, steps, batch * t.grad_accum)
    est.warnings = _warnings(est, Path(job.out_dir))
    return est


def _warnings(est: Estimate, out_dir: Path) -> list[str]:
    warnings = []
    if not est.fits:
        warnings.append(est.refusal())
    folder = out_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free_disk = shutil.disk_usage(folder).free
    except OSError:
        free_disk = 0
    if free_disk and est.disk_bytes > free_disk:
        warnings.append(f"Needs about {_gb(est.disk_bytes)} of disk but only {_gb(free_disk)} is free.")
    if est.seconds > 4 * 3600:
        warnings.append("This will take hours here: lower the steps, or export the job for a bigger machine.")
    return warnings


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
