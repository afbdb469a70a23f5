"""One description per setting: a config dataclass's fields carry their label, range, step, help and
choices, and both the window's forms (gui/setting_editors.py) and ``hearth-cli``'s flags
(engine/cli/_common.py) are built from it. A new field with a :func:`setting` is a new form row and a
new flag; the dataclass's ``__post_init__`` stays the one place that validates values.

    temperature: float = setting(0.7, "Temperature", "0 = greedy", minimum=0.0, maximum=5.0, step=0.05)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """How one config field is shown and spelled; stored in the field's metadata under ``"setting"``."""

    label: str  # the form's row label (a check box's text)
    help: str = ""  # the form's tooltip and the flag's help
    minimum: float | None = None  # spin boxes' range; the dataclass still validates every value
    maximum: float | None = None
    step: float | None = None
    decimals: int = 2  # for float spin boxes
    choices: tuple[tuple[str, str], ...] = ()  # (value, label in the form); the flag takes the values
    flag: str = ""  # "" means --field-name; None means no flag (set some other way)
    form: bool = True  # False: the form leaves it out (set elsewhere, or only on the command line)
    group: str = ""  # the form's group box, for forms that have groups
    order: float = 0.0  # position within the group; equal orders keep the fields' declaration order
    separator: str = ","  # tuples of strings: how a text field or flag joins them ("\n": one per line)
    repeat: bool = False  # tuples of strings: the flag is given once per item (--stop A --stop B)


def setting(default: Any = dataclasses.MISSING, label: str = "", help: str = "", *,
            default_factory: Any = dataclasses.MISSING, **options: Any) -> Any:
    """A dataclass field described by a :class:`Setting` (``label`` defaults to the field's name)."""
    meta = {"setting": Setting(label=label, help=help, **options)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Described:
    """A field of a config class with its setting: what forms and parsers iterate over."""

    name: str
    kind: type  # bool, int, float, str or tuple (of str)
    optional: bool  # ``int | None`` and the like
    default: Any
    setting: Setting

    @property
    def label(self) -> str:
        return self.setting.label or self.name.replace("_", " ").capitalize()

    @property
    def flag(self) -> str | None:
        flag = self.setting.flag
        if flag is None:
            return None
        if flag:
            return flag
        dashed = self.name.replace("_", "-")
        if self.kind is bool:  # a switch that is on by default is turned off by --no-...
            return f"--no-{dashed}" if self.default else f"--{dashed}"
        return f"--{dashed}"


def described(cls: type) -> list[Described]:
    """The fields of ``cls`` that carry a :class:`Setting`, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("setting")
        if meta is None:
            continue
        kind, optional = _kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Described(f.name, kind, optional, default, meta))
    return out


def _kind(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _kind(rest[0])[0], len(rest) < len(args)
    origin = typing.get_origin(hint) or hint
    if origin in (bool, int, float, str, tuple):
        return origin, False
    raise TypeError(f"a setting must be a bool, int, float, str or tuple of str, not {hint!r}")


def split(text: str, separator: str) -> tuple[str, ...]:
    """A text field's or flag's items (blank ones dropped)."""
    return tuple(s.strip() for s in text.split(separator) if s.strip())
