"""Training in a child process, behind the same Handle as any scheduler task (engine/scheduler.py).

The window never shares the interpreter lock with the Trainer: the child is
``python -m engine.cli finetune --config JOB --events-json``, the same entry point as the
command line and ``torchrun``. It prints one JSON object per line (progress, losses, samples,
then the result or the error); this module turns them into the handle's lifecycle::

    started -> progress / event("event", dict) ... -> done(TrainResult) | failed | cancelled -> ended

``cancel()`` creates the run's STOP file, which the child polls, so it saves a last checkpoint and
ends cleanly (a run stopped that way is *done*, with ``state == "stopped"``). If the child dies
(crash, kill -9), the handle fails and the run is left "running" with a dead pid: it is listed as
interrupted, ready for Resume. Qt-free: the GUI adapts the handle like any other.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from engine.finetune.config import JobConfig
from engine.finetune.errors import TrainingError
from engine.scheduler import RUNNING, Event, Handle

_ids = itertools.count(1)
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m engine.cli`` finds the engine


def can_use_child_process() -> bool:
    """A packaged app has no ``python -m``: it trains on a scheduler thread instead."""
    return not getattr(sys, "frozen", False)


class ChildError(TrainingError):
    """An error the child reported; ``error_type`` is the name of its type there."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class ProcessHandle(Handle):
    """A Handle whose task is a training child process."""

    def __init__(self, job: JobConfig) -> None:
        super().__init__(next(_ids), f"training {job.name}", None, {}, "process")
        self.job = job
        self.process: subprocess.Popen | None = None

    def cancel(self) -> None:
        """Ask for a clean stop: the child saves a checkpoint after the current step."""
        self.cancel_token.cancel()
        try:
            (Path(self.job.out_dir) / "STOP").touch()
        except OSError:
            self.kill()

    def kill(self) -> None:
        """End the child now (a stuck one); the run is listed as interrupted, ready to resume."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


def start_training_process(job: JobConfig, *, resume: bool = False, threads: int | None = None,
                           listener: Any = None) -> ProcessHandle:
    """Start the child; ``listener`` (optional) is subscribed before anything can happen."""
    handle = ProcessHandle(job)
    if listener is not None:
        handle.subscribe(listener)
    _Child(handle, job, resume, threads).start()
    return handle


class _Child:
    def __init__(self, handle: ProcessHandle, job: JobConfig, resume: bool, threads: int | None) -> None:
        self.handle, self.job, self.resume, self.threads = handle, job, resume, threads
        self.outcome: Event | None = None
        self.stderr: list[str] = []
        self.job_file: Path | None = None

    def start(self) -> None:
        if self.resume:
            job_file = Path(self.job.out_dir) / "job.json"
        else:  # a new run's folder must be empty, so the job waits in a temporary file
            fd, name = tempfile.mkstemp(prefix="hearth-job-", suffix=".json")
            os.close(fd)
            job_file = self.job_file = Path(self.job.save(name))
        args = [sys.executable, "-m", "engine.cli", "finetune", "--config", str(job_file), "--events-json"]
        if self.resume:
            args.append("--resume")
        if self.threads:
            args += ["--threads", str(self.threads)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.handle.process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            self._cleanup()
            self.handle._finish(Event("failed", TrainingError(f"Could not start the training process ({exc}).")))
            return
        with self.handle._lock:
            self.handle.state = RUNNING
        self.handle._emit(Event("started"))
        self.stderr_thread = threading.Thread(target=self._read_stderr, name="hearth-train-stderr", daemon=True)
        self.stderr_thread.start()
        threading.Thread(target=self._read_stdout, name="hearth-train-stdout", daemon=True).start()

    def _read_stdout(self) -> None:
        process = self.handle.process
        try:
            for line in process.stdout:
                self._dispatch(line)
        finally:
            code = process.wait()
            self.stderr_thread.join(5)  # its last lines say why a child died
            self._cleanup()
            self.handle._finish(self.outcome or self._died(code))

    def _dispatch(self, line: bytes) -> None:
        try:
            obj = json.loads(line)
        except ValueError:
            return  # not ours (a library printing to stdout)
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        if kind == "progress":
            self.handle._emit(Event("progress", (float(obj["fraction"]), str(obj["message"]))))
        elif kind == "result":
            self.outcome = Event("done", _train_result(obj))
        elif kind == "error":
            error_type = obj.get("error_type", "HearthError")
            if error_type == "CancelledError":
                self.outcome = Event("cancelled", None)
            else:
                self.outcome = Event("failed", ChildError(str(obj.get("message", "")), error_type))
        else:
            self.handle._emit(Event("event", ("event", obj)))

    def _read_stderr(self) -> None:
        for raw in self.handle.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.strip():
                self.stderr = (self.stderr + [line])[-40:]

    def _died(self, code: int) -> Event:
        tail = "\n".join(self.stderr[-6:])
        return Event("failed", TrainingError(f"Training stopped unexpectedly (exit code {code}). Resume continues "
                                             f"from the last checkpoint.\n{tail}".strip()))

    def _cleanup(self) -> None:
        if self.job_file is not None:
            self.job_file.unlink(missing_ok=True)


def _train_result(obj: dict) -> Any:
    from dataclasses import fields

    from engine.finetune.train import TrainResult

    return TrainResult(**{f.name: obj.get(f.name) for f in fields(TrainResult)})

