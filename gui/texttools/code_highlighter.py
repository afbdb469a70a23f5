"""Syntax highlighting with Pygments, by the file's language, for a QTextDocument.

Pygments lexes whole files (a docstring or comment can span lines), so the
document is lexed as a whole after edits settle (debounced) and each block
takes its spans from that pass. A block edited since then is lexed alone in
the meantime, so typing is coloured at once. Ghost text (a completion shown
but not accepted) is drawn in the palette's secondary colour, whatever its tokens.
The Pygments style follows the palette: a dark one on a dark theme.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat

from gui.colors import is_dark, muted, palette_of


WHOLE_FILE_LIMIT = 400_000  # characters; bigger files are coloured line by line


def lexer_for(filename: str = "", language: str = "", sample: str = ""):
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename, guess_lexer
    from pygments.lexers.special import TextLexer
    from pygments.util import ClassNotFound

    for attempt in (lambda: get_lexer_by_name(language), lambda: get_lexer_for_filename(filename, sample)):
        try:
            return attempt()
        except (ClassNotFound, ValueError, TypeError):
            continue
    if sample.strip():
        try:
            return guess_lexer(sample[:4000])
        except ClassNotFound:
            pass
    return TextLexer()


class PygmentsHighlighter(QSyntaxHighlighter):
    def __init__(self, document, style: str | None = None) -> None:
        super().__init__(document)
        self.lexer = lexer_for(language="text")
        self._spans: dict[int, tuple[str, list[tuple[int, int, QTextCharFormat]]]] = {}
        self.ghost_range: tuple[int, int] | None = None  # absolute (start, end) of ghost text
        self.ghost_format = QTextCharFormat()
        self.ghost_format.setFontItalic(True)
        self.set_style(style)
        self._timer = QTimer(singleShot=True, interval=250)
        self._timer.timeout.connect(self.relex)
        document.contentsChanged.connect(self._timer.start)

    def set_style(self, style: str | None = None) -> None:
        """A Pygments style by name; None: the one that suits the application's palette."""
        from pygments.styles import get_style_by_name

        palette = palette_of()
        self.style = get_style_by_name(style or ("github-dark" if is_dark(palette) else "default"))
        self.ghost_format.setForeground(muted(palette))
        self._formats: dict = {}
        self.set_lexer(self.lexer)  # colour the document again

    @property
    def language(self) -> str:
        return self.lexer.name

    def set_lexer(self, lexer) -> None:
        self.lexer = lexer
        self._spans = {}
        doc = self.document()
        if doc is not None and doc.characterCount() > WHOLE_FILE_LIMIT:
            self.rehighlight()  # once, line by line, in the new language
        else:
            self.relex()

    def relex(self) -> None:
        """Lex the whole document once and store each block's spans."""
        doc = self.document()
        if doc is None:
            return
        text = doc.toPlainText()
        if len(text) > WHOLE_FILE_LIMIT:  # lexing it all after every pause would freeze the window
            self._spans = {}
            return
        spans: dict[int, list] = {}
        line = col = 0
        for _, ttype, value in self.lexer.get_tokens_unprocessed(text):  # contiguous tokens over the text
            fmt = self._format(ttype)
            for k, part in enumerate(value.split("\n")):
                if k:
                    line, col = line + 1, 0
                if part and fmt is not None:
                    spans.setdefault(line, []).append((col, len(part), fmt))
                col += len(part)
        self._spans = {}
        block = doc.firstBlock()
        while block.isValid():
            self._spans[block.blockNumber()] = (block.text(), spans.get(block.blockNumber(), []))
            block = block.next()
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        number = self.currentBlock().blockNumber()
        cached = self._spans.get(number)
        if cached is not None and cached[0] == text:
            spans = cached[1]
        else:  # edited since the last whole pass: colour this line alone for now
            spans, pos = [], 0
            for _, ttype, value in self.lexer.get_tokens_unprocessed(text):
                spans.append((pos, len(value), self._format(ttype)))
                pos += len(value)
        for start, length, fmt in spans:
            if fmt is not None:
                self.setFormat(start, length, fmt)
        self._paint_ghost(text)

    def _paint_ghost(self, text: str) -> None:
        if self.ghost_range is None:
            return
        begin = self.currentBlock().position()
        start, end = self.ghost_range
        lo, hi = max(start, begin), min(end, begin + len(text))
        if hi > lo:
            self.setFormat(lo - begin, hi - lo, self.ghost_format)

    def _format(self, ttype) -> QTextCharFormat | None:
        if ttype in self._formats:
            return self._formats[ttype]
        style = self.style.style_for_token(ttype)
        fmt = None
        if style["color"] or style["bold"] or style["italic"]:
            fmt = QTextCharFormat()
            if style["color"]:
                fmt.setForeground(QColor("#" + style["color"]))
            if style["bold"]:
                fmt.setFontWeight(QFont.Weight.Bold)
            if style["italic"]:
                fmt.setFontItalic(True)
        self._formats[ttype] = fmt
        return fmt
