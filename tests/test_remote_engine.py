"""Remote models: the engine's chat, generate and code completion through a Hearth server."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

pytest.importorskip("openai")

from server_helpers import KEY, ServeProcess, serving  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def long_model_dir(tmp_path_factory):
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-long"), context=4096)


@pytest.fixture(scope="module")
def server(long_model_dir):
    with serving(long_model_dir) as (srv, _):
        yield srv


@pytest.fixture
def remote(server):
    from engine.remote import RemoteServer, connect_model

    return connect_model(RemoteServer(server.base_url, KEY))


def test_connect_lists_the_model_with_its_context(server, remote):
    assert remote.name == server.state.model().name
    assert remote.context_length == 4096 and remote.context_known
    assert remote.describe()["remote"] and remote.host.startswith("127.0.0.1:")
    assert remote.path.startswith("remote://")


def test_chat_and_generate_match_the_local_model(server, remote):
    from engine.chat_generation import chat
    from engine.config import ChatMessage, SamplingConfig
    from engine.generation import generate

    sampling = SamplingConfig(temperature=0, max_new_tokens=10, repetition_penalty=1.0, top_k=0, top_p=1.0,
                              repetition_guard=False)
    messages = [ChatMessage("user", "Hello there!")]
    chunks: list[str] = []
    far = chat(remote, messages, sampling, on_text=chunks.append)
    near = chat(server.state.model(), messages, sampling)
    assert far.text == near.text == "".join(chunks)
    assert far.new_tokens == near.new_tokens and far.decoder == "remote"
    assert generate(remote, "The sea is", sampling).text == generate(server.state.model(), "The sea is", sampling).text


def test_code_completion_falls_back_to_the_prefix_without_fim(remote):
    from engine.config import SamplingConfig
    from engine.texttools.code_completion import CompletionRequest, complete_code

    request = CompletionRequest(prefix="def add(a, b):\n    ", suffix="\n", language="python",
                                sampling=SamplingConfig(temperature=0, top_k=0, top_p=1.0))
    result = complete_code(remote, request)
    assert result.mode == "prefix"  # the tiny model has no FIM tokens: the server says 400, we retry
    assert result.finish_reason in ("boundary", "eos", "length")


def test_cancel_stops_a_remote_reply(remote):
    from engine.cancel import CancelToken
    from engine.chat_generation import chat
    from engine.config import ChatMessage, SamplingConfig

    token = CancelToken()
    chunks: list[str] = []

    def on_text(text: str) -> None:
        chunks.append(text)
        if len(chunks) == 2:
            token.cancel()

    result = chat(remote, [ChatMessage("user", "Hello")], SamplingConfig(temperature=0, max_new_tokens=3000),
                  on_text=on_text, cancel=token)
    assert result.finish_reason == "cancelled" and result.text == "".join(chunks)


def test_typed_errors(server):
    from engine.chat_generation import chat
    from engine.config import ChatMessage, SamplingConfig
    from engine.remote import RemoteModel, RemoteServer, connect_model
    from engine.remote.errors import (RemoteAuthError, RemoteContextError, RemoteModelNotFoundError,
                                      ServerUnreachableError)

    with pytest.raises(RemoteAuthError):
        connect_model(RemoteServer(server.base_url, "wrong"))
    with pytest.raises(RemoteModelNotFoundError):
        connect_model(RemoteServer(server.base_url, KEY), "no-such-model")
    with pytest.raises(ServerUnreachableError):
        connect_model(RemoteServer("http://127.0.0.1:9/v1", KEY))  # the discard port: nothing listens
    ghost = RemoteModel(RemoteServer(server.base_url, KEY), "no-such-model")
    with pytest.raises(RemoteModelNotFoundError):
        chat(ghost, [ChatMessage("user", "hi")], SamplingConfig(max_new_tokens=2))
    real = connect_model(RemoteServer(server.base_url, KEY))
    with pytest.raises(RemoteContextError, match="4096"):
        chat(real, [ChatMessage("user", "the sea " * 5000)], SamplingConfig(max_new_tokens=2))


def test_features_needing_weights_say_so(remote):
    from engine.remote.model import NeedsLocalModelError

    with pytest.raises(NeedsLocalModelError, match="weights"):
        remote.model.parameters()


def test_server_killed_mid_reply_keeps_what_arrived(long_model_dir, tmp_path):
    from engine.chat_generation import chat
    from engine.config import ChatMessage, SamplingConfig
    from engine.remote import RemoteServer, connect_model
    from engine.remote.errors import ConnectionDroppedError

    proc = ServeProcess(long_model_dir, tmp_path)
    try:
        remote = connect_model(RemoteServer(proc.base_url, KEY))
        chunks: list[str] = []
        killed = threading.Event()

        def on_text(text: str) -> None:
            chunks.append(text)
            if len(chunks) == 3 and not killed.is_set():
                killed.set()
                proc.kill()

        with pytest.raises(ConnectionDroppedError) as info:
            chat(remote, [ChatMessage("user", "Hello")], SamplingConfig(temperature=0, max_new_tokens=3000),
                 on_text=on_text)
        assert info.value.partial.finish_reason == "interrupted"
        assert info.value.partial.text == "".join(chunks) and chunks
    finally:
        proc.kill()


def test_keys_go_to_a_private_file_without_a_keychain(data_dir):
    from engine.remote import servers

    servers.add_server("http://127.0.0.1:8080/v1", ["m"], "secret-key")
    assert servers.load_key("http://127.0.0.1:8080/v1") == "secret-key"
    assert [s["base_url"] for s in servers.saved_servers()] == ["http://127.0.0.1:8080/v1"]
    if "keychain" not in servers.key_storage():
        path = data_dir / "remote" / "keys.json"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "secret-key" not in (data_dir / "remote" / "servers.json").read_text()


def test_estimating_tokenizer_round_trips():
    from engine.remote.estimate import EstimatingTokenizer

    tok = EstimatingTokenizer()
    text = "Hello, wörld! def add(a, b):\n    return a + b  # 東京 🙂 12345"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert len(text) / 4 <= len(ids) <= len(text)


def test_summarize_and_translate_run_through_the_server(server, remote):
    from engine.config import SamplingConfig
    from engine.errors import GenerationError
    from engine.texttools.summarize import SummaryConfig, summarize
    from engine.texttools.translate import TranslateRequest, translate

    sent: list[str] = []
    original = server.log.add

    def count(record) -> None:
        sent.append(record.path)
        original(record)

    server.log.add = count  # every request the tools make reaches the server's log
    try:
        text = "The sea is wide and the waves are high. Ships sail over the sea at night. " * 60
        try:  # a random tiny model may write nothing worth keeping; the requests are what matter here
            summarize(remote, text, SummaryConfig(length="short", max_new_tokens=8, max_chunk_tokens=256))
        except GenerationError as exc:
            assert "wrote nothing" in str(exc)
        assert sent.count("/v1/chat/completions") >= 2  # several pieces: the planner cut the text
        before = len(sent)
        result = translate(remote, TranslateRequest("Bonjour, comment allez-vous ?", "English",
                                                    sampling=SamplingConfig(temperature=0, max_new_tokens=8)))
        deadline = time.monotonic() + 30  # the log is written once the response has gone out
        while len(sent) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sent) > before and isinstance(result.text, str)
    finally:
        server.log.add = original
