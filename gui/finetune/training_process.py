"""Training in a child process: the window never shares the interpreter lock with the Trainer.

The child is ``python -m engine.cli finetune --config JOB --events-json``: the same
entry point as the command line and ``torchrun``. It prints one JSON object per line
(progress, losses, samples, then the result or the error); Stop creates the run's
STOP file, which the child polls, so it saves a last checkpoint and ends cleanly.
If the child dies (crash, kill -9), the run is left "running" with a dead pid and is
listed as interrupted, ready for Resume.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from engine.finetune.config import JobConfig


def can_use_child_process() -> bool:
    """A packaged app has no ``python -m``: it trains on a worker thread instead."""
    return not getattr(sys, "frozen", False)


class TrainingProcess(QObject):
    event = Signal(object)  # an engine event dict (train, eval, samples, start, end)
    progress = Signal(float, str)
    finished = Signal(object)  # the result dict
    failed = Signal(str, str)  # message, error type

    def __init__(self, job: JobConfig, *, resume: bool, threads: int | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self._buffer = b""
        self._stderr: list[str] = []
        self._reported = False
        self._job_file = None
        if resume:
            job_file = Path(job.out_dir) / "job.json"
        else:  # a new run's folder must be empty, so the job waits in a temporary file
            fd, name = tempfile.mkstemp(prefix="hearth-job-", suffix=".json")
            os.close(fd)
            job_file = job.save(name)
            self._job_file = job_file
        args = ["-m", "engine.cli", "finetune", "--config", str(job_file), "--events-json"]
        if resume:
            args.append("--resume")
        if threads:
            args += ["--threads", str(threads)]
        self.process = QProcess(self)
        self.process.setWorkingDirectory(str(Path(__file__).resolve().parent.parent))
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_exit)
        self.process.errorOccurred.connect(self._on_error)
        self.process.start(sys.executable, args)

    def stop(self) -> None:
        """Ask for a clean stop: the child saves a checkpoint after the current step."""
        try:
            (Path(self.job.out_dir) / "STOP").touch()
        except OSError:
            self.process.terminate()

    def wait(self, timeout_ms: int) -> bool:
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return True
        return self.process.waitForFinished(timeout_ms)

    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._dispatch(line)

    def _dispatch(self, line: bytes) -> None:
        try:
            obj = json.loads(line)
        except ValueError:
            return  # not ours (a library printing to stdout)
        kind = obj.get("type")
        if kind == "progress":
            self.progress.emit(float(obj["fraction"]), str(obj["message"]))
        elif kind == "result":
            self._reported = True
            self.finished.emit(obj)
        elif kind == "error":
            self._reported = True
            self.failed.emit(obj["message"], obj.get("error_type", "HearthError"))
        else:
            self.event.emit(obj)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr = (self._stderr + [line for line in text.splitlines() if line.strip()])[-40:]

    def _on_exit(self, code: int, status) -> None:
        self._read_stdout()
        if self._buffer:
            self._dispatch(self._buffer)
            self._buffer = b""
        if self._job_file is not None:
            Path(self._job_file).unlink(missing_ok=True)
        if not self._reported:
            self._reported = True
            tail = "\n".join(self._stderr[-6:])
            self.failed.emit(f"Training stopped unexpectedly (exit code {code}). Resume continues from the last "
                             f"checkpoint.\n{tail}".strip(), "TrainingError")

    def _on_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._reported:
            self._reported = True
            self.failed.emit(f"Could not start the training process ({self.process.errorString()}).",
                             "TrainingError")
