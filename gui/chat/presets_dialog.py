"""Edit sampling presets: the five built-in ones (editable, resettable) and the user's own."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLineEdit,
                               QListWidget, QListWidgetItem, QMessageBox, QPlainTextEdit, QPushButton, QVBoxLayout)

from engine.config import SamplingConfig
from engine.errors import InvalidConfigError
from engine.store import StoreError
from gui.chat.sampling_form import SamplingForm

IdRole = Qt.ItemDataRole.UserRole + 1


class PresetsDialog(QDialog):
    def __init__(self, history, parent=None, select: int | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.setWindowTitle("Presets")
        self.resize(720, 460)
        self.list = QListWidget()
        self.list.setMaximumWidth(210)
        self.name = QLineEdit()
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("System prompt")
        self.sampling = SamplingForm()  # kept apart from the window's live sampling panel
        self.sampling.form.setContentsMargins(0, 0, 0, 0)
        self.save_button = QPushButton("Save")
        self.reset_button = QPushButton("Reset to built-in")
        self.delete_button = QPushButton("Delete")
        self.new_button = QPushButton("New preset")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("System prompt", self.prompt)
        form.addRow(self.sampling)
        actions = QHBoxLayout()
        for b in (self.new_button, self.delete_button, self.reset_button):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.save_button)
        right = QVBoxLayout()
        right.addLayout(form, 1)
        right.addLayout(actions)
        row = QHBoxLayout()
        row.addWidget(self.list)
        row.addLayout(right, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(close)
        self.list.currentItemChanged.connect(lambda item, _: self._show(item))
        self.save_button.clicked.connect(self.save)
        self.new_button.clicked.connect(self.new_preset)
        self.delete_button.clicked.connect(self.delete)
        self.reset_button.clicked.connect(self.reset)
        self.reload(select)

    @property
    def store(self):
        return self.history.store

    def reload(self, select: int | None = None) -> None:
        self.list.clear()
        for preset in self.history.safely(self.store.presets, default=[]):
            item = QListWidgetItem(preset.name + ("" if preset.builtin else "  (yours)"))
            item.setData(IdRole, preset.id)
            self.list.addItem(item)
            if preset.id == select:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(IdRole) if item is not None else None

    def _show(self, item) -> None:
        preset = self.history.safely(self.store.preset, item.data(IdRole)) if item is not None else None
        if preset is None:
            return
        self.name.setText(preset.name)
        self.prompt.setPlainText(preset.system_prompt)
        self.sampling.set_config(preset.sampling)
        self.reset_button.setEnabled(preset.builtin)
        self.delete_button.setEnabled(not preset.builtin)

    def save(self) -> None:
        preset_id = self.current_id()
        if preset_id is None:
            return
        try:
            self.store.update_preset(preset_id, name=self.name.text(), system_prompt=self.prompt.toPlainText(),
                                     sampling=self.sampling.config())
        except (StoreError, InvalidConfigError) as exc:
            QMessageBox.warning(self, "Presets", str(exc))
            return
        self.reload(preset_id)

    def new_preset(self) -> None:
        base = self.sampling.config() if self.current_id() is not None else SamplingConfig()
        names = {self.list.item(i).text().replace("  (yours)", "").lower() for i in range(self.list.count())}
        name, n = "My preset", 1
        while name.lower() in names:
            n += 1
            name = f"My preset {n}"
        created = self.history.safely(self.store.create_preset, name, self.prompt.toPlainText(), base)
        if created is not None:
            self.reload(created.id)
            self.name.setFocus()
            self.name.selectAll()

    def delete(self) -> None:
        preset_id = self.current_id()
        if preset_id is None:
            return
        answer = QMessageBox.question(self, "Delete preset", f"Delete the preset “{self.name.text()}”?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.history.safely(self.store.delete_preset, preset_id)
            self.reload()

    def reset(self) -> None:
        preset_id = self.current_id()
        if preset_id is not None and self.history.safely(self.store.reset_preset, preset_id) is not None:
            self.reload(preset_id)
