"""Complete code at the cursor: fill-in-the-middle when the tokenizer knows how, the prefix otherwise.

Follow a request: the code before the cursor (``prefix``) and after it
(``suffix``) are tokenized and trimmed to ``context_tokens`` (the end of the
prefix and the start of the suffix matter most). If the tokenizer has FIM tokens
(StarCoder, Qwen-Coder, DeepSeek-Coder, CodeLlama...) the prompt is
``<prefix>…<suffix>…<middle>``; otherwise it is the prefix alone.

Token healing: the last token of the prefix is taken off and the first new token
must start with its text. So with the cursor after ``ret`` the model may choose
the single token ``return`` instead of being stuck with ``ret`` + ``urn`` - and
the inserted text is never half of a token. Generation stops at a sensible
boundary (``code_boundary``) or after ``max_lines``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.texttools.code_boundary import Boundary, trim_completion
from engine.config import SamplingConfig
from engine.errors import InvalidConfigError

if TYPE_CHECKING:
    from engine.loader import LoadedModel

# (prefix token, suffix token, middle token, order): PSM = prefix, suffix, middle; SPM = suffix first.
FIM_FORMATS = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "psm"),  # StarCoder, SantaCoder, StableCode
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "psm"),  # Qwen2.5-Coder, CodeGemma
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "psm"),  # DeepSeek-Coder
    ("▁<PRE>", "▁<SUF>", "▁<MID>", "psm"),  # CodeLlama
    ("[PREFIX]", "[SUFFIX]", None, "spm"),  # Codestral: [SUFFIX] suffix [PREFIX] prefix
)
# Tokens that end a file or a FIM answer in the formats above.
EXTRA_STOP_TOKENS = ("<|endoftext|>", "<file_sep>", "<|file_sep|>", "<|fim_pad|>", "<EOT>", "▁<EOT>",
                     "<｜end▁of▁sentence｜>", "<|repo_name|>", "<fim_prefix>", "<|fim_prefix|>")


@dataclass(frozen=True)
class CompletionRequest:
    prefix: str
    suffix: str = ""
    language: str = ""  # "python", "javascript"... ("" = unknown)
    max_lines: int = 12
    max_new_tokens: int = 160
    use_fim: bool = True
    context_tokens: int = 2048  # how much of the file the model sees (less is faster on CPU)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(
        temperature=0.0, repetition_penalty=1.05, top_k=0, top_p=1.0))  # code repeats itself: a light penalty

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_new_tokens < 1 or self.context_tokens < 16:
            raise InvalidConfigError("max_lines and max_new_tokens must be at least 1, context_tokens at least 16")


@dataclass
class CompletionResult:
    text: str  # what to insert at the cursor
    mode: str  # "fim" or "prefix"
    finish_reason: str  # "boundary", "eos", "length", "repetition" or "cancelled"
    prompt_tokens: int
    healed: str = ""  # the text of the prefix token that was re-generated


def fim_format(tokenizer: Any) -> tuple[int, int, int | None, str] | None:
    """The token ids (prefix, suffix, middle, order) of the tokenizer's FIM format, if it has one."""
    vocab = tokenizer.get_vocab()
    for pre, suf, mid, order in FIM_FORMATS:
        if pre in vocab and suf in vocab and (mid is None or mid in vocab):
            return vocab[pre], vocab[suf], (vocab[mid] if mid else None), order
    return None


def build_prompt(tokenizer: Any, request: CompletionRequest, budget: int) -> tuple[list[int], str, str]:
    """Prompt ids, mode, and the healed text (the prefix's last token, to be generated again)."""
    encode = lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []  # noqa
    prefix_ids = encode(request.prefix)
    healed = ""
    if prefix_ids and _healable(tokenizer, prefix_ids[-1]):
        healed = tokenizer.decode(prefix_ids[-1:])
        prefix_ids = prefix_ids[:-1]
    fim = fim_format(tokenizer) if request.use_fim else None
    if fim is None:
        bos = [tokenizer.bos_token_id] if _wants_bos(tokenizer) else []
        return bos + prefix_ids[-(budget - len(bos)):] if budget > len(bos) else bos, "prefix", healed
    pre, suf, mid, order = fim
    suffix_ids = encode(request.suffix)
    room = budget - 3
    keep_suffix = min(len(suffix_ids), room // 4 if len(prefix_ids) > room * 3 // 4 else room - len(prefix_ids))
    keep_prefix = min(len(prefix_ids), room - keep_suffix)
    p, s = prefix_ids[len(prefix_ids) - keep_prefix:], suffix_ids[:keep_suffix]
    if order == "spm":
        return [suf] + s + [pre] + p, "fim", healed
    return [pre] + p + [suf] + s + [mid], "fim", healed


def _healable(tokenizer: Any, token_id: int) -> bool:
    return token_id not in set(tokenizer.all_special_ids)


def _wants_bos(tokenizer: Any) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and bool(getattr(tokenizer, "add_bos_token", False))


def complete_code(lm: LoadedModel, request: CompletionRequest, *, on_text: Callable[[str], None] | None = None,
                  on_progress: Callable[[float, str], None] | None = None,
                  cancel: CancelToken | None = None) -> CompletionResult:
    """Complete at the cursor; streams whole lines to ``on_text`` as they are accepted."""
    from engine.texttools.code_decode import decode_completion

    if getattr(lm, "is_remote", False):  # a model on a server: its own FIM, through /v1/completions
        return lm.complete_code(request, on_text=on_text, cancel=cancel)
    cancel = cancel or CancelToken()
    budget = max(16, min(request.context_tokens, lm.context_length - request.max_new_tokens))
    ids, mode, healed = build_prompt(lm.tokenizer, request, budget)
    if not ids:  # an empty file and no BOS: start from an end-of-text token
        ids = [sorted(lm.eos_token_ids)[0]]
    boundary = Boundary(request.prefix, request.suffix, request.language, request.max_lines)
    text, reason = decode_completion(lm, ids, healed, request, boundary, on_text=on_text, cancel=cancel,
                                     extra_stop_ids=_extra_stop_ids(lm.tokenizer))
    text = _drop_suffix_overlap(trim_completion(_skip_blank_start(text, boundary.cursor_line)), request.suffix,
                                boundary.single_line)
    return CompletionResult(text, mode, reason, len(ids), healed)


def _skip_blank_start(text: str, cursor_line: str) -> str:
    """On an indented empty line, a completion that starts with a new line means 'the code goes here'."""
    if cursor_line.strip() or not text.startswith("\n"):
        return text
    body = text.lstrip("\n")
    return body[len(cursor_line):] if body.startswith(cursor_line) else body


def _extra_stop_ids(tokenizer: Any) -> set[int]:
    vocab = tokenizer.get_vocab()
    return {vocab[t] for t in EXTRA_STOP_TOKENS if t in vocab}


def _drop_suffix_overlap(text: str, suffix: str, single_line: bool) -> str:
    """On one line, models often write the closing part that already follows the cursor: drop it."""
    rest = suffix.split("\n", 1)[0].strip()
    if single_line and rest and text.rstrip().endswith(rest):
        return text.rstrip()[:-len(rest)]
    return text
