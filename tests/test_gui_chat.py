"""The chat window against a fake engine: streaming, stop, errors, a window that never blocks."""

import time

import pytest

from engine.errors import ModelLoadError
from engine.generation import GenerationResult

INFO = {"name": "FakeModel", "path": "/fake", "device": "cpu", "dtype": "float32",
        "context_length": 2048, "parameters": 1}


def fake_load(session, *, on_text=None, on_progress=None, cancel=None, config=None):
    on_progress(0.5, "Loading fake…")
    if config is not None and config.path == "/broken":
        raise ModelLoadError("/broken", "the weights file is truncated.")
    return dict(INFO)


def fake_chat(session, *, on_text=None, on_progress=None, cancel=None, messages=(), system_prompt="",
              sampling=None, model_path=None):
    """Streams 'word0 word1 ...' slowly; stops when cancelled; the last message decides errors."""
    last = messages[-1].content
    if last == "fail":
        from engine.errors import GenerationError

        raise GenerationError("The fake model broke.")
    words = []
    for i in range(200 if last == "long" else 5):
        if cancel.cancelled:
            break
        words.append(f"word{i} ")
        on_text(f"word{i} ")
        time.sleep(0.01)
    reason = "cancelled" if cancel.cancelled else "eos"
    return GenerationResult(text="".join(words), new_tokens=len(words), prompt_tokens=10, finish_reason=reason,
                            tok_s=100.0, ttft_s=0.01, elapsed_s=0.1, notice="")


@pytest.fixture
def window(qtbot, monkeypatch):
    import engine.tasks
    import gui.chat.view
    from fake_window import open_main_window

    monkeypatch.setattr(engine.tasks, "load_task", fake_load)
    monkeypatch.setattr(gui.chat.view, "chat_task", fake_chat)
    win = open_main_window(qtbot)
    win.error_banner.hide()  # views that inspect the (fake) model may have complained
    yield win
    win.client.shutdown()


def send(qtbot, win, text):
    from PySide6.QtCore import Qt

    chat = win.chat
    chat.input.setPlainText(text)
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)


def test_enter_sends_and_the_reply_streams_into_the_view(qtbot, window):
    chat = window.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=5000) as blocker:
        send(qtbot, window, "hello")
    assert blocker.args[0].finish_reason == "eos"
    items = chat.model.items
    assert [i.role for i in items] == ["user", "assistant"]
    assert items[1].content == "word0 word1 word2 word3 word4 "
    assert not items[1].streaming and items[1].meta["tok_s"] == 100.0
    assert chat.input.toPlainText() == ""
    assert "tok/s" in window.status_stats.text() and "context" in window.status_stats.text()


