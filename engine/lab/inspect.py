"""Look inside a language model: attention maps, per-token probabilities, the next-token distribution.

Works on any ``LoadedModel``: the lab's own Transformer, the default model, or any loaded one.
Each function tokenizes the text, runs one forward pass and returns plain data (numpy arrays,
lists) for the viewers and the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from engine.lab.errors import AttentionUnavailableError
from engine.lab.loading import is_masked

if TYPE_CHECKING:
    from engine.loader import LoadedModel

ATTENTION_TOKEN_LIMIT = 256  # a T × T map per head and layer; more would be unreadable anyway
PROBABILITY_TOKEN_LIMIT = 2048


@dataclass
class Encoded:
    ids: list[int]  # what the model reads, starting with a start-of-text token when the model has one
    texts: list[str]  # each token as text
    scored_from: int  # tokens before this index are context (the start token), not the user's text
    notice: str = ""


@dataclass
class AttentionMaps:
    tokens: list[str]
    weights: np.ndarray  # (layers, heads, T, T): row = the token looking, column = the token looked at
    model_name: str
    notice: str = ""

    @property
    def layers(self) -> int:
        return self.weights.shape[0]

    @property
    def heads(self) -> int:
        return self.weights.shape[1]

    def map(self, layer: int, head: int | None) -> np.ndarray:
        """(T, T) for one head, or the mean over heads when ``head`` is None."""
        return self.weights[layer].mean(axis=0) if head is None else self.weights[layer, head]


@dataclass
class TokenProbability:
    token_id: int
    text: str
    prob: float | None  # None for context tokens the model was not asked to predict
    top: list[tuple[str, float]] = field(default_factory=list)  # the 5 most likely tokens at this place

    @property
    def rank_one(self) -> bool:
        return bool(self.top) and self.prob is not None and self.prob >= self.top[0][1] - 1e-9


@dataclass
class TokenProbabilities:
    tokens: list[TokenProbability]
    perplexity: float
    model_name: str
    method: str  # "next-token" (causal) or "pseudo (one blank at a time)" (masked)
    notice: str = ""


@dataclass
class NextToken:
    token_id: int
    text: str
    prob: float


def token_text(tokenizer: Any, token_id: int) -> str:
    return tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)


def encode(lm: LoadedModel, text: str, limit: int) -> Encoded:
    """Token ids for ``text``, preceded by a start token, cut to ``limit`` and the model's context."""
    tok = lm.tokenizer
    ids = tok(text, add_special_tokens=True)["input_ids"]
    special = set(tok.all_special_ids)
    start = 0
    if not ids or ids[0] not in special:  # the tokenizer adds no start token itself
        first = start_token(tok)
        if first is not None:
            ids, start = [first] + ids, 1
    else:
        start = 1
    cap = min(limit, lm.context_length)
    notice = ""
    if len(ids) > cap:
        why = "the model's context" if cap == lm.context_length else "what this view shows"
        notice = (f"The text is {len(ids) - start:,} tokens long; only the first {cap - start:,} are shown "
                  f"({why} is {cap:,} tokens).")
        ids = ids[:cap]
    return Encoded(ids, [token_text(tok, i) for i in ids], start, notice)


def start_token(tok: Any) -> int | None:
    """What a document starts after in pre-training: <|endoftext|> where it exists (GPT-2, SmolLM, Qwen, the
    lab's own tokenizers), else the beginning-of-sequence token, else end-of-sequence."""
    for candidate in (tok.convert_tokens_to_ids("<|endoftext|>") if "<|endoftext|>" in tok.get_vocab() else None,
                      tok.bos_token_id, tok.eos_token_id):
        if candidate is not None:
            return candidate
    return None


def _forward(lm: LoadedModel, ids: list[int], **kwargs) -> Any:
    with torch.inference_mode():
        return lm.model(input_ids=torch.tensor([ids], device=lm.device), **kwargs)


def attention_maps(lm: LoadedModel, text: str, *, limit: int = ATTENTION_TOKEN_LIMIT) -> AttentionMaps:
    """Every layer's and head's attention weights over ``text``."""
    enc = encode(lm, text, limit)
    attentions = _attentions(lm, enc.ids)
    weights = torch.stack([a[0].float() for a in attentions]).cpu().numpy()  # (L, H, T, T)
    return AttentionMaps(enc.texts, weights, lm.name, enc.notice)


