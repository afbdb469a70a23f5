"""The tokenizer a GGUF file describes (``tokenizer.ggml.*`` and ``tokenizer.chat_template``).

transformers' own GGUF tokenizer builders do the conversion (the same ones
``AutoTokenizer.from_pretrained(gguf_file=...)`` uses, so ids match the folders
Hearth used to convert); only the metadata comes from the file already open
here instead of a second parse of it.

Memory (bench/README.md, "Against the bench's bound"): the backend the builder
makes is handed to ``PreTrainedTokenizerFast`` as it is, not deep-copied (a
copy goes through a JSON dump and parse of the whole vocabulary: for 49 152
tokens it raised the build's peak by 16 MiB and left 4.5 MiB of the discarded
original's heap behind).
"""

from __future__ import annotations

from typing import Any

from engine.errors import BadModelFileError
from engine.gguf.reader import GGUFFile

SPECIAL = {"bos_token": "bos_token_id", "eos_token": "eos_token_id", "unk_token": "unknown_token_id",
           "pad_token": "padding_token_id"}


def build_tokenizer(f: GGUFFile) -> Any:
    from transformers.integrations.gguf import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

    arch = str(f.value("general.architecture"))
    if not f.has("tokenizer.ggml.tokens"):
        raise BadModelFileError(f.path, "it has no tokenizer (no 'tokenizer.ggml.tokens' in its metadata).")
    grouped = {group: {name: f.value(f"tokenizer.{key}") for key, name in renames.items()
                       if f.has(f"tokenizer.{key}")}
               for group, renames in GGUF_TOKENIZER_MAPPING.items()}
    tokenizer_dict, config = grouped["tokenizer"], grouped["tokenizer_config"]
    if tokenizer_dict.get("tokenizer_type") == "llama":
        config.setdefault("add_bos_token", True)  # sentencepiece files: llama.cpp adds BOS unless told not to
    tokens = tokenizer_dict["tokens"]
    for name, key in SPECIAL.items():
        token_id = f.value(f"tokenizer.ggml.{key}", None)
        config[name] = tokens[int(token_id)] if token_id is not None and 0 <= int(token_id) < len(tokens) else None
    try:
        backend, extra = convert_gguf_tokenizer(arch, tokenizer_dict)
        del tokenizer_dict, tokens, grouped  # the vocabulary as Python strings: the backend has its own
        tokenizer = wrap_backend(backend, {**config, **extra})
    except Exception as exc:  # an unknown tokenizer type, or inconsistent vocabulary data
        raise BadModelFileError(f.path, f"its tokenizer cannot be built ({type(exc).__name__}: {exc}).") from exc
    from engine.chat_template import prepare_tokenizer

    return prepare_tokenizer(tokenizer)


def wrap_backend(backend: Any, kwargs: dict) -> Any:
    """``PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)`` without its deep copy of ``backend``
    (which must not be used elsewhere afterwards: the tokenizer's set-up changes it in place)."""
    from transformers import PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=_Handover(backend), **kwargs)
        handed_over = tokenizer.backend_tokenizer is backend
    except AttributeError:  # a transformers that uses the object without copying it
        handed_over = False
    return tokenizer if handed_over else PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


class _Handover:
    """Stands for a backend ``PreTrainedTokenizerFast.__init__`` only deep-copies: the copy is the backend."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __deepcopy__(self, memo: dict) -> Any:
        return self.backend
