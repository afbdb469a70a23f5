"""Stream one request from a server into ``on_text``, with cancel, and a GenerationResult at the end.

Cancel is honoured between chunks and also while waiting for one: a watcher closes the HTTP
response as soon as the token is set, which ends the read at once (and the server, seeing the
client go, stops generating). A connection that breaks after text has arrived raises
:class:`ConnectionDroppedError` carrying what arrived, finish reason ``interrupted``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.generation import FINISH_CANCELLED, FINISH_EOS, FINISH_LENGTH, FINISH_STOP, GenerationResult
from engine.remote.errors import ConnectionDroppedError, ServerUnreachableError, translate

REASONS = {"stop": FINISH_STOP, "length": FINISH_LENGTH, "eos": FINISH_EOS}


def stream_request(create: Callable[[], Any], *, chat: bool, base_url: str, model: str,
                   on_text: Callable[[str], None] | None, cancel: CancelToken | None) -> GenerationResult:
    import openai

    cancel = cancel or CancelToken()
    on_text = on_text or (lambda text: None)
    started = time.perf_counter()
    cancel.raise_if_cancelled()
    try:
        stream = create()
    except openai.OpenAIError as exc:
        raise translate(exc, base_url, model) from exc
    pieces: list[str] = []
    state: dict[str, Any] = {"first": None, "finish": None, "usage": None, "chunks": 0}
    finished = threading.Event()
    watcher = threading.Thread(target=_close_on_cancel, args=(stream, cancel, finished), daemon=True)
    watcher.start()
    try:
        for chunk in stream:
            _take(chunk, chat, pieces, state, on_text)
            if cancel.cancelled:
                break
    except Exception as exc:  # noqa: BLE001 — the stream's read failed: a cancel, or the connection broke
        if not cancel.cancelled:
            partial = _result(pieces, state, started, "interrupted")
            if pieces:
                raise ConnectionDroppedError(f"The connection to the server at {base_url} broke mid-reply: "
                                             f"{_why(exc)}. What arrived is kept.", partial) from exc
            if isinstance(exc, openai.OpenAIError):
                raise translate(exc, base_url, model) from exc
            raise ServerUnreachableError(f"The connection to the server at {base_url} broke before the reply "
                                         f"began: {_why(exc)}.") from exc
    finally:
        finished.set()
        stream.close()
    if cancel.cancelled:
        return _result(pieces, state, started, FINISH_CANCELLED)
    if state["finish"] is None:  # the stream ended without saying why: it was cut
        raise ConnectionDroppedError(f"The server at {base_url} ended the reply without finishing it. What "
                                     "arrived is kept.", _result(pieces, state, started, "interrupted"))
    return _result(pieces, state, started, REASONS.get(state["finish"], FINISH_STOP))


def _take(chunk: Any, chat: bool, pieces: list[str], state: dict, on_text: Callable[[str], None]) -> None:
    if getattr(chunk, "usage", None):
        state["usage"] = chunk.usage
    for choice in chunk.choices or []:
        text = (choice.delta.content if chat else choice.text) or ""
        if text:
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["chunks"] += 1
            pieces.append(text)
            on_text(text)
        if choice.finish_reason:
            state["finish"] = choice.finish_reason


def _result(pieces: list[str], state: dict, started: float, reason: str) -> GenerationResult:
    end = time.perf_counter()
    first = state["first"] or end
    usage = state["usage"]
    new = usage.completion_tokens if usage else state["chunks"]  # without usage: chunks ≈ tokens
    prompt = usage.prompt_tokens if usage else 0
    decode = end - first
    return GenerationResult(text="".join(pieces), new_tokens=new, prompt_tokens=prompt, finish_reason=reason,
                            tok_s=(new - 1) / decode if new > 1 and decode > 0 else 0.0, ttft_s=first - started,
                            elapsed_s=end - started, decoder="remote")


def _close_on_cancel(stream: Any, cancel: CancelToken, finished: threading.Event) -> None:
    while not finished.wait(0.05):
        if cancel.cancelled:
            try:
                stream.close()  # the reading thread's next read fails at once
            except Exception:  # noqa: BLE001 — closing twice, or mid-read: either way it is closed
                pass
            return


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