def _attentions(lm: LoadedModel, ids: list[int]) -> tuple:
    """The model's attention weights, switching to the eager implementation when needed."""
    from engine.gguf.full_model import full_model_for

    lm = full_model_for(lm)  # a GGUF run quantized keeps no attention weights: its full model, built once
    model = lm.model
    current = getattr(model.config, "_attn_implementation", None)
    if current not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        # Fused kernels (sdpa, flash) never build the weight matrix; the eager one does.
        try:
            model.set_attn_implementation("eager")
        except Exception as exc:  # the model offers no eager attention
            raise AttentionUnavailableError(
                f"{lm.name} uses {current} attention, which does not return attention weights, and it "
                f"cannot switch to eager attention ({exc}).") from exc
        try:
            out = _forward(lm, ids, output_attentions=True)
        finally:
            model.set_attn_implementation(current)  # keep chat on the fast kernel
    else:
        out = _forward(lm, ids, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        raise AttentionUnavailableError(f"{lm.name} does not return attention weights "
                                        f"(attention implementation: {current or 'unknown'}).")
    return attentions


def token_probabilities(lm: LoadedModel, text: str, *, top_k: int = 5,
                        limit: int = PROBABILITY_TOKEN_LIMIT) -> TokenProbabilities:
    """How likely the model found each token of ``text``, its top alternatives, and the perplexity."""
    enc = encode(lm, text, limit)
    if is_masked(lm):
        probs, method = _masked_probs(lm, enc.ids), "pseudo-likelihood (each token hidden in turn)"
    else:
        logits = _forward(lm, enc.ids).logits[0].float()  # (T, V): row t scores token t + 1
        probs = torch.cat([torch.full((1, logits.size(-1)), float("nan")), logits[:-1].softmax(-1).cpu()])
        method = "next-token probability"
    result, logs = [], []
    for t, (token_id, text_t) in enumerate(zip(enc.ids, enc.texts)):
        if t < enc.scored_from or t == 0 and not is_masked(lm):
            result.append(TokenProbability(token_id, text_t, None))
            continue
        row = probs[t]  # (V,)
        p = float(row[token_id])
        values, indices = row.topk(top_k)
        top = [(token_text(lm.tokenizer, int(i)), float(v)) for v, i in zip(values, indices)]
        result.append(TokenProbability(token_id, text_t, p, top))
        logs.append(math.log(max(p, 1e-12)))
    perplexity = math.exp(-sum(logs) / len(logs)) if logs else float("nan")
    return TokenProbabilities(result, perplexity, lm.name, method, enc.notice)


def _masked_probs(lm: LoadedModel, ids: list[int]) -> torch.Tensor:
    """(T, V): for each position, the model's distribution there with that one token hidden."""
    mask_id = lm.tokenizer.mask_token_id
    batch = torch.tensor(ids).repeat(len(ids), 1)  # (T, T): row t will hide token t
    batch.fill_diagonal_(mask_id)
    rows = []
    with torch.inference_mode():
        for chunk_start in range(0, len(ids), 32):
            chunk = batch[chunk_start:chunk_start + 32].to(lm.device)
            logits = lm.model(input_ids=chunk).logits.float()  # (b, T, V)
            positions = torch.arange(chunk_start, chunk_start + chunk.size(0))
            rows.append(logits[torch.arange(chunk.size(0)), positions].softmax(-1).cpu())
    return torch.cat(rows)


def next_tokens(lm: LoadedModel, prefix: str, *, k: int = 20) -> tuple[list[NextToken], str]:
    """The ``k`` most likely next tokens after ``prefix`` (masked models: for a blank at the end)."""
    enc = encode(lm, prefix, lm.context_length - 1)
    ids = list(enc.ids)
    if is_masked(lm):
        ids = ids[: lm.context_length - 1] + [lm.tokenizer.mask_token_id]
    logits = _forward(lm, ids).logits[0, -1].float()  # (V,)
    values, indices = logits.softmax(-1).topk(min(k, logits.numel()))
    return [NextToken(int(i), token_text(lm.tokenizer, int(i)), float(v)) for v, i in zip(values, indices)], enc.notice


def fill_mask(lm: LoadedModel, text: str, *, k: int = 5) -> tuple[str, list[list[tuple[str, float]]]]:
    """Fill each mask token in ``text``; returns (the text with the best guesses, top-k per blank)."""
    tok = lm.tokenizer
    if tok.mask_token is None:
        raise AttentionUnavailableError(f"{lm.name} has no mask token, so it cannot fill in blanks.")
    enc = encode(lm, text.replace("[MASK]", tok.mask_token), lm.context_length)
    blanks = [t for t, i in enumerate(enc.ids) if i == tok.mask_token_id]
    if not blanks:
        return text, []
    logits = _forward(lm, enc.ids).logits[0].float()  # (T, V)
    filled, options = list(enc.ids), []
    for t in blanks:
        values, indices = logits[t].softmax(-1).topk(k)
        options.append([(token_text(tok, int(i)), float(v)) for v, i in zip(values, indices)])
        filled[t] = int(indices[0])
    return tok.decode(filled[enc.scored_from:], skip_special_tokens=False), options
