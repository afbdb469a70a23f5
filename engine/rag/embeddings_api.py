"""Embeddings for other programs (``POST /v1/embeddings``): which model, the request's checks, the work.

The server serves one sentence-embedding model: all-MiniLM-L6-v2 (the one the
collections use), or the local folder named by ``HEARTH_EMBEDDINGS_MODEL``.
Inputs longer than the model reads (256 tokens for MiniLM) are cut there, as
sentence-transformers does; the usage counts the tokens actually read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import base64
import os
from dataclasses import dataclass

import numpy as np

from engine.rag.embedder import DEFAULT_EMBEDDER_NAME

if TYPE_CHECKING:
    from engine.session import Session

MAX_INPUTS = 2048  # OpenAI's own limit per request
MODEL_ENV = "HEARTH_EMBEDDINGS_MODEL"


def served_model_path() -> str:
    return os.environ.get(MODEL_ENV, "")


def served_model_name() -> str:
    from engine.rag.embedder import embedder_name

    return embedder_name(served_model_path() or None)


def accepted_names() -> set[str]:
    name = served_model_name()
    names = {name, f"sentence-transformers/{name}"}
    if name == DEFAULT_EMBEDDER_NAME:
        names.add(name.lower())
    return names


@dataclass(frozen=True)
class EmbeddingsResult:
    vectors: np.ndarray  # (inputs, dim) float32, unit rows
    prompt_tokens: int
    model: str

    def to_openai(self, encoding_format: str = "float") -> dict:
        data = []
        for i, vector in enumerate(self.vectors):
            value = (base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii") if encoding_format == "base64"
                     else [float(x) for x in vector])
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {"object": "list", "data": data, "model": self.model,
                "usage": {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens}}


def embeddings_task(session: Session, *, on_text=None, on_progress=None, cancel=None, texts: list[str],
                    model_path: str = "") -> EmbeddingsResult:
    from engine.rag.embedder import shared_embedder

    embedder = shared_embedder(model_path or None)
    vectors = embedder.embed(texts, on_batch=lambda n: cancel.raise_if_cancelled() if cancel is not None else None)
    tokens = sum(min(n, embedder.max_tokens - 2) + 2 for n in embedder.count_tokens(texts))
    return EmbeddingsResult(vectors, tokens, embedder.name)
