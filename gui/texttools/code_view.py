"""Code view: an editor with inline completions from the loaded model.

Ctrl+Space asks for a completion at the cursor (or, with "Complete while
typing", a pause in typing does); it comes back as grey ghost text: Tab
accepts, Esc dismisses, typing on refines it. A completion that arrives after
the text or cursor moved is dropped, and typing cancels one still running.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from engine.texttools.tasks import complete_task, read_document_task
from gui.texttools.code_editor import CodeEditor
from gui.texttools.code_highlighter import lexer_for
from gui.worker import FILES, connect, is_running

LANGUAGES = {"Python": "python", "JavaScript": "javascript", "TypeScript": "typescript", "C": "c", "C++": "cpp",
             "C#": "csharp", "Java": "java", "Go": "go", "Rust": "rust", "Ruby": "ruby", "PHP": "php",
             "Shell": "bash", "SQL": "sql", "HTML": "html", "CSS": "css", "JSON": "json", "YAML": "yaml",
             "Markdown": "markdown", "Plain text": "text"}
SETTINGS_AUTO, SETTINGS_DELAY = "code/auto_complete", "code/auto_delay_ms"


class CodeView(QWidget):
    file_opened = Signal(str)  # the path, once its text is in the editor

    def __init__(self, window) -> None:
        super().__init__()
        self.window_ = window
        self.path: str | None = None
        self.encoding = "utf-8"
        self._request_state: tuple[int, int] | None = None  # (edit count, cursor) when asked
        self.task = None  # the completion being computed: its TaskSignals (gui/worker.py)
        self.reader = None  # the file being read (PDF and DOCX files take a while)
        self.editor = CodeEditor()
        self._build()
        self.set_language("python")
        self.editor.completion_requested.connect(self.request_completion)
        self.editor.user_edited.connect(self._on_edit)
        self.editor.cursorPositionChanged.connect(self._show_position)
        self.editor.ghost_accepted.connect(lambda _: self._set_status("Completion inserted (Ctrl+Z takes it back)."))
        self.editor.document().modificationChanged.connect(lambda _: self._update_title())
        self._update_title()

    def _build(self) -> None:
        settings = QSettings()
        buttons = []
        for text, tip, slot in (("Open…", "Open a source file (Ctrl+O)", self.open_file),
                                ("Save", "Save (Ctrl+S)", self.save),
                                ("Save as…", "Save under another name", self.save_as),
                                ("Undo", "Undo (Ctrl+Z)", self.editor.undo),
                                ("Redo", "Redo (Ctrl+Shift+Z)", self.editor.redo)):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.append(b)
        self.language = QComboBox()
        self.language.addItems(list(LANGUAGES))
        self.language.currentTextChanged.connect(lambda name: self.set_language(LANGUAGES[name]))
        self.complete_button = QPushButton("Complete")
        self.complete_button.setToolTip("Suggest code at the cursor (Ctrl+Space). Tab accepts, Esc dismisses.")
        self.complete_button.clicked.connect(self.request_completion)
        self.auto = QCheckBox("Complete while typing")
        self.auto.setToolTip("Ask for a completion automatically when you pause typing")
        self.auto.setChecked(settings.value(SETTINGS_AUTO, False, type=bool))
        self.auto.toggled.connect(lambda on: QSettings().setValue(SETTINGS_AUTO, on))
        self.delay = QSpinBox()
        self.delay.setRange(200, 5000)
        self.delay.setSingleStep(100)
        self.delay.setSuffix(" ms")
        self.delay.setValue(int(settings.value(SETTINGS_DELAY, 800)))
        self.delay.setToolTip("Pause before an automatic completion")
        self.delay.valueChanged.connect(lambda v: QSettings().setValue(SETTINGS_DELAY, v))
        self.max_lines = QSpinBox()
        self.max_lines.setRange(1, 60)
        self.max_lines.setValue(12)
        self.max_lines.setPrefix("≤ ")
        self.max_lines.setSuffix(" lines")
        self.max_lines.setToolTip("The longest completion, in lines")
        bar = QHBoxLayout()
        for w in buttons:
            bar.addWidget(w)
        bar.addSpacing(12)
        bar.addWidget(self.language)
        bar.addStretch(1)
        for w in (self.max_lines, self.auto, self.delay, self.complete_button):
            bar.addWidget(w)
        self.title = QLabel()
        self.status = QLabel()
        self.position = QLabel()
        footer = QHBoxLayout()
        footer.addWidget(self.status, 1)
        footer.addWidget(self.position)
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(self.title)
        column.addWidget(self.editor, 1)
        column.addLayout(footer)
        self._auto_timer = QTimer(self, singleShot=True)
        self._auto_timer.timeout.connect(self._auto_complete)
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence.StandardKey.Save, self, activated=self.save, context=context)
        QShortcut(QKeySequence.StandardKey.Open, self, activated=self.open_file, context=context)

    # -- files ------------------------------------------------------------------------
    def set_language(self, language: str, filename: str = "") -> None:
        self.language_name = language
        self.editor.highlighter.set_lexer(lexer_for(filename, language, self.editor.real_text()))
        name = next((k for k, v in LANGUAGES.items() if v == language), None)
        if name and self.language.currentText() != name:
            self.language.blockSignals(True)
            self.language.setCurrentText(name)
            self.language.blockSignals(False)

    def open_file(self, path: str | None = None) -> bool:
        """Start reading ``path`` (asked for when None) on the engine's thread; False if the user declined.

        The text replaces the editor's when it has been read (``file_opened`` then fires).
        """
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open source file")
            if not path:
                return False
        if not self._may_discard():
            return False
        if self.reader is not None:
            self.reader.abandon()  # the newer choice wins
        self._set_status(f"Reading {Path(path).name}…")
        self.reader = connect(self.window_.client.submit(read_document_task, label="read file", device=FILES,
                                                         path=path),
                              done=lambda doc: self._show_file(path, doc), failed=self._on_read_failed)
        return True

    def _on_read_failed(self, message: str, error_type: str = "") -> None:
        self._set_status("")
        self.window_.show_error(message)

    def _show_file(self, path: str, doc) -> None:
        from engine.documents import kind_of

        self._set_status("")
        self.editor.dismiss_ghost(emit=False)
        self.editor.setPlainText(doc.text)
        self.editor.document().setModified(False)
        self.path, self.encoding = path, (doc.encoding or "utf-8").replace("utf-8-sig", "utf-8")
        self.set_language(kind_of(path)[1] or "text", filename=path)
        if doc.notice:
            self.window_.show_notice(doc.notice)
        self._update_title()
        self.file_opened.emit(path)

    def save(self) -> bool:
        return self.save_as(self.path) if self.path else self.save_as()

    def save_as(self, path: str | None = None) -> bool:
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save source file", self.path or "untitled.py")
            if not path:
                return False
        self.editor.dismiss_ghost(emit=False)
        try:
            Path(path).write_text(self.editor.toPlainText(), encoding=self.encoding, newline="\n")
        except (OSError, UnicodeEncodeError) as exc:
            self.window_.show_error(f"Could not save {path}: {getattr(exc, 'strerror', None) or exc}")
            return False
        self.path = path
        self.editor.document().setModified(False)
        self._update_title()
        self._set_status(f"Saved {path}.")
        return True

    def _may_discard(self) -> bool:
        if not self.editor.document().isModified():
            return True
        answer = QMessageBox.question(self, "Unsaved changes", "Discard the changes to the current file?",
                                      QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def _update_title(self) -> None:
        name = Path(self.path).name if self.path else "Untitled"
        self.title.setText(("● " if self.editor.document().isModified() else "") + name)

    # -- completion -------------------------------------------------------------------
    def request_completion(self) -> None:
        from engine.texttools.code_completion import CompletionRequest

        if self.window_.model_info is None:
            self.window_.show_error("No model is loaded yet. Wait for loading to finish, or choose a model.")
            return
        self.editor.dismiss_ghost(emit=False)
        text = self.editor.toPlainText()
        cursor = self.editor.textCursor()
        pos = cursor.position()
        request = CompletionRequest(prefix=text[:pos], suffix=text[pos:], language=self.language_name,
                                    max_lines=self.max_lines.value())
        self._request_state = (self.editor.edit_count, pos)
        self._set_status("Completing…")
        if self.task is not None:
            self.task.abandon()
        self.task = connect(self.window_.client.submit(complete_task, label="complete code", request=request),
                            done=self._on_completion, failed=self._on_failed,
                            cancelled=lambda _: self._set_status(""))

    @property
    def busy(self) -> bool:
        """True while a completion is being computed."""
        return is_running(self.task)

    def _on_completion(self, result) -> None:
        state = (self.editor.edit_count, self.editor.textCursor().position())
        if state != self._request_state or self.editor.textCursor().hasSelection():
            self._set_status("")  # the text moved on while the model was thinking
            return
        if not result.text:
            self._set_status("No suggestion here.")
            return
        self.editor.show_ghost(result.text)
        mode = "fill-in-the-middle" if result.mode == "fim" else "code before the cursor"
        looped = " It was cut where it began to repeat itself." if result.finish_reason == "repetition" else ""
        self._set_status(f"Tab accepts, Esc dismisses ({mode}).{looped}")

    def _on_failed(self, message: str, error_type: str = "") -> None:
        self._set_status("")
        self.window_.show_error(message)

    def _on_edit(self) -> None:
        if self.busy:
            self.task.cancel()  # its answer would be for text that no longer exists
        if self.auto.isChecked() and not self.editor.has_ghost():
            self._auto_timer.start(self.delay.value())

    def _auto_complete(self) -> None:
        # Not while the worker is busy with something else (a long summary): the answer would come too late.
        if self.editor.hasFocus() and not self.editor.has_ghost() and self.window_.model_info is not None \
                and not self.window_.client.is_busy():
            self.request_completion()

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    def _show_position(self) -> None:
        cursor = self.editor.textCursor()
        self.position.setText(f"Line {cursor.blockNumber() + 1}, column {cursor.positionInBlock() + 1}")
