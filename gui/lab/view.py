"""The Transformer lab view: train a model from scratch, and look inside any model.

The model being looked at is the chat's current model or a lab folder (the one just trained, or
one opened). Looking runs on the window's worker; training on the lab's own.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QTabWidget,
                               QVBoxLayout, QWidget)

from gui.lab.attention import AttentionPanel
from gui.worker import connect
from gui.lab.tokens import NextTokenPanel, TokenPanel
from gui.lab.train import TrainPanel

CURRENT = "The chat's current model"


class LabView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.source = QComboBox()
        self.source.addItem(CURRENT, None)
        self.source.setMinimumWidth(260)
        open_button = QPushButton("Open model folder…")
        open_button.clicked.connect(self._open_folder)
        self.info = QLabel("")
        top = QHBoxLayout()
        top.addWidget(QLabel("Look inside:"))
        top.addWidget(self.source)
        top.addWidget(open_button)
        top.addWidget(self.info, 1)
        self.train = TrainPanel(self)
        self.attention = AttentionPanel(self)
        self.tokens = TokenPanel(self)
        self.next = NextTokenPanel(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.train, "Train from scratch")
        self.tabs.addTab(self.attention, "Attention")
        self.tabs.addTab(self.tokens, "Token probabilities")
        self.tabs.addTab(self.next, "Next token")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.train.model_ready.connect(self.add_model_folder)
        window.model_changed.connect(lambda *_: self._source_changed() if self.model_path() is None else None)
        self.next.set_masked(False)
        self._describe()

    def model_path(self) -> str | None:
        return self.source.currentData()

    def add_model_folder(self, folder: str) -> None:
        index = self.source.findData(folder)
        if index < 0:
            self.source.addItem(f"Lab: {Path(folder).name}", folder)
            index = self.source.count() - 1
        if self.source.currentIndex() == index:
            self._source_changed()
        self.source.setCurrentIndex(index)

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A model folder (a lab model or any transformers model)")
        if folder:
            self.add_model_folder(folder)

    def _source_changed(self, *_) -> None:
        self._describe()

    def _describe(self) -> None:
        from engine.lab.tasks import lab_model_info_task

        if self.model_path() is None and getattr(self.window, "model_info", None) is None:
            self.info.setText("(no model loaded yet)")
            return
        self.run(lab_model_info_task, done=self._show_info, failed=self._info_failed, model_path=self.model_path())

    def run(self, fn, *, done, failed, chunk=None, **kwargs):
        """Submit one of the lab's inspection tasks to the window's scheduler; returns its TaskSignals."""
        slots = {"chunk": chunk} if chunk is not None else {}
        return connect(self.window.client.submit(fn, **kwargs), done=done, failed=failed, **slots)

    def _show_info(self, info: dict) -> None:
        if info.get("model_path") != self.model_path():
            return  # an answer about a model no longer chosen
        kind = "fills in blanks" if info.get("masked") else "predicts the next token"
        self.info.setText(f"{info['name']}: {info['parameters'] / 1e6:.1f} M parameters, {info.get('layers')} layers, "
                          f"{info.get('heads')} heads, context {info['context_length']:,}; {kind}.")
        self.next.set_masked(bool(info.get("masked")))

    def _info_failed(self, message: str, error_type: str = "") -> None:
        self.info.setText("")
        self.window.show_error(message)

    def on_window_closing(self) -> None:
        self.train.stop()
        self.train.shutdown()
