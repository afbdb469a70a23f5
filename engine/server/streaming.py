"""From the scheduler's thread to the HTTP client: a listener that feeds the event loop, and SSE.

:class:`Bridge` is a scheduler listener: each chunk, logprob batch and the outcome are put
on an ``asyncio.Queue`` with ``call_soon_threadsafe``, so the request's coroutine reads them
in order without blocking the loop. :func:`sse` frames one JSON object as a server-sent event.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

TERMINAL = ("done", "failed", "cancelled")
DONE_EVENT = b"data: [DONE]\n\n"


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def _put(self, kind: str, data: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, data))
        except RuntimeError:  # the loop is closed: the server stopped, nobody is listening
            pass

    # ---- scheduler listener (called on the device's thread) ----
    def on_chunk(self, text: str) -> None:
        self._put("chunk", text)

    def on_event(self, name: str, payload: Any) -> None:
        if name == "logprobs":
            self._put("logprobs", payload)

    def on_done(self, result: Any) -> None:
        self._put("done", result)

    def on_failed(self, error: BaseException) -> None:
        self._put("failed", error)

    def on_cancelled(self, partial: Any) -> None:
        self._put("cancelled", partial)

    # ---- for the request's coroutine ----
    async def next(self) -> tuple[str, Any]:
        return await self.queue.get()

    async def next_text(self) -> tuple[str, Any, list]:
        """The next chunk of text with the logprob entries of its tokens, or the outcome.

        Returns ("chunk", text, entries) or (terminal kind, data, entries still pending).
        """
        entries: list = []
        while True:
            kind, data = await self.queue.get()
            if kind == "logprobs":
                entries.extend(data)
                continue
            return kind, data, entries


async def wait_for_disconnect(receive) -> None:
    """Return when the client has gone (the ASGI ``http.disconnect`` message)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def race_disconnect(awaitable, receive) -> tuple[bool, Any]:
    """Await ``awaitable`` unless the client disconnects first. Returns (disconnected, value)."""
    work = asyncio.ensure_future(awaitable)
    gone = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        done, _ = await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if work in done:
        return False, work.result()
    work.cancel()
    return True, None


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"
