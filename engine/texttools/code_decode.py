"""The decode loop of code completion: a token-healed first step, then streaming until a boundary.

Kept apart from ``code_completion`` (which builds prompts) because it is the
only part that runs the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.texttools.code_boundary import Boundary
from engine.cancel import LinkedCancel

if TYPE_CHECKING:
    from engine.loader import LoadedModel


# How whitespace looks inside raw token strings: byte-level BPE (space, newline, tab, CR), SentencePiece.
SPACE_MARKS = set("ĠĊĉč▁ \n\t")


class _WithStops:
    """The loaded model, seen with extra end-of-answer tokens (FIM pad, file separator...)."""

    def __init__(self, lm: LoadedModel, extra_stop_ids: set[int]) -> None:
        self._lm, self._extra = lm, set(extra_stop_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    @property
    def eos_token_ids(self) -> set[int]:
        return set(self._lm.eos_token_ids) | self._extra


def healed_first_token(lm: LoadedModel, ids: list[int], healed: str, sampling: Any) -> int | None:
    """One forward pass: the best next token whose text starts with ``healed`` (None: no such token)."""
    import torch

    tokenizer = lm.tokenizer
    raw = "".join(tokenizer.convert_ids_to_tokens(tokenizer(healed, add_special_tokens=False)["input_ids"]))
    special = set(tokenizer.all_special_ids)
    # After typed whitespace, only the same whitespace token or one going on with code: a longer run of
    # spaces would change the indentation the user chose.
    strict_space = healed[-1:].isspace()
    allowed = [i for tok, i in tokenizer.get_vocab().items()
               if i not in special and tok.startswith(raw) and i < lm.model.config.vocab_size
               and not (strict_space and tok[len(raw):][:1] in SPACE_MARKS)]
    if not allowed:
        return None
    with torch.inference_mode():
        logits = lm.model(torch.tensor([ids], device=lm.device)).logits[0, -1].float()  # (vocab,)
    index = torch.tensor(allowed, device=logits.device)
    scores = logits[index]
    if sampling.greedy:
        return allowed[int(scores.argmax())]
    probs = torch.softmax(scores / sampling.temperature, dim=-1)
    return allowed[int(torch.multinomial(probs, 1))]


def decode_completion(lm: LoadedModel, ids: list[int], healed: str, request: Any, boundary: Boundary, *,
                      on_text: Callable[[str], None] | None, cancel: CancelToken,
                      extra_stop_ids: set[int]) -> tuple[str, str]:
    """Generate the completion; returns (text, finish_reason)."""
    from engine.generation import generate_ids

    emit = on_text or (lambda chunk: None)
    state = {"text": "", "emitted": 0, "cut": None}
    inner = LinkedCancel(cancel)
    ids = list(ids)
    if healed:
        first = healed_first_token(lm, ids, healed, request.sampling)
        if first is None:  # nothing in the vocabulary continues it: generate plainly after it
            ids += list(lm.tokenizer(healed, add_special_tokens=False)["input_ids"])
        else:
            ids.append(first)
            state["text"] = lm.tokenizer.decode([first])[len(healed):]

    def on_chunk(chunk: str) -> None:
        if state["cut"] is not None:
            return
        state["text"] += chunk
        cut = boundary.find_cut(state["text"])
        if cut is not None:
            state["cut"] = cut
            inner.cancel()
        visible = state["text"][:cut] if cut is not None else state["text"]
        # Only whole lines go out while generating: the last line may still be cut.
        end = len(visible) if cut is not None else visible.rfind("\n") + 1
        if end > state["emitted"]:
            emit(visible[state["emitted"]:end])
            state["emitted"] = end

    on_chunk("")  # the healed token's remainder may already hold a line
    result = None
    if state["cut"] is None and request.max_new_tokens > 1:
        sampling = request.sampling.with_(max_new_tokens=request.max_new_tokens - (1 if healed else 0))
        result = generate_ids(_WithStops(lm, extra_stop_ids), ids, sampling, on_text=on_chunk, cancel=inner)
    if cancel.cancelled:
        return state["text"][:state["emitted"]], "cancelled"
    if state["cut"] is None:
        state["cut"] = boundary.find_cut(state["text"], final=True)
    text = state["text"][:state["cut"]] if state["cut"] is not None else state["text"]
    if len(text) > state["emitted"]:
        emit(text[state["emitted"]:])
    if state["cut"] is not None:
        return text, "boundary"
    return text, (result.finish_reason if result is not None else "length")
