"""A run folder's record: ``status.json`` (state, pid, figures) and ``events.jsonl`` (losses, samples).

Written only by the main process. ``status.json`` is replaced atomically, so a
crash or ``kill -9`` never leaves it half written.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

EVENTS = "events.jsonl"
STATUS = "status.json"


class RunLog:
    def __init__(self, folder: Path, on_event: Callable[[dict], None] | None = None, main: bool = True) -> None:
        self.folder = Path(folder)
        self.on_event = on_event
        self.main = main
        self.progress: dict = {}
        self.status: dict = read_status(self.folder)

    def event(self, event: dict) -> None:
        event = {"time": round(time.time(), 3), **event}
        if self.on_event is not None:
            self.on_event(event)
        if self.main:
            with (self.folder / EVENTS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(event) + "\n")
            if event["type"] == "eval":
                self.update(last_eval_loss=event["loss"])
            elif event["type"] == "train":
                self.update(step=event["step"], **{k: v for k, v in self.progress.items() if k != "step"})

    def update(self, **fields: Any) -> None:
        self.status.update(fields, updated=time.time())
        if self.main:
            write_json(self.folder / STATUS, self.status)

    def start(self, **fields: Any) -> None:
        self.update(state="running", pid=os.getpid(), host=socket.gethostname(), **fields)

    def truncate_after(self, step: int) -> None:
        """Forget events past ``step`` (resuming from an earlier checkpoint replays those steps)."""
        events = [e for e in read_events(self.folder) if e.get("step", 0) <= step or e["type"] in ("start",)]
        if self.main:
            tmp = self.folder / (EVENTS + ".tmp")
            tmp.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
            os.replace(tmp, self.folder / EVENTS)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_status(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_events(folder: Path) -> list[dict]:
    events = []
    try:
        lines = (Path(folder) / EVENTS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return events
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut by a crash
            continue
    return events
