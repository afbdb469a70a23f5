"""Before starting: how much memory, time and disk a job needs on this machine.

Parameters are counted exactly on a "meta" copy of the model (no weights are
loaded). Memory: weights + gradients + AdamW state of the trainable weights +
activations (~34·hidden bytes per token per layer, doubled for float32) + logits.
Time: ~6·params FLOPs per token for full training, ~4·params for LoRA (no weight
gradients for the frozen base), against this machine's measured matmul speed at
a training efficiency of about 0.6 (measured on a small CPU).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.finetune.config import JobConfig

TRAIN_EFFICIENCY = 0.6  # measured: SmolLM2-135M LoRA on a 2-core CPU ran at ~0.6 of the matmul speed


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

    def summary(self) -> str:
        from engine.finetune.callbacks import format_duration

        return (f"{_count(self.trainable)} of {_count(self.params)} weights trained · "
                f"{self.steps} steps, {self.tokens:,} tokens · memory ≈ {_gb(self.memory_bytes)} · "
                f"time ≈ {format_duration(self.seconds)} on {self.device} · disk ≈ {_gb(self.disk_bytes)}")

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
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    shapes = _weight_shapes(folder)
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


_MEASURED: list[float] = []


def matmul_flops() -> float:
    """This machine's float32 matmul speed (FLOP/s), measured once (a fraction of a second)."""
    import torch

    if not _MEASURED:
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up: thread pool start
        runs, begin = 3, time.perf_counter()
        for _ in range(runs):
            a @ b
        _MEASURED.append(2 * n**3 * runs / max(1e-6, time.perf_counter() - begin))
    return _MEASURED[0]


def estimate(job: JobConfig, stats: dict) -> Estimate:
    """``stats``: the dataset's figures (``BuiltDataset.stats``)."""
    import torch

    from engine.finetune.train import steps_for

    total, trainable, cfg = count_parameters(job)
    t, seq = job.train, job.data.seq_len
    batch = min(t.batch_size, max(1, stats["train_examples"]))
    steps = steps_for(job, stats["train_examples"], batch)
    per_seq = min(seq, stats["train_tokens"] / max(1, stats["train_examples"]))
    tokens = int(steps * batch * t.grad_accum * per_seq)
    hidden, layers, vocab = cfg.get("hidden_size", 768), cfg.get("num_hidden_layers", 12), cfg.get("vocab_size", 32000)
    activations = batch * seq * hidden * layers * 34 * 2
    if t.gradient_checkpointing:
        activations //= max(1, layers)
    logits = batch * seq * vocab * 4 * 3  # logits, their softmax and gradient
    memory = int((total * 4 + trainable * (4 + 8) + activations + logits) * 1.2)
    flops_per_token = (6 if t.method == "full" else 4) * total
    cuda = torch.cuda.is_available() and t.device != "cpu"
    speed = (5e13 if cuda else matmul_flops()) * TRAIN_EFFICIENCY
    evaluations = steps // t.eval_steps + 1 if stats.get("val_examples") else 0
    eval_tokens = evaluations * stats.get("val_tokens", 0) * 2 * total
    seconds = (tokens * flops_per_token + eval_tokens) / speed
    kept = trainable * 4 * 3 * 2  # weights + AdamW moments, best and last checkpoints
    disk = kept + (trainable * 4 if t.method == "lora" else total * 4)
    est = Estimate(total, trainable, steps, tokens, memory, seconds, disk, "GPU" if cuda else "CPU")
    est.warnings = _warnings(est, Path(job.out_dir))
    return est


def _warnings(est: Estimate, out_dir: Path) -> list[str]:
    warnings = []
    free_ram = _available_memory()
    if free_ram and est.memory_bytes > free_ram:
        warnings.append(f"Needs about {_gb(est.memory_bytes)} of memory but only {_gb(free_ram)} is free: "
                        "lower the batch size or sequence length, or use LoRA.")
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
