"""The runs on disk: the Resume list, one run's state, a fresh run folder and its event history."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from engine.finetune.config import JobConfig
from engine.finetune.runlog import read_events, read_status

ACTIVE: set[str] = set()  # run folders training in this process right now
FINAL_STATES = ("finished", "early_stopped")


@dataclass
class RunInfo:
    folder: str
    name: str
    state: str  # running, interrupted, stopped, finished, early_stopped, failed
    method: str
    step: int
    max_steps: int
    base_model: str
    output: str | None  # adapter/ or model/ folder, once saved
    resumable: bool
    best_eval_loss: float | None
    ppl_before: float | None
    ppl_after: float | None
    updated: float
    message: str = ""

    @property
    def is_adapter(self) -> bool:
        return bool(self.output) and Path(self.output).name == "adapter"

    def label(self) -> str:
        return f"{self.name} — {self.state.replace('_', ' ')} at step {self.step}/{self.max_steps}"


def run_info(folder: Path | str) -> RunInfo | None:
    """What a run folder holds, or None if it is not a run."""
    from engine.finetune.train import last_checkpoint

    folder = Path(folder)
    if not (folder / "job.json").is_file():
        return None
    status = read_status(folder)
    try:
        job = JobConfig.load(folder)
    except Exception:  # noqa: BLE001 - a damaged job.json: list the run, but it cannot resume
        job = None
    state = status.get("state", "interrupted")
    if state == "running" and not _alive(status, str(folder)):
        state = "interrupted"
    output = None
    for name in ("adapter", "model"):
        if (folder / name).is_dir():
            output = str(folder / name)
    step, max_steps = int(status.get("step", 0) or 0), int(status.get("max_steps", 0) or 0)
    # Without a complete checkpoint a run still resumes: from step 0, with the same job.
    resumable = job is not None and state not in ("running",) + FINAL_STATES
    if resumable and last_checkpoint(folder) is None:
        step = 0
    return RunInfo(str(folder), folder.name, state, status.get("method", job.train.method if job else "?"),
                   step, max_steps, job.base_model if job else "", output, resumable,
                   status.get("best_eval_loss"), status.get("ppl_before"), status.get("ppl_after"),
                   float(status.get("updated", folder.stat().st_mtime)), status.get("message", ""))


def _alive(status: dict, folder: str) -> bool:
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return folder in ACTIVE
    if os.name == "nt":  # os.kill(pid, 0) would end the process there; trust a recent heartbeat
        return time.time() - float(status.get("updated", 0)) < 300
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run under ``root`` (default: the runs folder), newest first."""
    from engine.paths import runs_dir

    root = Path(root) if root else runs_dir()
    runs = [info for p in root.iterdir() if p.is_dir() and (info := run_info(p)) is not None] \
        if root.is_dir() else []
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def new_run_dir(base_name: str) -> Path:
    """A fresh folder name under the runs folder: <model>-<date>-<time>."""
    from engine.paths import runs_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = runs_dir() / f"{base_name}-{stamp}"
    n = 2
    while folder.exists():
        folder = runs_dir() / f"{base_name}-{stamp}-{n}"
        n += 1
    return folder


def history(folder: Path | str) -> list[dict]:
    return read_events(Path(folder))


def tuned_outputs() -> list[tuple[str, str, dict]]:
    """(label, path, info) of every run's result and of every model saved from a run, for Compare.

    ``info``: ``base`` (the run's base model folder or None), ``before`` / ``after`` (validation perplexity).
    """
    import json

    from engine.paths import models_dir

    out = []
    for info in list_runs():
        if info.output:
            kind = "LoRA adapter" if info.is_adapter else "full model"
            out.append((f"{info.name} ({kind})", info.output,
                        {"base": info.base_model, "before": info.ppl_before, "after": info.ppl_after}))
    folders = sorted(models_dir().iterdir()) if models_dir().is_dir() else []
    for folder in folders:
        marker = folder / "hearth_finetune.json"
        if not marker.is_file():
            continue
        try:
            run = Path(json.loads(marker.read_text(encoding="utf-8")).get("run", ""))
        except (OSError, ValueError, AttributeError):
            continue  # a damaged marker: the folder is still a model, just not listed as a run's
        info = run_info(run) if run.is_dir() else None
        out.append((f"{folder.name} (saved model)", str(folder),
                    {"base": info.base_model if info else None,
                     "before": info.ppl_before if info else None, "after": info.ppl_after if info else None}))
    return out
