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
from engine.setting import setting

METHODS = ("lora", "full")
PRECISIONS = ("auto", "bf16", "fp32")
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
    """Which files, and how they become training sequences.

    Each field's setting (engine/setting.py) is its row in the fine-tuning form and its ``hearth-cli finetune``
    flag; ``group`` names the form's box and ``order`` places the row among TrainConfig's."""

    paths: tuple[str, ...] = ()  # the form's file list; the command's positional arguments
    seq_len: int = setting(512, "Sequence length", "Tokens per training sequence", minimum=16, maximum=131072,
                           group="length")
    # held out for validation, by file where possible
    val_fraction: float = setting(0.1, "Validation share", "Share of the data held out for validation",
                                  minimum=0.0, maximum=0.5, step=0.05, group="guards", order=-1)
    dedupe: bool = setting(True, "Remove exact duplicates", "Drop exact duplicate examples", group="guards",
                           order=1.5)
    random_offset: bool = setting(True, "Random-offset packing (light augmentation)",
                                  "Shift packed text by a random offset each epoch", group="guards", order=1)
    max_file_mb: float = setting(100.0, "Largest document, MB", "PDF, DOCX or .json documents above this size "
                                 "are skipped, with the reason (text, JSON Lines and CSV are read in a stream at "
                                 "any size, never cut)", form=False)
    seed: int = 0  # set from TrainConfig's seed

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(str(Path(p).expanduser()) for p in _tuple(self.paths)))
        _check(16 <= self.seq_len <= 131072, f"sequence length must be between 16 and 131072, not {self.seq_len}")
        _check(0.0 <= self.val_fraction <= 0.5, f"validation share must be between 0 and 0.5, not {self.val_fraction}")
        _check(0.001 <= self.max_file_mb <= 100_000, f"max_file_mb must be positive, not {self.max_file_mb}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``max_steps > 0`` overrides ``epochs``.

    Each field's setting (engine/setting.py) is its row in the fine-tuning form (``group`` names the box)
    and its ``hearth-cli finetune`` flag."""

    method: str = setting("lora", "Method", "LoRA trains a small adapter; full fine-tuning changes every weight",
                          choices=(("lora", "LoRA (small adapter, fast)"), ("full", "Full fine-tuning (every weight)")),
                          group="method")
    lora_rank: int = setting(16, "LoRA rank", "LoRA rank: size of the adapter; 8–64 is typical", minimum=1,
                             maximum=1024, flag="--rank", group="method")
    lora_alpha: int = setting(32, "LoRA alpha", "LoRA alpha: the adapter's scale (often twice the rank)", minimum=1,
                              maximum=4096, flag="--alpha", group="method")
    lora_dropout: float = setting(0.05, "Dropout", "Dropout in the adapter: a guard against over-fitting",
                                  minimum=0.0, maximum=0.9, step=0.05, flag="--dropout", group="method")
    target_modules: tuple[str, ...] = setting(("all-linear",), "Target modules", "Layers that get an adapter: "
                                              "'all-linear', or names like q_proj,v_proj", group="method")
    epochs: float = setting(3.0, "Epochs", "Passes over the data (used when max steps is 0)", minimum=0.1,
                            maximum=1000, step=0.5, decimals=1, group="length")
    max_steps: int = setting(0, "Max steps", "Optimizer steps; 0 means use epochs", minimum=0, maximum=10_000_000,
                             group="length")
    learning_rate: float = setting(2e-4, "Learning rate", "Learning rate (LoRA ~2e-4, full ~2e-5)", minimum=1e-7,
                                   maximum=0.1, step=1e-5, decimals=6, flag="--lr", group="length")
    schedule: str = setting("cosine", "Schedule", "How the learning rate changes over the run",
                            choices=tuple((s, s) for s in SCHEDULES), group="length")
    warmup_ratio: float = setting(0.05, "Warm-up share", "Share of the steps spent warming up the learning rate",
                                  minimum=0.0, maximum=0.5, step=0.01, flag="--warmup", group="length")
    batch_size: int = setting(4, "Batch size", "Sequences per step on each device", minimum=1, maximum=4096,
                              group="length")
    grad_accum: int = setting(1, "Gradient accumulation", "Steps whose gradients are added before each update "
                              "(a larger effective batch without more memory)", minimum=1, maximum=4096, group="length")
    weight_decay: float = setting(0.01, "Weight decay (L2)", "L2 weight decay (AdamW)", minimum=0.0, maximum=1.0,
                                  step=0.01, decimals=3, group="guards", order=0.5)
    l1: float = setting(0.0, "L1 penalty", "L1 penalty on the trainable weights (pushes them towards zero)",
                        minimum=0.0, maximum=1.0, step=0.001, decimals=4, group="guards", order=0.5)
    eval_steps: int = setting(20, "Evaluate every", "Validation loss (and samples) every N steps", minimum=1,
                              maximum=1_000_000, group="guards")
    save_steps: int = setting(20, "Checkpoint every", "Checkpoint every N steps (rounded to evaluations)",
                              minimum=1, maximum=1_000_000, group="guards")
    patience: int = setting(3, "Early-stop patience", "Stop after N evaluations without a better validation loss; "
                            "0 = off", minimum=0, maximum=1000, group="guards")
    eval_all: bool = setting(False, "Validate on all held-out data", "Each evaluation runs every held-out "
                             "sequence, not a fixed sample sized to about 15 percent of the training compute",
                             group="guards", order=1.6)
    final_full_eval: bool = setting(False, "Full validation at the end", "After training, also measure the "
                                    "validation loss on every held-out sequence", group="guards", order=1.7)
    sample_prompts: tuple[str, ...] = setting(DEFAULT_PROMPTS, "Sample prompts", "Sample prompts answered at each "
                                              "evaluation", flag="--prompt", repeat=True,
                                              separator="\n", group="guards", order=2)
    sample_max_tokens: int = setting(40, "Sample length", "Tokens per sample answer", minimum=1, maximum=1024,
                                     form=False)
    seed: int = setting(42, "Seed", "Random seed (data order, offsets, initial weights)", form=False)
    device: str = setting("auto", "Device", "auto, cpu or cuda", form=False)
    precision: str = setting("auto", "Precision", "LoRA's frozen base weights in bf16 where the CPU or GPU computes "
                             "bf16 natively (the adapter stays fp32); fp32 everywhere else",
                             choices=(("auto", "Auto (bf16 base where supported)"), ("bf16", "bf16 base"),
                                      ("fp32", "fp32")), form=False)
    gradient_checkpointing: bool = setting(False, "Gradient checkpointing", "Recompute activations in the "
                                           "backward pass: less memory, slower steps", form=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", _tuple(self.target_modules) or ("all-linear",))
        object.__setattr__(self, "sample_prompts", tuple(p for p in _tuple(self.sample_prompts) if p.strip()))
        _check(self.method in METHODS, f"method must be lora or full, not {self.method!r}")
        _check(self.precision in PRECISIONS, f"precision must be auto, bf16 or fp32, not {self.precision!r}")
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
