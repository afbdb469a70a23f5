"""Token arithmetic for a model whose tokenizer lives on another machine.

The text tools plan with token counts (how big a piece of a document may be, does a prompt
fit); a remote model's real tokenizer is not here, and the OpenAI API has no endpoint to
ask. :class:`EstimatingTokenizer` splits text into pieces of at most four characters
(a word's start keeps its space, as byte-level BPE does), about what common English
tokenizers produce, a little more for code and non-Latin text: the estimate errs on the side
of smaller pieces. It is invertible (decode(encode(text)) == text), so a text cut at a
"token" boundary is cut at a real character. Counts only: nothing it produces is ever sent.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Sequence

PIECE = re.compile(r" ?[A-Za-z]{1,4}| ?\d{1,3}|\s+|[^\sA-Za-z\d]| ?[^\s\x00-\x7f]")
TURN = "<|im_start|>{role}\n{content}<|im_end|>\n"


class EstimatingTokenizer:
    chat_template = "estimated"  # the chat tools' "has a template" check; rendering is ours
    hearth_fallback_template = False
    bos_token_id = None
    eos_token_id = None
    pad_token_id = None
    all_special_ids: list[int] = []

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []
        self._lock = threading.Lock()

    def _id(self, piece: str) -> int:
        with self._lock:
            found = self._ids.get(piece)
            if found is None:
                found = self._ids[piece] = len(self._pieces)
                self._pieces.append(piece)
            return found

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self._id(p) for p in PIECE.findall(text)]

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool = True, **kwargs: Any) -> dict:
        if isinstance(text, str):
            return {"input_ids": self.encode(text)}
        return {"input_ids": [self.encode(t) for t in text]}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False, **kwargs: Any) -> str:
        return "".join(self._pieces[i] for i in ids if 0 <= i < len(self._pieces))

    def apply_chat_template(self, messages: Sequence[dict], add_generation_prompt: bool = True,
                            tokenize: bool = True, **kwargs: Any):
        """ChatML-sized turns: servers' templates add a handful of tokens per message, as this does."""
        text = "".join(TURN.format(**m) for m in messages)
        if add_generation_prompt:
            text += "<|im_start|>assistant\n"
        return self.encode(text) if tokenize else text

    def get_vocab(self) -> dict[str, int]:
        return {}  # no fill-in-the-middle tokens known here: the server decides

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._pieces[i] for i in ids]

    def __len__(self) -> int:
        return len(self._pieces)
