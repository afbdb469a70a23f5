"""Live training and validation loss (pyqtgraph): raw training loss, its moving average, validation points."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QWidget

from gui.colors import BLUE, ORANGE, Role, accent, mix, palette_of

SMOOTHING = 0.8  # weight of the past in the moving average of the training loss


class LossPlot(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(220)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.legend = self.addLegend(offset=(-10, 10))
        self.train_raw = self.plot([], [], name="training (per step)")
        self.train_avg = self.plot([], [], name="training (average)")
        self.val = self.plot([], [], symbol="o", symbolSize=7, name="validation")
        self._apply_palette()
        self.clear_data()

    def _apply_palette(self) -> None:
        """Background, axes, legend and lines from the palette (gui/colors.py), so a dark theme reads."""
        pal = palette_of(self)
        base, text = pal.color(Role.Base), pal.color(Role.Text)
        self.setBackground(base)
        for name in ("bottom", "left"):
            self.getAxis(name).setPen(mix(base, text, 0.6))
            self.getAxis(name).setTextPen(text)
        self.legend.setLabelTextColor(text)
        for _sample, label in self.legend.items:
            label.setText(label.text)  # pyqtgraph applies the new colour when the text is set
        self.legend.setBrush(pg.mkBrush(base))
        blue, orange = accent(pal, BLUE), accent(pal, ORANGE)
        self.train_raw.setPen(pg.mkPen(mix(base, blue, 0.45), width=1))
        self.train_avg.setPen(pg.mkPen(blue, width=2))
        self.val.setPen(pg.mkPen(orange, width=2))
        self.val.setSymbolBrush(orange)
        self.val.setSymbolPen(orange)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "val"):  # not during construction
            self._apply_palette()
        super().changeEvent(event)

    def clear_data(self) -> None:
        self.train_steps: list[int] = []
        self.train_losses: list[float] = []
        self.train_smooth: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self._redraw()

    def add_train(self, step: int, loss: float) -> None:
        if self.train_steps and step <= self.train_steps[-1]:  # replayed after a resume
            self._drop_after(step - 1)
        last = self.train_smooth[-1] if self.train_smooth else loss
        self.train_steps.append(step)
        self.train_losses.append(loss)
        self.train_smooth.append(SMOOTHING * last + (1 - SMOOTHING) * loss if self.train_smooth else loss)
        self._redraw()

    def add_eval(self, step: int, loss: float) -> None:
        if self.val_steps and step <= self.val_steps[-1]:
            keep = [i for i, s in enumerate(self.val_steps) if s < step]
            self.val_steps = [self.val_steps[i] for i in keep]
            self.val_losses = [self.val_losses[i] for i in keep]
        self.val_steps.append(step)
        self.val_losses.append(loss)
        self._redraw()

    def add_event(self, event: dict) -> None:
        if event.get("type") == "train":
            self.add_train(int(event["step"]), float(event["loss"]))
        elif event.get("type") == "eval":
            self.add_eval(int(event["step"]), float(event["loss"]))

    def load_events(self, events: list[dict]) -> None:
        self.clear_data()
        for event in events:
            self.add_event(event)

    def _drop_after(self, step: int) -> None:
        n = sum(1 for s in self.train_steps if s <= step)
        del self.train_steps[n:], self.train_losses[n:], self.train_smooth[n:]

    def _redraw(self) -> None:
        self.train_raw.setData(self.train_steps, self.train_losses)
        self.train_avg.setData(self.train_steps, self.train_smooth)
        self.val.setData(self.val_steps, self.val_losses)
