"""Write a random GGUF of any size and supported architecture, offline, with the ``gguf`` package's GGUFWriter.

Tests use tiny ones (one per quantization type); the benchmark writes a
1 B-parameter one to measure memory and speed at a real size. The weights are
random blocks in llama.cpp's layouts (the ``gguf`` package cannot quantize
K-quants), with each block's f16 scale set so that weights have a standard
deviation near ``std``. The tokenizer is byte-level BPE (GPT-2 style) with
ChatML special tokens and template for llama/qwen, and a sentencepiece-style
vocabulary (``<0xNN>`` byte tokens, "▁" words, no merges: transformers derives
them) for gemma and phi3, as llama.cpp writes theirs. Files lay tensors out as
llama.cpp's converter does: gemma norms stored as 1 + w (random around 1 here,
so an offset applied twice shows), phi3's q/k/v and gate/up fused. Tensors are written one at a time,
so writing a 1 B model needs memory for one tensor, not the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.errors import InvalidConfigError

# Quantization mixes: tensor role -> type name ("*": every other matrix).
PRESETS = {
    "Q4_K_M": {"*": "Q4_K", "attn_v": "Q6_K", "ffn_down": "Q6_K", "output": "Q6_K", "token_embd": "Q4_K"},
    "Q4_0": {"*": "Q4_0", "token_embd": "Q8_0", "output": "Q8_0"},
    **{name: {"*": name} for name in ("Q4_0_ALL", "Q4_1", "Q4_K", "Q5_0", "Q5_K", "Q6_K", "Q8_0", "F16", "BF16",
                                      "F32")},
}
PRESETS["Q4_0_ALL"] = {"*": "Q4_0"}
ARCHS = ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3")
SENTENCEPIECE = ("gemma", "gemma2", "gemma3", "phi3")  # archs whose files carry an SPM vocabulary
FILE_TYPES = {"Q4_K_M": 15, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q6_K": 18, "F16": 1, "BF16": 32, "F32": 0}  # llama_ftype
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0, 1, 2 (as SmolLM2)


@dataclass(frozen=True)
class SyntheticConfig:
    arch: str = "llama"
    layers: int = 2
    hidden: int = 256
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 512
    vocab: int = 320
    context: int = 512
    quant: str = "Q4_K_M"  # a key of PRESETS
    tied: bool = True  # gemma files always are
    std: float = 0.05
    seed: int = 0
    head_size: int = 0  # 0: hidden / heads (gemma's is often larger: 256)
    rotary: int = 0  # phi3: features of a head that rotate; 0: all
    window: int = 0  # gemma2/3, phi3: sliding window (0: none written)
    longrope: bool = False  # phi3: LongRoPE factors, context_length 4x the original (Phi-3-128k's layout)
    rope_freqs: bool = False  # llama: Llama 3's per-frequency factors (rope_freqs.weight)
    rope_linear: float = 0.0  # a linear RoPE scaling factor (gemma3: on its global layers); 0: none

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise InvalidConfigError(message)

        check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}")
        check(self.quant in PRESETS, f"quant must be one of {', '.join(PRESETS)}")
        check(self.layers >= 1 and self.heads >= 1 and self.kv_heads >= 1, "layers and heads must be positive")
        check(self.heads % self.kv_heads == 0, "heads must be a multiple of kv_heads")
        check(self.head_size % 2 == 0 and (self.head_size or self.hidden % self.heads == 0),
              "hidden / heads (or head_size) must be an even head size")
        check(self.head_dim % 2 == 0, "the head size must be even")
        check(not self.rotary or (self.arch == "phi3" and self.rotary % 2 == 0 and self.rotary <= self.head_dim),
              "a partial rotary dimension is for phi3, even, and at most the head size")
        check(not (self.arch.startswith("gemma") and not self.tied), "gemma files tie the embedding")
        check(not self.longrope or self.arch == "phi3", "LongRoPE factors are for phi3")
        check(not self.rope_freqs or self.arch == "llama", "rope_freqs are for llama")
        check(self.arch not in SENTENCEPIECE or self.vocab >= 300, "a sentencepiece vocabulary needs at least 300")
        check(self.hidden % 256 == 0 and self.intermediate % 256 == 0,
              "hidden and intermediate must be multiples of 256 (K-quant super-blocks)")
        check(self.vocab >= 256 + len(SPECIAL), f"vocab must be at least {256 + len(SPECIAL)}")

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden // self.heads

    def parameters(self) -> int:
        D, Dh, I = self.hidden, self.head_dim, self.intermediate
        per_layer = D * self.heads * Dh * 2 + D * self.kv_heads * Dh * 2 + 3 * D * I + 2 * D
        return self.layers * per_layer + self.vocab * D * (1 if self.tied else 2) + D


def one_billion(quant: str = "Q4_K_M", seed: int = 0) -> SyntheticConfig:
    """Llama 3.2 1B's shape with a 32 000-token vocabulary: 1.03 B parameters."""
    return SyntheticConfig(layers=16, hidden=2048, heads=32, kv_heads=8, intermediate=8192, vocab=32000,
                           context=4096, quant=quant, seed=seed)


