"""Compare: one prompt to the base model and to a fine-tuned one, both answers streaming side by side.

The base answers on the window's worker (its own model, or the run's base if
that is another one); the fine-tuned model answers on this view's own worker,
so both stream at the same time. Both use the same sampling settings and seed.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from engine.config import ChatMessage
from engine.finetune import runs as ft_runs
from engine.finetune import tasks as ft_tasks
from gui.worker import EngineClient


def tuned_outputs() -> list[tuple[str, str, dict]]:
    """(label, path, info) of every run result and of models saved from runs."""
    out = []
    for info in ft_runs.list_runs():
        if info.output:
            kind = "LoRA adapter" if info.is_adapter else "full model"
            out.append((f"{info.name} ({kind})", info.output,
                        {"base": info.base_model, "before": info.ppl_before, "after": info.ppl_after}))
    from engine.paths import models_dir

    for folder in sorted(models_dir().iterdir()):
        marker = folder / "hearth_finetune.json"
        if marker.is_file():
            run = Path(json.loads(marker.read_text(encoding="utf-8")).get("run", ""))
            info = ft_runs.run_info(run) if run.is_dir() else None
            out.append((f"{folder.name} (saved model)", str(folder),
                        {"base": info.base_model if info else None,
                         "before": info.ppl_before if info else None, "after": info.ppl_after if info else None}))
    return out


class CompareView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self._client: EngineClient | None = None  # made on first Send
        self.base_task: int | None = None
        self.tuned_task: int | None = None
        self.tuned = QComboBox()
        self.tuned.setMinimumContentsLength(34)
        self.refresh_button = QPushButton("Refresh")
        self.ppl_label = QLabel("")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("A prompt for both models…")
        self.prompt.setMaximumHeight(90)
        self.send_button = QPushButton("Send to both")
        self.stop_button = QPushButton("Stop")
        self.base_title, self.tuned_title = QLabel("<b>Base</b>"), QLabel("<b>Fine-tuned</b>")
        self.base_out, self.tuned_out = QPlainTextEdit(), QPlainTextEdit()
        for box in (self.base_out, self.tuned_out):
            box.setReadOnly(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Fine-tuned:"))
        top.addWidget(self.tuned, 1)
        top.addWidget(self.refresh_button)
        send = QHBoxLayout()
        send.addWidget(self.prompt, 1)
        column = QVBoxLayout()
        column.addWidget(self.send_button)
        column.addWidget(self.stop_button)
        column.addStretch(1)
        send.addLayout(column)
        grid = QGridLayout()
        grid.addWidget(self.base_title, 0, 0)
        grid.addWidget(self.tuned_title, 0, 1)
        grid.addWidget(self.base_out, 1, 0)
        grid.addWidget(self.tuned_out, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.ppl_label)
        layout.addLayout(send)
        layout.addLayout(grid, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.tuned.currentIndexChanged.connect(self._on_selected)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        # One set of slots per worker: both count task ids from 1, so the ids alone are ambiguous.
        window.client.chunk_received.connect(self._base_chunk)
        window.client.progress_changed.connect(self._base_progress)
        for signal in (window.client.finished, window.client.cancelled):
            signal.connect(self._base_done)
        window.client.failed.connect(self._base_failed)
        if hasattr(window, "model_changed"):
            window.model_changed.connect(lambda _info: self._on_selected())
        self.refresh()
        self._set_busy(False)

    @property
    def client(self) -> EngineClient:
        """The fine-tuned model's worker, so both answers stream at the same time."""
        if self._client is None:
            self._client = EngineClient(self, name="hearth-compare")
            self._client.chunk_received.connect(self._tuned_chunk)
            self._client.progress_changed.connect(self._tuned_progress)
            for signal in (self._client.finished, self._client.cancelled):
                signal.connect(self._tuned_done)
            self._client.failed.connect(self._tuned_failed)
        return self._client

    def refresh(self) -> None:
        current = self.tuned.currentData()
        self.tuned.blockSignals(True)
        self.tuned.clear()
        for label, path, info in tuned_outputs():
            self.tuned.addItem(label, path)
            self.tuned.setItemData(self.tuned.count() - 1, info, role=0x0101)
        if current:
            self.select_output(current)
        self.tuned.blockSignals(False)
        self._on_selected()

    def showEvent(self, event) -> None:
        if self.base_task is None and self.tuned_task is None:
            self.refresh()  # runs may have finished since the view was last shown
        super().showEvent(event)

    def select_output(self, path: str | None) -> None:
        index = self.tuned.findData(path)
        if index < 0 and path:
            self.refresh_list_only()
            index = self.tuned.findData(path)
        if index >= 0:
            self.tuned.setCurrentIndex(index)

    def refresh_list_only(self) -> None:
        self.tuned.blockSignals(True)
        self.tuned.clear()
        for label, path, info in tuned_outputs():
            self.tuned.addItem(label, path)
            self.tuned.setItemData(self.tuned.count() - 1, info, role=0x0101)
        self.tuned.blockSignals(False)

    def _info(self) -> dict:
        return self.tuned.currentData(0x0101) or {}

    def base_path(self) -> str | None:
        """The run's own base model; None means the window's current model."""
        base = self._info().get("base")
        current = (getattr(self.window, "model_info", None) or {}).get("path")
        return None if not base or base == current else base

    def _on_selected(self) -> None:
        info = self._info()
        base = info.get("base")
        self.base_title.setText(f"<b>Base</b> · {Path(base).name if base else 'current model'}")
        self.tuned_title.setText(f"<b>Fine-tuned</b> · {self.tuned.currentText() or '—'}")
        before, after = info.get("before"), info.get("after")
        self.ppl_label.setText(f"Validation perplexity: <b>{before:.2f}</b> base → <b>{after:.2f}</b> fine-tuned"
                               if before and after else "")
        self._set_busy(self.base_task is not None or self.tuned_task is not None)

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy and self.tuned.count() > 0)
        self.stop_button.setEnabled(busy)

    def send(self) -> None:
        from engine.tasks import chat_task

        text = self.prompt.toPlainText().strip()
        path = self.tuned.currentData()
        if not text or not path:
            return
        sampling = self.window.sampling_panel.config()
        sampling = sampling.with_(seed=sampling.seed if sampling.seed is not None else 1234)  # same draw for both
        messages = [ChatMessage("user", text)]
        self.base_out.clear()
        self.tuned_out.clear()
        self.base_task = self.window.client.submit(chat_task, messages=messages, sampling=sampling,
                                                   model_path=self.base_path())
        self.tuned_task = self.client.submit(ft_tasks.tuned_chat_task, path=path, messages=messages,
                                             sampling=sampling)
        self._set_busy(True)

    def stop(self) -> None:
        if self.base_task is not None:
            self.window.client.cancel(self.base_task)
        if self.tuned_task is not None and self._client is not None:
            self._client.cancel(self.tuned_task)

    def _base_chunk(self, task_id: int, text: str) -> None:
        if task_id == self.base_task:
            _append(self.base_out, text)

    def _tuned_chunk(self, task_id: int, text: str) -> None:
        if task_id == self.tuned_task:
            _append(self.tuned_out, text)

    def _base_progress(self, task_id: int, fraction: float, message: str) -> None:
        if task_id == self.base_task and message:
            self.base_out.setPlaceholderText(message)

    def _tuned_progress(self, task_id: int, fraction: float, message: str) -> None:
        if task_id == self.tuned_task and message:
            self.tuned_out.setPlaceholderText(message)

    def _base_done(self, task_id: int, result=None) -> None:
        if task_id == self.base_task:
            self.base_task = None
            self._set_busy(self.tuned_task is not None)

    def _tuned_done(self, task_id: int, result=None) -> None:
        if task_id == self.tuned_task:
            self.tuned_task = None
            self._set_busy(self.base_task is not None)

    def _base_failed(self, task_id: int, message: str, error_type: str) -> None:
        if task_id == self.base_task:
            self.base_out.appendPlainText(f"\n[{message}]")
            self._base_done(task_id)

    def _tuned_failed(self, task_id: int, message: str, error_type: str) -> None:
        if task_id == self.tuned_task:
            self.tuned_out.appendPlainText(f"\n[{message}]")
            self._tuned_done(task_id)

    def on_window_closing(self) -> None:
        if self._client is not None:
            self._client.shutdown(timeout_ms=3000)
            self._client = None


def _append(box: QPlainTextEdit, text: str) -> None:
    cursor = box.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    cursor.insertText(text)
