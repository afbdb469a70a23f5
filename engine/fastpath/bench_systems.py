"""The systems ``hearth-cli bench`` compares, behind one small interface.

Each system decodes the same token ids (from Hearth's tokenizer, so every
system computes the same thing) and reports a ``Run``: the tokens, the time to
the first token, and the time for the rest. ``perplexity(ids)`` scores the
same held-out tokens from each system's own logits.

- ``Transformers``: ``model.generate`` on the fp32 transformers model (the baseline);
- ``Hearth``: a fast-path decoder (the GGUF file's own quantization, or int8/exact packs);
- ``LlamaCpp``: llama.cpp on the same GGUF through llama-cpp-python, when it is installed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.cancel import CancelToken
from engine.config import SamplingConfig

if TYPE_CHECKING:
    from engine.loader import LoadedModel

PPL_CHUNK = 512  # positions per forward when scoring held-out text


@dataclass
class Run:
    tokens: tuple[int, ...]
    ttft_s: float  # from the call to the first new token (the prompt pass + one step)
    rest_s: float  # after the first token


def greedy(new_tokens: int) -> SamplingConfig:
    return SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_new_tokens=new_tokens,
                          repetition_guard=False)


class Transformers:
    kind = "transformers"

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        self.name = "transformers"
        self.path = f"transformers generate ({str(lm.dtype).replace('torch.', '')}, eager)"

    def generate(self, ids: list[int], new_tokens: int, cancel: CancelToken) -> Run:
        return _generate(self.lm, None, ids, new_tokens, cancel)

    def perplexity(self, ids: list[int]) -> float:
        with torch.inference_mode():
            x = torch.tensor([ids], device=self.lm.device)
            return math.exp(float(self.lm.model(input_ids=x, labels=x).loss))


class Hearth:
    kind = "hearth"

    def __init__(self, lm: LoadedModel, decoder: Any, name: str, threads: int) -> None:
        from engine.fastpath.threads import ThreadChooser

        self.lm, self.decoder, self.name, self.path = lm, decoder, name, name
        # The same thread count as every other system, not the chooser's pick between 1 and all.
        decoder.threads = ThreadChooser(threads, fixed=True)
        decoder.prefill_threads = ThreadChooser(threads, fixed=True)

    def generate(self, ids: list[int], new_tokens: int, cancel: CancelToken) -> Run:
        self.decoder.forget()  # no run gains from an earlier run's KV cache
        return _generate(self.lm, self.decoder, ids, new_tokens, cancel)

    def perplexity(self, ids: list[int]) -> float:
        """From the prompt route's logits of every position, as llama.cpp's are computed."""
        forward = self.decoder.ready_for(self.lm).forward
        self.decoder.forget()
        with torch.inference_mode():
            logits = torch.cat([forward.forward(torch.tensor(ids[i:i + PPL_CHUNK], device=self.lm.device), i,
                                                all_positions=True) for i in range(0, len(ids), PPL_CHUNK)])
        self.decoder.forget()
        return _perplexity(logits, ids)

    def decode_perplexity(self, ids: list[int]) -> float:
        """The same text one token at a time: the decode route's own kernels (one-row matmuls)."""
        forward = self.decoder.ready_for(self.lm).forward
        self.decoder.forget()
        with torch.inference_mode():
            logits = torch.stack([forward.forward(torch.tensor([token], device=self.lm.device), i)
                                  for i, token in enumerate(ids)])
        self.decoder.forget()
        return _perplexity(logits, ids)


class LlamaCpp:
    kind = "llama.cpp"

    def __init__(self, gguf: Path, threads: int, context: int) -> None:
        from llama_cpp import Llama  # type: ignore[import-not-found]

        self.gguf, self.threads, self.context = Path(gguf), threads, context
        self.name, self.path = "llama.cpp", f"llama.cpp ({self.gguf.name})"
        self.llm = Llama(model_path=str(gguf), n_ctx=context, n_threads=threads, n_threads_batch=threads,
                         n_batch=512, verbose=False)

    def generate(self, ids: list[int], new_tokens: int, cancel: CancelToken) -> Run:
        self.llm.reset()  # no reuse of the previous prompt's KV cache
        out: list[int] = []
        start = time.perf_counter()
        first = start
        for token in self.llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            if not out:
                first = time.perf_counter()
            out.append(int(token))
            if len(out) >= new_tokens or cancel.cancelled or token == self.llm.token_eos():
                break
        end = time.perf_counter()
        return Run(tokens=tuple(out), ttft_s=first - start, rest_s=end - first)

    def perplexity(self, ids: list[int], one_at_a_time: bool = False) -> float:
        """llama.cpp's own logits for every position (a second context with logits_all; weights are shared)."""
        from llama_cpp import Llama  # type: ignore[import-not-found]

        scorer = Llama(model_path=str(self.gguf), n_ctx=self.context, n_threads=self.threads,
                       n_threads_batch=self.threads, n_batch=512, logits_all=True, verbose=False)
        try:
            for chunk in ([[token] for token in ids] if one_at_a_time else [ids]):
                scorer.eval(chunk)
            logits = torch.from_numpy(scorer.scores[:len(ids)].copy()).float()
        finally:
            close = getattr(scorer, "close", None)
            if close is not None:
                close()
        return _perplexity(logits, ids)

    def decode_perplexity(self, ids: list[int]) -> float:
        """The same text one token at a time: llama.cpp's decode route (its one-row matmuls)."""
        return self.perplexity(ids, one_at_a_time=True)


def _generate(lm: LoadedModel, decoder: Any, ids: list[int], new_tokens: int, cancel: CancelToken) -> Run:
    from engine.generation import generate_ids

    original = lm.extras.get("decoder")
    lm.extras["decoder"] = decoder
    try:
        result = generate_ids(lm, ids, greedy(new_tokens), cancel=cancel)
    finally:
        lm.extras["decoder"] = original
    return Run(tokens=result.token_ids, ttft_s=result.ttft_s, rest_s=result.elapsed_s - result.ttft_s)


def _perplexity(logits: torch.Tensor, ids: list[int]) -> float:
    """logits [S, V] for positions 0..S-1; scores ids[1:]."""
    targets = torch.tensor(ids[1:])
    nll = torch.nn.functional.cross_entropy(logits[:-1].float(), targets)
    return math.exp(float(nll))


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True
