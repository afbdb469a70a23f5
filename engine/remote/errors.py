"""What can go wrong talking to an OpenAI-compatible server, as typed engine errors.

``translate(exc, server)`` turns the ``openai`` package's exceptions into these, with a
sentence a person can act on.
"""

from __future__ import annotations

import re

from engine.errors import GenerationError, HearthError


class RemoteError(HearthError):
    """A server answered with an error, or could not be asked."""


class ServerUnreachableError(RemoteError):
    pass


class RemoteAuthError(RemoteError):
    pass


class RemoteModelNotFoundError(RemoteError):
    pass


class RemoteBusyError(RemoteError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RemoteContextError(RemoteError, GenerationError):
    """The server says the prompt does not fit its model's context."""


class ConnectionDroppedError(RemoteError):
    """The connection broke mid-reply; ``partial`` keeps what arrived (its finish reason is 'interrupted')."""

    def __init__(self, message: str, partial=None) -> None:
        self.partial = partial
        super().__init__(message)


def translate(exc: BaseException, base_url: str, model: str = "") -> RemoteError:
    import openai

    where = f"the server at {base_url}"
    if isinstance(exc, openai.APITimeoutError):
        return ServerUnreachableError(f"{where} did not answer in time. Is it running, and is the address right?")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ServerUnreachableError(f"Cannot reach {where}: {_reason(cause)}. Check the address, and that the "
                                      "server is running.")
    if isinstance(exc, openai.APIStatusError):
        message = _message(exc)
        status = exc.status_code
        if status in (401, 403):
            return RemoteAuthError(f"{where} refused the API key ({status}: {message}). Check the key in "
                                   "Model → Connect to a server….")
        if status == 404:
            if model and ("model" in message.lower() or _param(exc) == "model"):
                return RemoteModelNotFoundError(f"{where} has no model named '{model}' ({message}).")
            return RemoteError(f"{where} answered 404: {message}. Is the base URL right (it usually ends in /v1)?")
        if status == 429 or (status == 503 and exc.response.headers.get("retry-after")):
            retry = exc.response.headers.get("retry-after")
            seconds = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
            later = f" Try again in {seconds:.0f} s." if seconds else " Try again shortly."
            return RemoteBusyError(f"{where} is busy ({message}).{later}", seconds)
        if status == 400 and _is_context(exc, message):
            return RemoteContextError(f"The prompt is too long for the model on {where}: {message}")
        return RemoteError(f"{where} answered {status}: {message}")
    return RemoteError(f"Talking to {where} failed: {type(exc).__name__}: {exc}")


def _message(exc) -> str:
    body = exc.body if isinstance(getattr(exc, "body", None), dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else body
    return str(error.get("message") or getattr(exc, "message", "") or exc)


def _param(exc) -> str:
    body = exc.body if isinstance(getattr(exc, "body", None), dict) else {}
    error = body.get("error", body)
    return str(error.get("param") or "") if isinstance(error, dict) else ""


def _is_context(exc, message: str) -> bool:
    body = exc.body if isinstance(getattr(exc, "body", None), dict) else {}
    code = str((body.get("error", body) or {}).get("code", "")) if isinstance(body.get("error", body), dict) else ""
    return code == "context_length_exceeded" or bool(re.search(r"context (length|window|size)|too long", message,
                                                                re.I))


def _reason(cause: BaseException) -> str:
    text = str(cause) or type(cause).__name__
    if "refused" in text.lower():
        return "the connection was refused (nothing listens there)"
    if "name or service" in text.lower() or "nodename" in text.lower() or "getaddrinfo" in text.lower():
        return "the host name is unknown"
    return text
