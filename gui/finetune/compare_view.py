"""Compare: one prompt to the base model and to a fine-tuned one, both answers streaming side by side.

The base answers on the scheduler's default thread (the window's model, or the run's base if
that is another one); the fine-tuned model answers on the scheduler's "compare" thread, so both
stream at the same time. Both use the same sampling settings and seed. The list of fine-tuned
models is read on the "files" thread (it reads every run's folder), again each time the view is shown.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from engine.config import ChatMessage
from engine.finetune import tasks as ft_tasks
from gui.worker import FILES, connect

COMPARE = "compare"  # the scheduler device key of the fine-tuned model's thread


class CompareView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        # Each task's TaskSignals (gui/worker.py) while it runs, else None.
        self.base_task = self.tuned_task = self.list_task = None
        self._wanted: str | None = None  # an output to select once the list has been read
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
        if hasattr(window, "model_changed"):
            window.model_changed.connect(lambda _info: self._on_selected())
        self.refresh()
        self._set_busy(False)

    def refresh(self) -> None:
        """Read the list of fine-tuned models again (on the files thread)."""
        if self.list_task is not None:
            self.list_task.abandon()
        self.list_task = connect(self.window.client.submit(ft_tasks.tuned_outputs_task, label="list fine-tuned",
                                                           device=FILES),
                                 done=self._show_outputs, failed=self._list_failed)

    def _list_failed(self, message: str, error_type: str) -> None:
        self.list_task = None
        self.window.show_error(message)

    def _show_outputs(self, outputs: list) -> None:
        self.list_task = None
        wanted, self._wanted = self._wanted or self.tuned.currentData(), None
        self.tuned.blockSignals(True)
        self.tuned.clear()
        for label, path, info in outputs:
            self.tuned.addItem(label, path)
            self.tuned.setItemData(self.tuned.count() - 1, info, role=0x0101)
        index = self.tuned.findData(wanted) if wanted else -1
        if index >= 0:
            self.tuned.setCurrentIndex(index)
        self.tuned.blockSignals(False)
        self._on_selected()

    def showEvent(self, event) -> None:
        if self.base_task is None and self.tuned_task is None:
            self.refresh()  # runs may have finished since the view was last shown
        super().showEvent(event)

    def select_output(self, path: str | None) -> None:
        """Select a run's output; one not listed yet (a run that just ended) once the list is read again."""
        index = self.tuned.findData(path)
        if index >= 0:
            self.tuned.setCurrentIndex(index)
        elif path:
            self._wanted = path
            self.refresh()

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
        client = self.window.client
        self.base_task = connect(client.submit(chat_task, label="compare: base", messages=messages,
                                               sampling=sampling, model_path=self.base_path()),
                                 chunk=lambda text: _append(self.base_out, text),
                                 progress=lambda f, message: self._placeholder(self.base_out, message),
                                 failed=lambda message, _: self.base_out.appendPlainText(f"\n[{message}]"),
                                 ended=lambda: self._ended("base_task"))
        self.tuned_task = connect(client.submit(ft_tasks.tuned_chat_task, label="compare: fine-tuned",
                                                device=COMPARE, path=path, messages=messages, sampling=sampling),
                                  chunk=lambda text: _append(self.tuned_out, text),
                                  progress=lambda f, message: self._placeholder(self.tuned_out, message),
                                  failed=lambda message, _: self.tuned_out.appendPlainText(f"\n[{message}]"),
                                  ended=lambda: self._ended("tuned_task"))
        self._set_busy(True)

    def stop(self) -> None:
        for task in (self.base_task, self.tuned_task):
            if task is not None:
                task.cancel()

    def _ended(self, name: str) -> None:
        setattr(self, name, None)
        self._set_busy(self.base_task is not None or self.tuned_task is not None)

    @staticmethod
    def _placeholder(box: QPlainTextEdit, message: str) -> None:
        if message:
            box.setPlaceholderText(message)

    def on_window_closing(self) -> None:
        self.stop()

def _append(box: QPlainTextEdit, text: str) -> None:
    cursor = box.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    cursor.insertText(text)
