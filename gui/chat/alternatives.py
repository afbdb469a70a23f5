"""Where the ‹ n/m › arrows of a message header are, so a click can step through alternatives.

The delegate draws the header status right-aligned, alternatives first
(``ChatDelegate._status``); this measures the same string with the same font.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QFont, QFontMetrics

from gui.chat.delegate import HEADER, MARGIN, PAD, ChatDelegate

SLACK = 6  # pixels around an arrow that still count as a click on it


def arrow_at(item_rect: QRect, font: QFont, meta: dict, streaming: bool, pos: QPoint) -> int:
    """-1 for a click on ‹, +1 on ›, 0 elsewhere."""
    if streaming or meta.get("alternatives", 1) <= 1:
        return 0
    status = ChatDelegate._status(meta, False)
    metrics = QFontMetrics(font)
    right = item_rect.right() - MARGIN - PAD
    top = item_rect.top() + MARGIN + PAD - 2
    if not top - SLACK <= pos.y() <= top + HEADER + SLACK:
        return 0
    start = right - metrics.horizontalAdvance(status)
    label = f"‹ {meta.get('alternative', 1)}/{meta['alternatives']} ›"
    left_arrow_end = start + metrics.horizontalAdvance("‹ ")
    right_arrow_start = start + metrics.horizontalAdvance(label[:-1])
    right_arrow_end = start + metrics.horizontalAdvance(label)
    if start - SLACK <= pos.x() <= left_arrow_end:
        return -1
    if right_arrow_start - 2 <= pos.x() <= right_arrow_end + SLACK:
        return +1
    return 0
