"""``hearth-cli bench``: transformers' plain ``generate`` against the fast path, in one process.

The CPU of a desktop is shared, so absolute speeds wander; every figure is
measured interleaved (baseline, then each fast mode, prompt by prompt, round
by round) and reported next to the baseline as a ratio. The KV cache of the
fast path is cleared before every run, so no run gains from an earlier one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.config import InvalidConfigError, SamplingConfig

PROMPTS = (
    "Write a short poem about the sea at night.",
    "Explain in simple words how a refrigerator keeps food cold.",
    "Give me three tips for learning a new language as an adult.",
    "What is the difference between a list and a tuple in Python?",
    "Summarise the story of Little Red Riding Hood in a few sentences.",
)

# Held-out text for perplexity and for the long prompt (written for this benchmark).
HELD_OUT = (
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps as his "
    "father had taught him. There were one hundred and twelve of them, worn smooth in the middle by more than "
    "a century of boots. At the top he wiped the great lens with a soft cloth, checked the oil, and lit the "
    "lamp. Out on the water the fishing boats were coming home, their small lights bobbing like fireflies. "
    "He liked to watch them until the last one had passed the harbour wall. In the winter the storms came in "
    "from the west, and the waves broke so high against the rocks that the spray reached the windows of the "
    "lamp room. On those nights he did not sleep. He sat by the lamp with a pot of tea and a book, listening "
    "to the wind, and every hour he went out onto the gallery to make sure the light was still turning. "
    "When the village built a new automatic beacon on the point, people told him he could finally rest. "
    "He thanked them, and the next evening he climbed the stairs again, because the sea does not care "
    "whether a machine is watching, and neither, he said, did he. Years later, when the lighthouse became a "
    "small museum, the children who visited were allowed to count the steps themselves, and most of them "
    "lost count somewhere around sixty, laughed, and started again from the bottom. The guide always told "
    "them the same thing: the keeper never lost count, not once, not even in the worst storm of all."
)


@dataclass(frozen=True)
class BenchConfig:
    model: str | None = None  # None: the default model
    device: str = "cpu"
    new_tokens: int = 64
    repeats: int = 2  # rounds over the five prompts
    modes: tuple[str, ...] = ("exact", "int8")
    long_prompt_tokens: int = 500  # for time to first token
    perplexity_tokens: int = 256
    prompts: tuple[str, ...] = field(default=PROMPTS)

    def __post_init__(self) -> None:
        if self.new_tokens < 2 or self.repeats < 1 or self.long_prompt_tokens < 2 or self.perplexity_tokens < 8:
            raise InvalidConfigError("new_tokens >= 2, repeats >= 1, long_prompt_tokens >= 2 and "
                                     "perplexity_tokens >= 8 are needed for a benchmark")
        for mode in self.modes:
            if mode not in ("exact", "int8"):
                raise InvalidConfigError(f"bench modes are exact and int8, not {mode!r}")


def run_bench(config: BenchConfig, *, on_progress: Callable[[float, str], None] | None = None,
              cancel: CancelToken | None = None, lm: Any = None) -> dict:
    """Measure; returns the report as a dict (see bench/README.md for the fields)."""
    import torch

    from engine.chat_generation import render
    from engine.fastpath.decoder import FastDecoder

    on_progress = on_progress or (lambda f, m: None)
    cancel = cancel or CancelToken()
    load_start = os.getloadavg()[0]
    if lm is None:
        from engine.config import LoadConfig
        from engine.loader import load_model

        # The baseline is transformers as it comes: fp32, eager, no fast path attached.
        lm = load_model(LoadConfig(path=config.model, device=config.device, dtype="float32", fast=False),
                        on_progress=lambda f, m: on_progress(0.05 * f, m), cancel=cancel)
    paths: dict[str, Any] = {"baseline": None}
    prepare_s: dict[str, float] = {}
    for mode in config.modes:
        decoder = FastDecoder(lm, mode)
        start = time.perf_counter()
        if not decoder.prepare():
            raise InvalidConfigError(f"the fast path cannot run this model: {decoder.reason}")
        prepare_s[decoder.mode] = time.perf_counter() - start
        paths[decoder.mode] = decoder
    prompts = [render(lm.tokenizer, [{"role": "user", "content": p}]) for p in config.prompts]
    greedy = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_new_tokens=config.new_tokens)
    timing = {name: [0, 0.0] for name in paths}  # name -> [tokens after the first, seconds]
    first_round: dict[str, list[tuple[int, ...]]] = {name: [] for name in paths}
    runs, done = config.repeats * len(prompts) * len(paths), 0
    for round_ in range(config.repeats):
        for ids in prompts:
            for name, decoder in paths.items():
                cancel.raise_if_cancelled()
                result = _timed_run(lm, decoder, ids, greedy, cancel)
                timing[name][0] += max(0, result.new_tokens - 1)
                timing[name][1] += result.elapsed_s - result.ttft_s
                if round_ == 0:
                    first_round[name].append(result.token_ids)
                done += 1
                on_progress(0.05 + 0.6 * done / runs, f"decoding: {name}, round {round_ + 1}")
    long_ids = _long_prompt(lm.tokenizer, min(config.long_prompt_tokens, lm.context_length - 2))
    ttft = {name: [] for name in paths}
    for _ in range(config.repeats):
        for name, decoder in paths.items():
            cancel.raise_if_cancelled()
            ttft[name].append(_timed_run(lm, decoder, long_ids, greedy.with_(max_new_tokens=1), cancel).ttft_s)
    on_progress(0.75, "perplexity")
    text_ids = _held_out_ids(lm.tokenizer, min(config.perplexity_tokens, lm.context_length))
    ppl = {"baseline": _hf_perplexity(lm, text_ids)}
    for name, decoder in paths.items():
        if decoder is not None:
            cancel.raise_if_cancelled()
            ppl[name] = _fast_perplexity(decoder, lm, text_ids)
    on_progress(0.95, "llama.cpp")
    tok_s = {name: (t / s if s > 0 else 0.0) for name, (t, s) in timing.items()}
    report = {
        "model": lm.name, "device": str(lm.device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "prompts": len(prompts), "prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "new_tokens": config.new_tokens, "repeats": config.repeats,
        "baseline": {"path": "transformers generate (fp32, eager)", "tok_s": round(tok_s["baseline"], 2),
                     "ttft_s": _median(ttft["baseline"]), "perplexity": round(ppl["baseline"], 4)},
        "paths": [],
        "long_prompt_tokens": len(long_ids), "perplexity_tokens": len(text_ids),
    }
    for name in paths:
        if name == "baseline":
            continue
        entry = {"path": f"hearth {name}", "mode": name, "tok_s": round(tok_s[name], 2),
                 "ratio": round(tok_s[name] / tok_s["baseline"], 2) if tok_s["baseline"] else None,
                 "ttft_s": _median(ttft[name]), "prepare_s": round(prepare_s[name], 3),
                 "greedy_match": _greedy_match(first_round["baseline"], first_round[name], 64),
                 "perplexity": round(ppl[name], 4),
                 "perplexity_change_pct": round(100 * (ppl[name] / ppl["baseline"] - 1), 3)}
        report["paths"].append(entry)
    report["llama_cpp"] = _llama_cpp(lm, config, prompts, tok_s["baseline"])
    report["load_average"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    on_progress(1.0, "done")
    return report


def _timed_run(lm: Any, decoder: Any, ids: list[int], sampling: SamplingConfig, cancel: CancelToken):
    from engine.generation import generate_ids

    if decoder is not None:
        decoder.forget()  # no reuse of an earlier run's KV cache
    original = lm.extras.get("decoder")
    lm.extras["decoder"] = decoder
    try:
        return generate_ids(lm, ids, sampling, cancel=cancel)
    finally:
        lm.extras["decoder"] = original


def _greedy_match(reference: list[tuple[int, ...]], other: list[tuple[int, ...]], first: int) -> float:
    """Share of the baseline's first ``first`` tokens that the other path reproduced, position by position."""
    same = total = 0
    for ref, out in zip(reference, other):
        ref = ref[:first]
        total += len(ref)
        same += sum(a == b for a, b in zip(ref, out))
    return round(same / total, 4) if total else 0.0


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return round(values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2, 4)


