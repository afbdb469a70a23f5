"""Generate text from a loaded model, streaming it as it comes.

Follow a token: ``generate`` tokenizes the prompt and fits it to the context,
``generate_ids`` runs transformers' ``model.generate`` with a streamer that
receives each new token id, ``TextStream`` turns ids into safe text chunks,
and ``on_text`` hands them to the caller (the GUI worker, or stdout in the CLI).
Cancelling, stop strings and a loop caught by ``RepetitionGuard`` end the loop
through one ``should_stop`` check, whichever decode loop runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine.cancel import CancelToken
from engine.config import SamplingConfig
from engine.errors import GenerationError, OutOfMemoryError
from engine.repetition import RepetitionGuard
from engine.streaming import TextStream

if TYPE_CHECKING:
    from engine.loader import LoadedModel

TextFn = Callable[[str], None]

FINISH_EOS, FINISH_LENGTH, FINISH_STOP, FINISH_CANCELLED = "eos", "length", "stop", "cancelled"
FINISH_REPETITION = "repetition"  # cut where the output began to go round in circles (engine/repetition.py)
REPETITION_NOTICE = "The reply began to repeat itself, so it was stopped there."


@dataclass
class GenerationResult:
    text: str
    new_tokens: int
    prompt_tokens: int
    finish_reason: str  # one of the FINISH_* names above: "eos", "stop", "length", "repetition", "cancelled"
    tok_s: float
    ttft_s: float
    elapsed_s: float
    prompt_truncated: bool = False  # the prompt was cut to fit the context
    dropped_turns: int = 0  # chat: oldest turns left out to fit the context
    notice: str = ""  # a sentence for the user when something was adjusted
    token_ids: tuple[int, ...] = ()
    decoder: str = "transformers"  # which decode loop produced it ("fast int8", "fast exact", ...)

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("token_ids")
        return data


def fit_prompt(ids: list[int], context_length: int, max_new_tokens: int) -> tuple[list[int], int, bool]:
    """Keep the prompt's end and leave room to answer. Returns (ids, max_new, truncated)."""
    reserve = max(1, min(max_new_tokens, context_length // 4))
    truncated = len(ids) > context_length - reserve
    if truncated:
        ids = ids[len(ids) - (context_length - reserve):]
    return ids, max(1, min(max_new_tokens, context_length - len(ids))), truncated


def generate(lm: LoadedModel, prompt: str | Sequence[int], sampling: SamplingConfig | None = None, *,
             on_text: TextFn | None = None, cancel: CancelToken | None = None,
             add_special_tokens: bool = True) -> GenerationResult:
    """Continue ``prompt`` (raw text, no chat template) with ``lm`` (a LoadedModel)."""
    sampling = sampling or SamplingConfig()
    if getattr(lm, "is_remote", False):  # a model on a server (engine/remote) generates there
        return lm.generate(prompt, sampling, on_text=on_text, cancel=cancel)
    if isinstance(prompt, str):
        ids = lm.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    else:
        ids = [int(t) for t in prompt]
    if not ids:
        bos = lm.tokenizer.bos_token_id
        ids = [bos if bos is not None else sorted(lm.eos_token_ids)[0]]
    ids, max_new, truncated = fit_prompt(ids, lm.context_length, sampling.max_new_tokens)
    result = generate_ids(lm, ids, sampling.with_(max_new_tokens=max_new), on_text=on_text, cancel=cancel)
    if truncated:
        result.prompt_truncated = True
        cut = (f"The prompt was longer than the model's context ({lm.context_length} tokens); "
               f"only its last {len(ids)} tokens were used.")
        result.notice = f"{result.notice} {cut}".strip()
    return result


def generate_ids(lm: LoadedModel, input_ids: Sequence[int], sampling: SamplingConfig, *,
                 on_text: TextFn | None = None, cancel: CancelToken | None = None) -> GenerationResult:
    """The core loop: ``input_ids`` already fit the context."""
    import torch

    cancel = cancel or CancelToken()
    on_text = on_text or (lambda chunk: None)
    stream = TextStream(lm.tokenizer, sampling.stop)
    timing = {"start": time.perf_counter(), "first": None, "count": 0}
    eos_ids = lm.eos_token_ids
    # Between the tokens and the text stream: holds back a tail that may be a loop, stops one for good.
    guard = RepetitionGuard.for_tokenizer(lm.tokenizer) if sampling.repetition_guard else None
    shown = [0]  # visible tokens handed to the text stream

    def release(upto: int) -> None:
        if upto > shown[0]:
            chunk = stream.push(guard.ids[shown[0]:upto])
            shown[0] = upto
            if chunk:
                on_text(chunk)

    def on_tokens(new_ids: list[int]) -> None:
        if timing["first"] is None:
            timing["first"] = time.perf_counter()
        timing["count"] += len(new_ids)
        visible = [t for t in new_ids if t not in eos_ids]
        if guard is None:
            chunk = stream.push(visible)
            if chunk:
                on_text(chunk)
            return
        guard.push(visible)
        release(guard.safe_len())

    def should_stop() -> bool:
        return cancel.cancelled or stream.stopped_by is not None or (guard is not None and guard.looped)

    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    try:
        decoder = lm.extras.get("decoder")
        fast = decoder is not None and decoder.supports(sampling)
        run = decoder.decode if fast else hf_decode
        new_ids = run(lm, list(input_ids), sampling, on_tokens=on_tokens, should_stop=should_stop)
        from engine.fastpath.decoder import route

        used = route(lm, decoder, fast)  # "fast int8", or "transformers: <why the fast path did not run>"
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError("Out of memory while generating. Try a shorter prompt, fewer new "
                               "tokens, or a smaller model.") from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
            raise OutOfMemoryError("Out of memory while generating. Try a shorter prompt, fewer new "
                                   "tokens, or a smaller model.") from exc
        raise GenerationError(f"Generation failed: {exc}") from exc
    if guard is not None:
        release(guard.keep if guard.looped else len(guard.ids))  # the loop's copies are never shown
    tail = stream.finish()
    if tail:
        on_text(tail)
    end = time.perf_counter()
    first = timing["first"] or end
    if cancel.cancelled and stream.stopped_by is None:
        reason = FINISH_CANCELLED
    elif stream.stopped_by is not None:
        reason = FINISH_STOP
    elif guard is not None and guard.looped:
        reason = FINISH_REPETITION
    elif new_ids and new_ids[-1] in eos_ids:
        reason = FINISH_EOS
    else:
        reason = FINISH_LENGTH
    n = len(new_ids)
    decode_time = end - first
    kept = new_ids[:guard.keep] if reason == FINISH_REPETITION else new_ids  # no eos among the loop's tokens
    return GenerationResult(
        text=stream.output, new_tokens=n, prompt_tokens=len(input_ids), finish_reason=reason,
        tok_s=(n - 1) / decode_time if n > 1 and decode_time > 0 else 0.0,
        ttft_s=first - timing["start"], elapsed_s=end - timing["start"], token_ids=tuple(kept), decoder=used,
        notice=REPETITION_NOTICE if reason == FINISH_REPETITION else "")


def hf_decode(lm: LoadedModel, input_ids: list[int], sampling: SamplingConfig, *,
              on_tokens: Callable[[list[int]], None], should_stop: Callable[[], bool]) -> list[int]:
    """Plain transformers ``generate``: the reference path every faster one must match."""
    import torch
    from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    class Streamer(BaseStreamer):
        def __init__(self) -> None:
            self.prompt_seen = False

        def put(self, value: torch.Tensor) -> None:
            if not self.prompt_seen:  # generate() first hands over the prompt itself
                self.prompt_seen = True
                return
            on_tokens(value.reshape(-1).tolist())

        def end(self) -> None:
            pass

    class StopWhenAsked(StoppingCriteria):
        """Reads the cancel token (and the stop-string flag) after every token."""

        def __call__(self, ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
            return torch.full((ids.shape[0],), should_stop(), dtype=torch.bool, device=ids.device)

    config = generation_config_for(lm, sampling, GenerationConfig)
    ids = torch.tensor([input_ids], device=lm.device)
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                streamer=Streamer(), stopping_criteria=StoppingCriteriaList([StopWhenAsked()]))
    return out[0, len(input_ids):].tolist()


def generation_config_for(lm: LoadedModel, sampling: SamplingConfig, config_cls: Any) -> Any:
    eos = sorted(lm.eos_token_ids)
    kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, eos_token_id=eos or None,
                                  pad_token_id=lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None
                                  else (eos[0] if eos else None))
    if sampling.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = sampling.repetition_penalty
    if sampling.greedy:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                      top_k=sampling.top_k or None, min_p=sampling.min_p or None)
    return config_cls(**kwargs)
