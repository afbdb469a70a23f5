"""Chat templates and tokenizer preparation, in one place for the loader, fine-tuning and the lab.

A tokenizer that ships no chat template gets ChatML (and ChatML's turn markers become stop
strings); one with no pad token pads with its end-of-text token.
"""

from __future__ import annotations

from typing import Any, Sequence

# ChatML, for models that ship no template of their own.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
FALLBACK_STOP = ("<|im_end|>", "<|im_start|>")


def ensure_chat_template(tokenizer: Any) -> None:
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_TEMPLATE
        tokenizer.hearth_fallback_template = True


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give ``tokenizer`` a pad token and a chat template if it lacks them; returns it."""
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    return tokenizer


def render(tokenizer: Any, messages: Sequence[dict]) -> list[int]:
    out = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    if out and isinstance(out[0], list):
        out = out[0]
    return list(out)
