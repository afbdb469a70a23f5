"""The connection to one OpenAI-compatible server: the official ``openai`` client, set up strictly.

Explicit timeouts (a short one to connect, a long one between streamed bytes), no retries
(``max_retries=0``: a failed request is reported, never silently sent again), and every
error translated into the typed ones of ``engine.remote.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from engine.errors import InvalidConfigError
from engine.remote.errors import translate

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0  # a big model on a busy server can think a long time before its first token
DEFAULT_CONTEXT = 4096  # when the server does not say (OpenAI's own API does not)


@dataclass(frozen=True)
class RemoteServer:
    base_url: str
    api_key: str = ""

    def __post_init__(self) -> None:
        url = self.base_url.strip().rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidConfigError(f"'{self.base_url}' is not a server address: use http://host:port/v1")
        object.__setattr__(self, "base_url", url)

    @property
    def host(self) -> str:
        return urlparse(self.base_url).netloc

    def client(self, read_timeout: float = READ_TIMEOUT) -> Any:
        import openai

        timeout = openai.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
        # Servers without keys still get a header; "none" is what llama.cpp and vLLM users send.
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "none", max_retries=0, timeout=timeout)


@dataclass(frozen=True)
class RemoteModelInfo:
    id: str
    context_length: int | None  # None when the server does not say
    owned_by: str = ""


def list_models(server: RemoteServer, timeout: float = 15.0) -> list[RemoteModelInfo]:
    """The server's models (GET /v1/models)."""
    import openai

    try:
        page = server.client(read_timeout=timeout).models.list()
    except openai.OpenAIError as exc:
        raise translate(exc, server.base_url) from exc
    return [RemoteModelInfo(m.id, _context_of(m), getattr(m, "owned_by", "") or "") for m in page.data]


def _context_of(card: Any) -> int | None:
    """Servers that say their context do it differently: Hearth, vLLM, llama.cpp, LM Studio..."""
    extra = dict(getattr(card, "model_extra", None) or {})
    meta = extra.get("meta") if isinstance(extra.get("meta"), dict) else {}
    for value in (extra.get("context_length"), extra.get("max_model_len"), extra.get("max_context_length"),
                  meta.get("n_ctx"), meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None
