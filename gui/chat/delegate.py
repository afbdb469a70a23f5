"""Paints one chat message: a header line and the Markdown body, in a rounded bubble.

Qt's own Markdown (``QTextDocument.setMarkdown``) renders the body, code blocks
in a fixed-pitch font. Laid-out documents are cached by role, content, width
and colours, so scrolling a long conversation only lays out what changed. Every
colour comes from the palette (gui/colors.py), so a dark theme reads as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRect, QRectF, QRegularExpression, QSize, Qt
from PySide6.QtGui import (QAbstractTextDocumentLayout, QColor, QFont, QFontDatabase, QPalette, QTextCharFormat,
                           QTextDocument)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from gui.chat.list_model import MetaRole, RoleRole, StreamingRole
from gui.colors import ACTIVE, AMBER, RED, Role, border, css, mix, muted, palette_of, surface

PAD = 10
MARGIN = 6
HEADER = 18
DISPLAY_LIMIT = 20_000  # characters shown of a huge message (all of it is still sent and kept)
CACHE_SIZE = 256  # laid-out messages kept: far more than fit on a screen

CITATION = QRegularExpression(r"\[(\d+)\]")  # "[n]": how a reply from documents cites passage n
TITLES = {"user": "You", "error": "Error", "notice": "Note"}


def shown_text(content: str) -> str:
    if len(content) <= DISPLAY_LIMIT:
        return content
    return content[:DISPLAY_LIMIT] + f"\n\n*… {len(content) - DISPLAY_LIMIT:,} more characters not shown*"


def bubble_color(palette: QPalette, role: str) -> QColor:
    """Your messages tinted with the selection colour, errors red, notes amber, replies a neutral grey."""
    hue = {"user": palette.color(ACTIVE, Role.Highlight), "error": RED, "notice": AMBER}.get(role)
    return surface(palette, hue, 0.12) if hue is not None else surface(palette)


class ChatDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        # Laid-out documents by what decides their layout, so rows that move, change or go away
        # never need the cache told; least recently used first out.
        self._cache: OrderedDict[tuple, QTextDocument] = OrderedDict()
        self.mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        # A row's meta -> the passage numbers its reply may cite as links (the chat view sets it).
        self.citable: Callable[[dict], frozenset[int]] = lambda meta: frozenset()

    def document(self, content: str, role: str, width: int, palette: QPalette | None = None,
                 cites: frozenset[int] = frozenset()) -> QTextDocument:
        palette = palette or palette_of()
        code = css(mix(bubble_color(palette, role), palette.color(ACTIVE, Role.Text), 0.08))  # code blocks stand out
        link = palette.color(ACTIVE, Role.Link)
        key = (role, content, width, code, cites, link.rgba() if cites else 0)
        doc = self._cache.get(key)
        if doc is not None:
            self._cache.move_to_end(key)
            return doc
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultStyleSheet(f"pre, code {{ font-family: '{self.mono.family()}'; background: {code}; }}")
        text = shown_text(content)
        if role in ("user", "error", "notice"):
            doc.setPlainText(text)  # what the user typed is shown as typed
        else:
            doc.setMarkdown(text)
            if cites:
                link_citations(doc, cites, link)
        doc.setTextWidth(max(50, width))
        self._cache[key] = doc
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return doc

    def _body_width(self, option) -> int:
        return option.rect.width() - 2 * (PAD + MARGIN)

    def _row_document(self, index, width: int, palette: QPalette) -> QTextDocument:
        cites = frozenset() if index.data(StreamingRole) else self.citable(index.data(MetaRole) or {})
        return self.document(index.data() or "", index.data(RoleRole), width, palette, cites)

    def citation_at(self, rect: QRect, index, pos, palette: QPalette) -> int | None:
        """The passage number of the citation link under ``pos`` (viewport coordinates) in the row drawn in ``rect``."""
        doc = self._row_document(index, rect.width() - 2 * (PAD + MARGIN), palette)
        origin = QPointF(rect.left() + MARGIN + PAD, rect.top() + MARGIN + PAD + HEADER)
        href = doc.documentLayout().anchorAt(QPointF(pos) - origin)
        return int(href[5:]) if href.startswith("cite:") and href[5:].isdigit() else None

    def sizeHint(self, option, index) -> QSize:
        doc = self._row_document(index, self._body_width(option), option.palette)
        return QSize(option.rect.width(), int(doc.size().height()) + HEADER + 2 * PAD + 2 * MARGIN)

    def paint(self, painter, option, index) -> None:
        role = index.data(RoleRole)
        meta = index.data(MetaRole) or {}
        painter.save()
        bubble = QRectF(option.rect).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        painter.setRenderHint(painter.RenderHint.Antialiasing)
        pal = option.palette
        selected = option.state & QStyle.StateFlag.State_Selected
        painter.setPen(pal.color(ACTIVE, Role.Highlight) if selected else border(pal))
        painter.setBrush(bubble_color(pal, role))
        painter.drawRoundedRect(bubble, 8, 8)
        header_font = QFont(option.font)
        header_font.setBold(True)
        painter.setFont(header_font)
        painter.setPen(pal.color(ACTIVE, Role.Text))
        title = TITLES.get(role) or meta.get("model") or "Assistant"
        header_rect = bubble.adjusted(PAD, PAD - 2, -PAD, 0)
        painter.drawText(header_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, title)
        status = self._status(meta, bool(index.data(StreamingRole)))
        if status:
            painter.setFont(option.font)
            painter.setPen(muted(pal))
            painter.drawText(header_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, status)
        doc = self._row_document(index, self._body_width(option), pal)
        painter.translate(bubble.left() + PAD, bubble.top() + PAD + HEADER)
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette.setColor(Role.Text, pal.color(ACTIVE, Role.Text))
        doc.documentLayout().draw(painter, context)
        painter.restore()

    @staticmethod
    def _status(meta: dict, streaming: bool) -> str:
        if streaming:
            return "writing…"
        parts = []
        if meta.get("alternatives", 1) > 1:
            parts.append(f"‹ {meta.get('alternative', 1)}/{meta['alternatives']} ›")
        if meta.get("tok_s"):
            parts.append(f"{meta['new_tokens']} tokens · {meta['tok_s']:.1f} tok/s")
        reason = meta.get("finish_reason")
        if reason in ("cancelled", "length", "interrupted", "repetition"):
            parts.append({"cancelled": "stopped", "length": "cut at max tokens", "interrupted": "interrupted",
                          "repetition": "stopped: it began repeating itself"}[reason])
        return "   ".join(parts)


def link_citations(doc: QTextDocument, cites: frozenset[int], color: QColor) -> None:
    """Make each "[n]" of a rendered reply, n among ``cites``, a ``cite:n`` link in the palette's link colour.

    Done on the rendered text rather than the Markdown, so escaping, code spans and
    "[1][2]" (a reference link to Markdown) need no special cases."""
    cursor = doc.find(CITATION)
    while not cursor.isNull():
        number = int(cursor.selectedText()[1:-1])
        if number in cites:
            fmt = QTextCharFormat()
            fmt.setAnchor(True)
            fmt.setAnchorHref(f"cite:{number}")
            fmt.setForeground(color)
            fmt.setFontUnderline(True)
            cursor.mergeCharFormat(fmt)
        cursor = doc.find(CITATION, cursor)
