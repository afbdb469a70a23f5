"""gui/worker.py: the Qt adapter delivers a task's lifecycle, in order, on the GUI thread."""

from __future__ import annotations

import threading

from test_scheduler import TIMEOUT, blocker, talker


def test_qt_adapter_delivers_in_order_on_the_gui_thread(qtbot):
    from PySide6.QtCore import QThread

    from gui.worker import EngineClient, connect

    client = EngineClient()
    seen, threads = [], []

    def note(kind):
        def slot(*args):
            seen.append((kind, *args))
            threads.append(QThread.currentThread())
        return slot

    task = client.submit(talker, words=("x",))
    connect(task, **{k: note(k) for k in ("started", "chunk", "progress", "event", "done", "ended")})
    qtbot.waitUntil(lambda: task.finished, timeout=TIMEOUT * 1000)
    assert seen == [("started",), ("chunk", "x"), ("progress", 0.5, "half"), ("event", "step", {"n": 1}),
                    ("done", "x"), ("ended",)]
    assert all(t is QThread.currentThread() for t in threads) and not client.is_busy()
    client.shutdown()
    late = client.submit(talker)  # after shutdown: a failed task (not an exception in a slot), told to no view
    heard = []
    late.failed.connect(lambda message, kind: heard.append(kind))
    qtbot.waitUntil(lambda: late.finished, timeout=TIMEOUT * 1000)
    assert late.state == "failed" and heard == [] and not client.is_busy()


def test_qt_adapter_a_full_queue_fails_the_task(qtbot):
    from engine.scheduler import Scheduler
    from gui.worker import EngineClient

    client = EngineClient(scheduler=Scheduler(max_queue=1))
    gate, started = threading.Event(), threading.Event()
    client.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    client.submit(talker)
    full = client.submit(talker)
    heard = []
    full.failed.connect(lambda message, kind: heard.append((kind, message)))
    qtbot.waitUntil(lambda: full.finished, timeout=TIMEOUT * 1000)
    assert heard and heard[0][0] == "QueueFullError" and "busy" in heard[0][1]
    gate.set()
    qtbot.waitUntil(lambda: not client.is_busy(), timeout=TIMEOUT * 1000)
    client.shutdown()


def test_qt_adapter_abandon_delivers_nothing_more(qtbot):
    from gui.worker import EngineClient

    client = EngineClient()
    gate, started = threading.Event(), threading.Event()
    task = client.submit(blocker, gate=gate, started=started)
    got = []
    task.cancelled.connect(lambda partial: got.append("cancelled"))
    task.ended.connect(lambda: got.append("ended"))
    assert started.wait(TIMEOUT)
    task.abandon()
    qtbot.waitUntil(lambda: not client.is_busy(), timeout=TIMEOUT * 1000)
    assert got == [] and task.handle.state == "cancelled"
    client.shutdown()
