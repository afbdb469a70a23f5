"""engine.scheduler: lifecycle, cancel, failure, the bounded FIFO queue, other threads, shutdown."""

from __future__ import annotations

import threading

import pytest

from engine.errors import CancelledError, HearthError, QueueFullError
from engine.scheduler import Event, Scheduler

TIMEOUT = 10


class Recorder:
    def __init__(self):
        self.log = []
        self.ended = threading.Event()

    def on_started(self):
        self.log.append(("started",))

    def on_chunk(self, text):
        self.log.append(("chunk", text))

    def on_progress(self, fraction, message):
        self.log.append(("progress", fraction, message))

    def on_event(self, name, payload):
        self.log.append(("event", name, payload))

    def on_done(self, result):
        self.log.append(("done", result))

    def on_failed(self, error):
        self.log.append(("failed", type(error).__name__, str(error)))

    def on_cancelled(self, partial):
        self.log.append(("cancelled", partial))

    def on_ended(self):
        self.log.append(("ended",))
        self.ended.set()


def talker(session, *, on_text, on_progress, cancel, on_event, words=("a", "b")):
    for word in words:
        on_text(word)
    on_progress(0.5, "half")
    on_event("step", {"n": 1})
    return "-".join(words)


def blocker(session, *, on_text, on_progress, cancel, gate: threading.Event, started: threading.Event = None):
    if started is not None:
        started.set()
    on_text("partial")
    while not cancel.cancelled:
        if gate.wait(0.01):
            return "opened"
    raise CancelledError()


def failing(session, *, on_text, on_progress, cancel, error):
    on_text("x")
    raise error


@pytest.fixture
def scheduler():
    s = Scheduler(max_queue=4)
    yield s
    s.shutdown(timeout=TIMEOUT)


def test_lifecycle_in_order_and_result(scheduler):
    rec = Recorder()
    handle = scheduler.submit(talker, label="talk", listener=rec, words=("x", "y"))
    assert handle.result(TIMEOUT) == "x-y"
    assert rec.ended.wait(TIMEOUT)
    assert rec.log == [("started",), ("chunk", "x"), ("chunk", "y"), ("progress", 0.5, "half"),
                       ("event", "step", {"n": 1}), ("done", "x-y"), ("ended",)]
    assert handle.state == "done" and handle.label == "talk"


def test_one_argument_on_event_is_named_event(scheduler):
    def task(session, *, on_text, on_progress, cancel, on_event=None):
        on_event({"loss": 1.0})
        return 1

    handle = scheduler.submit(task)
    kinds = [(e.kind, e.data) for e in handle.events(TIMEOUT)]
    assert ("event", ("event", {"loss": 1.0})) in kinds


def test_task_without_on_event_gets_none_passed(scheduler):
    def task(session, *, on_text, on_progress, cancel):
        return "fine"

    assert scheduler.submit(task).result(TIMEOUT) == "fine"


def test_failure_is_delivered_and_raised(scheduler):
    rec = Recorder()
    handle = scheduler.submit(failing, listener=rec, error=HearthError("bad input"))
    with pytest.raises(HearthError, match="bad input"):
        handle.result(TIMEOUT)
    assert rec.ended.wait(TIMEOUT)
    assert rec.log[-2:] == [("failed", "HearthError", "bad input"), ("ended",)]
    assert handle.state == "failed"


def test_a_bug_in_a_task_fails_it_and_the_thread_lives_on(scheduler, capsys):
    handle = scheduler.submit(failing, error=ZeroDivisionError("oops"))
    with pytest.raises(ZeroDivisionError):
        handle.result(TIMEOUT)
    assert "ZeroDivisionError" in capsys.readouterr().err  # the traceback is logged
    assert scheduler.submit(talker).result(TIMEOUT) == "a-b"


def test_cancel_running_sets_its_token(scheduler):
    rec, started = Recorder(), threading.Event()
    handle = scheduler.submit(blocker, listener=rec, gate=threading.Event(), started=started)
    assert started.wait(TIMEOUT)
    assert handle.state == "running" and scheduler.running() is handle
    handle.cancel()
    with pytest.raises(CancelledError):
        handle.result(TIMEOUT)
    assert rec.ended.wait(TIMEOUT)
    assert rec.log == [("started",), ("chunk", "partial"), ("cancelled", None), ("ended",)]


