"""The OpenAI-compatible server, through the official `openai` client, with a tiny model."""

from __future__ import annotations

import json
import threading
import time

import pytest

openai = pytest.importorskip("openai")
try:  # the HTTP package the openai client itself uses
    import httpx
except ImportError:  # newer openai releases ship it as httpx2
    import httpx2 as httpx

from server_helpers import KEY, ServeProcess, client, serving  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HELLO = [{"role": "user", "content": "Hello there! How are you today?"}]


@pytest.fixture(scope="module")
def long_model_dir(tmp_path_factory):
    """A tiny model with a long context, so a reply can be long enough to be cut off mid-way."""
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-long"), context=4096)


@pytest.fixture(scope="module")
def server(long_model_dir):
    with serving(long_model_dir) as (srv, scheduler):
        yield srv


@pytest.fixture(scope="module")
def api(server):
    return client(server)


@pytest.fixture(scope="module")
def tokenizer(long_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(long_model_dir)


def model_name(server) -> str:
    return server.state.model().name


def test_models_and_health(server, api):
    ids = [m.id for m in api.models.list().data]
    assert ids == [model_name(server)]
    assert "/" not in ids[0] and "\\" not in ids[0]  # a name, never a file path
    assert api.models.retrieve(ids[0]).id == ids[0]
    health = httpx.get(server.base_url.replace("/v1", "/health"))
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_chat_whole_answer_and_usage(server, api, tokenizer):
    from engine.chat_template import render

    reply = api.chat.completions.create(model=model_name(server), messages=HELLO, max_tokens=7, temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens == len(render(tokenizer, HELLO))
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert server.state.model().extras["decoder"].last_route == "fast int8"  # what `hearth-cli serve` runs on


def test_streaming_chat_matches_the_whole_answer(server, api):
    name = model_name(server)
    whole = api.chat.completions.create(model=name, messages=HELLO, max_tokens=12, temperature=0)
    chunks = list(api.chat.completions.create(model=name, messages=HELLO, max_tokens=12, temperature=0, stream=True,
                                              stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    reasons = [c.choices[0].finish_reason for c in with_choices]
    assert reasons[-1] == whole.choices[0].finish_reason and not any(reasons[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == whole.choices[0].message.content


def test_completions_and_stop_strings(server, api):
    name = model_name(server)
    prompt = "The sea is wide and"
    free = api.completions.create(model=name, prompt=prompt, max_tokens=20, temperature=0)
    text = free.choices[0].text
    assert free.choices[0].finish_reason == "length" and free.usage.completion_tokens == 20
    stop = text[len(text) // 2:len(text) // 2 + 2]
    if not stop.strip():
        pytest.skip("the tiny model's greedy text has no usable stop string")
    cut = api.completions.create(model=name, prompt=prompt, max_tokens=20, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[:text.index(stop)]
    assert stop not in cut.choices[0].text


def test_seed_gives_the_same_answer(server, api):
    name = model_name(server)
    ask = lambda seed: api.chat.completions.create(model=name, messages=HELLO, max_tokens=16, temperature=1.5,  # noqa
                                                   seed=seed).choices[0].message.content
    assert ask(1234) == ask(1234)
    assert len({ask(s) for s in (1, 2, 3, 4)}) > 1  # it does sample: seeds change the answer


def test_logprobs_are_the_models(server, api, tokenizer, long_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from engine.chat_template import render

    reply = api.chat.completions.create(model=model_name(server), messages=HELLO, max_tokens=5, temperature=0,
                                        logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)  # greedy picks the top token
        assert entry.logprob <= 0
    model = AutoModelForCausalLM.from_pretrained(long_model_dir).eval()
    ids = torch.tensor([render(tokenizer, HELLO)])
    with torch.no_grad():
        first = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
    assert content[0].logprob == pytest.approx(float(first.max()), abs=1e-3)
    legacy = api.completions.create(model=model_name(server), prompt="Hello", max_tokens=4, temperature=0, logprobs=2)
    lp = legacy.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == legacy.choices[0].text


def status_of(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    return info.value


def test_key_is_required(server):
    name = model_name(server)
    error = status_of(lambda: client(server, key="wrong-key").chat.completions.create(model=name, messages=HELLO))
    assert error.status_code == 401
    raw = httpx.post(server.base_url + "/chat/completions", json={"model": name, "messages": HELLO})
    assert raw.status_code == 401 and raw.json()["error"]["type"] == "authentication_error"
    assert httpx.get(server.base_url + "/models").status_code == 401


@pytest.mark.parametrize("fields,param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"n": 2}, "n"),
    ({"temperature": "hot"}, "temperature"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 1.0}, "frequency_penalty"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0]"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"frobnicate": True}, "frobnicate"),
])
def test_unsupported_or_wrong_fields_are_400_naming_the_field(server, api, fields, param):
    body = {"model": model_name(server), "messages": HELLO, "max_tokens": 4, **fields}
    error = status_of(lambda: api.chat.completions.create(**body) if "frobnicate" not in fields
                      else api.chat.completions.create(**{k: v for k, v in body.items() if k != "frobnicate"},
                                                       extra_body={"frobnicate": True}))
    assert error.status_code == 400
    assert error.body["param"] == param
    assert param.split("[")[0] in error.body["message"]


def test_http_errors(server, api):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    url = server.base_url + "/chat/completions"
    assert httpx.post(url, content=b"{not json", headers=headers).status_code == 400
    big = json.dumps({"model": model_name(server), "messages": [{"role": "user", "content": "x" * 5_000_000}]})
    too_big = httpx.post(url, content=big.encode(), headers=headers)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
    missing = status_of(lambda: api.chat.completions.create(model="no-such-model", messages=HELLO))
    assert missing.status_code == 404 and missing.body["param"] == "model"
    assert httpx.get(server.base_url + "/nothing-here", headers=headers).status_code == 404
    no_fim = status_of(lambda: api.completions.create(model=model_name(server), prompt="def f(", suffix=")",
                                                      max_tokens=4, stream=True))
    assert no_fim.status_code == 400 and no_fim.body["param"] == "suffix"  # the tiny model has no FIM tokens


def test_context_overflow_is_400_with_both_numbers_before_any_token(server, api):
    long = [{"role": "user", "content": "the sea is wide " * 3000}]
    error = status_of(lambda: api.chat.completions.create(model=model_name(server), messages=long, stream=True))
    assert error.status_code == 400 and error.body["code"] == "context_length_exceeded"
    assert "4096" in error.body["message"]
    error = status_of(lambda: api.chat.completions.create(model=model_name(server), messages=HELLO, max_tokens=5000))
    assert "4096" in error.body["message"] and "5000" in error.body["message"]


def test_foreign_host_header_is_refused(server):
    response = httpx.get(server.base_url + "/models", headers={"Authorization": f"Bearer {KEY}",
                                                               "Host": "evil.example.com"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_host"
    assert "access-control-allow-origin" not in {k.lower() for k in response.headers}


def test_full_queue_is_429_with_retry_after(long_model_dir):
    release = threading.Event()

    def blocker(session, *, on_text=None, on_progress=None, cancel=None):
        release.wait(30)

    with serving(long_model_dir, max_queue=1) as (srv, scheduler):
        running = scheduler.submit(blocker)
        while running.state == "queued":  # wait until the device thread has taken it
            running.wait(0.01)
        queued = scheduler.submit(blocker)  # waits: the queue is full now
        try:
            error = status_of(lambda: client(srv).chat.completions.create(model=srv.state.model().name,
                                                                          messages=HELLO))
            assert error.status_code == 429
            assert int(error.response.headers["Retry-After"]) >= 1
        finally:
            release.set()
            queued.wait(30)


def test_disconnect_mid_stream_cancels_the_generation(server, api):
    seen = []
    scheduler = server.state.scheduler
    stream = api.chat.completions.create(model=model_name(server), messages=HELLO, max_tokens=3000, temperature=0,
                                         stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen.append(chunk)
            if len(seen) == 1:
                handle = scheduler.running()
            if len(seen) == 3:
                break
    stream.close()
    assert handle is not None and handle.wait(60)
    assert handle.state == "cancelled"
    with pytest.raises(Exception) as info:
        handle.result(1)
    assert info.value.partial.completion_tokens < 3000


def test_disconnect_while_waiting_for_a_whole_answer_cancels_it(server, monkeypatch):
    scheduler = server.state.scheduler
    decoder = scheduler.session().model.extras.get("decoder")
    if decoder is not None:  # an answer that cannot end before the client gives up, however fast decoding gets
        step = decoder._step
        monkeypatch.setattr(decoder, "_step", lambda *a, **k: time.sleep(0.01) or step(*a, **k))
    body = {"model": model_name(server), "messages": HELLO, "max_tokens": 3000, "temperature": 0}
    seen = {}

    def watch() -> None:  # the request's task, once the device thread runs it
        while scheduler.running() is None:
            threading.Event().wait(0.01)
        seen["handle"] = scheduler.running()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with pytest.raises(httpx.TimeoutException):  # the client gives up and closes the connection
        httpx.post(server.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=httpx.Timeout(2.0, connect=5.0))
    watcher.join(30)
    handle = seen["handle"]
    assert handle.wait(60) and handle.state == "cancelled"


def test_twenty_concurrent_streams_all_complete_unmixed(server, api):
    name = model_name(server)
    prompts = [f"Message {i}: {'the sea ' * (i % 5)}hello {i}" for i in range(20)]
    expected = {p: api.chat.completions.create(model=name, messages=[{"role": "user", "content": p}],
                                               max_tokens=10, temperature=0).choices[0].message.content
                for p in prompts}
    got: dict[str, str] = {}
    errors: list[BaseException] = []

    def one(prompt: str) -> None:
        try:
            ids, text = set(), []
            for chunk in client(server).chat.completions.create(
                    model=name, messages=[{"role": "user", "content": prompt}], max_tokens=10, temperature=0,
                    stream=True):
                ids.add(chunk.id)
                if chunk.choices:
                    text.append(chunk.choices[0].delta.content or "")
            assert len(ids) == 1
            got[prompt] = "".join(text)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    assert got == expected


def test_request_log_records_requests(server, api):
    records: list = []
    logged = threading.Event()

    def listener(record) -> None:
        if record.path == "/v1/completions":
            records.append(record)
            logged.set()

    server.log.subscribe(listener)
    try:
        api.completions.create(model=model_name(server), prompt="Hello", max_tokens=3, temperature=0)
        assert logged.wait(30)  # the record is written once the response has gone out
    finally:
        server.log.unsubscribe(listener)
    record = records[0]
    assert record.status == 200 and record.model == model_name(server) and record.completion_tokens == 3
    assert record.client.startswith("127.0.0.1:")


def test_bind_rules():
    from engine.errors import InvalidConfigError
    from engine.server import ServerConfig

    with pytest.raises(InvalidConfigError):
        ServerConfig(host="0.0.0.0", api_key="k")  # the network needs an explicit yes
    with pytest.raises(InvalidConfigError):
        ServerConfig(api_key="")  # never without a key
    assert ServerConfig(host="0.0.0.0", api_key="k", allow_network=True).warning


def test_cors_only_for_listed_origins(long_model_dir):
    with serving(long_model_dir, cors_origins=("http://localhost:3000",)) as (srv, _):
        url = srv.base_url + "/models"
        allowed = httpx.options(url, headers={"Origin": "http://localhost:3000",
                                              "Access-Control-Request-Method": "GET"})
        assert allowed.headers.get("access-control-allow-origin") == "http://localhost:3000"
        other = httpx.options(url, headers={"Origin": "http://evil.example.com",
                                            "Access-Control-Request-Method": "GET"})
        assert other.headers.get("access-control-allow-origin") is None


def test_hearth_cli_serve(tiny_model_dir, tmp_path):
    replies = []
    for _ in range(2):  # the second start reads the fast path's packed weights from the data folder's cache
        proc = ServeProcess(tiny_model_dir, tmp_path)
        try:
            import openai as oa

            api = oa.OpenAI(base_url=proc.base_url, api_key=KEY, max_retries=0, timeout=60)
            name = api.models.list().data[0].id
            reply = api.chat.completions.create(model=name, messages=HELLO, max_tokens=4, temperature=0)
            assert reply.usage.completion_tokens >= 1
            # A short prompt (a 7-row chunk) once crashed the server with cached weights (SIGSEGV).
            replies.append(api.completions.create(model=name, prompt="def add(a, b):", max_tokens=5,
                                                  temperature=0).choices[0].text)
            assert proc.interrupt() == 0, proc.output()
            assert "POST /v1/chat/completions 200" in proc.output()
        finally:
            proc.kill()
    assert len(list((tmp_path / "fastpath").glob("*.safetensors"))) == 1
    assert replies[0] == replies[1]


@pytest.fixture(scope="module")
def fim_model_dir(tmp_path_factory):
    """A tiny model whose tokenizer has StarCoder's fill-in-the-middle tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tiny_model import make_tokenizer

    tokenizer = make_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-fim")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_suffix_uses_the_models_fim_tokens(fim_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(fim_model_dir)
    prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
    with serving(fim_model_dir) as (srv, _):
        api = client(srv)
        reply = api.completions.create(model=srv.state.model().name, prompt=prefix, suffix=suffix, max_tokens=6,
                                       temperature=0)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert reply.usage.prompt_tokens == 3 + len(encode(prefix)) + len(encode(suffix))  # <pre> p <suf> s <mid>
    assert reply.choices[0].finish_reason in ("stop", "length")
