"""A model on an OpenAI-compatible server, taken by the engine's generation functions like a LoadedModel.

``chat``, ``generate`` and ``complete_code`` in the engine hand over to the methods of the same
names here when ``lm.is_remote`` (the engine's core never imports this package). Chat uses
``/v1/chat/completions`` (the server applies its model's chat template), raw text and code use
``/v1/completions`` (code with ``suffix``, the server's fill-in-the-middle, when it has one).
What needs the weights here (fine-tuning, the lab, comparing tuned models, continuing a reply
in place) raises :class:`NeedsLocalModelError` with a sentence saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from engine.cancel import CancelToken
from engine.errors import HearthError
from engine.remote.client import DEFAULT_CONTEXT, RemoteServer
from engine.remote.estimate import EstimatingTokenizer

REMOTE_SCHEME = "remote://"


class NeedsLocalModelError(HearthError, AttributeError):
    """A feature needs local weights. (An AttributeError too: ``getattr(lm, "model", None)`` probes stay quiet.)"""

    def __init__(self, what: str, name: str = "") -> None:
        super().__init__(f"{what} needs a model whose weights are on this computer; {name or 'the current model'} "
                         "runs on a server. Choose a local model in the Model box.")


@dataclass
class RemoteModel:
    server: RemoteServer
    name: str  # the server's model id
    context_length: int = DEFAULT_CONTEXT
    context_known: bool = False  # False: the server did not say; DEFAULT_CONTEXT is a guess
    tokenizer: Any = field(default_factory=EstimatingTokenizer)
    extras: dict = field(default_factory=dict)
    is_remote: bool = True

    @property
    def path(self) -> str:
        """What the window remembers and ``Session.model_for`` compares: never a file path."""
        return remote_path(self.server.base_url, self.name)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def eos_token_ids(self) -> set[int]:
        return set()

    @property
    def model(self) -> Any:
        raise NeedsLocalModelError("This", self.name)

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "device": f"server {self.host}", "dtype": "remote",
                "context_length": self.context_length, "parameters": 0, "remote": True, "host": self.host,
                "base_url": self.server.base_url}

    # ---- generation (called by engine.chat_generation / generation / texttools.code_completion) ----
    def chat(self, messages: Sequence[Any], sampling: Any = None, *, system_prompt: str = "", on_text=None,
             cancel: CancelToken | None = None) -> Any:
        from engine.config import SamplingConfig
        from engine.remote.stream import stream_request

        sampling = sampling or SamplingConfig()
        turns = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
        turns += [m.to_dict() for m in messages if not (m.role == "system" and system_prompt.strip())]
        client = self.server.client()
        return stream_request(lambda: _create(client.chat.completions.create, model=self.name, messages=turns,
                                              **_sampling_fields(sampling)),
                              chat=True, base_url=self.server.base_url, model=self.name, on_text=on_text, cancel=cancel)

    def generate(self, prompt: str, sampling: Any = None, *, on_text=None, cancel: CancelToken | None = None,
                 suffix: str | None = None) -> Any:
        from engine.config import SamplingConfig
        from engine.remote.stream import stream_request

        if not isinstance(prompt, str):
            raise HearthError("A server model continues text, not token ids.")
        sampling = sampling or SamplingConfig()
        client = self.server.client()
        extra = {"suffix": suffix} if suffix is not None else {}
        return stream_request(lambda: _create(
            client.completions.create, model=self.name, prompt=prompt, **extra, **_sampling_fields(sampling)),
            chat=False, base_url=self.server.base_url, model=self.name,
            on_text=on_text, cancel=cancel)

    def continue_reply(self, *args: Any, **kwargs: Any) -> Any:
        raise NeedsLocalModelError("Continuing a reply in place", self.name)

    def complete_code(self, request: Any, *, on_text=None, cancel: CancelToken | None = None) -> Any:
        """Code at the cursor: the server's FIM through ``suffix``, else the prefix alone; cut at a boundary."""
        from engine.remote.errors import RemoteError
        from engine.texttools.code_boundary import Boundary, trim_completion
        from engine.texttools.code_completion import CompletionResult

        boundary = Boundary(request.prefix, request.suffix, request.language, request.max_lines)
        sampling = request.sampling.with_(max_new_tokens=request.max_new_tokens)
        inner = _LinkedToken(cancel)
        text = {"value": ""}

        def collect(chunk: str) -> None:
            text["value"] += chunk
            if boundary.find_cut(text["value"]) is not None:
                inner.cancel()  # enough: stop the server's generation

        mode = "fim" if request.use_fim and request.suffix else "prefix"
        try:
            result = self.generate(request.prefix, sampling, on_text=collect, cancel=inner,
                                   suffix=request.suffix if mode == "fim" else None)
        except RemoteError:
            if mode != "fim":
                raise
            mode, text["value"] = "prefix", ""  # the server has no fill-in-the-middle for this model
            result = self.generate(request.prefix, sampling, on_text=collect, cancel=inner)
        if cancel is not None and cancel.cancelled:
            return CompletionResult("", mode, "cancelled", result.prompt_tokens)
        cut = boundary.find_cut(text["value"], final=True)
        body = trim_completion(text["value"][:cut] if cut is not None else text["value"])
        if body and on_text:
            on_text(body)
        reason = "boundary" if cut is not None else ("length" if result.finish_reason == "length" else "eos")
        return CompletionResult(body, mode, reason, result.prompt_tokens)


