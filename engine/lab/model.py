"""The classic small Transformer language model, written to be read.

Follow a batch of token ids through :class:`LabTransformer`:

1. **Embedding.** Each id becomes a learned vector of width ``d_model``, multiplied by √d_model so the
   embeddings and the positional code (values in [-1, 1]) start at comparable scales.
2. **Positional encoding.** Attention by itself does not know word order, so a fixed sinusoid is
   added: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
3. **Encoder stack.** ``n_layers`` × ``nn.TransformerEncoderLayer``: multi-head self-attention then a
   feed-forward network, each wrapped in a residual connection and layer normalisation.
   Under the causal (square subsequent) mask a position attends only to itself and earlier ones,
   which makes the stack a text *generator*; without it (masked language modelling) every position
   sees the whole window and the model fills in blanks.
4. **Decoder.** A linear layer maps each position's vector to one score (logit) per vocabulary entry;
   softmax turns the scores into the probability of each next (or masked) token.

Shapes use B = batch, T = sequence length, D = d_model, H = heads, V = vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from engine.errors import InvalidConfigError

from engine.lab.config import OBJECTIVES


@dataclass(frozen=True)
class LabModelConfig:
    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 512  # width of the feed-forward network inside each layer
    context: int = 128  # the longest window the model is trained on
    dropout: float = 0.1
    objective: str = "clm"

    def __post_init__(self) -> None:
        checks = [
            (self.vocab_size >= 2, f"vocab_size must be at least 2, not {self.vocab_size}"),
            (self.d_model >= 2 and self.d_model % 2 == 0, f"d_model must be even and positive, not {self.d_model}"),
            (self.n_heads >= 1 and self.d_model % self.n_heads == 0,
             f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"),
            (self.n_layers >= 1, f"n_layers must be at least 1, not {self.n_layers}"),
            (self.d_ff >= 1, f"d_ff must be positive, not {self.d_ff}"),
            (self.context >= 2, f"context must be at least 2 tokens, not {self.context}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), not {self.dropout}"),
            (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidConfigError(message)

    @property
    def causal(self) -> bool:
        return self.objective == "clm"

    def to_dict(self) -> dict:
        return asdict(self)


def count_parameters(config: LabModelConfig) -> int:
    """The exact number of weights :class:`LabTransformer` will have, without building it."""
    d, v, f = config.d_model, config.vocab_size, config.d_ff
    attention = 3 * d * d + 3 * d + d * d + d  # in_proj (Q, K, V stacked) + out_proj, with biases
    feed_forward = d * f + f + f * d + d
    norms = 2 * 2 * d  # two LayerNorms, weight and bias each
    return v * d + config.n_layers * (attention + feed_forward + norms) + d * v + v  # embed + layers + decoder


def sinusoid_table(length: int, d_model: int, device: torch.device | None = None) -> torch.Tensor:
    """PE: (length, D). PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(pos / 10000^(2i/D))."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    div_term = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
                         * (-math.log(10000.0) / d_model))  # (D/2,): 1 / 10000^(2i/D)
    pe = torch.zeros(length, d_model, device=device)  # (T, D)
    pe[:, 0::2] = torch.sin(position * div_term)  # even dimensions
    pe[:, 1::2] = torch.cos(position * div_term)  # odd dimensions
    return pe


class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal position code to token embeddings (no learned weights, nothing saved)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, D) -> (B, T, D); computed per call (cheap) so no buffer has to survive loading
        return x + sinusoid_table(x.size(1), self.d_model, x.device).to(x.dtype)


def causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """The square subsequent mask: (T, T) with -inf above the diagonal, 0 elsewhere.

    Added to the attention scores before the softmax, -inf becomes a weight of exactly 0, so
    position i never sees position j > i.
    """
    return nn.Transformer.generate_square_subsequent_mask(size, device=device)


class LabTransformer(nn.Module):
    """Embedding × √d → + positional encoding → N encoder layers (masked) → linear decoder."""

    def __init__(self, config: LabModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = PositionalEncoding(config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        # One layer = self-attention + feed-forward, each: x = LayerNorm(x + Dropout(sublayer(x))).
        # Inside self_attn (nn.MultiheadAttention), for every head i of H:
        #   headᵢ = Attention(Q Wᵢᑫ, K Wᵢᴷ, V Wᵢⱽ),   Attention(q, k, v) = softmax(q kᵀ / √d_k + M) v
        #   MultiHead(Q, K, V) = Concat(head₁ … head_H) Wᴼ
        # with Q = K = V = x (self-attention), d_k = D / H and M the mask (0 or -inf).
        # :func:`engine.lab.attention.layer_attention` spells the same computation out step by step.
        layer = nn.TransformerEncoderLayer(config.d_model, config.n_heads, config.d_ff, config.dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.decoder = nn.Linear(config.d_model, config.vocab_size)
        self._init_weights()

    def _init_weights(self) -> None:
        # Small uniform start for the embedding and decoder, as in PyTorch's word_language_model.
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def mask_for(self, length: int, device: torch.device) -> torch.Tensor | None:
        return causal_mask(length, device) if self.config.causal else None

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        # input_ids: (B, T) -> x: (B, T, D)
        x = self.embed(input_ids) * math.sqrt(self.config.d_model)
        return self.dropout(self.pos(x))

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids: (B, T) -> logits: (B, T, V). ``padding_mask``: (B, T), True where padding."""
        if input_ids.size(1) > self.config.context:
            raise ValueError(f"{input_ids.size(1)} tokens is longer than the model's context "
                             f"({self.config.context}).")
        x = self.embed_tokens(input_ids)  # (B, T, D)
        mask = self.mask_for(input_ids.size(1), input_ids.device)  # (T, T) or None
        x = self.encoder(x, mask=mask, src_key_padding_mask=padding_mask, is_causal=mask is not None)  # (B, T, D)
        return self.decoder(x)  # (B, T, V)
