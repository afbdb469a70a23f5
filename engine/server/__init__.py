"""Hearth as an OpenAI-compatible HTTP server (Starlette on uvicorn, in its own thread).

``LocalServer(config, scheduler).start()`` serves the scheduler session's current model;
the window and ``hearth-cli serve`` use it the same way. Modules: ``security`` (settings, key,
Host check, bind rules), ``schemas`` (request validation), ``tasks`` (the generation tasks),
``streaming`` + ``responses`` (SSE and response shapes), ``app`` (routes), ``runner``
(uvicorn thread), ``keys`` (the stored key), ``requestlog``.
"""

from __future__ import annotations

from typing import Any

from engine.server.requestlog import RequestLog, RequestRecord  # noqa: F401
from engine.server.security import ServerConfig  # noqa: F401


class LocalServer:
    """One running server: the app, its state and its uvicorn thread."""

    def __init__(self, config: ServerConfig, scheduler: Any, log: RequestLog | None = None,
                 device: str = "default") -> None:
        from engine.server.app import ServerState, build_app
        from engine.server.runner import ServerThread

        self.config = config
        self.state = ServerState(config, scheduler, log, device)
        self.thread = ServerThread(build_app(self.state), config.host, config.port)

    @property
    def log(self) -> RequestLog:
        return self.state.log

    def start(self) -> "LocalServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    @property
    def running(self) -> bool:
        return self.thread.running

    @property
    def port(self) -> int:
        return self.thread.port

    @property
    def base_url(self) -> str:
        from dataclasses import replace

        return replace(self.config, port=self.port).base_url
