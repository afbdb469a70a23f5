"""Hearth speaks to a server it did not write: llama.cpp's OpenAI server serving the default GGUF.

Runs only where llama-cpp-python is installed with its server (``make bench-llamacpp`` builds it);
the same client checks as against Hearth's own server, then the remote backend through it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("openai")
pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python with its server is not installed "
                                               "(make bench-llamacpp)")

pytestmark = pytest.mark.integration
KEY = "llama-test-key"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from engine.default_model import find_default_gguf

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(find_default_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--api_key", KEY, "--n_ctx", "2048"],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}/v1"
    import openai

    api = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=10)
    deadline = time.monotonic() + 120
    while True:
        try:
            model = api.models.list().data[0].id
            break
        except openai.OpenAIError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"llama_cpp.server did not start: {open(log.name).read()[-2000:]}")
            time.sleep(0.5)
    yield url, model
    proc.terminate()
    proc.wait(30)
    log.close()


def api_for(url: str, key: str = KEY):
    import openai

    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)


def test_the_client_checks_pass_against_llama_cpp(llama_server):
    import openai

    url, model = llama_server
    api = api_for(url)
    messages = [{"role": "user", "content": "Name a colour."}]
    whole = api.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    assert whole.choices[0].finish_reason in ("stop", "length") and whole.usage.completion_tokens >= 1
    chunks = list(api.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0,
                                              stream=True))
    assert len({c.id for c in chunks}) == 1
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] in ("stop", "length") and not any(reasons[:-1])
    text = api.completions.create(model=model, prompt="One, two, three,", max_tokens=8, temperature=0)
    assert text.choices[0].text
    with pytest.raises(openai.AuthenticationError):
        api_for(url, "wrong").chat.completions.create(model=model, messages=messages, max_tokens=2)


def test_the_remote_backend_chats_through_llama_cpp(llama_server):
    from engine.cancel import CancelToken
    from engine.chat_generation import chat
    from engine.config import ChatMessage, SamplingConfig
    from engine.remote import RemoteServer, connect_model

    url, model = llama_server
    remote = connect_model(RemoteServer(url, KEY), model)
    result = chat(remote, [ChatMessage("user", "Say hello.")], SamplingConfig(temperature=0, max_new_tokens=16))
    assert result.text and result.finish_reason in ("stop", "length", "eos")
    token = CancelToken()
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        token.cancel()

    stopped = chat(remote, [ChatMessage("user", "Write a long story.")],
                   SamplingConfig(temperature=0, max_new_tokens=1000), on_text=on_text, cancel=token)
    assert stopped.finish_reason == "cancelled" and stopped.text == "".join(pieces)
