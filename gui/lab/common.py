"""Small pieces the lab's panels share: running engine tasks with callbacks, colours, PNG export."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFileDialog, QWidget

from engine.lab.png import viridis


class TaskRunner(QObject):
    """Submit engine tasks to a client and get each one's result (or error) back in a callback."""

    busy_changed = Signal(bool)

    def __init__(self, client, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._callbacks: dict[int, tuple[Callable, Callable | None, Callable | None]] = {}
        client.finished.connect(self._finished)
        client.failed.connect(self._failed)
        client.cancelled.connect(self._cancelled)
        client.chunk_received.connect(self._chunk)

    def run(self, fn: Callable, on_done: Callable[[Any], None], *, on_error: Callable[[str], None] | None = None,
            on_chunk: Callable[[str], None] | None = None, **kwargs: Any) -> int:
        task_id = self.client.submit(fn, **kwargs)
        self._callbacks[task_id] = (on_done, on_error, on_chunk)
        self.busy_changed.emit(True)
        return task_id

    def busy(self) -> bool:
        return bool(self._callbacks)

    def cancel_all(self) -> None:
        for task_id in list(self._callbacks):
            self.client.cancel(task_id)

    def _pop(self, task_id: int):
        entry = self._callbacks.pop(task_id, None)
        if entry is not None and not self._callbacks:
            self.busy_changed.emit(False)
        return entry

    def _finished(self, task_id: int, result: Any) -> None:
        entry = self._pop(task_id)
        if entry:
            entry[0](result)

    def _failed(self, task_id: int, message: str, error_type: str) -> None:
        entry = self._pop(task_id)
        if entry and entry[1]:
            entry[1](message)

    def _cancelled(self, task_id: int, result: Any) -> None:
        entry = self._pop(task_id)
        if entry and result is not None:
            entry[0](result)

    def _chunk(self, task_id: int, text: str) -> None:
        entry = self._callbacks.get(task_id)
        if entry and entry[2]:
            entry[2](text)


def viridis_color(value: float) -> QColor:
    r, g, b = (int(c) for c in viridis(value))
    return QColor(r, g, b)


def probability_color(p: float) -> QColor:
    """Red for tokens the model found unlikely, through yellow, to green for likely ones."""
    p = max(0.0, min(1.0, p))
    hue = int(120 * p ** 0.5)  # square root: most tokens have small probabilities; spread them out
    return QColor.fromHsv(hue, 110, 255)


def visible_token(text: str) -> str:
    """A token label that shows its whitespace."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def export_png(widget: QWidget, parent: QWidget, suggested: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export as PNG", suggested, "PNG images (*.png)")
    if not path:
        return None
    if not path.lower().endswith(".png"):
        path += ".png"
    return path if widget.grab().save(path, "PNG") else None
