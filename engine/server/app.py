"""The Starlette application: the OpenAI-compatible routes in front of the engine's scheduler.

Follow a request: :class:`Guard` checks the Host header and the key and logs the outcome;
the route reads the body (413 past the limit, 400 if not JSON), ``schemas`` validates it
(400 naming the field), the model name is checked (404), and the generation task is submitted
to the scheduler (429 + Retry-After when its queue is full). The route waits for the first
event, so a prompt that does not fit the context is a 400 before any token; then it answers
whole, or streams SSE. A client that disconnects cancels its task (the engine reads the
cancel token after every token).

More routes: a module ``engine/server/endpoints_<name>.py`` with ``routes(state) -> list[Route]``
is picked up by :func:`build_app` (``/v1/embeddings`` is meant to come this way); it can use
:func:`read_json`, :meth:`ServerState.require_model` and :meth:`ServerState.submit`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from engine.errors import QueueFullError
from engine.server.errors import APIError, bad_request, busy, from_engine_error, not_found, too_large
from engine.server.requestlog import RequestLog, RequestRecord
from engine.server.responses import Reply, model_card, usage_of
from engine.server.schemas import parse_chat, parse_completion
from engine.server.security import ServerConfig, bad_host, check_key, host_allowed
from engine.server.streaming import DONE_EVENT, TERMINAL, Bridge, race_disconnect, sse

LOG_KEY = "hearth.log"  # per-request facts the routes leave in the ASGI scope for the request log


class ServerState:
    """What the routes share: the settings, the scheduler, the request log."""

    def __init__(self, config: ServerConfig, scheduler: Any, log: RequestLog | None = None,
                 device: str = "default") -> None:
        self.config = config
        self.scheduler = scheduler
        self.log = log or RequestLog()
        self.device = device
        self.started = int(time.time())

    def model(self) -> Any:
        """The model the server serves: the scheduler session's current one, if it is local."""
        lm = self.scheduler.session(self.device).model
        return None if lm is None or getattr(lm, "is_remote", False) else lm

    def require_model(self, name: str) -> Any:
        lm = self.model()
        if lm is None:
            raise APIError(503, "No model is loaded in Hearth yet; try again in a moment.", type="server_error",
                           code="model_not_loaded", headers={"Retry-After": "5"})
        if name != lm.name:
            raise not_found(f"The model '{name}' does not exist on this server; it serves '{lm.name}' "
                            "(GET /v1/models lists it).", "model", "model_not_found")
        return lm

    def submit(self, fn: Any, listener: Any, label: str, **kwargs: Any) -> Any:
        try:
            return self.scheduler.submit(fn, label=label, device=self.device, listener=listener, **kwargs)
        except QueueFullError as exc:
            raise busy(exc.retry_after, exc.queued) from exc