def test_shift_enter_makes_a_new_line_and_empty_input_does_nothing(qtbot, window):
    from PySide6.QtCore import Qt

    chat = window.chat
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    assert chat.model.rowCount() == 0 and chat.task is None
    qtbot.keyClicks(chat.input, "a")
    qtbot.keyClick(chat.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(chat.input, "b")
    assert chat.input.toPlainText() == "a\nb" and chat.model.rowCount() == 0


def test_stop_ends_the_reply_and_keeps_what_was_written(qtbot, window):
    chat = window.chat
    send(qtbot, window, "long")
    qtbot.waitUntil(lambda: len(chat.model.items) == 2 and chat.model.items[1].content.count("word") >= 3,
                    timeout=5000)
    assert chat.stop_button.isEnabled()
    with qtbot.waitSignal(chat.reply_finished, timeout=5000) as blocker:
        qtbot.keyClick(chat, __import__("PySide6.QtCore").QtCore.Qt.Key.Key_Escape)
    assert blocker.args[0].finish_reason == "cancelled"
    reply = chat.model.items[1]
    assert 3 <= reply.content.count("word") < 200 and reply.meta["finish_reason"] == "cancelled"
    assert chat.send_button.isEnabled() and not chat.stop_button.isEnabled()


def test_errors_show_in_the_window_and_the_app_keeps_working(qtbot, window):
    chat = window.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        send(qtbot, window, "fail")
    assert window.error_banner.isVisible() and "fake model broke" in window.error_banner.text()
    assert chat.model.items[-1].role == "error"
    with qtbot.waitSignal(chat.reply_finished, timeout=5000) as blocker:
        send(qtbot, window, "hello again")
    assert blocker.args[0].finish_reason == "eos"


def test_regenerate_replaces_the_last_reply(qtbot, window):
    chat = window.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        send(qtbot, window, "hello")
    assert chat.regenerate_button.isEnabled()
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        chat.regenerate_button.click()
    assert [i.role for i in chat.model.items] == ["user", "assistant"]


def test_edit_puts_the_message_back_and_restarts_from_there(qtbot, window):
    chat = window.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        send(qtbot, window, "first")
    with qtbot.waitSignal(chat.reply_finished, timeout=5000):
        send(qtbot, window, "second")
    chat.edit_message(2)
    assert chat.input.toPlainText() == "second" and len(chat.model.items) == 2


def test_window_stays_responsive_while_streaming(qtbot, window):
    """A 5 ms timer keeps ticking while the worker streams (no timing assertion: it must tick)."""
    from PySide6.QtCore import QTimer

    ticks = []
    timer = QTimer(interval=5, timeout=lambda: ticks.append(1))
    timer.start()
    with qtbot.waitSignal(window.chat.reply_finished, timeout=10000):
        send(qtbot, window, "long")
    timer.stop()
    assert len(ticks) >= 20  # 200 words × 10 ms of work on the worker: the GUI loop ran throughout


def test_a_huge_paste_is_sent_and_shown_shortened(qtbot, window):
    chat = window.chat
    with qtbot.waitSignal(chat.reply_finished, timeout=10000):
        send(qtbot, window, "x" * 100_000)
    assert len(chat.model.items[0].content) == 100_000
    from gui.chat.delegate import shown_text

    assert len(shown_text(chat.model.items[0].content)) < 21_000


def test_a_model_that_fails_to_load_shows_an_error_and_keeps_the_old_one(qtbot, window):
    window.load_model("/broken")
    qtbot.waitUntil(lambda: "truncated" in window.error_banner.text(), timeout=30000)
    assert "truncated" in window.error_banner.text()
    assert window.model_info["name"] == "FakeModel"
    assert window.chat.send_button.isEnabled()


def test_closing_mid_reply_stops_generation(qtbot, window):
    chat = window.chat
    send(qtbot, window, "long")
    qtbot.waitUntil(lambda: chat.model.items[-1].content != "", timeout=5000)
    window.close()
    assert not window.client.scheduler.alive()  # the model's thread stopped
    assert chat.model.items[-1].content  # what came is kept


def test_device_and_precision_choices_reload_the_model_with_them(qtbot, window, monkeypatch):
    import engine.tasks

    seen = []

    def recording_load(session, *, on_text=None, on_progress=None, cancel=None, config=None):
        seen.append(config)
        return dict(INFO)

    monkeypatch.setattr(engine.tasks, "load_task", recording_load)
    bf16 = [a for a in window.device_menu.groups["dtype"].actions() if a.data() == "bfloat16"][0]
    bf16.trigger()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[-1].dtype == "bfloat16" and seen[-1].device == "auto"


def test_a_view_that_fails_to_start_does_not_take_the_app_down(qtbot, monkeypatch):
    import gui.main_window
    from gui.main_window import MainWindow
    from gui.settings import configure_settings

    configure_settings()
    monkeypatch.setattr(gui.main_window, "VIEWS", gui.main_window.VIEWS[:1] + [("Broken", "gui.no_such_module:View")])
    win = MainWindow()
    qtbot.addWidget(win)
    assert "could not start" in win.views["Broken"].text()
    assert win.chat is not None
    win.client.shutdown()
