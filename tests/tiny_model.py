"""Tiny, randomly initialised models for tests: built from a config, no downloads.

The tokenizer is a byte-level BPE trained here on a few sentences, with ChatML
special tokens and a chat template, so every code path that needs a real
tokenizer (chat templates, byte-level decoding, stop strings) runs on it.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The sea is wide and the waves are high. Ships sail over the sea at night.",
    "def add(a, b):\n    return a + b\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "Hello there! How are you today? I am fine, thank you. Café, naïve, 東京, emoji 🙂.",
    "Summaries are short. Translation turns French into English: bonjour means hello.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20, commas; colons: and periods.",
]


PARAGRAPH = CORPUS[0] + "\n"


def write_parts(folder: Path, repeats: int, parts: int = 4) -> Path:
    """A small training corpus: ``parts`` text files of ``repeats`` paragraphs each; returns ``folder``."""
    for i in range(parts):
        (folder / f"part{i}.txt").write_text(f"Part {i}. " + PARAGRAPH * repeats, encoding="utf-8")
    return folder


def make_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from engine.chat_template import FALLBACK_TEMPLATE

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.chat_template = FALLBACK_TEMPLATE  # ChatML, as SmolLM2 and Qwen use
    return fast


def make_tiny_model(folder: Path, *, context: int = 256, layers: int = 2, hidden: int = 32,
                    seed: int = 0, chat_template: bool = True) -> Path:
    """Save a tiny Llama model and its tokenizer to ``folder``; return the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer()
    if not chat_template:
        tokenizer.chat_template = None
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=context, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
