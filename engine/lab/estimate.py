"""Before training: how many weights, how much memory, how long on this machine.

Time comes from arithmetic: a training step costs about 6 × weights × tokens floating-point
operations (2 forward, 4 backward) plus the attention scores (12 × T² × D per layer and window),
divided by what this machine's matrix multiply reaches (measured once, a fraction of a second) and
by an efficiency factor for small layers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from engine.lab.config import LabTrainConfig
from engine.lab.errors import TooBigError
from engine.lab.model import LabModelConfig, count_parameters

CHAR_VOCAB_GUESS = 128  # a character tokenizer on English text: letters, digits, punctuation
EFFICIENCY = 0.2  # small layers reach only part of the matmul peak (measured on CPU with the tiny size)
OVERHEAD_BYTES = 300 * 2**20  # PyTorch itself, the tokenizer, the text


@dataclass(frozen=True)
class Estimate:
    parameters: int
    memory_bytes: int
    available_bytes: int
    step_seconds: float
    steps: int
    device: str

    @property
    def total_seconds(self) -> float:
        return self.step_seconds * self.steps

    @property
    def fits(self) -> bool:
        return self.memory_bytes < 0.8 * self.available_bytes

    def describe(self) -> str:
        return (f"{self.parameters / 1e6:.2f} M parameters, about {_gib(self.memory_bytes)} of memory "
                f"({_gib(self.available_bytes)} free on {self.device}), about {self.step_seconds:.2f} s a step: "
                f"{_duration(self.total_seconds)} for {self.steps:,} steps")


def model_config_for(config: LabTrainConfig, vocab_size: int) -> LabModelConfig:
    p = config.preset
    return LabModelConfig(vocab_size=vocab_size, d_model=p.d_model, n_heads=p.n_heads, n_layers=p.n_layers,
                          d_ff=p.d_ff, context=config.effective_context, dropout=config.dropout,
                          objective=config.objective)


def guess_vocab(config: LabTrainConfig) -> int:
    return CHAR_VOCAB_GUESS if config.tokenizer == "char" else config.vocab_size


def estimate(config: LabTrainConfig, vocab_size: int | None = None) -> Estimate:

    from engine.device import pick_device

    model = model_config_for(config, vocab_size or guess_vocab(config))
    params = count_parameters(model)
    batch, t = config.effective_batch, model.context
    per_layer = 10 * model.d_model + 3 * model.d_ff + 3 * model.n_heads * t  # floats kept per token
    activations = batch * t * (model.n_layers * per_layer + 3 * model.vocab_size) * 4
    memory = int(16 * params + 1.2 * activations + OVERHEAD_BYTES)  # fp32 weights, grads, Adam's two moments
    flops = batch * (6 * params * t + 12 * model.n_layers * t * t * model.d_model)
    device = pick_device(config.device)
    step = flops / (machine_flops(str(device)) * EFFICIENCY)
    return Estimate(params, memory, available_memory(device), step, config.effective_steps, str(device))


def check_fits(est: Estimate, size: str) -> None:
    if not est.fits:
        raise TooBigError(f"The {size} size needs about {_gib(est.memory_bytes)} of memory to train, but only "
                          f"{_gib(est.available_bytes)} is free on {est.device}. Choose a smaller size, a "
                          f"smaller batch or a shorter context.")


def available_memory(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # unknown: assume a modest laptop


@lru_cache(maxsize=4)
def machine_flops(device: str = "cpu") -> float:
    """Floating-point operations per second of a 512×1024 @ 1024×1024 float32 matmul on ``device``."""
    import torch

    a = torch.randn(512, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    a @ b  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        (a @ b).sum().item()  # .item() waits for asynchronous devices
        best = min(best, time.perf_counter() - start)
    return 2 * 512 * 1024 * 1024 / max(best, 1e-6)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
