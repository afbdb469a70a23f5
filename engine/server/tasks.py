"""The generation tasks the server submits to the scheduler.

Unlike the window's chat, an API request is never shortened to fit: a prompt that does not
fit the context (with the tokens asked for) raises :class:`ContextOverflowError` before the
first token, and the client gets a 400 with both numbers. Text streams through ``on_text``;
with logprobs, each token's entry is sent first as the event ``("logprobs", [entries])``,
so the HTTP side attaches it to the next text chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import ContextOverflowError, HearthError
from engine.generation import FINISH_CANCELLED, FINISH_LENGTH, generate_ids
from engine.server.schemas import ChatRequest, CompletionRequest

if TYPE_CHECKING:
    from engine.loader import LoadedModel
    from engine.session import Session


class RequestRejected(HearthError):
    """The request is valid JSON but cannot be served by this model (e.g. ``suffix`` without FIM tokens)."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


@dataclass
class ServedResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length", or "cancelled" (the scheduler then reports it as cancelled)
    logprobs: list[dict] = field(default_factory=list)  # every token's entry, for non-streaming answers
    tok_s: float = 0.0
    ttft_s: float = 0.0
    elapsed_s: float = 0.0


def server_chat_task(session: Session, *, on_text=None, on_progress=None, cancel=None, on_event=None,
                     request: ChatRequest) -> ServedResult:
    from engine.chat_template import FALLBACK_STOP, ensure_chat_template, render

    lm = session.require_model()
    ensure_chat_template(lm.tokenizer)
    ids = render(lm.tokenizer, [m.to_dict() for m in request.messages])
    stop = tuple(request.sampling.stop)
    if getattr(lm.tokenizer, "hearth_fallback_template", False):
        stop += FALLBACK_STOP
    return _run(lm, ids, request, stop, "messages", on_text, on_event, cancel)


def server_completion_task(session: Session, *, on_text=None, on_progress=None, cancel=None, on_event=None,
                           request: CompletionRequest) -> ServedResult:
    lm = session.require_model()
    extra_stops: set[int] = set()
    if request.suffix is not None:
        ids, extra_stops = _fim_prompt(lm, request)
    elif isinstance(request.prompt, str):
        ids = list(lm.tokenizer(request.prompt)["input_ids"])
    else:
        ids = list(request.prompt)
        vocab = lm.model.config.vocab_size
        bad = [t for t in ids if not 0 <= t < vocab]
        if bad:
            raise RequestRejected("prompt", f"Token id {bad[0]} is outside this model's vocabulary (0..{vocab - 1}).")
    if not ids:
        bos = lm.tokenizer.bos_token_id
        ids = [bos if bos is not None else sorted(lm.eos_token_ids)[0]]
    if extra_stops:
        from engine.texttools.code_decode import _WithStops

        lm = _WithStops(lm, extra_stops)
    return _run(lm, ids, request, tuple(request.sampling.stop), "prompt", on_text, on_event, cancel)


def _fim_prompt(lm: LoadedModel, request: CompletionRequest) -> tuple[list[int], set[int]]:
    """``prefix`` + ``suffix`` in the model's fill-in-the-middle format (the code tool's tokens)."""
    from engine.texttools.code_completion import _extra_stop_ids, fim_format

    fim = fim_format(lm.tokenizer)
    if fim is None or not isinstance(request.prompt, str):
        raise RequestRejected("suffix", f"The model {lm.name} has no fill-in-the-middle tokens, so 'suffix' cannot be "
                                        "used with it (and it needs a text prompt).")
    encode = lambda text: list(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []  # noqa
    pre, suf, mid, order = fim
    prefix, suffix = encode(request.prompt), encode(request.suffix or "")
    ids = [suf] + suffix + [pre] + prefix if order == "spm" else [pre] + prefix + [suf] + suffix + [mid]
    return ids, _extra_stop_ids(lm.tokenizer)


def _run(lm: LoadedModel, ids: list[int], request, stop: tuple[str, ...], param: str, on_text, on_event,
         cancel) -> ServedResult:
    context = lm.context_length
    if len(ids) >= context or (request.max_tokens is not None and len(ids) + request.max_tokens > context):
        error = ContextOverflowError(len(ids), context, request.max_tokens)
        error.param = param
        raise error
    max_new = request.max_tokens or context - len(ids)
    sampling = request.sampling.with_(max_new_tokens=max_new, stop=stop)
    recorder = None
    if request.logprobs:
        recorder = LogprobRecorder(lm, request.top_logprobs, on_event)
        lm = _WithDecoder(lm, recorder)
    result = generate_ids(lm, ids, sampling, on_text=on_text, cancel=cancel)
    reason = {FINISH_LENGTH: "length", FINISH_CANCELLED: "cancelled"}.get(result.finish_reason, "stop")
    return ServedResult(result.text, result.prompt_tokens, result.new_tokens, reason,
                        recorder.all if recorder else [], result.tok_s, result.ttft_s, result.elapsed_s)


class _WithDecoder:
    """The loaded model, seen with a different decode loop (the logprob recorder)."""

    def __init__(self, lm: LoadedModel, decoder: Any) -> None:
        self._lm = lm
        self.extras = {**lm.extras, "decoder": decoder}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)


class LogprobRecorder:
    """A decode loop for ``generate_ids``: transformers' own, with a forward hook on the model that
    keeps each step's logits, so every chosen token gets the model's log-probability (before
    temperature and top-p, as OpenAI reports them) and its ``top`` most likely alternatives.
    """

    last_route = "transformers (logprobs)"

    def __init__(self, lm: LoadedModel, top: int, on_event: Callable | None) -> None:
        self.tokenizer = lm.tokenizer
        self.eos = set(lm.eos_token_ids)
        self.top = top
        self.on_event = on_event
        self.pending: list[dict] = []  # entries not yet sent with on_event
        self.all: list[dict] = []

    def supports(self, sampling: Any) -> bool:
        return True

    def decode(self, lm: LoadedModel, input_ids: list[int], sampling: Any, *, on_tokens: Callable,
               should_stop: Callable):
        import torch

        from engine.generation import hf_decode

        last: dict[str, Any] = {}

        def keep_logits(module, args, output) -> None:
            logits = output.logits if hasattr(output, "logits") else output[0]
            last["logits"] = logits[0, -1].detach()  # (vocab,) the distribution the next token is drawn from

        def recorded(new_ids: list[int]) -> None:
            logprobs = torch.log_softmax(last["logits"].float(), dim=-1)
            for token in new_ids:
                if token not in self.eos:
                    self._add(token, logprobs)
            if self.pending and self.on_event is not None:
                batch, self.pending = self.pending, []
                self.on_event("logprobs", batch)  # before on_tokens: the text it produces comes next
            on_tokens(new_ids)

        hook = lm.model.register_forward_hook(keep_logits)
        try:
            return hf_decode(lm, input_ids, sampling, on_tokens=recorded, should_stop=should_stop)
        finally:
            hook.remove()

    def _add(self, token: int, logprobs: Any) -> None:
        import torch

        entry = self._entry(token, float(logprobs[token]))
        if self.top:
            values, ids = torch.topk(logprobs, self.top)
            entry["top_logprobs"] = [self._entry(int(i), float(v)) for v, i in zip(values, ids)]
        else:
            entry["top_logprobs"] = []
        self.pending.append(entry)
        self.all.append(entry)

    def _entry(self, token: int, logprob: float) -> dict:
        text = self.tokenizer.decode([token])
        return {"token": text, "logprob": max(logprob, -9999.0), "bytes": list(text.encode("utf-8"))}

