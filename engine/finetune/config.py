"""What a fine-tuning job is: data settings, training settings, where it runs.

Frozen dataclasses validated in ``__post_init__`` (a bad value fails with a
message naming the field) and saved as ``job.json`` in the run folder, so the
same job can be resumed, exported, or started under ``torchrun``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from engine.errors import InvalidConfigError

METHODS = ("lora", "full")
SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")
DEFAULT_PROMPTS = ("Tell me about yourself.", "Write the opening sentence of a story.")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfigError(message)


def _tuple(value) -> tuple:
    if isinstance(value, str):
        return (value,)
    return tuple(value or ())


@dataclass(frozen=True)
class DataConfig:
    """Which files, and how they become training sequences."""

    paths: tuple[str, ...] = ()
    seq_len: int = 512  # tokens per training sequence
    val_fraction: float = 0.1  # share held out for validation, by file where possible
    dedupe: bool = True  # drop exact duplicate examples
    random_offset: bool = True  # shift packed text by a random offset each epoch (light augmentation)
    max_file_mb: float = 20.0  # read at most this much of one file (a notice says so)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(str(Path(p).expanduser()) for p in _tuple(self.paths)))
        _check(16 <= self.seq_len <= 131072, f"sequence length must be between 16 and 131072, not {self.seq_len}")
        _check(0.0 <= self.val_fraction <= 0.5, f"validation share must be between 0 and 0.5, not {self.val_fraction}")
        _check(0.001 <= self.max_file_mb <= 100_000, f"max_file_mb must be positive, not {self.max_file_mb}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``max_steps > 0`` overrides ``epochs``."""

    method: str = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("all-linear",)
    epochs: float = 3.0
    max_steps: int = 0
    learning_rate: float = 2e-4
    schedule: str = "cosine"
    warmup_ratio: float = 0.05
    batch_size: int = 4
    grad_accum: int = 1
    weight_decay: float = 0.01  # L2, decoupled (AdamW)
    l1: float = 0.0  # L1 penalty on the trainable weights, added to the loss
    eval_steps: int = 20  # validation loss every N optimizer steps
    save_steps: int = 20  # checkpoint every N steps (a multiple of eval_steps)
    patience: int = 3  # early stopping after N evaluations without improvement; 0 = off
    sample_prompts: tuple[str, ...] = DEFAULT_PROMPTS
    sample_max_tokens: int = 40
    seed: int = 42
    device: str = "auto"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", _tuple(self.target_modules) or ("all-linear",))
        object.__setattr__(self, "sample_prompts", tuple(p for p in _tuple(self.sample_prompts) if p.strip()))
        _check(self.method in METHODS, f"method must be lora or full, not {self.method!r}")
        _check(1 <= self.lora_rank <= 1024, f"LoRA rank must be between 1 and 1024, not {self.lora_rank}")
        _check(self.lora_alpha > 0, f"LoRA alpha must be positive, not {self.lora_alpha}")
        _check(0.0 <= self.lora_dropout < 1.0, f"dropout must be in [0, 1), not {self.lora_dropout}")
        _check(self.epochs > 0 or self.max_steps > 0, "set a number of epochs or of steps")
        _check(self.max_steps >= 0, f"max steps must be 0 (use epochs) or positive, not {self.max_steps}")
        _check(0 < self.learning_rate < 1, f"learning rate must be in (0, 1), not {self.learning_rate}")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        _check(0.0 <= self.warmup_ratio < 1.0, f"warmup share must be in [0, 1), not {self.warmup_ratio}")
        _check(1 <= self.batch_size <= 4096, f"batch size must be at least 1, not {self.batch_size}")
        _check(1 <= self.grad_accum <= 4096, f"gradient accumulation must be at least 1, not {self.grad_accum}")
        _check(0.0 <= self.weight_decay <= 1.0, f"weight decay must be in [0, 1], not {self.weight_decay}")
        _check(0.0 <= self.l1 <= 1.0, f"L1 penalty must be in [0, 1], not {self.l1}")
        _check(self.eval_steps >= 1, f"evaluate every N steps needs N >= 1, not {self.eval_steps}")
        _check(self.save_steps >= 1, f"checkpoint every N steps needs N >= 1, not {self.save_steps}")
        _check(self.patience >= 0, f"patience must be 0 (off) or positive, not {self.patience}")
        _check(1 <= self.sample_max_tokens <= 1024, f"sample length must be 1..1024, not {self.sample_max_tokens}")
        # The best checkpoint can only be kept if checkpoints fall on evaluations.
        if self.save_steps % self.eval_steps:
            rounded = -(-self.save_steps // self.eval_steps) * self.eval_steps
            object.__setattr__(self, "save_steps", rounded)


@dataclass(frozen=True)
class JobConfig:
    """One fine-tuning run: the base model, the run folder, and the settings."""

    base_model: str
    out_dir: str
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        _check(bool(str(self.base_model).strip()), "choose a base model folder")
        _check(bool(str(self.out_dir).strip()), "choose an output folder for the run")
        object.__setattr__(self, "base_model", str(Path(self.base_model).expanduser()))
        object.__setattr__(self, "out_dir", str(Path(self.out_dir).expanduser()))

    @property
    def name(self) -> str:
        return Path(self.out_dir).name

    def with_(self, **changes) -> "JobConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobConfig":
        try:
            return cls(base_model=data["base_model"], out_dir=data["out_dir"],
                       data=DataConfig(**_known(DataConfig, data.get("data", {}))),
                       train=TrainConfig(**_known(TrainConfig, data.get("train", {}))))
        except (KeyError, TypeError) as exc:
            raise InvalidConfigError(f"the job description is incomplete or malformed ({exc})") from exc

    def save(self, path: Path | str | None = None) -> Path:
        path = Path(path) if path else Path(self.out_dir) / "job.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path | str) -> "JobConfig":
        path = Path(path)
        if path.is_dir():
            path = path / "job.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidConfigError(f"{path}: cannot read the job file ({exc.strerror or exc})") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidConfigError(f"{path}: the job file is not valid JSON ({exc})") from exc
        return cls.from_dict(data)


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
