"""The sampling settings, shared by chat and the other text views; kept in QSettings."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QCheckBox, QLineEdit, QPushButton, QSpinBox, QWidget

from engine.config import SamplingConfig
from engine.errors import InvalidConfigError
from gui.chat.sampling_form import SamplingForm

SETTINGS_KEY = "sampling"


class SamplingPanel(SamplingForm):
    """The form plus a seed and stop strings; every change is saved at once."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.use_seed = QCheckBox("Fixed seed")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed and settings give the same reply")
        self.stop = QLineEdit()
        self.stop.setPlaceholderText("e.g. ### , END")
        self.stop.setToolTip("Stop strings, separated by commas; they are never shown")
        reset = QPushButton("Reset to defaults")
        reset.clicked.connect(lambda: self.set_config(SamplingConfig()))
        self.form.addRow(self.use_seed, self.seed)
        self.form.addRow("Stop strings", self.stop)
        self.form.addRow(reset)
        self.use_seed.toggled.connect(self.seed.setEnabled)
        self.set_config(self._load())
        for signal in (*self.edit_signals(), self.seed.valueChanged):
            signal.connect(self._on_change)
        self.use_seed.toggled.connect(self._on_change)
        self.stop.editingFinished.connect(self._on_change)

    def config(self) -> SamplingConfig:
        stops = tuple(s.strip().replace("\\n", "\n") for s in self.stop.text().split(",") if s.strip())
        return super().config().with_(seed=self.seed.value() if self.use_seed.isChecked() else None, stop=stops)

    def set_config(self, config: SamplingConfig) -> None:
        super().set_config(config)
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
