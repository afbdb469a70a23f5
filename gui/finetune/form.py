"""The training settings form: every TrainConfig and DataConfig knob, with tooltips saying why.

The rows come from the fields' settings (engine/finetune/config.py, engine/setting.py): a new field with a
setting is a new row in its group, and a new ``hearth-cli finetune`` flag.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget

from engine.finetune.config import DataConfig, TrainConfig
from gui.setting_editors import add_row, edited, editor_for, form_fields, set_value, value_of

GROUPS = {"method": "Method", "length": "Length and speed", "guards": "Over-fitting guards"}
# Shorter attribute names the view and tests use for some editors (others: the field's name).
ATTRIBUTES = {"lora_rank": "rank", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "targets",
              "learning_rate": "lr", "warmup_ratio": "warmup", "batch_size": "batch", "grad_accum": "accum",
              "sample_prompts": "prompts"}


class FinetuneForm(QWidget):
    changed = Signal()
    train_type, data_type = TrainConfig, DataConfig  # subclasses with more settings get more rows

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields = form_fields(self.train_type, self.data_type)
        self._train_names = {f.name for f in form_fields(self.train_type)}
        self.editors = {d.name: editor_for(d) for d in self.fields}
        for name, editor in self.editors.items():
            setattr(self, ATTRIBUTES.get(name, name), editor)
        self._lay_out()
        self.method.currentIndexChanged.connect(self._method_changed)
        for name, editor in self.editors.items():
            if name != "method" and not isinstance(editor, (QLineEdit, QPlainTextEdit)):  # text: read at start
                edited(editor).connect(self.changed)
        self._method_changed()

    def _lay_out(self) -> None:
        layout = QVBoxLayout(self)
        forms: dict[str, QFormLayout] = {}
        for d in self.fields:
            if d.setting.group not in forms:
                box = QGroupBox(GROUPS.get(d.setting.group, d.setting.group.capitalize() or "Other"))
                forms[d.setting.group] = QFormLayout(box)
                layout.addWidget(box)
            add_row(forms[d.setting.group], d, self.editors[d.name])
        layout.addStretch(1)

    def _method_changed(self) -> None:
        lora = self.method.currentData() == "lora"
        for w in (self.rank, self.alpha, self.dropout, self.targets):
            w.setEnabled(lora)
        default = 2e-4 if lora else 2e-5
        if self.lr.value() in (2e-4, 2e-5):
            self.lr.setValue(default)
        self.changed.emit()

    def _values(self, names: set[str]) -> dict:
        return {d.name: value_of(self.editors[d.name], d) for d in self.fields if d.name in names}

    def train_config(self) -> TrainConfig:
        """The settings as a TrainConfig (raises InvalidConfigError with the field's name)."""
        return self.train_type(**self._values(self._train_names))

    def data_config(self, paths: list[str]) -> DataConfig:
        return self.data_type(paths=tuple(paths), **self._values(set(self.editors) - self._train_names))

    def apply(self, train: TrainConfig) -> None:
        """Show suggested settings (after the dataset is known) without emitting a change per field."""
        self.blockSignals(True)
        for d in self.fields:
            if d.name in ("epochs", "max_steps", "batch_size", "eval_steps", "save_steps", "learning_rate"):
                set_value(self.editors[d.name], d, getattr(train, d.name))
        self.blockSignals(False)
        self.changed.emit()

    def set_context_limit(self, context: int) -> None:
        """Sequences cannot be longer than the model's context (the spin box clamps the value)."""
        self.seq_len.blockSignals(True)  # not an edit by the user: suggestions still apply
        self.seq_len.setMaximum(max(16, context))
        self.seq_len.blockSignals(False)
