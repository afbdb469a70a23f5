"""The training settings form: every TrainConfig and DataConfig knob, with tooltips saying why."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit,
                               QPlainTextEdit, QSpinBox, QVBoxLayout, QWidget)

from engine.finetune.config import SCHEDULES, DataConfig, TrainConfig


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _dspin(low: float, high: float, value: float, decimals: int, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class FinetuneForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t, d = TrainConfig(), DataConfig()
        self.method = QComboBox()
        self.method.addItem("LoRA (small adapter, fast)", "lora")
        self.method.addItem("Full fine-tuning (every weight)", "full")
        self.rank = _spin(1, 1024, t.lora_rank, "LoRA rank: size of the adapter; 8–64 is typical")
        self.alpha = _spin(1, 4096, t.lora_alpha, "LoRA alpha: the adapter's scale (often twice the rank)")
        self.dropout = _dspin(0, 0.9, t.lora_dropout, 2, 0.05, "Dropout in the adapter: a guard against over-fitting")
        self.targets = QLineEdit(",".join(t.target_modules))
        self.targets.setToolTip("Layers that get an adapter: 'all-linear', or names like q_proj,v_proj")
        self.epochs = _dspin(0.1, 1000, t.epochs, 1, 0.5, "Passes over the data (used when max steps is 0)")
        self.max_steps = _spin(0, 10_000_000, t.max_steps, "Optimizer steps; 0 means use epochs")
        self.lr = _dspin(1e-7, 0.1, t.learning_rate, 6, 1e-5, "Learning rate (LoRA ~2e-4, full ~2e-5)")
        self.schedule = QComboBox()
        self.schedule.addItems(SCHEDULES)
        self.warmup = _dspin(0, 0.5, t.warmup_ratio, 2, 0.01, "Share of the steps spent warming up the learning rate")
        self.batch = _spin(1, 4096, t.batch_size, "Sequences per step on each device")
        self.accum = _spin(1, 4096, t.grad_accum, "Steps whose gradients are added before each update "
                                                  "(a larger effective batch without more memory)")
        self.seq_len = _spin(16, 131072, d.seq_len, "Tokens per training sequence")
        self.val_fraction = _dspin(0, 0.5, d.val_fraction, 2, 0.05, "Share of the data held out for validation")
        self.eval_steps = _spin(1, 1_000_000, t.eval_steps, "Validation loss (and samples) every N steps")
        self.save_steps = _spin(1, 1_000_000, t.save_steps, "Checkpoint every N steps (rounded to evaluations)")
        self.patience = _spin(0, 1000, t.patience, "Stop after N evaluations without a better validation loss; 0 = off")
        self.weight_decay = _dspin(0, 1, t.weight_decay, 3, 0.01, "L2 weight decay (AdamW)")
        self.l1 = _dspin(0, 1, t.l1, 4, 0.001, "L1 penalty on the trainable weights (pushes them towards zero)")
        self.random_offset = QCheckBox("Random-offset packing (light augmentation)")
        self.random_offset.setChecked(d.random_offset)
        self.dedupe = QCheckBox("Remove exact duplicates")
        self.dedupe.setChecked(d.dedupe)
        self.prompts = QPlainTextEdit("\n".join(t.sample_prompts))
        self.prompts.setToolTip("Sample prompts answered at each evaluation, one per line")
        self.prompts.setMaximumHeight(60)
        self._lay_out()
        self.method.currentIndexChanged.connect(self._method_changed)
        for w in self.findChildren(QSpinBox) + self.findChildren(QDoubleSpinBox):
            w.valueChanged.connect(self.changed)
        for w in (self.random_offset, self.dedupe):
            w.toggled.connect(self.changed)
        self.schedule.currentIndexChanged.connect(self.changed)
        self._method_changed()

    def _lay_out(self) -> None:
        method = QGroupBox("Method")
        form = QFormLayout(method)
        form.addRow("Method", self.method)
        form.addRow("LoRA rank", self.rank)
        form.addRow("LoRA alpha", self.alpha)
        form.addRow("Dropout", self.dropout)
        form.addRow("Target modules", self.targets)
        length = QGroupBox("Length and speed")
        form = QFormLayout(length)
        form.addRow("Epochs", self.epochs)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("Schedule", self.schedule)
        form.addRow("Warm-up share", self.warmup)
        form.addRow("Batch size", self.batch)
        form.addRow("Gradient accumulation", self.accum)
        form.addRow("Sequence length", self.seq_len)
        guards = QGroupBox("Over-fitting guards")
        form = QFormLayout(guards)
        form.addRow("Validation share", self.val_fraction)
        form.addRow("Evaluate every", self.eval_steps)
        form.addRow("Checkpoint every", self.save_steps)
        form.addRow("Early-stop patience", self.patience)
        form.addRow("Weight decay (L2)", self.weight_decay)
        form.addRow("L1 penalty", self.l1)
        form.addRow(self.random_offset)
        form.addRow(self.dedupe)
        form.addRow("Sample prompts", self.prompts)
        layout = QVBoxLayout(self)
        for box in (method, length, guards):
            layout.addWidget(box)
        layout.addStretch(1)

    def _method_changed(self) -> None:
        lora = self.method.currentData() == "lora"
        for w in (self.rank, self.alpha, self.dropout, self.targets):
            w.setEnabled(lora)
        default = 2e-4 if lora else 2e-5
        if self.lr.value() in (2e-4, 2e-5):
            self.lr.setValue(default)
        self.changed.emit()

    def train_config(self) -> TrainConfig:
        """The settings as a TrainConfig (raises InvalidConfigError with the field's name)."""
        return TrainConfig(method=self.method.currentData(), lora_rank=self.rank.value(), lora_alpha=self.alpha.value(),
                           lora_dropout=self.dropout.value(),
                           target_modules=tuple(s.strip() for s in self.targets.text().split(",") if s.strip()),
                           epochs=self.epochs.value(), max_steps=self.max_steps.value(), learning_rate=self.lr.value(),
                           schedule=self.schedule.currentText(), warmup_ratio=self.warmup.value(),
                           batch_size=self.batch.value(), grad_accum=self.accum.value(),
                           weight_decay=self.weight_decay.value(), l1=self.l1.value(),
                           eval_steps=self.eval_steps.value(), save_steps=self.save_steps.value(),
                           patience=self.patience.value(),
                           sample_prompts=tuple(self.prompts.toPlainText().splitlines()))

    def data_config(self, paths: list[str]) -> DataConfig:
        return DataConfig(paths=tuple(paths), seq_len=self.seq_len.value(), val_fraction=self.val_fraction.value(),
                          dedupe=self.dedupe.isChecked(), random_offset=self.random_offset.isChecked())

    def apply(self, train: TrainConfig) -> None:
        """Show suggested settings (after the dataset is known) without emitting a change per field."""
        self.blockSignals(True)
        self.epochs.setValue(train.epochs)
        self.max_steps.setValue(train.max_steps)
        self.batch.setValue(train.batch_size)
        self.eval_steps.setValue(train.eval_steps)
        self.save_steps.setValue(train.save_steps)
        self.lr.setValue(train.learning_rate)
        self.blockSignals(False)
        self.changed.emit()

    def set_context_limit(self, context: int) -> None:
        """Sequences cannot be longer than the model's context (the spin box clamps the value)."""
        self.seq_len.blockSignals(True)  # not an edit by the user: suggestions still apply
        self.seq_len.setMaximum(max(16, context))
        self.seq_len.blockSignals(False)
