"""Model → Device and Model → Precision: override the automatic choice (kept in QSettings).

Changing either reloads the current model on the new device or in the new precision.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from engine.config import DEVICES, DTYPES

LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)", "mps": "Apple MPS",
          "float32": "float32 (exact)", "bfloat16": "bfloat16 (half the memory)", "float16": "float16"}


class DeviceMenu:
    def __init__(self, window, menu: QMenu) -> None:
        self.window = window
        self.groups: dict[str, QActionGroup] = {}
        for key, title, choices in (("device", "Device", DEVICES), ("dtype", "Precision", DTYPES)):
            sub = menu.addMenu(title)
            group = QActionGroup(sub)
            group.setExclusive(True)
            current = self.value(key)
            for choice in choices:
                action = QAction(LABELS[choice], sub, checkable=True)
                action.setData(choice)
                action.setChecked(choice == current)
                group.addAction(action)
                sub.addAction(action)
            group.triggered.connect(lambda action, key=key: self._chosen(key, action.data()))
            self.groups[key] = group

    @staticmethod
    def value(key: str) -> str:
        value = QSettings().value(f"model/{key}", "auto")
        allowed = DEVICES if key == "device" else DTYPES
        return value if value in allowed else "auto"

    def _chosen(self, key: str, value: str) -> None:
        if value == self.value(key):
            return
        QSettings().setValue(f"model/{key}", value)
        self.window.show_notice(f"Reloading the model ({LABELS[value]})…")
        self.window.load_model(self.window._load_path)
