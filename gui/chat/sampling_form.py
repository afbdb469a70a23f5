"""A SamplingConfig's numbers as a form: used by the sampling panel and the presets editor.

The rows come from SamplingConfig's field settings (engine/config.py, engine/setting.py). Seed and stop
strings are not shown here; ``config()`` keeps those of the last ``set_config`` (the sampling panel adds
rows for them).
"""

from __future__ import annotations

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from engine.config import SamplingConfig
from gui.setting_editors import add_row, edited, editor_for, form_fields, set_value, value_of


class SamplingForm(QWidget):
    config_type = SamplingConfig  # a subclass with more settings gets more rows

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = self.config_type()
        self.fields = form_fields(self.config_type)
        self.form = QFormLayout(self)
        for d in self.fields:  # each editor is also an attribute named after its field (self.temperature...)
            editor = editor_for(d)
            setattr(self, d.name, editor)
            add_row(self.form, d, editor)

    def number_boxes(self) -> tuple:
        return tuple(e for d in self.fields if isinstance(e := getattr(self, d.name), (QSpinBox, QDoubleSpinBox)))

    def edit_signals(self) -> list[SignalInstance]:
        """What the form sends when the user changes any of its settings."""
        return [edited(getattr(self, d.name)) for d in self.fields]

    def set_config(self, config: SamplingConfig) -> None:
        self._base = config
        for d in self.fields:
            set_value(getattr(self, d.name), d, getattr(config, d.name))

    def config(self) -> SamplingConfig:
        return self._base.with_(**{d.name: value_of(getattr(self, d.name), d) for d in self.fields})
