"""Errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``, never with a 200.

Every refusal of the server is an :class:`APIError`; the app turns it into a JSON
response with its status and headers (``Retry-After`` for a full queue).
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def unsupported(param: str, what: str) -> APIError:
    """A field the server understands but does not implement: refused, never silently ignored."""
    return APIError(400, f"'{param}' is not supported by this server: {what}", param=param,
                    code="unsupported_parameter")


def unauthorized(message: str) -> APIError:
    return APIError(401, message, type="authentication_error", code="invalid_api_key")


def not_found(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(404, message, type="not_found_error", param=param, code=code)


def too_large(limit: int) -> APIError:
    return APIError(413, f"The request body is larger than this server's limit of {limit} bytes.",
                    code="request_too_large")


def busy(retry_after: float, queued: int, status: int = 429) -> APIError:
    seconds = max(1, int(round(retry_after)))
    return APIError(status, f"The server is busy: {queued} requests are waiting. Try again in {seconds} s.",
                    type="rate_limit_error" if status == 429 else "server_error", code="queue_full",
                    headers={"Retry-After": str(seconds)})


def context_overflow(prompt_tokens: int, context_length: int, max_tokens: int | None, param: str) -> APIError:
    if max_tokens is None or prompt_tokens >= context_length:
        detail = f"your prompt has {prompt_tokens} tokens"
    else:
        detail = (f"you requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, "
                  f"{max_tokens} for the completion)")
    return APIError(400, f"This model's maximum context length is {context_length} tokens, but {detail}. "
                         "Please shorten the prompt or ask for fewer tokens.",
                    param=param, code="context_length_exceeded")


def from_engine_error(error: BaseException) -> APIError:
    """A task's failure, as the client should see it."""
    from engine.errors import ContextOverflowError, HearthError, ModelNotLoadedError, QueueFullError

    if isinstance(error, ContextOverflowError):
        return context_overflow(error.prompt_tokens, error.context_length, error.max_tokens,
                                getattr(error, "param", "messages"))
    if isinstance(error, QueueFullError):
        return busy(error.retry_after, error.queued)
    if isinstance(error, HearthError) and getattr(error, "param", None):  # the task refused one field
        return bad_request(str(error), error.param, "unsupported_value")
    if isinstance(error, ModelNotLoadedError):
        return APIError(503, str(error), type="server_error", code="model_not_loaded", headers={"Retry-After": "5"})
    if isinstance(error, HearthError):
        return APIError(500, str(error), type="server_error", code=type(error).__name__)
    return APIError(500, f"Internal error: {type(error).__name__}: {error}", type="server_error")
