"""A tiny, randomly initialised BERT sentence-embedding model for tests: built from a config, no downloads.

The WordPiece vocabulary is every word of a small corpus (plus letters), so
real words tokenize as whole tokens; random weights still give each text a
stable vector, which is all the storage and search code needs.
"""

from __future__ import annotations

import string
from pathlib import Path

WORDS = ("the a an of to and in is it for on with as by at from this that be are was or not can you your "
         "hearth model models chat file files folder data collection document documents index search answer "
         "passage sea ship wave night cat dog mat rug bank river money loan summary translate code python").split()


def make_tiny_embedder(folder: Path, *, hidden: int = 32, layers: int = 2) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces += ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(special + WORDS + pieces))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
