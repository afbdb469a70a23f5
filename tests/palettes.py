"""A dark QPalette like a desktop's dark theme: for the colour tests and docs/screenshots/make_dark.py."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

R = QPalette.ColorRole
DARK = {R.Window: (45, 45, 48), R.WindowText: (225, 225, 225), R.Base: (30, 30, 32), R.AlternateBase: (45, 45, 48),
        R.Text: (225, 225, 225), R.Button: (55, 55, 58), R.ButtonText: (225, 225, 225), R.Highlight: (42, 130, 218),
        R.HighlightedText: (255, 255, 255), R.ToolTipBase: (60, 60, 60), R.ToolTipText: (230, 230, 230),
        R.Link: (100, 170, 255), R.PlaceholderText: (140, 140, 140), R.BrightText: (255, 80, 80),
        R.Light: (75, 75, 78), R.Midlight: (62, 62, 65), R.Mid: (50, 50, 52), R.Dark: (25, 25, 26),
        R.Shadow: (0, 0, 0)}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, rgb in DARK.items():
        palette.setColor(role, QColor(*rgb))
    for role in (R.Text, R.WindowText, R.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return palette
