"""Token probabilities (the text coloured by how likely the model found each token, top 5 on hover)
and the next-token explorer (the distribution after a prefix; click a token to append it)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea,
                               QToolTip, QVBoxLayout, QWidget)

from gui.colors import Role, surface
from gui.lab.common import export_png, probability_color, visible_token

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog. Paris is the capital of France."


class TokenStrip(QWidget):
    """Tokens laid out like text, each on a background coloured by its probability."""

    PAD, LINE = 2, 22
    token_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tokens = []  # TokenProbability items
        self.boxes: list[QRectF] = []
        self.selected: int | None = None
        self.setMouseTracking(True)
        self._font = QFont("monospace")
        self._font.setStyleHint(QFont.StyleHint.Monospace)
        self._width = 700

    def set_tokens(self, tokens) -> None:
        self.tokens = list(tokens)
        self.selected = None
        self._layout(self._width)
        self.update()

    def _layout(self, width: int) -> None:
        fm = QFontMetrics(self._font)
        x, y, self.boxes = 4.0, 4.0, []
        for t in self.tokens:
            label = t.text.replace("\n", "↵").replace("\t", "    ") or "∅"
            w = fm.horizontalAdvance(label) + 2 * self.PAD
            if x + w > width - 4 and x > 4:
                x, y = 4.0, y + self.LINE
            self.boxes.append(QRectF(x, y, w, self.LINE - 3))
            x += w + 1
            if "\n" in t.text:
                x, y = 4.0, y + self.LINE
        self.setMinimumHeight(int(y + self.LINE + 8))

    def resizeEvent(self, event) -> None:
        self._width = max(200, event.size().width())
        self._layout(self._width)
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(self._width, self.minimumHeight())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(Role.Base))
        p.setFont(self._font)
        for t, box in zip(self.tokens, self.boxes):
            p.fillRect(box, surface(pal, None, 0.3) if t.prob is None else probability_color(t.prob, pal))
            p.setPen(pal.color(Role.Text))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, t.text.replace("\n", "↵").replace("\t", "    ") or "∅")
        if self.selected is not None and self.selected < len(self.boxes):
            p.setPen(pal.color(Role.Highlight))
            p.drawRect(self.boxes[self.selected].adjusted(0, 0, -1, -1))

    def index_at(self, pos) -> int | None:
        for i, box in enumerate(self.boxes):
            if box.contains(pos):
                return i
        return None

    def tooltip_for(self, i: int) -> str:
        t = self.tokens[i]
        if t.prob is None:
            return f"‘{visible_token(t.text)}’: context (the model was not asked to predict it)"
        lines = [f"‘{visible_token(t.text)}’: {t.prob:.2%}", "Top 5 here:"]
        lines += [f"  {p:7.2%}  ‘{visible_token(a)}’" for a, p in t.top]
        return "\n".join(lines)

    def mouseMoveEvent(self, event) -> None:
        i = self.index_at(event.position())
        if i is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self.tooltip_for(i), self)

    def mousePressEvent(self, event) -> None:
        i = self.index_at(event.position())
        if i is not None:
            self.selected = i
            self.update()
            self.token_clicked.emit(i)


class TokenPanel(QWidget):
    def __init__(self, lab, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lab = lab
        self.result = None
        self.text = QPlainTextEdit(DEFAULT_TEXT)
        self.text.setMaximumHeight(90)
        self.score_button = QPushButton("Score the text")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.strip = TokenStrip()
        scroll = QScrollArea()
        scroll.setWidget(self.strip)
        scroll.setWidgetResizable(True)
        self.details = QLabel("Click a token to keep its alternatives here.")
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(230)
        self.details.setStyleSheet("font-family: monospace; padding: 6px; "
                                   "background: palette(base); color: palette(text);")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.strip.token_clicked.connect(lambda i: self.details.setText(self.strip.tooltip_for(i)))
        body = QHBoxLayout()
        body.addWidget(scroll, 1)
        body.addWidget(self.details)
        row = QHBoxLayout()
        row.addWidget(self.score_button)
        row.addStretch(1)
        row.addWidget(self.export_button)
        legend = QLabel("Colour: red = the model found the token unlikely, green = likely; grey = context. "
                        "Hover or click a token for the 5 tokens the model expected there.")
        legend.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addLayout(row)
        layout.addWidget(legend)
        layout.addWidget(self.summary)
        layout.addLayout(body, 1)
        self.score_button.clicked.connect(self.run)
        self.export_button.clicked.connect(self._export)

    def run(self) -> None:
        from engine.lab.tasks import lab_token_probs_task

        text = self.text.toPlainText()
        if not text.strip():
            self.lab.window.show_error("Type a text to score first.")
            return
        self.score_button.setEnabled(False)
        self.summary.setText("Running the model…")
        self.lab.run(lab_token_probs_task, done=self.show_result, failed=self._failed, text=text,
                     model_path=self.lab.model_path())

    def _failed(self, message: str, error_type: str = "") -> None:
        self.score_button.setEnabled(True)
        self.summary.setText("")
        self.lab.window.show_error(message)

    def show_result(self, result) -> None:
        self.score_button.setEnabled(True)
        self.export_button.setEnabled(True)
        self.result = result
        scored = [t for t in result.tokens if t.prob is not None]
        top1 = sum(t.rank_one for t in scored)
        self.summary.setText(f"{result.model_name}: perplexity {result.perplexity:.2f} over {len(scored)} tokens "
                             f"({result.method}); the model's first choice {top1} times out of {len(scored)}."
                             + (f"  {result.notice}" if result.notice else ""))
        if result.notice:
            self.lab.window.show_notice(result.notice)
        self.strip.set_tokens(result.tokens)

    def _export(self) -> None:
        path = export_png(self.strip, self, "token-probabilities.png")
        if path:
            self.lab.window.show_notice(f"Saved {path}")


class BarChart(QWidget):
    """Horizontal bars, one per candidate token; a click emits the row."""

    clicked = Signal(int)
    ROW = 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[tuple[str, float]] = []
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._font = QFont("monospace")
        self._font.setStyleHint(QFont.StyleHint.Monospace)

    def set_items(self, items: list[tuple[str, float]]) -> None:
        self.items = items
        self.setMinimumHeight(len(items) * self.ROW + 8)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(500, len(self.items) * self.ROW + 8)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(Role.Base))
        p.setFont(self._font)
        label_w, pct_w = 150, 64
        bar_w = max(50, self.width() - label_w - pct_w - 16)
        peak = max((prob for _, prob in self.items), default=1.0) or 1.0
        for i, (text, prob) in enumerate(self.items):
            y = 4 + i * self.ROW
            p.setPen(pal.color(Role.Text))
            p.drawText(QRect(4, y, label_w - 8, self.ROW), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"‘{visible_token(text)[:16]}’")
            p.fillRect(label_w, y + 3, int(bar_w * prob / peak), self.ROW - 6, probability_color(prob, pal))
            p.drawText(QRect(label_w + bar_w + 6, y, pct_w, self.ROW), Qt.AlignmentFlag.AlignVCenter, f"{prob:.1%}")

    def mousePressEvent(self, event) -> None:
        row = int((event.position().y() - 4) // self.ROW)
        if 0 <= row < len(self.items):
            self.clicked.emit(row)


class NextTokenPanel(QWidget):
    """Type a prefix, see the next-token distribution, click one to append it; masked models fill blanks."""

    def __init__(self, lab, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lab = lab
        self.candidates = []
        self._masked = self._generating = False
        self.prefix = QPlainTextEdit("Permission is hereby")
        self.prefix.setMaximumHeight(90)
        self.predict_button = QPushButton("Next token")
        self.generate_button = QPushButton("Generate 50 tokens")
        self.export_button = QPushButton("Export PNG…")
        self.notice = QLabel("Click a bar to append that token and look again.")
        self.notice.setWordWrap(True)
        self.bars = BarChart()
        self.mask_input = QLineEdit("Permission is <mask>ereby granted")
        self.fill_button = QPushButton("Fill in the blanks")
        self.fill_result = QLabel("")
        self.fill_result.setWordWrap(True)
        self.fill_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        for w in (self.predict_button, self.generate_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.export_button)
        fill_row = QHBoxLayout()
        fill_row.addWidget(self.mask_input, 1)
        fill_row.addWidget(self.fill_button)
        self.fill_box = QWidget()
        fill_layout = QVBoxLayout(self.fill_box)
        fill_layout.setContentsMargins(0, 0, 0, 0)
        fill_layout.addWidget(QLabel("Fill in the blank (masked models): write <mask> for each missing token."))
        fill_layout.addLayout(fill_row)
        fill_layout.addWidget(self.fill_result)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prefix)
        layout.addLayout(row)
        layout.addWidget(self.notice)
        layout.addWidget(self.bars, 1)
        layout.addWidget(self.fill_box)
        self.predict_button.clicked.connect(self.run)
        self.generate_button.clicked.connect(self.generate)
        self.bars.clicked.connect(self.append)
        self.fill_button.clicked.connect(self.fill)
        self.export_button.clicked.connect(self._export)

    def set_masked(self, masked: bool) -> None:
        """Masked models predict a blank at the end; they cannot generate, but they fill blanks."""
        self._masked = masked
        self.generate_button.setEnabled(not masked and not self._generating)
        self.fill_box.setVisible(masked)

    def run(self) -> None:
        from engine.lab.tasks import lab_next_tokens_task

        self.predict_button.setEnabled(False)
        self.lab.run(lab_next_tokens_task, done=self.show_result, failed=self._failed,
                     prefix=self.prefix.toPlainText(), model_path=self.lab.model_path(), k=20)

    def _failed(self, message: str, error_type: str = "") -> None:
        self._generating = False
        for b in (self.predict_button, self.fill_button):
            b.setEnabled(True)
        self.generate_button.setEnabled(not self._masked)
        self.lab.window.show_error(message)

    def show_result(self, result) -> None:
        self.predict_button.setEnabled(True)
        self.candidates, notice = result
        shown = sum(c.prob for c in self.candidates)
        self.notice.setText(f"The {len(self.candidates)} most likely next tokens ({shown:.0%} of the probability). "
                            "Click one to append it." + (f"  {notice}" if notice else ""))
        self.bars.set_items([(c.text, c.prob) for c in self.candidates])

    def append(self, row: int) -> None:
        cursor = self.prefix.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(self.candidates[row].text)
        self.run()

    def generate(self) -> None:
        from engine.lab.tasks import lab_generate_task

        sampling = self.lab.window.sampling_panel.config().with_(max_new_tokens=50)
        self._generating = True
        self.generate_button.setEnabled(False)
        cursor = self.prefix.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.prefix.setTextCursor(cursor)

        def done(result) -> None:
            self._generating = False
            self.generate_button.setEnabled(not self._masked)
            if getattr(result, "notice", ""):
                self.lab.window.show_notice(result.notice)
            self.run()

        self.lab.run(lab_generate_task, done=done, failed=self._failed, chunk=self.prefix.insertPlainText,
                     prompt=self.prefix.toPlainText(), model_path=self.lab.model_path(), sampling=sampling)

    def fill(self) -> None:
        from engine.lab.tasks import lab_fill_mask_task

        self.fill_button.setEnabled(False)
        self.lab.run(lab_fill_mask_task, done=self._show_fill, failed=self._failed,
                     text=self.mask_input.text(), model_path=self.lab.model_path())

    def _show_fill(self, result) -> None:
        self.fill_button.setEnabled(True)
        text, options = result
        if not options:
            self.fill_result.setText("No <mask> in the text: write <mask> where a token is missing.")
            return
        lines = [f"Best guess: {text}"]
        lines += [f"blank {i}: " + ", ".join(f"‘{visible_token(t)}’ {p:.0%}" for t, p in top)
                  for i, top in enumerate(options, 1)]
        self.fill_result.setText("\n".join(lines))

    def _export(self) -> None:
        path = export_png(self.bars, self, "next-token.png")
        if path:
            self.lab.window.show_notice(f"Saved {path}")
