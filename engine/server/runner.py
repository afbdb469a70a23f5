"""Run the app on uvicorn in its own thread: no signal handlers, the app passed as an object,
logging left to Hearth (uvicorn's own configuration is switched off).

The window and ``hearth-cli serve`` both use :class:`ServerThread`; ``stop()`` ends it cleanly
(open streams are cancelled, which cancels their generation).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from engine.errors import HearthError


class ServerError(HearthError):
    """The server could not start (the port is taken, the address is not this machine's...)."""


class _Server:
    """uvicorn.Server without signal handling: the process (Qt, or the CLI) owns its signals."""

    def __new__(cls, config: Any):
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        return Quiet(config)


class ServerThread:
    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.host = host
        self.requested_port = port
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3, ws="none")
        self.server = _Server(config)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 15.0) -> "ServerThread":
        """Start serving; returns once the socket listens, or raises ServerError saying why not."""
        self.thread = threading.Thread(target=self._run, name="hearth-server", daemon=True)
        self.thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self.server.started and self.thread.is_alive() and waited < timeout:
            deadline.wait(0.02)
            waited += 0.02
        if not self.server.started:
            self.stop()
            reason = f" ({self.error})" if self.error and str(self.error) not in ("", "1") else ""
            raise ServerError(f"The server could not listen on {self.host}:{self.requested_port}: the port is "
                              f"probably in use by another program, or the address is not this machine's{reason}.")
        return self

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # uvicorn calls sys.exit(1) when it cannot bind
            self.error = exc

    @property
    def port(self) -> int:
        """The port actually bound (the requested one, or the one the OS chose for port 0)."""
        for server in getattr(self.server, "servers", []) or []:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.requested_port

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.server.started

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)
            if self.thread.is_alive():  # a stuck stream: drop the connections
                self.server.force_exit = True
                self.thread.join(timeout)
