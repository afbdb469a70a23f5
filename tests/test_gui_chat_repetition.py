"""A reply cut because it repeated itself is marked, and one click carries it on with the guard off."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.generation import REPETITION_NOTICE, GenerationResult
from test_gui_store_chat import fake_load


def fake_chat(session, *, on_text=None, on_progress=None, cancel=None, messages=(), system_prompt="",
              sampling=None, model_path=None):
    on_text("The design of the Creative Commons")
    return GenerationResult(text="The design of the Creative Commons", new_tokens=12, prompt_tokens=10,
                            finish_reason="repetition", tok_s=50.0, ttft_s=0.01, elapsed_s=0.1,
                            notice=REPETITION_NOTICE)


def fake_continue(session, *, on_text=None, on_progress=None, cancel=None, messages=(), partial="",
                  system_prompt="", sampling=None, model_path=None):
    session.state["continued"] = (partial, sampling.repetition_guard)
    on_text(" Creative Commons.")
    return GenerationResult(text=" Creative Commons.", new_tokens=3, prompt_tokens=10, finish_reason="eos",
                            tok_s=50.0, ttft_s=0.01, elapsed_s=0.1)


@pytest.fixture
def window(qtbot, monkeypatch):
    import engine.tasks
    import gui.chat.view
    from fake_window import open_main_window

    monkeypatch.setattr(engine.tasks, "load_task", fake_load)
    monkeypatch.setattr(gui.chat.view, "chat_task", fake_chat)
    monkeypatch.setattr(engine.tasks, "continue_task", fake_continue)
    win = open_main_window(qtbot)
    yield win
    win.close()


def test_a_looping_reply_is_marked_and_continued_anyway_with_the_guard_off(qtbot, window):
    from gui.chat.delegate import ChatDelegate

    chat = window.chat
    assert chat.continue_button.isHidden()
    with qtbot.waitSignal(chat.reply_finished, timeout=10000):
        chat.input.setPlainText("Describe the licence")
        qtbot.keyClick(chat.input, Qt.Key.Key_Return)
    reply = chat.model.items[-1]
    assert reply.meta["finish_reason"] == "repetition"
    assert "repeating itself" in ChatDelegate._status(reply.meta, False)
    assert window.notice_banner.isVisible() and "repeat" in window.notice_banner.text()
    assert chat.continue_button.isVisible() and chat.continue_button.isEnabled()
    with qtbot.waitSignal(chat.reply_finished, timeout=10000):
        qtbot.mouseClick(chat.continue_button, Qt.MouseButton.LeftButton)
    assert window.client.session.state["continued"] == ("The design of the Creative Commons", False)
    assert chat.model.items[-1].content == "The design of the Creative Commons Creative Commons."
    assert chat.model.items[-1].meta["finish_reason"] == "eos" and chat.continue_button.isHidden()
