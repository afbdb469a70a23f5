"""The six numbers of a SamplingConfig as a form: used by the sampling panel and the presets editor.

Seed and stop strings are not shown here; ``config()`` keeps those of the last
``set_config`` (the sampling panel adds rows for them).
"""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from engine.config import SamplingConfig


def _double(lo: float, hi: float, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(2)
    box.setToolTip(tip)
    return box


def _int(lo: int, hi: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setToolTip(tip)
    return box


class SamplingForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = SamplingConfig()
        self.temperature = _double(0.0, 5.0, 0.05, "0 = greedy: always the most likely token")
        self.top_p = _double(0.01, 1.0, 0.05, "Sample only from the smallest set of tokens whose "
                                              "probabilities add up to this")
        self.top_k = _int(0, 1000, "Sample only from the k most likely tokens (0 = off)")
        self.min_p = _double(0.0, 0.99, 0.01, "Drop tokens less likely than this × the top token (0 = off)")
        self.repetition_penalty = _double(0.5, 3.0, 0.05, "Above 1 discourages repeating earlier tokens")
        self.max_new_tokens = _int(1, 32768, "The longest reply, in tokens")
        self.form = QFormLayout(self)
        for label, box in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
                           ("Min-p", self.min_p), ("Repetition penalty", self.repetition_penalty),
                           ("Max new tokens", self.max_new_tokens)):
            self.form.addRow(label, box)

    def number_boxes(self) -> tuple:
        return (self.temperature, self.top_p, self.top_k, self.min_p, self.repetition_penalty,
                self.max_new_tokens)

    def set_config(self, config: SamplingConfig) -> None:
        self._base = config
        self.temperature.setValue(config.temperature)
        self.top_p.setValue(config.top_p)
        self.top_k.setValue(config.top_k)
        self.min_p.setValue(config.min_p)
        self.repetition_penalty.setValue(config.repetition_penalty)
        self.max_new_tokens.setValue(config.max_new_tokens)

    def config(self) -> SamplingConfig:
        return self._base.with_(
            temperature=self.temperature.value(), top_p=self.top_p.value(), top_k=self.top_k.value(),
            min_p=self.min_p.value(), repetition_penalty=self.repetition_penalty.value(),
            max_new_tokens=self.max_new_tokens.value())
