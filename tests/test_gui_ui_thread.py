"""Nothing slow on the UI thread: views that read files, list runs or parse a run's events stay
responsive while a deliberately slow engine does the work on the scheduler's threads.

A 5 ms timer measures the longest gap between event-loop ticks (as ``gui/selftest.py`` does);
each slow call takes SLOW_S, so doing any of them on the UI thread would show as a gap that long.
"""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from engine.config import SamplingConfig

SLOW_S = 0.4
STALL_LIMIT_S = 0.050


class GapMeter:
    def __init__(self) -> None:
        self.max_gap = 0.0
        self._last: float | None = None
        self.timer = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer, timeout=self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap = max(self.max_gap, now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.max_gap = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap


class _Panel:
    def config(self) -> SamplingConfig:
        return SamplingConfig(temperature=0.0, max_new_tokens=6)


class FakeWindow(QObject):
    model_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        from gui.worker import EngineClient

        self.client = EngineClient(self)
        self.model_info = {"path": "/fake/base", "name": "base", "context_length": 256}
        self.sampling_panel = _Panel()
        self.errors: list[str] = []
        self.notices: list[str] = []
        self.views: dict = {}

    def show_error(self, text: str) -> None:
        self.errors.append(text)

    def show_notice(self, text: str) -> None:
        self.notices.append(text)

    def show_view(self, title: str) -> None:
        pass


@pytest.fixture
def window():
    win = FakeWindow()
    yield win
    win.client.shutdown()


def slow(value):
    def fake(*args, **kwargs):
        time.sleep(SLOW_S)  # a 16 MB PDF, a run folder on a network drive...
        return value() if callable(value) else value
    return fake


def measure(qtbot, start, done) -> float:
    """The longest UI-thread gap from ``start()`` (itself run from the event loop) until ``done()``."""
    meter = GapMeter()
    meter.start()
    QTimer.singleShot(0, start)
    qtbot.waitUntil(done, timeout=20_000)
    qtbot.wait(20)  # the result's own handling, on the UI thread, counts too
    return meter.stop()


def test_code_view_reads_files_off_the_ui_thread(qtbot, window, tmp_path, monkeypatch):
    import engine.documents
    from engine.documents import Document
    from gui.texttools.code_view import CodeView

    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4")
    doc = Document(path=str(path), text="def f():\n    return 1\n", kind="pdf", encoding="")
    monkeypatch.setattr(engine.documents, "read_document", slow(doc))
    view = CodeView(window)
    qtbot.addWidget(view)
    gap = measure(qtbot, lambda: view.open_file(str(path)), lambda: view.path == str(path))
    assert view.editor.toPlainText().startswith("def f()")
    assert gap < STALL_LIMIT_S, f"the window froze for {gap * 1000:.0f} ms"


def test_summarize_view_reads_files_off_the_ui_thread(qtbot, window, tmp_path, monkeypatch):
    import engine.documents
    from engine.documents import Document
    from gui.texttools.summarize_view import SummarizeView

    path = tmp_path / "contract.docx"
    path.write_bytes(b"PK")
    doc = Document(path=str(path), text="The parties agree.", kind="docx", encoding="")
    monkeypatch.setattr(engine.documents, "read_document", slow(doc))
    view = SummarizeView(window)
    qtbot.addWidget(view)
    gap = measure(qtbot, lambda: view.load_files([str(path)]), lambda: "agree" in view.input.toPlainText())
    assert gap < STALL_LIMIT_S, f"the window froze for {gap * 1000:.0f} ms"


def fake_run(folder):
    from engine.finetune.runs import RunInfo

    return RunInfo(folder=str(folder), name=folder.name, state="finished", method="lora", step=4, max_steps=4,
                   base_model="/fake/base", output=str(folder / "adapter"), resumable=False, best_eval_loss=2.0,
                   ppl_before=9.0, ppl_after=7.0, updated=time.time())


def test_finetune_view_lists_runs_and_reads_events_off_the_ui_thread(qtbot, window, tmp_path, monkeypatch):
    import engine.finetune.runs as runs
    from gui.finetune.view import FinetuneView

    run = fake_run(tmp_path / "base-run")
    events = [{"type": "train", "step": s, "loss": 3.0 - s / 10} for s in range(1, 5)]
    events.append({"type": "samples", "step": 4, "samples": [["Where?", "At sea."]]})
    listed = []
    monkeypatch.setattr(runs, "list_runs", slow(lambda: listed.append(1) or [run]))
    monkeypatch.setattr(runs, "history", slow(events))
    view = FinetuneView(window)  # lists the runs as it opens
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.runs.count() == 2 and view.runs_task is None, timeout=20_000)
    gap = measure(qtbot, view.refresh_runs, lambda: len(listed) == 2 and view.runs_task is None)
    assert gap < STALL_LIMIT_S, f"listing the runs froze the window for {gap * 1000:.0f} ms"
    gap = measure(qtbot, lambda: view.runs.setCurrentIndex(1), lambda: view.plot.train_steps == [1, 2, 3, 4])
    assert "At sea." in view.samples.toPlainText()
    assert gap < STALL_LIMIT_S, f"reading the run's events froze the window for {gap * 1000:.0f} ms"


def test_compare_rescans_runs_off_the_ui_thread(qtbot, window, tmp_path, monkeypatch):
    import engine.finetune.runs as runs
    from gui.finetune.compare_view import CompareView

    outputs = [("base-run (LoRA adapter)", str(tmp_path / "adapter"), {"base": None, "before": 9.0, "after": 7.0})]
    scans = []
    monkeypatch.setattr(runs, "tuned_outputs", slow(lambda: scans.append(1) or outputs))
    view = CompareView(window)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.tuned.count() == 1 and view.list_task is None, timeout=20_000)
    before = len(scans)
    gap = measure(qtbot, view.show, lambda: len(scans) > before and view.list_task is None)  # each show rescans
    assert view.tuned.currentData() == str(tmp_path / "adapter") and "7.00" in view.ppl_label.text()
    assert gap < STALL_LIMIT_S, f"the window froze for {gap * 1000:.0f} ms"
