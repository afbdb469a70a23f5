"""Help → Run diagnostics: the same check as ``hearth --self-test``, in a child process."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout


def self_test_command() -> tuple[str, list[str]]:
    if getattr(sys, "frozen", False):
        return sys.executable, ["--self-test"]
    return sys.executable, ["-m", "gui", "--self-test"]


class DiagnosticsDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Diagnostics")
        self.resize(640, 360)
        self.summary = QLabel("Running the self-test: loading the model and asking it a question…")
        self.summary.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.output, 1)
        layout.addWidget(buttons)
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.readyReadStandardError.connect(self._read_err)
        self.process.finished.connect(self._done)
        program, args = self_test_command()
        self.process.start(program, args)

    def _read(self) -> None:
        self.output.appendPlainText(bytes(self.process.readAllStandardOutput()).decode(errors="replace").rstrip())

    def _read_err(self) -> None:
        self.output.appendPlainText(bytes(self.process.readAllStandardError()).decode(errors="replace").rstrip())

    def _done(self, code: int, status) -> None:
        lines = [l for l in self.output.toPlainText().splitlines() if l.startswith("{")]
        try:
            report = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            self.summary.setText(f"The self-test ended without a report (exit code {code}).")
            return
        if report.get("ok"):
            self.summary.setText(f"All good: {report['model']} wrote {report['new_tokens']} tokens at "
                                 f"{report['tok_s']:.1f} tok/s; the window never stalled more than "
                                 f"{report['max_ui_stall_ms']:.0f} ms.")
        else:
            self.summary.setText(f"The self-test failed: {report.get('error')}")

    def reject(self) -> None:
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(2000)
        super().reject()