def test_cancel_queued_never_starts(scheduler):
    gate, started = threading.Event(), threading.Event()
    first = scheduler.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    ran = []
    rec = Recorder()
    second = scheduler.submit(lambda session, **kw: ran.append(1), listener=rec)
    assert scheduler.queue_length() == 1
    second.cancel()
    assert rec.log == [("cancelled", None), ("ended",)]  # at once, without waiting for the first
    assert second.state == "cancelled" and scheduler.queue_length() == 0
    gate.set()
    assert first.result(TIMEOUT) == "opened"
    assert scheduler.submit(talker).result(TIMEOUT) == "a-b"  # the queue moved on
    assert ran == []


def test_cancelled_with_partial_result(scheduler):
    class Partial:
        finish_reason = "cancelled"

    partial = Partial()
    rec = Recorder()
    handle = scheduler.submit(lambda session, **kw: partial, listener=rec)
    with pytest.raises(CancelledError) as info:
        handle.result(TIMEOUT)
    assert info.value.partial is partial
    assert rec.ended.wait(TIMEOUT)
    assert rec.log[-2:] == [("cancelled", partial), ("ended",)]


def test_fifo_order(scheduler):
    gate, started = threading.Event(), threading.Event()
    scheduler.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    order = []
    handles = [scheduler.submit(lambda session, *, i, **kw: order.append(i), i=i) for i in range(4)]
    gate.set()
    for handle in handles:
        handle.result(TIMEOUT)
    assert order == [0, 1, 2, 3]


def test_queue_full_is_typed_with_retry_after(scheduler):
    gate, started = threading.Event(), threading.Event()
    scheduler.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    for _ in range(4):
        scheduler.submit(talker)
    with pytest.raises(QueueFullError) as info:
        scheduler.submit(talker)
    assert info.value.retry_after >= 1.0 and info.value.queued == 4
    gate.set()


def test_events_and_result_from_other_threads(scheduler):
    gate, started = threading.Event(), threading.Event()
    handle = scheduler.submit(blocker, gate=gate, started=started)
    seen, results = [], []

    def read():
        seen.append([e.kind for e in handle.events(TIMEOUT)])

    def wait():
        results.append(handle.result(TIMEOUT))

    threads = [threading.Thread(target=read), threading.Thread(target=wait)]
    for t in threads:
        t.start()
    assert started.wait(TIMEOUT)
    gate.set()
    for t in threads:
        t.join(TIMEOUT)
    assert seen == [["started", "chunk", "done", "ended"]]
    assert results == ["opened"]
    # Read after the end: the whole history again, then the iterator stops.
    assert [e for e in handle.events(TIMEOUT)][-2:] == [Event("done", "opened"), Event("ended")]


def test_listener_that_raises_does_not_kill_the_thread(scheduler, capsys):
    class Bad(Recorder):
        def on_chunk(self, text):
            raise RuntimeError("listener bug")

        def on_done(self, result):
            raise RuntimeError("listener bug")

    bad, good = Bad(), Recorder()
    handle = scheduler.submit(talker, listener=bad)
    handle.subscribe(good)
    assert handle.result(TIMEOUT) == "a-b"
    assert bad.ended.wait(TIMEOUT) and good.ended.wait(TIMEOUT)
    assert good.log[-2:] == [("done", "a-b"), ("ended",)]
    assert "listener bug" in capsys.readouterr().err
    assert scheduler.submit(talker, words=("z",)).result(TIMEOUT) == "z"


def test_late_subscriber_gets_the_outcome_once(scheduler):
    handle = scheduler.submit(talker)
    handle.result(TIMEOUT)
    late = Recorder()
    handle.subscribe(late)
    assert late.log == [("done", "a-b"), ("ended",)]


def test_tasks_share_the_session(scheduler):
    def put(session, **kw):
        session.state["x"] = 42

    def get(session, **kw):
        return session.state["x"]

    scheduler.submit(put)
    assert scheduler.submit(get).result(TIMEOUT) == 42


def test_shutdown_cancels_queued_and_running():
    s = Scheduler()
    gate, started = threading.Event(), threading.Event()
    running = s.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    queued = s.submit(talker)
    assert s.shutdown(timeout=TIMEOUT)
    assert running.state == "cancelled" and queued.state == "cancelled"
    with pytest.raises(HearthError):
        s.submit(talker)


def test_shutdown_without_cancel_lets_the_running_task_finish():
    s = Scheduler()
    gate, started = threading.Event(), threading.Event()
    running = s.submit(blocker, gate=gate, started=started)
    assert started.wait(TIMEOUT)
    s.shutdown(cancel_running=False, wait=False)
    gate.set()
    assert running.result(TIMEOUT) == "opened"


def test_import_is_torch_free():
    import subprocess
    import sys

    code = "import sys, engine.scheduler; print('torch' in sys.modules, 'PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