class _LinkedToken(CancelToken):
    """Cancelled by its own ``cancel()`` or by the user's token."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self._outer = outer

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self._outer is not None and self._outer.cancelled)


def _create(call: Any, **fields: Any) -> Any:
    """Start a stream that reports its usage; servers that refuse ``stream_options`` are asked without it."""
    import openai

    try:
        return call(stream=True, stream_options={"include_usage": True}, **fields)
    except openai.BadRequestError as exc:
        if "stream_options" not in str(exc):
            raise
        return call(stream=True, **fields)


def _sampling_fields(sampling: Any) -> dict:
    """SamplingConfig as OpenAI fields; Hearth's extras (top_k, min_p, repetition_penalty) only when set."""
    fields: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                              "max_tokens": sampling.max_new_tokens}
    if sampling.seed is not None:
        fields["seed"] = sampling.seed
    if sampling.stop:
        fields["stop"] = list(sampling.stop)[:4]
    extra: dict[str, Any] = {}
    if sampling.top_k:
        extra["top_k"] = sampling.top_k
    if sampling.min_p:
        extra["min_p"] = sampling.min_p
    if sampling.repetition_penalty != 1.0:
        extra["repetition_penalty"] = sampling.repetition_penalty
    if extra:
        fields["extra_body"] = extra  # llama.cpp, vLLM and Hearth read these; others ignore or refuse
    return fields


def remote_path(base_url: str, model: str) -> str:
    return f"{REMOTE_SCHEME}{base_url}#{model}"


def parse_remote_path(path: Any) -> tuple[str, str] | None:
    """``remote://http://host:port/v1#model`` -> (base_url, model); None if it is not a remote path."""
    if not isinstance(path, str) or not path.startswith(REMOTE_SCHEME):
        return None
    base_url, _, model = path[len(REMOTE_SCHEME):].partition("#")
    return base_url, model


def connect_model(server: RemoteServer, model: str | None = None) -> RemoteModel:
    """Ask the server for its models and return the chosen one (the first when ``model`` is None)."""
    from engine.remote.client import list_models
    from engine.remote.errors import RemoteError, RemoteModelNotFoundError

    models = list_models(server)
    if not models:
        raise RemoteError(f"The server at {server.base_url} lists no models.")
    chosen = models[0] if model is None else next((m for m in models if m.id == model), None)
    if chosen is None:
        names = ", ".join(m.id for m in models[:10])
        raise RemoteModelNotFoundError(f"The server at {server.base_url} has no model named '{model}' "
                                       f"(it has: {names}).")
    return RemoteModel(server, chosen.id, chosen.context_length or DEFAULT_CONTEXT,
                       chosen.context_length is not None)