def write_synthetic_gguf(path: str | Path, config: SyntheticConfig, *,
                         on_progress: Callable[[float, str], None] | None = None) -> Path:
    import gguf

    path = Path(path)
    rng = np.random.default_rng(config.seed)
    tensors = list(_tensor_plan(config))
    writer = gguf.GGUFWriter(str(path), config.arch)
    _write_metadata(writer, config)
    for name, rows, cols, qtype in tensors:
        nbytes = _nbytes(qtype, rows, cols)
        dtype = np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.uint8
        shape = (rows, cols) if dtype == np.float32 else (rows, nbytes // rows)
        writer.add_tensor_info(name, shape if rows > 1 else (cols,), np.dtype(dtype), nbytes,
                               raw_dtype=None if dtype == np.float32 else qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for i, (name, rows, cols, qtype) in enumerate(tensors):
        if on_progress is not None:
            on_progress(i / len(tensors), f"Writing {name}")
        writer.write_tensor_data(_random_tensor(rng, name, rows, cols, qtype, config.std, config.arch))
    writer.close()
    return path


def _tensor_plan(config: SyntheticConfig):
    """(name, rows, cols, GGML type) in file order."""
    from gguf import GGMLQuantizationType as T

    mix = PRESETS[config.quant]
    D, Dh, I = config.hidden, config.head_dim, config.intermediate

    def typed(role: str) -> T:
        return T[mix.get(role, mix["*"])]

    H, KV = config.heads * Dh, config.kv_heads * Dh
    fused, post_norms = config.arch == "phi3", config.arch in ("gemma2", "gemma3")
    yield "token_embd.weight", config.vocab, D, typed("token_embd")
    if config.rope_freqs:
        yield "rope_freqs.weight", 1, Dh // 2, T.F32
    if config.longrope:
        yield "rope_factors_long.weight", 1, (config.rotary or Dh) // 2, T.F32
        yield "rope_factors_short.weight", 1, (config.rotary or Dh) // 2, T.F32
    for i in range(config.layers):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", 1, D, T.F32
        if fused:  # llama.cpp's phi3 layout: q | k | v in one matrix
            yield b + "attn_qkv.weight", H + 2 * KV, D, typed("attn_qkv")
        for role, rows in (() if fused else (("attn_q", H), ("attn_k", KV), ("attn_v", KV))):
            yield b + role + ".weight", rows, D, typed(role)
            if config.arch == "qwen2":
                yield b + role + ".bias", 1, rows, T.F32
        if config.arch in ("qwen3", "gemma3"):
            yield b + "attn_q_norm.weight", 1, Dh, T.F32
            yield b + "attn_k_norm.weight", 1, Dh, T.F32
        yield b + "attn_output.weight", D, H, typed("attn_output")
        if post_norms:
            yield b + "post_attention_norm.weight", 1, D, T.F32
        yield b + "ffn_norm.weight", 1, D, T.F32
        if fused:  # gate | up in one matrix, gate rows first
            yield b + "ffn_up.weight", 2 * I, D, typed("ffn_up")
        else:
            yield b + "ffn_gate.weight", I, D, typed("ffn_gate")
            yield b + "ffn_up.weight", I, D, typed("ffn_up")
        yield b + "ffn_down.weight", D, I, typed("ffn_down")
        if post_norms:
            yield b + "post_ffw_norm.weight", 1, D, T.F32
    yield "output_norm.weight", 1, D, T.F32
    if not config.tied:
        yield "output.weight", config.vocab, D, typed("output")


def _nbytes(qtype, rows: int, cols: int) -> int:
    from gguf import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[qtype]
    return rows * cols // block * size


# Per type: (block bytes, [(byte offset of an f16 scale in the block, its value relative to std)]).
# A weight's spread is scale times the spread of its integer part (uniform random bits):
# Q4_0 (q - 8): 4.6; Q8_0 int8: 74; Q5_0 (q - 16): 9.2; Q6_K scale_i8 * (q - 32): 74 * 18.5;
# Q4_K / Q5_K d * scale6 * q with scale6 ~ 31: 145 / 290, and dmin * min6 taking about the mean back out.
_SCALES = {
    "Q4_0": [(0, 1 / 4.6)], "Q4_1": [(0, 1 / 4.6), (2, -7.5 / 4.6)], "Q8_0": [(0, 1 / 74)],
    "Q5_0": [(0, 1 / 9.2)], "Q6_K": [(208, 1 / (74 * 18.5))],
    "Q4_K": [(0, 1 / 145), (2, 7.5 / 145)], "Q5_K": [(0, 1 / 290), (2, 15.5 / 290)],
}


def _random_tensor(rng: np.random.Generator, name: str, rows: int, cols: int, qtype, std: float,
                   arch: str = "llama") -> np.ndarray:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T

    if name.startswith("rope_factors"):  # LongRoPE's per-frequency divisors, 1 to 3 (short) or to 30 (long)
        return (1.0 + rng.random(cols) * (2.0 if "short" in name else 29.0)).astype(np.float32)
    if name == "rope_freqs.weight":  # Llama 3's: 1 for the fast frequencies rising to 8 for the slow ones
        return np.linspace(1.0, 8.0, cols, dtype=np.float32)
    if rows == 1:  # norms near one (and biases small), as a trained model's are
        if name.endswith("norm.weight"):
            if arch in SENTENCEPIECE:  # 1 + w around 1 (gemma's as stored), so a misapplied offset shows
                return (1.0 + 0.2 * rng.standard_normal(cols)).astype(np.float32)
            return np.ones(cols, dtype=np.float32)
        return (rng.standard_normal(cols) * std).astype(np.float32)
    if qtype == T.F32:
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)
    if qtype in (T.F16, T.BF16):
        values = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
        if qtype == T.F16:
            return values.astype(np.float16).view(np.uint8).reshape(rows, cols * 2)
        return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(rows, cols * 2)
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for offset, factor in _SCALES[qtype.name]:
        raw[..., offset:offset + 2] = np.array([std * factor], dtype=np.float16).view(np.uint8)
    return raw.reshape(rows, -1)


def _write_metadata(writer, config: SyntheticConfig) -> None:
    import gguf

    from engine.chat_template import FALLBACK_TEMPLATE

    writer.add_name(f"synthetic-{config.arch}-{config.quant}")
    if config.quant in FILE_TYPES:
        writer.add_file_type(FILE_TYPES[config.quant])
    writer.add_block_count(config.layers)
    writer.add_context_length(config.context * (4 if config.longrope else 1))
    if config.longrope:  # llama.cpp's converter: the original context, and sqrt(1 + ln(4) / ln(original))
        writer.add_rope_scaling_orig_ctx_len(config.context)
        writer.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(4) / math.log(config.context)))
    writer.add_embedding_length(config.hidden)
    writer.add_feed_forward_length(config.intermediate)
    writer.add_head_count(config.heads)
    writer.add_head_count_kv(config.kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(1e6 if config.arch == "gemma3" else 10000.0)
    writer.add_rope_dimension_count(config.rotary or config.head_dim)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_vocab_size(config.vocab)
    if config.window:
        writer.add_sliding_window(config.window)
    if config.rope_linear:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(config.rope_linear)
    if config.arch == "gemma2":  # Gemma 2's values (transformers' defaults too)
        writer.add_attn_logit_softcapping(50.0)
        writer.add_final_logit_softcapping(30.0)
    if config.arch in SENTENCEPIECE:
        _write_sentencepiece(writer, config)
    else:
        tokens, types, merges = _vocabulary(config.vocab)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_pad_token_id(0)
        writer.add_add_bos_token(False)
    writer.add_chat_template(FALLBACK_TEMPLATE)


# Sentencepiece specials as the families' files list them: (tokens, bos, eos, unk, pad)
# phi3: Phi-3's specials (llama.cpp's phi3 vocabulary needs "<|endoftext|>", its end of text and padding)
SPM_SPECIALS = {"phi3": (["<unk>", "<s>", "</s>", "<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>"], 1, 3, 0, 3)}
GEMMA_SPECIALS = (["<pad>", "<eos>", "<bos>", "<unk>"], 2, 1, 3, 0)


def _write_sentencepiece(writer, config: SyntheticConfig) -> None:
    """A sentencepiece vocabulary as llama.cpp writes one: specials, the 256 ``<0xNN>`` byte tokens, then
    "▁", letters and "▁"-words, scored best-first, no merges."""
    from gguf import TokenType

    specials, bos, eos, unk, pad = SPM_SPECIALS.get(config.arch, GEMMA_SPECIALS)
    pieces = ["\u2581", *"etaoinshrdlucmfwypvbgkjqxz", *"ETAOINSHRDLUCMFWYPVBGKJQXZ", *".,!?'0123456789"]
    words = ["\u2581" + a for a in "etaoinshrdlucmfwypvbgkjqxz"] + \
        [a + b for a in "etaoinshrdlu" for b in "etaoinshrdlu"]
    tokens = list(dict.fromkeys(specials + [f"<0x{b:02X}>" for b in range(256)] + pieces + words))
    tokens += [f"<unused{i}>" for i in range(config.vocab - len(tokens))]
    tokens = tokens[:config.vocab]
    types = [int(TokenType.CONTROL) if t in specials else int(TokenType.BYTE) if t.startswith("<0x")
             else int(TokenType.UNUSED) if t.startswith("<unused") else int(TokenType.NORMAL) for t in tokens]
    types[unk] = int(TokenType.UNKNOWN)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(len(tokens))])
    writer.add_token_types(types)
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(unk)
    if pad is not None:
        writer.add_pad_token_id(pad)
    writer.add_add_bos_token(True)


def _vocabulary(size: int) -> tuple[list[str], list[int], list[str]]:
    """ChatML specials (control), the 256 byte-level symbols, then two-symbol merges (printable ASCII
    first) until the vocabulary has ``size`` tokens: a real, if naive, byte-level BPE."""
    from gguf import TokenType

    from transformers.convert_slow_tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    symbols = [table[b] for b in range(256)]
    tokens = list(SPECIAL) + symbols
    order = [table[b] for b in [32, *range(97, 123), *range(65, 91), *range(48, 58)]] + symbols
    order = list(dict.fromkeys(order))
    merges = []
    for a in order:
        for b in order:
            if len(tokens) >= size:
                break
            if a + b not in tokens:
                tokens.append(a + b)
                merges.append(f"{a} {b}")
    types = [int(TokenType.CONTROL)] * len(SPECIAL) + [int(TokenType.NORMAL)] * (len(tokens) - len(SPECIAL))
    return tokens, types, merges
