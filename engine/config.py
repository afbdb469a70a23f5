"""Arguments of the engine's long operations, as validated dataclasses.

Like litgpt's ``Config``: a bad value fails at construction time with a message
that names the field, not deep inside a generation loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from engine.errors import InvalidConfigError
from engine.setting import setting


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfigError(message)


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen. ``temperature == 0`` means greedy.

    Each field's setting (engine/setting.py) is its row in the sampling form and its ``hearth-cli`` flag."""

    temperature: float = setting(0.7, "Temperature", "0 = greedy: always the most likely token",
                                 minimum=0.0, maximum=5.0, step=0.05)
    top_p: float = setting(0.9, "Top-p", "Sample only from the smallest set of tokens whose probabilities add up "
                           "to this", minimum=0.01, maximum=1.0, step=0.05)
    top_k: int = setting(50, "Top-k", "Sample only from the k most likely tokens (0 = off)", minimum=0, maximum=1000)
    min_p: float = setting(0.0, "Min-p", "Drop tokens less likely than this × the top token (0 = off)",
                           minimum=0.0, maximum=0.99, step=0.01)
    repetition_penalty: float = setting(1.1, "Repetition penalty", "Above 1 discourages repeating earlier tokens",
                                        minimum=0.5, maximum=3.0, step=0.05)
    max_new_tokens: int = setting(512, "Max new tokens", "The longest reply, in tokens", minimum=1, maximum=32768)
    # The sampling panel has its own rows for these two (a seed switch, a list of stop strings).
    seed: int | None = setting(None, "Seed", "Random seed, for replies that repeat exactly", form=False)
    stop: tuple[str, ...] = setting((), "Stop strings", "Stop string", form=False, repeat=True)
    # engine/repetition.py: off only to let a reply that was stopped for repeating itself carry on.
    repetition_guard: bool = setting(True, "Stop repetition loops", "Stop a reply where it starts repeating the "
                                     "same words over and over", flag="--no-repetition-guard")

    def __post_init__(self) -> None:
        _check(0.0 <= self.temperature <= 5.0, f"temperature must be between 0 and 5, not {self.temperature}")
        _check(0.0 < self.top_p <= 1.0, f"top_p must be in (0, 1], not {self.top_p}")
        _check(self.top_k >= 0, f"top_k must be 0 (off) or positive, not {self.top_k}")
        _check(0.0 <= self.min_p < 1.0, f"min_p must be in [0, 1), not {self.min_p}")
        _check(0.5 <= self.repetition_penalty <= 3.0,
               f"repetition_penalty must be between 0.5 and 3, not {self.repetition_penalty}")
        _check(1 <= self.max_new_tokens <= 1_000_000, f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if isinstance(self.stop, str):  # a lone string would be split into characters
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def with_(self, **changes) -> "SamplingConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "SamplingConfig":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "stop" in kwargs:
            kwargs["stop"] = tuple(kwargs["stop"] or ())
        return cls(**kwargs)


DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class LoadConfig:
    """What to load. ``path=None`` means the embedded default model."""

    path: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    fast: bool = True  # use the engine's fast decode path where one applies

    def __post_init__(self) -> None:
        _check(self.device in DEVICES or self.device.startswith("cuda:"),
               f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        _check(self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.path is not None:
            object.__setattr__(self, "path", str(Path(self.path).expanduser()))


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str

    def __post_init__(self) -> None:
        _check(self.role in ("system", "user", "assistant"),
               f"role must be system, user or assistant, not {self.role!r}")

    def to_dict(self) -> dict:
        return {"role": self.role, "content": self.content}
