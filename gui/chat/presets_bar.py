"""The chat's preset picker: choose a preset for this conversation, or open the editor."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

CUSTOM = -1


class PresetsBar(QWidget):
    preset_chosen = Signal(object)  # engine.store.Preset

    def __init__(self, history, parent=None) -> None:
        super().__init__(parent)
        self.history = history
        self.combo = QComboBox()
        self.combo.setMinimumWidth(170)
        self.combo.setToolTip("A preset sets this conversation's system prompt and sampling settings")
        self.edit_button = QPushButton("Edit presets…")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Preset:"))
        row.addWidget(self.combo)
        row.addWidget(self.edit_button)
        row.addStretch(1)
        self.combo.activated.connect(self._on_activated)
        self.edit_button.clicked.connect(self.edit_presets)
        self.setEnabled(history.store is not None)
        self.reload()

    def reload(self, current: int | None = None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("Custom", CUSTOM)
        store = self.history.store
        for preset in (self.history.safely(store.presets, default=[]) if store else []):
            self.combo.addItem(preset.name, preset.id)
        self.show_preset(current)
        self.combo.blockSignals(False)

    def show_preset(self, preset_id: int | None) -> None:
        """Show which preset a conversation uses (Custom: none, or settings changed by hand)."""
        index = self.combo.findData(preset_id if preset_id is not None else CUSTOM)
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)

    def current_id(self) -> int | None:
        data = self.combo.currentData()
        return None if data in (None, CUSTOM) else data

    def choose(self, preset_id: int) -> None:
        self.combo.setCurrentIndex(self.combo.findData(preset_id))
        self._on_activated(self.combo.currentIndex())

    def _on_activated(self, index: int) -> None:
        preset_id = self.combo.itemData(index)
        if preset_id in (None, CUSTOM):
            return
        preset = self.history.safely(self.history.store.preset, preset_id)
        if preset is not None:
            self.preset_chosen.emit(preset)

    def edit_presets(self) -> None:
        from gui.chat.presets_dialog import PresetsDialog

        PresetsDialog(self.history, self.window(), select=self.current_id()).exec()
        self.reload(self.current_id())
