"""Attention maps: one head (or the mean of a layer's heads) as a labelled heatmap, or all heads as a grid.

Row i is the token doing the looking, column j the token looked at; a cell's colour is the weight
(viridis: dark = 0, yellow = the largest weight in the map). Hover a cell for its value; click a
head in the grid to open it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QScrollArea, QSpinBox, QStackedWidget, QToolTip, QVBoxLayout, QWidget)

from gui.colors import Role
from gui.lab.common import export_png, viridis_color, visible_token

DEFAULT_TEXT = "The cat sat on the mat because it was tired."


class HeatmapWidget(QWidget):
    """A (T, T) matrix with the tokens along both axes, painted with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = np.zeros((0, 0))
        self.tokens: list[str] = []
        self.title = ""
        self.setMouseTracking(True)
        self._font = QFont(self.font())
        self._font.setPointSize(8)

    def set_data(self, matrix: np.ndarray, tokens: list[str], title: str = "") -> None:
        self.matrix, self.tokens, self.title = np.asarray(matrix), [visible_token(t) for t in tokens], title
        self.updateGeometry()
        self.adjustSize()
        self.update()

    def _label_width(self) -> int:
        fm = QFontMetrics(self._font)
        return min(140, max([fm.horizontalAdvance(t[:18]) for t in self.tokens] + [20]) + 8)

    def _cell(self) -> int:
        return max(6, min(40, 900 // max(1, len(self.tokens))))

    def _origin(self) -> QPoint:
        return QPoint(self._label_width(), self._label_width() + 22)

    def sizeHint(self) -> QSize:
        n = len(self.tokens)
        o = self._origin()
        return QSize(o.x() + n * self._cell() + 90, max(o.y() + n * self._cell() + 12, 220))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(Role.Base))
        p.setPen(self.palette().color(Role.Text))
        p.setFont(self._font)
        p.drawText(QRect(4, 2, self.width() - 8, 18), Qt.AlignmentFlag.AlignLeft, self.title)
        n, cell, o = len(self.tokens), self._cell(), self._origin()
        if not n:
            return
        peak = float(self.matrix.max()) or 1.0
        for i in range(n):
            for j in range(n):
                p.fillRect(o.x() + j * cell, o.y() + i * cell, cell, cell, viridis_color(self.matrix[i, j] / peak))
        p.setPen(self.palette().color(Role.Text))
        self._paint_scale(p, o.x() + n * cell + 16, o.y(), peak)
        if cell >= 8:  # labels only where they can be read
            lw = self._label_width()
            for i, token in enumerate(self.tokens):
                p.drawText(QRect(0, o.y() + i * cell, lw - 4, cell),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, token[:18])
            p.save()
            p.translate(o.x(), o.y() - 4)
            p.rotate(-90)
            for j, token in enumerate(self.tokens):
                p.drawText(QRect(0, j * cell, lw - 4, cell), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           token[:18])
            p.restore()

    def _paint_scale(self, p: QPainter, x: int, y: int, peak: float) -> None:
        """A colour bar: what the darkest and brightest cells mean."""
        height = 160
        for k in range(height):
            p.fillRect(x, y + k, 14, 1, viridis_color(1 - k / (height - 1)))
        p.drawRect(x, y, 14, height)
        p.drawText(x + 18, y + 10, f"{peak:.2f}")
        p.drawText(x + 18, y + height, "0")

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        o, cell, n = self._origin(), self._cell(), len(self.tokens)
        i, j = (pos.y() - o.y()) // cell, (pos.x() - o.x()) // cell
        if pos.x() < o.x() or pos.y() < o.y() or not (0 <= i < n and 0 <= j < n):
            return None
        return i, j

    def mouseMoveEvent(self, event) -> None:
        hit = self.cell_at(event.position().toPoint())
        if hit is None:
            QToolTip.hideText()
            return
        i, j = hit
        text = f"‘{self.tokens[i]}’ (#{i}) looks at ‘{self.tokens[j]}’ (#{j}): {self.matrix[i, j]:.3f}"
        QToolTip.showText(event.globalPosition().toPoint(), text, self)


class HeadGrid(QWidget):
    """Every head of one layer as a small heatmap; clicking one emits its number."""

    head_clicked = Signal(int)
    TILE = 150

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: np.ndarray = np.zeros((0, 0, 0))  # (H, T, T)
        self.layer = 0

    def set_data(self, maps: np.ndarray, layer: int) -> None:
        self.maps, self.layer = np.asarray(maps), layer
        self.updateGeometry()
        self.adjustSize()
        self.update()

    def _columns(self) -> int:
        return max(1, min(len(self.maps), 4))

    def sizeHint(self) -> QSize:
        cols = self._columns()
        rows = (len(self.maps) + cols - 1) // cols
        return QSize(cols * (self.TILE + 12) + 8, rows * (self.TILE + 30) + 8)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def _tile_rect(self, h: int) -> QRect:
        cols = self._columns()
        return QRect(8 + (h % cols) * (self.TILE + 12), 24 + (h // cols) * (self.TILE + 30), self.TILE, self.TILE)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(Role.Base))
        for h, matrix in enumerate(self.maps):
            r = self._tile_rect(h)
            p.setPen(self.palette().color(Role.Text))
            p.drawText(r.x(), r.y() - 6, f"layer {self.layer} · head {h}")
            n = len(matrix)
            if not n:
                continue
            peak = float(matrix.max()) or 1.0
            cell = r.width() / n
            for i in range(n):
                for j in range(n):
                    p.fillRect(int(r.x() + j * cell), int(r.y() + i * cell), int(cell) + 1, int(cell) + 1,
                               viridis_color(matrix[i, j] / peak))

    def mousePressEvent(self, event) -> None:
        for h in range(len(self.maps)):
            if self._tile_rect(h).contains(event.position().toPoint()):
                self.head_clicked.emit(h)
                return


class AttentionPanel(QWidget):
    """Text in, every layer's attention out; pick a layer and a head or see them all."""

    def __init__(self, lab, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lab = lab  # the LabView: .run(), .model_path(), .window
        self.result = None
        self.text = QPlainTextEdit(DEFAULT_TEXT)
        self.text.setMaximumHeight(70)
        self.show_button = QPushButton("Show attention")
        self.layer = QSpinBox()
        self.layer.setPrefix("layer ")
        self.head = QComboBox()
        self.head.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.head.addItem("mean of heads")
        self.grid_mode = QCheckBox("All heads of the layer")
        self.export_button = QPushButton("Export PNG…")
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.heatmap = HeatmapWidget()
        self.grid = HeadGrid()
        self.stack = QStackedWidget()
        for widget in (self.heatmap, self.grid):
            scroll = QScrollArea()
            scroll.setWidget(widget)
            scroll.setWidgetResizable(False)
            self.stack.addWidget(scroll)
        controls = QHBoxLayout()
        for w in (self.show_button, self.layer, self.head, self.grid_mode):
            controls.addWidget(w)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Text to look at (rows: the token looking; columns: the tokens it looks at):"))
        layout.addWidget(self.text)
        layout.addLayout(controls)
        layout.addWidget(self.notice)
        layout.addWidget(self.stack, 1)
        self.show_button.clicked.connect(self.run)
        self.layer.valueChanged.connect(self.redraw)
        self.head.currentIndexChanged.connect(self.redraw)
        self.grid_mode.toggled.connect(self.redraw)
        self.grid.head_clicked.connect(self._open_head)
        self.export_button.clicked.connect(self._export)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.layer, self.head, self.grid_mode, self.export_button):
            w.setEnabled(on)

    def run(self) -> None:
        from engine.lab.tasks import lab_attention_task

        text = self.text.toPlainText()
        if not text.strip():
            self.lab.window.show_error("Type a text to look at first.")
            return
        self.show_button.setEnabled(False)
        self.notice.setText("Running the model…")
        self.lab.run(lab_attention_task, done=self.show_result, failed=self._failed, text=text,
                     model_path=self.lab.model_path())

    def _failed(self, message: str, error_type: str = "") -> None:
        self.show_button.setEnabled(True)
        self.notice.setText("")
        self.lab.window.show_error(message)

    def show_result(self, result) -> None:
        self.show_button.setEnabled(True)
        self.result = result
        self.layer.blockSignals(True)
        self.head.blockSignals(True)
        self.layer.setRange(0, result.layers - 1)
        self.layer.setValue(min(self.layer.value(), result.layers - 1))
        current = self.head.currentIndex()
        self.head.clear()
        self.head.addItem("mean of heads")
        self.head.addItems([f"head {h}" for h in range(result.heads)])
        self.head.setCurrentIndex(max(0, min(current, result.heads)))
        self.layer.blockSignals(False)
        self.head.blockSignals(False)
        self._set_enabled(True)
        info = f"{result.model_name}: {result.layers} layers × {result.heads} heads, {len(result.tokens)} tokens."
        self.notice.setText(info + (f"  {result.notice}" if result.notice else ""))
        if result.notice:
            self.lab.window.show_notice(result.notice)
        self.redraw()

    def redraw(self) -> None:
        if self.result is None:
            return
        layer = self.layer.value()
        head = self.head.currentIndex() - 1 if self.head.currentIndex() > 0 else None
        if self.grid_mode.isChecked():
            self.grid.set_data(self.result.weights[layer], layer)
            self.stack.setCurrentIndex(1)
        else:
            which = f"head {head}" if head is not None else "mean of heads"
            self.heatmap.set_data(self.result.map(layer, head), self.result.tokens,
                                  f"{self.result.model_name} · layer {layer} · {which}")
            self.stack.setCurrentIndex(0)

    def _open_head(self, head: int) -> None:
        self.head.setCurrentIndex(head + 1)
        self.grid_mode.setChecked(False)

    def current_picture(self) -> QWidget:
        return self.grid if self.grid_mode.isChecked() else self.heatmap

    def _export(self) -> None:
        path = export_png(self.current_picture(), self, "attention.png")
        if path:
            self.lab.window.show_notice(f"Saved {path}")
