"""A committed word is never lost: streaming replies, kill -9, several processes on one database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.config import SamplingConfig
from engine.store import COMPLETE, INTERRUPTED, STREAMING, ReplyRecorder, Store

ROOT = Path(__file__).resolve().parents[1]

# A process that streams a never-ending reply into the store, like a long generation.
STREAMER = textwrap.dedent("""
    import sys, time
    from engine.store import ReplyRecorder, Store
    store = Store()
    conv = store.create_conversation()
    user = store.add_message(conv.id, "user", "Tell me a very long story")
    rec = ReplyRecorder(store, conv.id, user.id, model="fake", interval=0.05)
    print(conv.id, rec.message_id, flush=True)
    i = 0
    while True:
        rec.on_text(f"word{i} ")
        i += 1
        time.sleep(0.005)
""")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stored(store, message_id):
    return store.db.query_one("SELECT content, status FROM messages WHERE id = ?", (message_id,))


def test_recorder_commits_about_once_a_second_and_finishes_with_figures():
    clock = FakeClock()
    with Store() as store:
        conv = store.create_conversation()
        user = store.add_message(conv.id, "user", "Hi")
        rec = ReplyRecorder(store, conv.id, user.id, model="tiny", sampling=SamplingConfig(temperature=0.2),
                            clock=clock)
        assert tuple(stored(store, rec.message_id)) == ("", STREAMING)  # exists before the first token
        rec.on_text("Hel")
        clock.now = 0.5
        rec.on_text("lo")
        assert stored(store, rec.message_id)["content"] == ""  # throttled
        clock.now = 1.01
        rec.on_text(" wor")
        assert stored(store, rec.message_id)["content"] == "Hello wor"
        rec.on_text("ld")

        class Result:
            text, finish_reason, tok_s, new_tokens = "Hello world", "eos", 12.345, 4

        done = rec.finish(Result())
    assert (done.content, done.status, done.finish_reason, done.tok_s, done.new_tokens) == (
        "Hello world", COMPLETE, "eos", 12.35, 4)
    assert done.model == "tiny" and done.sampling.temperature == 0.2


def test_a_failed_generation_keeps_the_partial_reply_interrupted_and_it_can_be_continued():
    with Store() as store:
        conv = store.create_conversation()
        user = store.add_message(conv.id, "user", "Hi")
        rec = ReplyRecorder(store, conv.id, user.id)
        rec.on_text("Once upon")
        broken = rec.interrupt()
        assert (broken.content, broken.status) == ("Once upon", INTERRUPTED)
        more = ReplyRecorder(store, conv.id, None, continue_id=broken.id)
        more.on_text(" a time.")
        done = more.finish()
        assert (done.id, done.content, done.status) == (broken.id, "Once upon a time.", COMPLETE)


def start_streamer(data_dir) -> tuple[subprocess.Popen, int, int]:
    env = dict(os.environ, HEARTH_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", STREAMER], stdout=subprocess.PIPE, env=env, text=True)
    conv_id, message_id = map(int, proc.stdout.readline().split())
    return proc, conv_id, message_id


def wait_for_text(store, message_id, at_least: int) -> str:
    for _ in range(1000):
        content = stored(store, message_id)["content"]
        if len(content) >= at_least:
            return content
        time.sleep(0.01)
    raise AssertionError("the streaming process committed nothing")


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_kill_9_while_streaming_leaves_a_healthy_database_with_the_partial_reply(data_dir):
    proc, conv_id, message_id = start_streamer(data_dir)
    try:
        with Store() as watcher:  # a second instance opening meanwhile must not interrupt a live writer
            seen = wait_for_text(watcher, message_id, 200)
            assert stored(watcher, message_id)["status"] == STREAMING
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(data_dir / "hearth.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store() as store:  # the next start notices the writer is gone
        thread = store.current_path(conv_id)
        assert [m.role for m in thread] == ["user", "assistant"]
        assert thread[0].content == "Tell me a very long story"
        reply = thread[1]
        assert reply.status == INTERRUPTED and reply.content.startswith(seen)
        assert reply.content.startswith("word0 word1 word2 ")


def test_a_live_writer_in_another_process_is_not_marked_interrupted(data_dir):
    proc, conv_id, message_id = start_streamer(data_dir)
    try:
        with Store() as other:
            wait_for_text(other, message_id, 20)
            assert other.db.recover_interrupted() == 0
            assert stored(other, message_id)["status"] == STREAMING
            other.add_message(conv_id, "user", "written beside the streamer")  # shared access works
    finally:
        proc.terminate()
        proc.wait(timeout=30)


WRITER = textwrap.dedent("""
    import sys
    from engine.store import Store
    with Store() as store:
        conv = store.create_conversation(sys.argv[1])
        for i in range(150):
            store.add_message(conv.id, "user", f"{sys.argv[1]} {i}")
""")


def test_two_processes_writing_at_once_lose_nothing(data_dir):
    env = dict(os.environ, HEARTH_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name], env=env) for name in ("left", "right")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store() as store:
        counts = {c.title: c.message_count for c in store.list_conversations()}
    assert counts == {"left": 150, "right": 150}


def test_lock_files_of_dead_processes_are_swept_and_live_ones_kept(data_dir):
    from engine.store.owner import WriterLock

    locks = data_dir / "locks"
    locks.mkdir()
    (locks / "deadbeef.lock").write_text("")  # a process that died while idle left this
    live = WriterLock(locks)
    try:
        with Store():
            pass
        assert sorted(p.name for p in locks.iterdir()) == [live.path.name]
    finally:
        live.release()
    assert list(locks.iterdir()) == []
