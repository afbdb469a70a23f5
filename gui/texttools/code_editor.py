"""A code editor: line numbers, Pygments highlighting, auto-indent, and inline ghost-text completions.

Ghost text is a completion shown grey at the cursor. It lives in the document
(so the lines below move down, as in any modern editor) as one undo step,
coloured by the highlighter; the caret stays in front of it.

* Tab accepts it: the step stays, so Ctrl+Z takes the whole completion back.
* Esc, a click, or any other key dismisses it: the step is undone and the redo
  entry dropped, so the document is exactly as before.
* Typing the ghost's next characters refines it: they are typed for real and
  the rest of the ghost stays.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeySequence, QPainter, QTextCursor, QTextDocument
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from gui.colors import muted
from gui.texttools.code_highlighter import PygmentsHighlighter

INDENT = "    "
MODIFIER_KEYS = {Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta, Qt.Key.Key_AltGr,
                 Qt.Key.Key_CapsLock}


class _LineNumbers(QWidget):
    def __init__(self, editor: "CodeEditor") -> None:
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QSize:
        return QSize(self.editor.line_number_width(), 0)

    def paintEvent(self, event) -> None:
        self.editor.paint_line_numbers(event)


class CodeEditor(QPlainTextEdit):
    completion_requested = Signal()  # Ctrl+Space
    ghost_accepted = Signal(str)
    ghost_dismissed = Signal()
    user_edited = Signal()  # a change made by the user (not by showing or hiding ghost text)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSize(max(font.pointSize(), 10))
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabStopDistance(self.fontMetrics().horizontalAdvance(" ") * 4)
        self.highlighter = PygmentsHighlighter(self.document())
        self._ghost: str | None = None
        self._ghost_start = 0
        self._ghost_steps = 0
        self._internal = False  # True while we insert or remove ghost text ourselves
        self.numbers = _LineNumbers(self)
        self.blockCountChanged.connect(self._update_margin)
        self.updateRequest.connect(self._scroll_numbers)
        self.edit_count = 0  # real edits so far: tells whether a completion still fits the text
        # contentsChange, not contentsChanged: re-highlighting emits the latter with no text changed.
        self.document().contentsChange.connect(self._on_changed)
        self._update_margin()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "highlighter"):
            self.highlighter.set_style()  # a dark theme gets a dark Pygments style
        super().changeEvent(event)

    # -- ghost text ------------------------------------------------------------------
    @property
    def ghost_text(self) -> str | None:
        return self._ghost

    def has_ghost(self) -> bool:
        return self._ghost is not None

    def show_ghost(self, text: str) -> None:
        """Show ``text`` as a suggestion at the cursor (replacing any shown one)."""
        self.dismiss_ghost(emit=False)
        if not text:
            return
        cursor = self.textCursor()
        cursor.clearSelection()
        pos = cursor.position()
        self.highlighter.ghost_range = (pos, pos + len(text))  # set first: inserting re-highlights at once
        self._internal = True
        try:
            cursor.beginEditBlock()
            cursor.insertText(text)
            cursor.endEditBlock()
        finally:
            self._internal = False
        self._ghost_steps = self.document().availableUndoSteps()  # to tell whether anything came after it
        self._ghost, self._ghost_start = text, pos
        self._place_caret(pos)
        self._rehighlight_ghost(pos, pos + len(text))

    def accept_ghost(self) -> str:
        text = self._ghost
        if text is None:
            return ""
        start = self._ghost_start
        self._clear_ghost_state()
        self._place_caret(start + len(text))
        self._rehighlight_ghost(start, start + len(text))
        self.ghost_accepted.emit(text)
        return text

    def dismiss_ghost(self, emit: bool = True) -> None:
        text = self._ghost
        if text is None:
            return
        start = self._ghost_start
        doc = self.document()
        expected = self.real_text()
        self._internal = True
        try:
            undone = doc.availableUndoSteps() == self._ghost_steps
            if undone:
                doc.undo()  # the ghost's own edit block, if nothing was recorded after it
                undone = doc.toPlainText() == expected
                if undone:
                    doc.clearUndoRedoStacks(QTextDocument.Stacks.RedoStack)
                else:  # it had merged with the typing before it: put that back
                    doc.redo()
            if not undone:
                cursor = QTextCursor(doc)
                cursor.setPosition(start)
                cursor.setPosition(start + len(text), QTextCursor.MoveMode.KeepAnchor)
                cursor.removeSelectedText()
        finally:
            self._internal = False
        self._clear_ghost_state()
        self._place_caret(start)
        self._rehighlight_ghost(start, start)
        if emit:
            self.ghost_dismissed.emit()

    def real_text(self) -> str:
        """The document without any ghost text."""
        text = self.toPlainText()
        if self._ghost is None:
            return text
        return text[:self._ghost_start] + text[self._ghost_start + len(self._ghost):]

    def _clear_ghost_state(self) -> None:
        self._ghost = None
        self.highlighter.ghost_range = None

    def _place_caret(self, pos: int) -> None:
        cursor = self.textCursor()
        cursor.setPosition(min(pos, self.document().characterCount() - 1))
        self.setTextCursor(cursor)

    def _rehighlight_ghost(self, start: int, end: int) -> None:
        block = self.document().findBlock(start)
        while block.isValid() and block.position() <= end:
            self.highlighter.rehighlightBlock(block)
            block = block.next()

    def _on_changed(self, position: int, removed: int, added: int) -> None:
        if not self._internal and (removed or added):
            self.edit_count += 1
            self.user_edited.emit()

    # -- keys ------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key, mods = event.key(), event.modifiers()
        if key == Qt.Key.Key_Space and mods & Qt.KeyboardModifier.ControlModifier:
            self.completion_requested.emit()
            return
        if self._ghost is not None:
            if key in MODIFIER_KEYS:  # Shift on its way to a capital letter must not dismiss
                super().keyPressEvent(event)
                return
            if event.matches(QKeySequence.StandardKey.Undo):  # undo the suggestion, not the typing before it
                self.dismiss_ghost()
                return
            if key == Qt.Key.Key_Tab and not mods & Qt.KeyboardModifier.ShiftModifier:
                self.accept_ghost()
                return
            if key == Qt.Key.Key_Escape:
                self.dismiss_ghost()
                return
            typed = event.text()
            plain = not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
            if plain and typed and typed.isprintable() and self._ghost.startswith(typed):
                rest = self._ghost[len(typed):]
                self.dismiss_ghost(emit=False)
                super().keyPressEvent(event)
                self.show_ghost(rest)
                if not rest:
                    self.ghost_accepted.emit(typed)
                return
            self.dismiss_ghost()
        if key == Qt.Key.Key_Tab and not mods:
            self.textCursor().insertText(INDENT)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not mods & Qt.KeyboardModifier.ShiftModifier:
            self._newline_with_indent()
            return
        super().keyPressEvent(event)

    def _newline_with_indent(self) -> None:
        cursor = self.textCursor()
        line = cursor.block().text()[:cursor.positionInBlock()]
        indent = line[:len(line) - len(line.lstrip(" \t"))]
        if line.rstrip().endswith((":", "{", "(", "[")):
            indent += INDENT
        cursor.insertText("\n" + indent)
        self.setTextCursor(cursor)

    def mousePressEvent(self, event) -> None:
        self.dismiss_ghost()
        super().mousePressEvent(event)

    # -- line numbers ----------------------------------------------------------------
    def line_number_width(self) -> int:
        digits = max(3, len(str(self.blockCount())))
        return 12 + self.fontMetrics().horizontalAdvance("9") * digits

    def _update_margin(self, *_: object) -> None:
        self.setViewportMargins(self.line_number_width(), 0, 0, 0)

    def _scroll_numbers(self, rect: QRect, dy: int) -> None:
        if dy:
            self.numbers.scroll(0, dy)
        else:
            self.numbers.update(0, rect.y(), self.numbers.width(), rect.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        cr = self.contentsRect()
        self.numbers.setGeometry(QRect(cr.left(), cr.top(), self.line_number_width(), cr.height()))

    def paint_line_numbers(self, event) -> None:
        painter = QPainter(self.numbers)
        painter.fillRect(event.rect(), self.palette().alternateBase())
        block = self.firstVisibleBlock()
        number = block.blockNumber()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        bottom = top + round(self.blockBoundingRect(block).height())
        current = self.textCursor().blockNumber()
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and bottom >= event.rect().top():
                painter.setPen(self.palette().text().color() if number == current else muted(self.palette()))
                painter.drawText(0, top, self.numbers.width() - 6, height, Qt.AlignmentFlag.AlignRight,
                                 str(number + 1))
            block = block.next()
            top = bottom
            bottom = top + round(self.blockBoundingRect(block).height())
            number += 1