def _held_out_ids(tokenizer: Any, n: int) -> list[int]:
    ids = tokenizer(HELD_OUT, add_special_tokens=False)["input_ids"]
    return ids[:n]


def _long_prompt(tokenizer: Any, n: int) -> list[int]:
    ids = tokenizer(HELD_OUT, add_special_tokens=False)["input_ids"]
    return (ids * (n // max(1, len(ids)) + 1))[:n]


def _hf_perplexity(lm: Any, ids: list[int]) -> float:
    import torch

    with torch.inference_mode():
        x = torch.tensor([ids], device=lm.device)
        loss = lm.model(input_ids=x, labels=x).loss
    return math.exp(float(loss))


def _fast_perplexity(decoder: Any, lm: Any, ids: list[int]) -> float:
    """Teacher-forced, one token at a time: the route every reply token takes."""
    import torch

    forward = decoder.ready_for(lm).forward
    decoder.forget()
    nll = 0.0
    with torch.inference_mode():
        for pos in range(len(ids) - 1):
            logits = forward.forward(torch.tensor(ids[pos:pos + 1], device=lm.device), pos)
            nll -= float(torch.log_softmax(logits, -1)[ids[pos + 1]])
    decoder.forget()
    return math.exp(nll / (len(ids) - 1))


def _llama_cpp(lm: Any, config: BenchConfig, prompts: list[list[int]], baseline_tok_s: float) -> dict | None:
    """llama.cpp on the same GGUF, only if llama-cpp-python happens to be installed (never a dependency)."""
    try:
        from llama_cpp import Llama  # type: ignore[import-not-found]
    except ImportError:
        return None
    gguf = _gguf_for(lm, config)
    if gguf is None:
        return {"error": "no GGUF file for this model"}
    import torch

    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=torch.get_num_threads(), verbose=False)
    tokens, seconds = 0, 0.0
    for _ in range(config.repeats):
        for ids in prompts:
            first = None
            count = 0
            for _chunk in llm.create_completion(prompt=ids, max_tokens=config.new_tokens, temperature=0.0,
                                                top_k=1, stream=True):
                count += 1
                if first is None:
                    first = time.perf_counter()
            if first is not None and count > 1:
                tokens += count - 1
                seconds += time.perf_counter() - first
    tok_s = tokens / seconds if seconds else 0.0
    return {"path": f"llama.cpp ({gguf.name})", "tok_s": round(tok_s, 2),
            "ratio": round(tok_s / baseline_tok_s, 2) if baseline_tok_s else None}


def _gguf_for(lm: Any, config: BenchConfig):
    from pathlib import Path

    if config.model and str(config.model).lower().endswith(".gguf"):
        return Path(config.model)
    if config.model is None:
        try:
            from engine.default_model import find_default_gguf

            return Path(find_default_gguf())
        except Exception:
            return None
    return None
