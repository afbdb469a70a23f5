"""Continue a reply that broke off (a crash, Stop, or the token limit) where it ended.

The prompt is the conversation up to the user's message, rendered with the
model's chat template and the assistant header, followed by the partial
reply's own tokens: the model carries on mid-sentence instead of starting over.
"""

from __future__ import annotations

from typing import Any, Sequence

from engine.cancel import CancelToken
from engine.config import ChatMessage, SamplingConfig
from engine.errors import GenerationError


def continue_reply(lm: Any, messages: Sequence[ChatMessage], partial: str, sampling: SamplingConfig | None = None, *,
                   system_prompt: str = "", on_text=None, cancel: CancelToken | None = None) -> Any:
    """Generate the rest of ``partial``, the assistant's unfinished answer to ``messages``."""
    from engine.chat_generation import FALLBACK_STOP, build_chat_prompt
    from engine.generation import generate_ids

    sampling = sampling or SamplingConfig()
    partial_ids = lm.tokenizer(partial, add_special_tokens=False)["input_ids"] if partial else []
    prompt = build_chat_prompt(lm.tokenizer, messages, system_prompt, lm.context_length,
                               sampling.max_new_tokens + len(partial_ids))
    ids = list(prompt.input_ids) + list(partial_ids)
    room = lm.context_length - len(ids)
    if room < 1:
        raise GenerationError(f"This reply already fills the model's context ({lm.context_length} tokens), so it "
                              "cannot be continued; regenerate it or start a new chat.")
    stop = sampling.stop
    if getattr(lm.tokenizer, "hearth_fallback_template", False):
        stop = tuple(stop) + FALLBACK_STOP
    result = generate_ids(lm, ids, sampling.with_(max_new_tokens=min(sampling.max_new_tokens, room), stop=stop),
                          on_text=on_text, cancel=cancel)
    result.dropped_turns = prompt.dropped_turns
    return result


def continue_job(session, *, on_text=None, on_progress=None, cancel=None, messages: Sequence[ChatMessage],
                 partial: str, system_prompt: str = "", sampling: SamplingConfig | None = None,
                 model_path: str | None = None) -> Any:
    """Worker task: ``continue_reply`` with the session's model."""
    lm = session.model_for(model_path)
    return continue_reply(lm, list(messages), partial, sampling, system_prompt=system_prompt, on_text=on_text,
                          cancel=cancel)
