"""Chat: messages -> the model's own chat template -> generate; and continuing a broken-off reply.

When a conversation outgrows the context window, the oldest turns are left out
(the system prompt always stays) and the result says how many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from engine.cancel import CancelToken
from engine.config import ChatMessage, SamplingConfig
from engine.errors import GenerationError
from engine.chat_template import FALLBACK_STOP, ensure_chat_template, render  # noqa: F401  (re-exported)
from engine.generation import GenerationResult, TextFn, fit_prompt, generate_ids

if TYPE_CHECKING:
    from engine.loader import LoadedModel

@dataclass
class ChatPrompt:
    input_ids: list[int]
    dropped_turns: int  # oldest messages left out to fit
    truncated: bool  # the newest message itself had to be cut
    max_new_tokens: int


def build_chat_prompt(tokenizer: Any, messages: Sequence[ChatMessage], system_prompt: str,
                      context_length: int, max_new_tokens: int) -> ChatPrompt:
    """Render with the chat template, leaving out the oldest turns until it fits."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    turns = [m.to_dict() for m in messages if m.role != "system"]
    reserve = max(1, min(max_new_tokens, context_length // 4))
    budget = context_length - reserve
    dropped = 0
    ids = render(tokenizer, system + turns)
    while len(ids) > budget and len(turns) > 1:
        # Drop whole exchanges from the front so the history never starts with a reply.
        step = 2 if len(turns) > 2 and turns[0]["role"] == "user" and turns[1]["role"] == "assistant" else 1
        turns = turns[step:]
        dropped += step
        ids = render(tokenizer, system + turns)
    truncated = False
    if len(ids) > budget:  # one message alone is too long: keep the end of its text
        turns[-1] = dict(turns[-1], content=_keep_end(tokenizer, turns[-1]["content"], len(ids) - budget))
        ids = render(tokenizer, system + turns)
        truncated = True
        if len(ids) > budget:  # a huge system prompt: last resort, keep the rendered prompt's end
            ids, _, _ = fit_prompt(ids, context_length, max_new_tokens)
    max_new = max(1, min(max_new_tokens, context_length - len(ids)))
    return ChatPrompt(ids, dropped, truncated, max_new)


def _keep_end(tokenizer: Any, text: str, overflow: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    keep = max(0, len(ids) - overflow - 8)  # a little slack: re-tokenizing a cut text can grow it
    return tokenizer.decode(ids[len(ids) - keep:]) if keep else ""


def _stop_strings(lm: LoadedModel, sampling: SamplingConfig) -> tuple[str, ...]:
    """The user's stop strings, plus ChatML's turn markers when the template is our fallback."""
    if getattr(lm.tokenizer, "hearth_fallback_template", False):
        return tuple(sampling.stop) + FALLBACK_STOP
    return tuple(sampling.stop)


def chat(lm: LoadedModel, messages: Sequence[ChatMessage], sampling: SamplingConfig | None = None, *,
         system_prompt: str = "", on_text: TextFn | None = None,
         cancel: CancelToken | None = None) -> GenerationResult:
    """Answer the last message of ``messages`` as the assistant."""
    sampling = sampling or SamplingConfig()
    if getattr(lm, "is_remote", False):  # a model on a server (engine/remote): its chat template is there
        return lm.chat(messages, sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)
    prompt = build_chat_prompt(lm.tokenizer, messages, system_prompt, lm.context_length, sampling.max_new_tokens)
    result = generate_ids(lm, prompt.input_ids,
                          sampling.with_(max_new_tokens=prompt.max_new_tokens, stop=_stop_strings(lm, sampling)),
                          on_text=on_text, cancel=cancel)
    result.dropped_turns = prompt.dropped_turns
    result.prompt_truncated = prompt.truncated
    notices = [result.notice] if result.notice else []  # the repetition guard's, if it cut the reply
    if prompt.dropped_turns:
        notices.append(f"The conversation is longer than the model's context ({lm.context_length} tokens): "
                       f"the {prompt.dropped_turns} oldest message(s) were left out of this reply.")
    if prompt.truncated:
        notices.append("Your message is longer than the model's context; only its end was used.")
    result.notice = " ".join(notices)
    return result


def continue_reply(lm: LoadedModel, messages: Sequence[ChatMessage], partial: str,
                   sampling: SamplingConfig | None = None, *, system_prompt: str = "", on_text: TextFn | None = None,
                   cancel: CancelToken | None = None) -> GenerationResult:
    """Generate the rest of ``partial``, the assistant's unfinished answer to ``messages``.

    The prompt is the conversation rendered with the assistant header, followed by the
    partial reply's own tokens: the model carries on mid-sentence instead of starting over.
    """
    sampling = sampling or SamplingConfig()
    if getattr(lm, "is_remote", False):
        return lm.continue_reply(messages, partial, sampling, system_prompt=system_prompt, on_text=on_text,
                                 cancel=cancel)
    partial_ids = lm.tokenizer(partial, add_special_tokens=False)["input_ids"] if partial else []
    prompt = build_chat_prompt(lm.tokenizer, messages, system_prompt, lm.context_length,
                               sampling.max_new_tokens + len(partial_ids))
    ids = list(prompt.input_ids) + list(partial_ids)
    room = lm.context_length - len(ids)
    if room < 1:
        raise GenerationError(f"This reply already fills the model's context ({lm.context_length} tokens), so it "
                              "cannot be continued; regenerate it or start a new chat.")
    result = generate_ids(lm, ids, sampling.with_(max_new_tokens=min(sampling.max_new_tokens, room),
                                                  stop=_stop_strings(lm, sampling)),
                          on_text=on_text, cancel=cancel)
    result.dropped_turns = prompt.dropped_turns
    return result
