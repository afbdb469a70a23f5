"""The window as a server (Server view), and the window on a server (a second Hearth process)."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("openai")

from engine.tasks import load_task as REAL_LOAD_TASK  # noqa: E402  (the window fixture swaps in a fake)
from server_helpers import KEY, ServeProcess  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
INFO = {"name": "FakeModel", "path": "/fake", "device": "cpu", "dtype": "float32", "context_length": 2048,
        "parameters": 1}


def fake_load(session, *, on_text=None, on_progress=None, cancel=None, config=None):
    return dict(INFO)


@pytest.fixture(scope="module")
def long_model_dir(tmp_path_factory):
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-long"), context=4096)


@pytest.fixture
def remote_server(long_model_dir, tmp_path_factory):
    proc = ServeProcess(long_model_dir, tmp_path_factory.mktemp("serve"))
    yield proc
    proc.kill()


@pytest.fixture
def window(qtbot, monkeypatch):
    import engine.tasks
    from fake_window import open_main_window

    monkeypatch.setattr(engine.tasks, "load_task", fake_load)
    win = open_main_window(qtbot)
    yield win
    win.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect_remote(qtbot, win, url: str) -> str:
    from engine.remote.model import remote_path
    from gui.remote_dialog import ConnectDialog

    dialog = ConnectDialog(win)
    dialog.url.setText(url)
    dialog.key.setText(KEY)
    dialog._fetch()
    qtbot.waitUntil(lambda: dialog.models.count() > 0, timeout=60000)
    assert "model(s) on 127.0.0.1" in dialog.status.text()
    dialog._accept()
    server, model = dialog.chosen
    with qtbot.waitSignal(win.model_changed, timeout=60000):
        win.load_model(remote_path(server.base_url, model))
    win.model_picker.remember(remote_path(server.base_url, model))
    return model


def ask(qtbot, win, text: str, **sampling):
    from PySide6.QtCore import Qt

    from engine.config import SamplingConfig

    win.sampling_panel.set_config(SamplingConfig(temperature=0, **sampling))
    chat = win.chat
    chat.input.setPlainText(text)
    qtbot.keyClick(chat.input, Qt.Key.Key_Return)


def test_chat_through_a_second_hearth_server(qtbot, window, remote_server):
    model = connect_remote(qtbot, window, remote_server.base_url)
    assert "runs on the server 127.0.0.1:" in window.status_model.text()
    labels = [window.model_picker.itemText(i) for i in range(window.model_picker.count())]
    assert f"{model} (remote · 127.0.0.1:{remote_server.base_url.split(':')[2].split('/')[0]})" in labels
    chat = window.chat
    # A whole reply.
    with qtbot.waitSignal(chat.reply_finished, timeout=60000) as done:
        ask(qtbot, window, "Hello there!", max_new_tokens=8)
    assert done.args[0] is not None and done.args[0].decoder == "remote"
    assert chat.model.items[-1].role == "assistant"
    # Stop mid-reply.
    with qtbot.waitSignal(chat.reply_finished, timeout=60000) as stopped:
        ask(qtbot, window, "Tell me about the sea.", max_new_tokens=3000)
        qtbot.waitUntil(lambda: chat.model.items[-1].content != "", timeout=60000)
        chat.stop()
    assert stopped.args[0].finish_reason == "cancelled"
    assert "remote" in str(window.model_info.get("dtype"))
    # The server dies mid-reply: what arrived stays, and the error says what happened.
    with qtbot.waitSignal(chat.reply_finished, timeout=60000) as broken:
        ask(qtbot, window, "And the ships?", max_new_tokens=3000)
        qtbot.waitUntil(lambda: chat.model.items[-1].content != "", timeout=60000)
        remote_server.kill()
    assert broken.args[0] is None
    roles = [item.role for item in chat.model.items]
    assert roles[-2:] == ["assistant", "error"]
    assert chat.model.items[-2].content and "broke mid-reply" in chat.model.items[-1].content


def test_server_view_serves_the_windows_model(qtbot, window, tiny_model_dir, monkeypatch):
    import openai

    import engine.tasks

    monkeypatch.setattr(engine.tasks, "load_task", REAL_LOAD_TASK)
    with qtbot.waitSignal(window.model_changed, timeout=60000):
        window.load_model(str(tiny_model_dir))
    view = window.views["Server"]
    assert "Off" in view.state.text()
    view.port.setValue(free_port())
    view.toggle.click()
    assert view.server is not None and view.server.running
    api = openai.OpenAI(base_url=view.url.text(), api_key=view.key.text(), max_retries=0, timeout=60)
    name = api.models.list().data[0].id
    assert name == window.model_info["name"]
    reply = api.chat.completions.create(model=name, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert reply.usage.completion_tokens >= 1
    qtbot.waitUntil(lambda: view.log.rowCount() >= 2, timeout=30000)
    assert view.log.item(view.log.rowCount() - 1, 6).text() == "200"
    qtbot.waitUntil(lambda: "Serving" in view.state.text(), timeout=5000)
    window.show_view("Server")
    window.grab().save(str(window_shot()))  # to look at: the Server view while it serves
    old = view.key.text()
    view.renew_key()
    assert view.key.text() != old and view.server.running
    with pytest.raises(openai.AuthenticationError):
        api.models.list()
    view.toggle.click()
    assert view.server is None and "Off" in view.state.text()
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=view.url.text(), api_key=view.key.text(), max_retries=0, timeout=5).models.list()


def window_shot():
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "hearth-server-view.png"


def test_forgetting_a_server_removes_its_models_and_key(qtbot, window):
    from engine.remote import servers
    from gui.remote_dialog import ConnectDialog

    servers.add_server("http://127.0.0.1:9/v1", ["far-model"], "k")
    window.model_picker.refresh()
    labels = lambda: [window.model_picker.itemText(i) for i in range(window.model_picker.count())]  # noqa: E731
    assert "far-model (remote · 127.0.0.1:9)" in labels()
    dialog = ConnectDialog(window)
    assert dialog.url.text() == "http://127.0.0.1:9/v1" and dialog.key.text() == "k"
    dialog.forget.click()
    assert servers.saved_servers() == [] and servers.load_key("http://127.0.0.1:9/v1") == ""
    assert "far-model (remote · 127.0.0.1:9)" not in labels()