async def read_json(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large(limit)
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON ({exc}).") from exc


def _note(request: Request, **facts: Any) -> None:
    request.scope.setdefault(LOG_KEY, {}).update(facts)


# ---- routes ------------------------------------------------------------------------------------------

async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def list_models(request: Request) -> Response:
    state: ServerState = request.app.state.hearth
    lm = state.model()
    data = [model_card(lm.name, state.started, lm.context_length)] if lm is not None else []
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    state: ServerState = request.app.state.hearth
    lm = state.model()
    name = request.path_params["name"]
    if lm is None or lm.name != name:
        raise not_found(f"The model '{name}' does not exist on this server.", "model", "model_not_found")
    return JSONResponse(model_card(lm.name, state.started, lm.context_length))


async def chat_completions(request: Request) -> Response:
    return await _generate(request, "chat")


async def completions(request: Request) -> Response:
    return await _generate(request, "completion")


async def _generate(request: Request, kind: str) -> Response:
    from engine.server.tasks import server_chat_task, server_completion_task

    state: ServerState = request.app.state.hearth
    body = await read_json(request, state.config.max_body_bytes)
    req = parse_chat(body) if kind == "chat" else parse_completion(body)
    lm = state.require_model(req.model)
    _note(request, model=lm.name)
    bridge = Bridge(asyncio.get_running_loop())
    task = server_chat_task if kind == "chat" else server_completion_task
    handle = state.submit(task, bridge, f"API {kind} for {_client(request)}", request=req)
    reply = Reply(kind, lm.name, req.logprobs)
    # Wait for the first text (or the outcome) before any header: errors keep their status.
    gone, first = await race_disconnect(bridge.next_text() if req.stream else _outcome(bridge), request.receive)
    if gone:
        handle.cancel()
        _note(request, status=499, note="client disconnected before the answer")
        return Response(status_code=499)
    event, data, entries = first
    if event == "failed":
        raise from_engine_error(data)
    if event == "cancelled":
        raise APIError(503, "The request was cancelled: the server is stopping.", type="server_error",
                       headers={"Retry-After": "5"})
    if not req.stream:
        _note(request, **_figures(data))
        return JSONResponse(reply.whole(data))
    return EventStream(_events(request, handle, bridge, reply, req.include_usage, first),
                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _outcome(bridge: Bridge) -> tuple[str, Any, list]:
    while True:
        event, data = await bridge.next()
        if event in TERMINAL:
            return event, data, []


async def _events(request: Request, handle: Any, bridge: Bridge, reply: Reply, include_usage: bool, first: tuple):
    ended = False
    try:
        opening = reply.first_chunk()
        if opening is not None:
            yield sse(opening)
        event, data, entries = first
        while True:
            if event == "chunk":
                yield sse(reply.text_chunk(data, entries))
            elif event == "done":
                yield sse(reply.final_chunk(data.finish_reason, entries))
                if include_usage:
                    yield sse(reply.usage_chunk(usage_of(data)))
                yield DONE_EVENT
                _note(request, **_figures(data))
                ended = True
                return
            else:  # failed after the first token, or cancelled by the server's shutdown
                error = from_engine_error(data) if event == "failed" else \
                    APIError(503, "The server stopped this request.", type="server_error")
                yield sse(error.body())
                _note(request, status=error.status, note=error.message)
                ended = True
                return
            event, data, entries = await bridge.next_text()
    finally:
        if not ended:  # the client went away mid-stream (or the server is stopping): stop generating
            handle.cancel()
            _note(request, note="client disconnected; generation cancelled")


def _figures(result: Any) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "tok_s": result.tok_s}


class EventStream(StreamingResponse):
    """SSE that always watches for the client going away (whatever ASGI spec version the server
    reports), so a disconnect cancels the generator, and with it the task, even between tokens."""

    media_type = "text/event-stream"

    async def __call__(self, scope, receive, send) -> None:
        stream = asyncio.ensure_future(self._stream(send))
        gone = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({stream, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, gone):
                task.cancel()
            await asyncio.gather(stream, gone, return_exceptions=True)

    async def _stream(self, send) -> None:
        try:
            await self.stream_response(send)
        except OSError:  # the socket closed under us
            pass


# ---- guard: Host header, key, request log -------------------------------------------------------------

class Guard:
    """ASGI middleware: refuses foreign Host headers and requests without the key; logs every request."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status: dict[str, int] = {}

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if not host_allowed(headers.get("host"), self.state.config):
                raise bad_host(headers.get("host"))
            if scope["path"].startswith("/v1") and scope["method"] != "OPTIONS":
                check_key(headers.get("authorization"), self.state.config.api_key)
        except APIError as exc:
            await error_response(exc)(scope, receive, send_logged)
        else:
            await self.app(scope, receive, send_logged)
        self._log(scope, status.get("code"), time.monotonic() - started)

    def _log(self, scope, code: int | None, seconds: float) -> None:
        facts = dict(scope.get(LOG_KEY, {}))
        client = scope.get("client") or ("?", 0)
        code = facts.pop("status", None) or code or 499
        record = RequestRecord(client=f"{client[0]}:{client[1]}", method=scope["method"], path=scope["path"],
                               status=code, seconds=seconds, **facts)
        self.state.log.add(record)


def error_response(error: APIError) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    _note(request, note=exc.message[:200])
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    error = APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", type=kind)
    return error_response(error)


def build_app(state: ServerState) -> Any:
    """The ASGI app: Starlette routes, wrapped in the guard (and CORS only if origins are listed)."""
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
    ]
    routes += _extra_routes(state)
    app = Starlette(routes=routes, exception_handlers={APIError: _api_error, HTTPException: _http_error})
    app.state.hearth = state
    guarded: Any = Guard(app, state)
    if state.config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        guarded = CORSMiddleware(guarded, allow_origins=list(state.config.cors_origins),
                                 allow_methods=["GET", "POST", "OPTIONS"],
                                 allow_headers=["Authorization", "Content-Type"])
    return guarded


def _extra_routes(state: ServerState) -> list[Route]:
    import engine.server as package

    routes: list[Route] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("endpoints_"):
            module = importlib.import_module(f"engine.server.{info.name}")
            routes += list(module.routes(state))
    return routes


def _client(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "?"
