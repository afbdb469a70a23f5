"""What to train: the model sizes and the training settings, as validated frozen dataclasses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.errors import InvalidConfigError
from engine.lab.tokenizer import TOKENIZER_KINDS

OBJECTIVES = ("clm", "mlm")  # causal next-token prediction, masked language modelling


@dataclass(frozen=True)
class Size:
    name: str
    n_layers: int
    n_heads: int
    d_model: int
    d_ff: int
    context: int
    batch_size: int
    max_steps: int  # a sensible default length of training for this size
    learning_rate: float

    def describe(self) -> str:
        return (f"{self.n_layers} layers, {self.n_heads} heads, width {self.d_model}, "
                f"context {self.context} tokens")


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", n_layers=2, n_heads=4, d_model=128, d_ff=512, context=128, batch_size=16,
                 max_steps=2000, learning_rate=1e-3),
    "small": Size("small", n_layers=4, n_heads=4, d_model=256, d_ff=1024, context=256, batch_size=16,
                  max_steps=4000, learning_rate=6e-4),
    "medium": Size("medium", n_layers=6, n_heads=8, d_model=512, d_ff=2048, context=512, batch_size=16,
                   max_steps=8000, learning_rate=3e-4),
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfigError(message)


@dataclass(frozen=True)
class LabTrainConfig:
    """A lab training run.

    Zero in ``max_steps``/``batch_size``/``learning_rate``/``context`` means the size's default."""

    files: tuple[str, ...]
    out_dir: str
    size: str = "tiny"
    objective: str = "clm"
    tokenizer: str = "char"
    vocab_size: int = 2000  # byte-pair tokenizer only; a character tokenizer's vocabulary is the text's alphabet
    context: int = 0
    max_steps: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    weight_decay: float = 0.1  # decoupled (AdamW), on weight matrices only
    dropout: float = 0.1
    warmup_steps: int = 50
    eval_every: int = 100  # steps between validation loss, samples and a checkpoint
    eval_batches: int = 8
    patience: int = 5  # early stopping after N evaluations without improvement; 0 = off
    val_fraction: float = 0.1
    max_minutes: float = 0.0  # stop (and keep everything) after this long; 0 = no limit
    mask_fraction: float = 0.15  # masked language modelling only
    sample_prompt: str = ""  # causal models: start samples with this ("" = the start of the validation text)
    sample_tokens: int = 120
    resume: bool = False  # continue the run saved in out_dir
    overwrite: bool = False  # start over in an out_dir that already holds a model
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(str(Path(f).expanduser()) for f in self.files))
        object.__setattr__(self, "out_dir", str(Path(self.out_dir).expanduser()))
        _check(self.size in SIZES, f"size must be one of {', '.join(SIZES)}, not {self.size!r}")
        _check(self.objective in OBJECTIVES, f"objective must be clm or mlm, not {self.objective!r}")
        _check(self.tokenizer in TOKENIZER_KINDS, f"tokenizer must be char or bpe, not {self.tokenizer!r}")
        _check(300 <= self.vocab_size <= 200_000, f"vocab_size must be between 300 and 200000, not {self.vocab_size}")
        _check(self.context == 0 or 8 <= self.context <= 4096,
               f"context must be between 8 and 4096, not {self.context}")
        _check(self.max_steps >= 0 and self.batch_size >= 0, "max_steps and batch_size cannot be negative")
        _check(0.0 <= self.learning_rate <= 1.0, f"learning_rate must be between 0 and 1, not {self.learning_rate}")
        _check(0.0 <= self.weight_decay <= 1.0, f"weight_decay must be between 0 and 1, not {self.weight_decay}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), not {self.dropout}")
        _check(self.eval_every >= 1 and self.eval_batches >= 1, "eval_every and eval_batches must be at least 1")
        _check(self.patience >= 0 and self.warmup_steps >= 0, "patience and warmup_steps cannot be negative")
        _check(0.01 <= self.val_fraction <= 0.5, f"val_fraction must be between 0.01 and 0.5, not {self.val_fraction}")
        _check(0.01 <= self.mask_fraction <= 0.5,
               f"mask_fraction must be between 0.01 and 0.5, not {self.mask_fraction}")
        _check(self.max_minutes >= 0, f"max_minutes cannot be negative, not {self.max_minutes}")
        _check(1 <= self.sample_tokens <= 4096, f"sample_tokens must be between 1 and 4096, not {self.sample_tokens}")

    @property
    def preset(self) -> Size:
        return SIZES[self.size]

    @property
    def effective_context(self) -> int:
        return self.context or self.preset.context

    @property
    def effective_steps(self) -> int:
        return self.max_steps or self.preset.max_steps

    @property
    def effective_batch(self) -> int:
        return self.batch_size or self.preset.batch_size

    @property
    def effective_lr(self) -> float:
        return self.learning_rate or self.preset.learning_rate

    def to_dict(self) -> dict:
        data = asdict(self)
        data["files"] = list(self.files)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LabTrainConfig":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["files"] = tuple(kwargs.get("files", ()))
        return cls(**kwargs)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
