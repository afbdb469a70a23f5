"""Translate view: source language (or detect), target language, swap, streaming output."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSplitter, QToolButton,
                               QVBoxLayout, QWidget)

from engine.texttools.language_detect import LANGUAGES
from engine.texttools.tasks import translate_task
from gui.worker import connect

DETECT = "Detect language"
NAMES = sorted(LANGUAGES.values())


class TranslateView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.detected = ""
        self.task = None  # the translation being written: its TaskSignals (gui/worker.py)
        self._build()

    def _build(self) -> None:
        settings = QSettings()
        self.source = QComboBox()
        self.source.addItems([DETECT] + NAMES)
        self.source.setCurrentText(settings.value("translate/source", DETECT))
        self.target = QComboBox()
        self.target.addItems(NAMES)
        self.target.setEditable(True)  # any language the model knows, not only the listed ones
        self.target.setCurrentText(settings.value("translate/target", "French"))
        self.swap_button = QToolButton()
        self.swap_button.setText("⇄")
        self.swap_button.setToolTip("Swap the languages and the texts")
        self.swap_button.clicked.connect(self.swap)
        self.run_button = QPushButton("Translate")
        self.run_button.clicked.connect(self.translate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.output.toPlainText()))
        bar = QHBoxLayout()
        for w in (QLabel("From"), self.source, self.swap_button, QLabel("to"), self.target):
            bar.addWidget(w)
        bar.addStretch(1)
        for w in (self.run_button, self.stop_button, self.copy_button):
            bar.addWidget(w)
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Text to translate (Ctrl+Enter translates)")
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The translation appears here as it is written.")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.input)
        split.addWidget(self.output)
        self.status = QLabel("")
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(split, 1)
        column.addWidget(self.status)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.translate)

    def translate(self) -> None:
        from engine.errors import InvalidConfigError
        from engine.texttools.translate import DEFAULT_SAMPLING, TranslateRequest

        text = self.input.toPlainText()
        if not text.strip():
            self.window_.show_error("There is nothing to translate: type or paste text on the left.")
            return
        if self.window_.model_info is None:
            self.window_.show_error("No model is loaded yet. Wait for loading to finish, or choose a model.")
            return
        source = "" if self.source.currentText() == DETECT else self.source.currentText()
        try:
            request = TranslateRequest(text=text, target=self.target.currentText(), source=source,
                                       sampling=DEFAULT_SAMPLING.with_(
                                           max_new_tokens=self.window_.sampling_panel.config().max_new_tokens))
        except InvalidConfigError as exc:
            self.window_.show_error(str(exc))
            return
        QSettings().setValue("translate/source", self.source.currentText())
        QSettings().setValue("translate/target", self.target.currentText())
        self.output.clear()
        self.status.setText("Translating…")
        if self.task is not None:
            self.task.abandon()
        self._set_busy(True)
        self.task = connect(self.window_.client.submit(translate_task, label="translate", request=request),
                            chunk=self._on_chunk, progress=lambda f, m: self.status.setText(m), done=self._on_done,
                            failed=self._on_failed, cancelled=lambda _: self.status.setText("Stopped."),
                            ended=lambda: self._set_busy(False))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def swap(self) -> None:
        source = self.source.currentText()
        if source == DETECT:
            source = self.detected
        target = self.target.currentText()
        if not source:
            self.window_.show_notice("Choose the source language first (it has not been detected yet).")
            return
        self.source.setCurrentText(target if target in NAMES else DETECT)
        self.target.setCurrentText(source)
        if self.output.toPlainText().strip():
            original = self.input.toPlainText()
            self.input.setPlainText(self.output.toPlainText())
            self.output.setPlainText(original)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _on_chunk(self, text: str) -> None:
        cursor = self.output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)

    def _on_done(self, result) -> None:
        self.output.setPlainText(result.text)
        if result.detected:
            self.detected = result.source
        origin = f"{result.source} (detected)" if result.detected else (result.source or "unknown language")
        self.status.setText(f"{origin} → {result.target}" + (f". {result.notice}" if result.notice else ""))

    def _on_failed(self, message: str, error_type: str = "") -> None:
        self.status.setText("")
        self.window_.show_error(message)
