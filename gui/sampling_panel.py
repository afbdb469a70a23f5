"""The sampling settings, shared by chat and the other text views; kept in QSettings."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QLineEdit, QPushButton, QSpinBox,
                               QWidget)

from engine.config import SamplingConfig
from engine.errors import InvalidConfigError

SETTINGS_KEY = "sampling"


class SamplingPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.temperature = self._double(0.0, 5.0, 0.05, "0 = greedy: always the most likely token")
        self.top_p = self._double(0.01, 1.0, 0.05, "Sample only from the smallest set of tokens whose "
                                                   "probabilities add up to this")
        self.top_k = self._int(0, 1000, "Sample only from the k most likely tokens (0 = off)")
        self.min_p = self._double(0.0, 0.99, 0.01, "Drop tokens less likely than this × the top token (0 = off)")
        self.repetition_penalty = self._double(0.5, 3.0, 0.05, "Above 1 discourages repeating earlier tokens")
        self.max_new_tokens = self._int(1, 32768, "The longest reply, in tokens")
        self.use_seed = QCheckBox("Fixed seed")
        self.seed = self._int(0, 2**31 - 1, "The same seed and settings give the same reply")
        self.stop = QLineEdit()
        self.stop.setPlaceholderText("e.g. ### , END")
        self.stop.setToolTip("Stop strings, separated by commas; they are never shown")
        reset = QPushButton("Reset to defaults")
        reset.clicked.connect(lambda: self.set_config(SamplingConfig()))
        form = QFormLayout(self)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repetition penalty", self.repetition_penalty)
        form.addRow("Max new tokens", self.max_new_tokens)
        form.addRow(self.use_seed, self.seed)
        form.addRow("Stop strings", self.stop)
        form.addRow(reset)
        self.use_seed.toggled.connect(self.seed.setEnabled)
        self.set_config(self._load())
        for w in (self.temperature, self.top_p, self.min_p, self.repetition_penalty):
            w.valueChanged.connect(self._on_change)
        for w in (self.top_k, self.max_new_tokens, self.seed):
            w.valueChanged.connect(self._on_change)
        self.use_seed.toggled.connect(self._on_change)
        self.stop.editingFinished.connect(self._on_change)

    def _double(self, lo: float, hi: float, step: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setToolTip(tip)
        return box

    def _int(self, lo: int, hi: int, tip: str) -> QSpinBox:
        box = QSpinBox()
        box.setRange(lo, hi)
        box.setToolTip(tip)
        return box

    def config(self) -> SamplingConfig:
        stops = tuple(s.strip().replace("\\n", "\n") for s in self.stop.text().split(",") if s.strip())
        return SamplingConfig(temperature=self.temperature.value(), top_p=self.top_p.value(),
                              top_k=self.top_k.value(), min_p=self.min_p.value(),
                              repetition_penalty=self.repetition_penalty.value(),
                              max_new_tokens=self.max_new_tokens.value(),
                              seed=self.seed.value() if self.use_seed.isChecked() else None, stop=stops)

    def set_config(self, config: SamplingConfig) -> None:
        self.temperature.setValue(config.temperature)
        self.top_p.setValue(config.top_p)
        self.top_k.setValue(config.top_k)
        self.min_p.setValue(config.min_p)
        self.repetition_penalty.setValue(config.repetition_penalty)
        self.max_new_tokens.setValue(config.max_new_tokens)
        self.use_seed.setChecked(config.seed is not None)
        self.seed.setValue(config.seed or 0)
        self.seed.setEnabled(config.seed is not None)
        self.stop.setText(", ".join(s.replace("\n", "\\n") for s in config.stop))
        self._on_change()

    def _load(self) -> SamplingConfig:
        raw = QSettings().value(SETTINGS_KEY)
        if isinstance(raw, dict):
            try:
                return SamplingConfig.from_dict(raw)
            except (InvalidConfigError, TypeError, ValueError):
                pass  # settings from an older or edited file: fall back to defaults
        return SamplingConfig()

    def _on_change(self, *_: object) -> None:
        try:
            QSettings().setValue(SETTINGS_KEY, self.config().to_dict())
        except InvalidConfigError:
            return
        self.changed.emit()
