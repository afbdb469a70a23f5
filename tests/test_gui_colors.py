"""The window's colours come from the palette (gui/colors.py): text reads on every surface in a light and a
dark theme, the chat and the loss plot follow the palette, and no view hard-codes a colour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage, QPainter, QPalette

from palettes import dark_palette

Role = QPalette.ColorRole
GUI = Path(__file__).resolve().parent.parent / "gui"


def luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(x) for x in c.getRgbF()[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(params=["light", "dark"])
def palette(request, qapp):
    from PySide6.QtWidgets import QStyleFactory

    return QStyleFactory.create("Fusion").standardPalette() if request.param == "light" else dark_palette()


def test_text_reads_on_every_surface(palette):
    from gui.chat.delegate import bubble_color
    from gui.colors import AMBER, BLUE, ORANGE, RED, accent, muted, surface
    from gui.lab.common import probability_color

    text, base = palette.color(Role.Text), palette.color(Role.Base)
    for role in ("user", "assistant", "error", "notice"):
        assert contrast(bubble_color(palette, role), text) >= 4.5, role
    for p in (0.0, 0.05, 0.2, 0.5, 0.8, 1.0):
        assert contrast(probability_color(p, palette), text) >= 4.5, p
    for hue in (RED, AMBER):  # banners and search marks
        assert contrast(surface(palette, hue, 0.3), text) >= 4.5
    for hue in (RED, ORANGE, BLUE):  # coloured text and plot lines
        assert contrast(accent(palette, hue), base) >= 4.0
    assert contrast(muted(palette), base) >= 2.5
    assert contrast(surface(palette), base) > 1.02  # a surface is apart from the base, if only a little


def test_a_disabled_widget_gives_the_active_colours(qtbot):
    """The chat's list is disabled during a reply: colours computed then must not be the washed-out ones."""
    from PySide6.QtWidgets import QTreeWidget

    from gui.colors import muted, surface

    tree = QTreeWidget()
    qtbot.addWidget(tree)
    before = (muted(tree.palette()), surface(tree.palette()))
    tree.setEnabled(False)
    assert (muted(tree.palette()), surface(tree.palette())) == before


def test_chat_bubbles_follow_a_dark_palette(qtbot):
    from gui.chat.delegate import ChatDelegate
    from gui.chat.list_model import ChatItem, ChatModel

    model = ChatModel()
    model.append(ChatItem("assistant", "The sea is wide and deep; its waves roll on."))
    view_palette = dark_palette()
    image = QImage(600, 140, QImage.Format.Format_RGB32)
    image.fill(view_palette.color(Role.Base))
    from PySide6.QtWidgets import QStyleOptionViewItem

    option = QStyleOptionViewItem()
    option.rect = image.rect()
    option.palette = view_palette
    painter = QPainter(image)
    ChatDelegate().paint(painter, option, model.index(0))
    painter.end()
    inside = [QColor(image.pixel(x, y)) for x in range(20, 580, 3) for y in range(20, 110, 3)]
    assert luminance(QColor(image.pixel(300, 100))) < 0.1  # the bubble is dark
    assert max(luminance(c) for c in inside) > 0.5  # and its text is light


def test_loss_plot_takes_the_palette(qtbot):
    from gui.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.setPalette(dark_palette())
    assert plot.backgroundBrush().color() == dark_palette().color(Role.Base)
    assert plot.getAxis("left").textPen().color() == dark_palette().color(Role.Text)
    assert luminance(plot.train_avg.opts["pen"].color()) > 0.2  # a line that shows on the dark background


# A colour literal in a string, a style sheet or Qt's named colours; "#" + a Pygments style's colour is allowed
# (the style is chosen by the palette).
HARD_CODED = re.compile(r"""["']#[0-9a-fA-F]{3,8}\b|color:\s*#|background:\s*(#|white|black)"""
                        r"""|Qt\.GlobalColor\.(?!transparent)|QColor\(\s*\d|QColor\(["'](?!#["'])""")


def test_no_view_hard_codes_a_colour():
    """Every colour comes from gui/colors.py (derived from the palette) or the palette itself."""
    found = [f"{path.relative_to(GUI.parent)}:{n}: {line.strip()}"
             for path in GUI.rglob("*.py") if path.name != "colors.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if HARD_CODED.search(line)]
    assert not found, "\n".join(found)
