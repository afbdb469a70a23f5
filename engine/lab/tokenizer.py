"""Tokenizers trained on the user's own text with the ``tokenizers`` library.

* ``char``: one token per character seen in the text (plus an unknown token for the rest). Small
  vocabulary, long sequences; the classic choice for a first model.
* ``bpe``: byte-level byte-pair encoding. Starts from the 256 bytes, so it can spell anything, and
  learns the most frequent merges up to ``vocab_size``; shorter sequences, bigger vocabulary.

Both come back as a ``PreTrainedTokenizerFast`` that ``save_pretrained`` writes next to the model and
``AutoTokenizer`` reads back.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from engine.errors import InvalidConfigError

TOKENIZER_KINDS = ("char", "bpe")
EOS, UNK, MASK = "<|endoftext|>", "<unk>", "<mask>"
SPECIAL_TOKENS = [EOS, UNK, MASK]


def train_tokenizer(texts: Iterable[str], kind: str = "char", vocab_size: int = 2000):
    """Train a tokenizer on ``texts``; returns a transformers ``PreTrainedTokenizerFast``."""
    texts = list(texts)
    if kind == "char":
        tok = _char_tokenizer(texts)
    elif kind == "bpe":
        if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
            raise InvalidConfigError(f"a byte-pair vocabulary needs more than {256 + len(SPECIAL_TOKENS)} "
                                     f"entries (the 256 bytes and the special tokens), not {vocab_size}")
        tok = _bpe_tokenizer(texts, vocab_size)
    else:
        raise InvalidConfigError(f"tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, not {kind!r}")
    return _wrap(tok)


def _char_tokenizer(texts: list[str]):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    counts = Counter(ch for text in texts for ch in text)
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for ch, _ in counts.most_common():
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character alone
    tok.decoder = decoders.Fuse()  # join the characters back with nothing in between
    return tok


def _bpe_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _wrap(tok):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                                   unk_token=UNK, mask_token=MASK)
    # No chat template: a lab model is a plain text model; chat falls back to the engine's template.
    return fast
