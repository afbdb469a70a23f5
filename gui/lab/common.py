"""Small pieces the lab's panels share: colours, PNG export."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFileDialog, QWidget

from engine.lab.png import viridis
from gui.colors import surface


def viridis_color(value: float) -> QColor:
    r, g, b = (int(c) for c in viridis(value))
    return QColor(r, g, b)


def probability_color(p: float, palette: QPalette) -> QColor:
    """Red for tokens the model found unlikely, through yellow, to green for likely ones: a tint of the
    palette's base, so the palette's text colour reads on it in a light or a dark theme."""
    p = max(0.0, min(1.0, p))
    hue = int(120 * p ** 0.5)  # square root: most tokens have small probabilities; spread them out
    return surface(palette, QColor.fromHsv(hue, 255, 255), 0.27)


def visible_token(text: str) -> str:
    """A token label that shows its whitespace."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def export_png(widget: QWidget, parent: QWidget, suggested: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export as PNG", suggested, "PNG images (*.png)")
    if not path:
        return None
    if not path.lower().endswith(".png"):
        path += ".png"
    return path if widget.grab().save(path, "PNG") else None
