"""Every colour the window draws, derived from the palette, so a dark desktop theme is as readable as a
light one. Surfaces (message bubbles, banners, code) are the palette's base tinted towards a hue;
coloured text and lines keep their hue but take a lightness that reads on the palette's background.

Call these at paint time (or on ``QEvent.PaletteChange``) with the widget's palette, not once at import.
They read the palette's active colours, so a colour computed while a widget is disabled (the chat's list
during a reply) is not the washed-out disabled one.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

Role = QPalette.ColorRole
ACTIVE = QPalette.ColorGroup.Active

# Hues that mean something; their lightness comes from the palette (see `accent` and `surface`).
RED = QColor(211, 47, 47)  # errors, unlikely tokens
AMBER = QColor(255, 179, 0)  # notices, search matches
BLUE = QColor(41, 98, 255)  # training loss
ORANGE = QColor(230, 81, 0)  # validation loss


def palette_of(widget=None) -> QPalette:
    return widget.palette() if widget is not None else QApplication.palette()


def is_dark(palette: QPalette) -> bool:
    return palette.color(ACTIVE, Role.Base).lightnessF() < 0.5


def mix(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    t = max(0.0, min(1.0, amount))
    return QColor.fromRgbF(*(x + (y - x) * t for x, y in zip(a.getRgbF()[:3], b.getRgbF()[:3], strict=True)))


def surface(palette: QPalette, hue: QColor | None = None, amount: float = 0.12) -> QColor:
    """A background a little apart from the base: tinted towards ``hue``, or towards the text colour."""
    base = palette.color(ACTIVE, Role.Base)
    if hue is None:
        return mix(base, palette.color(ACTIVE, Role.Text), amount * 0.5)
    return mix(base, hue, amount * (1.25 if is_dark(palette) else 1.0))  # a tint shows less on dark


def accent(palette: QPalette, hue: QColor) -> QColor:
    """``hue`` as text or a line that reads on the palette's base: darker on light, lighter on dark."""
    h, s, _l, _a = hue.getHslF()
    return QColor.fromHslF(max(h, 0.0), min(s, 0.85), 0.72 if is_dark(palette) else 0.36)


def muted(palette: QPalette) -> QColor:
    """Secondary text (hints, status, line numbers): between the text and the base."""
    return mix(palette.color(ACTIVE, Role.Text), palette.color(ACTIVE, Role.Base), 0.45)


def border(palette: QPalette) -> QColor:
    return mix(palette.color(ACTIVE, Role.Base), palette.color(ACTIVE, Role.Text), 0.18)


def css(color: QColor) -> str:
    return color.name()


def banner_style(palette: QPalette, hue: QColor) -> str:
    """The style sheet of a message strip (gui/banner.py) in ``hue``."""
    return (f"background: {css(surface(palette, hue, 0.14))}; color: {css(palette.color(ACTIVE, Role.Text))}; "
            f"border: 1px solid {css(mix(palette.color(ACTIVE, Role.Base), accent(palette, hue), 0.5))};")


def muted_label(label) -> None:
    """Show a QLabel's text in the palette's secondary (placeholder) colour, which follows theme changes."""
    label.setForegroundRole(Role.PlaceholderText)
