"""Summarize view: paste text or drop/open files, choose length and form, get a Markdown summary.

Reading files and summarizing both run on the worker (``engine.texttools.tasks``);
the progress bar shows the step ("Summarizing part 3 of 12", then "Combining").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from engine.texttools.tasks import read_documents_task, summarize_task
from gui.file_drop_edit import FileDropEdit
from gui.worker import FILES, connect

FILE_FILTER = ("Documents (*.txt *.md *.markdown *.rst *.html *.htm *.pdf *.docx *.py *.js *.ts *.java *.c *.cpp "
               "*.h *.go *.rs *.rb *.json *.yaml *.yml *.toml *.csv *.log);;All files (*)")


class SummarizeView(QWidget):
    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.summary_markdown = ""
        self.reader = None  # reading files: its TaskSignals (gui/worker.py)
        self.task = None  # summarizing
        self._build()

    # -- layout ----------------------------------------------------------------------
    def _build(self) -> None:
        self.open_button = QPushButton("Open files…")
        self.open_button.setToolTip("Text, Markdown, HTML, PDF, Word (.docx) or source code; several at once")
        self.open_button.clicked.connect(self.open_files)
        self.length = QComboBox()
        self.length.addItems(["Short", "Medium", "Long"])
        self.length.setCurrentIndex(1)
        self.bullets = QCheckBox("Bullet points")
        self.focus = QLineEdit()
        self.focus.setPlaceholderText("Focus (optional): e.g. obligations, risks, dates")
        self.run_button = QPushButton("Summarize")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.summarize)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        bar = QHBoxLayout()
        for w in (self.open_button, QLabel("Length"), self.length, self.bullets):
            bar.addWidget(w)
        bar.addWidget(self.focus, 1)
        bar.addWidget(self.run_button)
        bar.addWidget(self.stop_button)

        self.input = FileDropEdit()
        self.input.setPlaceholderText("Paste text here, or drop files and folders on this box "
                                      "(.txt .md .html .pdf .docx and source code). Any length.")
        self.input.files_dropped.connect(self.load_files)
        self.input.textChanged.connect(lambda: self._count_timer.start())
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.addWidget(self.input, 1)
        lcol.addWidget(self.source_label)

        self.output = QTextBrowser()
        self.output.setOpenExternalLinks(False)
        self.output.setPlaceholderText("The summary appears here, in Markdown.")
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_summary)
        self.save_button = QPushButton("Save…")
        self.save_button.clicked.connect(self.save_summary)
        for b in (self.copy_button, self.save_button):
            b.setEnabled(False)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addWidget(self.output, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.save_button)
        rcol.addLayout(buttons)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([560, 440])
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("")
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(split, 1)
        column.addWidget(self.progress)
        column.addWidget(self.status)

        self._count_timer = QTimer(self, singleShot=True, interval=300)
        self._count_timer.timeout.connect(self._update_count)
        self._render_timer = QTimer(self, singleShot=True, interval=80)  # streamed Markdown, re-rendered at most ~12/s
        self._render_timer.timeout.connect(lambda: self.output.setMarkdown(self.summary_markdown))
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.summarize)

    # -- files -----------------------------------------------------------------------
    def open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open documents to summarize", "", FILE_FILTER)
        if paths:
            self.load_files(paths)

    def load_files(self, paths: list[str]) -> None:
        self.status.setText("Reading " + (paths[0] if len(paths) == 1 else f"{len(paths)} items") + "…")
        if self.reader is not None:
            self.reader.abandon()  # the newer choice of files wins
        self.open_button.setEnabled(False)
        self.reader = connect(self.window_.client.submit(read_documents_task, label="read documents",
                                                         device=FILES, paths=list(paths)),
                              done=self._on_documents, failed=self._on_read_failed,
                              ended=lambda: self.open_button.setEnabled(True))

    def _on_documents(self, loaded) -> None:
        self.input.setPlainText(loaded.text)
        names = [p.rsplit("/", 1)[-1] for p, _, _ in loaded.documents]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        self.source_label.setText(f"From {shown}.")
        self.status.setText("")
        if loaded.report():
            self.window_.show_notice(loaded.report())

    def _on_read_failed(self, message: str, error_type: str = "") -> None:
        self.status.setText("")
        self.window_.show_error(message)

    def _update_count(self) -> None:
        words = len(self.input.toPlainText().split())
        self.status.setText(f"{words:,} words" if words else "")

    # -- summarizing -----------------------------------------------------------------
    def config(self):
        from engine.texttools.summarize import SummaryConfig

        return SummaryConfig(length=self.length.currentText().lower(),
                             form="bullets" if self.bullets.isChecked() else "prose", focus=self.focus.text())

    def summarize(self) -> None:
        text = self.input.toPlainText()
        if not text.strip():
            self.window_.show_error("There is nothing to summarize: paste text or open a file first.")
            return
        if self.window_.model_info is None:
            self.window_.show_error("No model is loaded yet. Wait for loading to finish, or choose a model.")
            return
        self.summary_markdown = ""
        self.output.clear()
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self.progress.show()
        if self.task is not None:
            self.task.abandon()
        self._set_busy(True)
        self.task = connect(self.window_.client.submit(summarize_task, label="summarize", text=text,
                                                       config=self.config()),
                            chunk=self._on_chunk, progress=self._on_progress, done=self._on_done,
                            failed=self._on_failed, cancelled=self._on_stopped, ended=lambda: self._set_busy(False))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.progress.setVisible(busy)

    def _on_chunk(self, text: str) -> None:
        self.summary_markdown += text
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(message)

    def _show_final(self, markdown: str) -> None:
        self._render_timer.stop()
        self.summary_markdown = markdown
        self.output.setMarkdown(markdown)
        for b in (self.copy_button, self.save_button):
            b.setEnabled(bool(markdown.strip()))

    def _on_done(self, result) -> None:
        self._show_final(result.text)
        parts = "in one pass" if result.parts == 1 else f"from {result.parts} parts, {result.calls} model calls"
        self.status.setText(f"Summary of {result.input_tokens:,} tokens {parts}.")
        if result.notice:
            self.window_.show_notice(result.notice)

    def _on_failed(self, message: str, error_type: str = "") -> None:
        self.window_.show_error(message)
        self.status.setText("")

    def _on_stopped(self, result) -> None:
        self._show_final(result.text if result is not None else self.summary_markdown)
        self.status.setText("Stopped.")

    # -- output ----------------------------------------------------------------------
    def copy_summary(self) -> None:
        QGuiApplication.clipboard().setText(self.summary_markdown)
        self.status.setText("Summary copied as Markdown.")

    def save_summary(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save summary", "summary.md", "Markdown (*.md);;Text (*.txt)")
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.summary_markdown.rstrip() + "\n")
        except OSError as exc:
            self.window_.show_error(f"Could not save {path}: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved {path}.")
