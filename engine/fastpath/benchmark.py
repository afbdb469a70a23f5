"""``hearth-cli bench``: transformers, Hearth and llama.cpp on the same model, in one process.

The CPU of a desktop is shared, so absolute speeds wander; every speed is
measured interleaved (each system in turn, prompt by prompt, round by round)
and reported next to the baseline (transformers ``generate``) and next to
llama.cpp as ratios. Every system decodes the same token ids with the same
thread count; no run reuses an earlier run's KV cache.

Per system: decode tok/s (after the first token), time to first token and
prompt tok/s for a long prompt, perplexity on held-out text from the system's
own logits, and peak resident memory, measured in a fresh process per system
(bench_memory.py) because one process holding all three says nothing about
any one of them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.config import InvalidConfigError

if TYPE_CHECKING:
    from engine.loader import LoadedModel

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

MODES = ("exact", "int8")


@dataclass(frozen=True)
class BenchConfig:
    model: str | None = None  # None: the default model
    device: str = "cpu"
    new_tokens: int = 64
    repeats: int = 2  # rounds over the prompts
    modes: tuple[str, ...] | None = None  # extra fast-path packs of the transformers model; None: by model kind
    long_prompt_tokens: int = 500  # for time to first token and prompt speed
    perplexity_tokens: int = 256
    threads: int = 0  # every system's thread count; 0: torch's default
    llama_cpp: bool = True  # compare with llama.cpp when llama-cpp-python is installed
    memory: bool = True  # peak RSS per system, each in a fresh process
    baseline: bool = True  # transformers generate (slow on big models)
    synthetic: str | None = None  # bench a random 1 B llama GGUF of this quantization mix (written once)
    prompts: tuple[str, ...] = field(default=PROMPTS)

    def __post_init__(self) -> None:
        if self.new_tokens < 2 or self.repeats < 1 or self.long_prompt_tokens < 2 or self.perplexity_tokens < 8:
            raise InvalidConfigError("new_tokens >= 2, repeats >= 1, long_prompt_tokens >= 2 and "
                                     "perplexity_tokens >= 8 are needed for a benchmark")
        for mode in self.modes or ():
            if mode not in MODES:
                raise InvalidConfigError(f"bench modes are exact and int8, not {mode!r}")
        if self.threads < 0:
            raise InvalidConfigError("threads must be 0 (torch's default) or more")
        if self.synthetic is not None and self.model is not None:
            raise InvalidConfigError("give a model or a synthetic quantization, not both")


def synthetic_model(quant: str, on_progress: Callable | None = None) -> Path:
    """The bench's random 1 B-parameter llama GGUF (engine.gguf.synthetic), written once into the data folder."""
    from engine.gguf.synthetic import PRESETS, one_billion, write_synthetic_gguf
    from engine.paths import subdir

    if quant not in PRESETS:
        raise InvalidConfigError(f"synthetic quantization must be one of {', '.join(PRESETS)}, not {quant!r}")
    path = subdir("bench") / f"synthetic-1b-{quant}.gguf"
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.tmp")
        write_synthetic_gguf(tmp, one_billion(quant), on_progress=on_progress)
        os.replace(tmp, path)
    return path


# -- which models -------------------------------------------------------------------
def gguf_for(model: str | None) -> Path | None:
    """The GGUF file a model comes from (llama.cpp runs it), or None for a transformers folder."""
    if model is not None:
        return Path(model) if str(model).lower().endswith(".gguf") else None
    try:
        from engine.default_model import find_default_gguf

        return Path(find_default_gguf())
    except Exception:  # no default model installed: the bench of a folder still runs
        return None


def load_app_model(config: BenchConfig, on_progress: Callable, cancel: CancelToken) -> Any:
    """The model as the app loads it, fast path attached (a GGUF runs on its own quantization)."""
    from engine.config import LoadConfig
    from engine.loader import load_model

    return load_model(LoadConfig(path=config.model, device=config.device), on_progress=on_progress, cancel=cancel)


def load_baseline(config: BenchConfig, on_progress: Callable, cancel: CancelToken) -> Any:
    """transformers as it comes: fp32 (bf16 on CUDA), eager, no fast path; a GGUF through its dequantized folder."""
    from engine import convert
    from engine.config import LoadConfig
    from engine.loader import load_folder

    dtype = "float32" if config.device == "cpu" else "auto"  # CUDA: bf16 (fp16 where bf16 is missing)
    load = LoadConfig(path=config.model, device=config.device, dtype=dtype, fast=False)
    gguf = gguf_for(config.model)
    if gguf is None:
        folder = Path(config.model)
    elif config.model is None:
        folder = convert.ensure_default_model(on_progress=on_progress, cancel=cancel)
    else:
        folder = convert.ensure_gguf_converted(gguf, on_progress=on_progress, cancel=cancel)
    return load_folder(folder, load, on_progress=on_progress, cancel=cancel)


def runs_quantized_file(lm: LoadedModel) -> bool:
    """True when the app runs the GGUF's own blocks (not a transformers model)."""
    return "gguf" in lm.extras


# -- the run ------------------------------------------------------------------------
def run_bench(config: BenchConfig, *, on_progress: Callable[[float, str], None] | None = None,
              cancel: CancelToken | None = None) -> dict:
    """Measure; returns the report as a dict (bench/README.md describes the fields)."""
    import torch

    from engine.chat_generation import render
    from engine.fastpath.bench_report import build_report

    on_progress = on_progress or (lambda f, m: None)
    cancel = cancel or CancelToken()
    load_start = os.getloadavg()[0]
    if config.synthetic is not None:
        path = synthetic_model(config.synthetic, lambda f, m: on_progress(0.0, f"writing the synthetic model: {m}"))
        config = replace(config, model=str(path), synthetic=None)
    threads = config.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    systems, app_lm = _systems(config, threads, on_progress, cancel)
    lm = app_lm  # its tokenizer gives every system the same ids
    prompts = [render(lm.tokenizer, [{"role": "user", "content": p}]) for p in config.prompts]
    context = min(s.context_limit for s in systems)
    long_ids = _long_prompt(lm.tokenizer, min(config.long_prompt_tokens, context - 2))
    text_ids = _held_out_ids(lm.tokenizer, min(config.perplexity_tokens, context))
    decode = {s.name: [] for s in systems}
    long = {s.name: [] for s in systems}
    total, done = config.repeats * (len(prompts) + 1) * len(systems), 0
    for round_ in range(config.repeats):
        for ids in prompts:
            for s in systems:
                cancel.raise_if_cancelled()
                decode[s.name].append(s.generate(ids, config.new_tokens, cancel))
                done += 1
                on_progress(0.1 + 0.6 * done / total, f"decoding: {s.name}, round {round_ + 1}")
        for s in systems:  # the long prompt: time to first token
            cancel.raise_if_cancelled()
            long[s.name].append(s.generate(long_ids, 2, cancel))
            done += 1
    on_progress(0.72, "perplexity")
    ppl, ppl_decode = {}, {}
    for s in systems:
        cancel.raise_if_cancelled()
        ppl[s.name] = s.perplexity(text_ids)
        if hasattr(s, "decode_perplexity"):  # one-row kernels differ from the prompt route's (Hearth, llama.cpp)
            ppl_decode[s.name] = s.decode_perplexity(text_ids)
    memory = {}
    if config.memory:
        from engine.fastpath.bench_memory import probe

        for i, s in enumerate(systems):
            cancel.raise_if_cancelled()
            on_progress(0.8 + 0.19 * i / len(systems), f"peak memory: {s.name}")
            memory[s.name] = probe(s.kind, config, threads, len(long_ids), s.probe_mode)
    on_progress(1.0, "done")
    return build_report(config, lm, systems, decode=decode, long=long, ppl=ppl, memory=memory, threads=threads,
                        ppl_decode=ppl_decode,
                        prompts=prompts, long_ids=long_ids, text_ids=text_ids,
                        load_average=[round(load_start, 2), round(os.getloadavg()[0], 2)])


def _systems(config: BenchConfig, threads: int, on_progress: Callable, cancel: CancelToken) -> tuple[list, Any]:
    """The systems in the order they run, and the model whose tokenizer makes the ids."""
    from engine.fastpath import bench_systems as B
    from engine.fastpath.decoder import FastDecoder

    on_progress(0.0, "loading the model")
    app_lm = load_app_model(config, on_progress=lambda f, m: on_progress(0.04 * f, m), cancel=cancel)
    quantized = runs_quantized_file(app_lm)
    base_lm = None
    if config.baseline and not quantized and str(app_lm.dtype) == "torch.float32":
        base_lm = app_lm  # a transformers model, fp32 already: the baseline, and the packs come from it
    elif config.baseline:
        base_lm = load_baseline(config, lambda f, m: on_progress(0.04 + 0.04 * f, m), cancel)
    systems: list = []
    if base_lm is not None:
        base_lm.tokenizer = app_lm.tokenizer
        systems.append(_with_limits(B.Transformers(base_lm), base_lm.context_length, None))
    if quantized:
        decoder = app_lm.extras["decoder"]
        systems.append(_with_limits(B.Hearth(app_lm, decoder, f"hearth {decoder.mode}", threads),
                                    app_lm.context_length, "app"))
    modes = config.modes if config.modes is not None else (() if quantized else MODES)
    source = base_lm if base_lm is not None else app_lm
    names = {s.name for s in systems}
    for mode in modes:
        if runs_quantized_file(source):
            raise InvalidConfigError("the exact / int8 packs need the transformers model (drop --no-baseline)")
        decoder = FastDecoder(source, mode)
        if f"hearth {decoder.mode}" in names:  # int8 is exact off the CPU
            continue
        names.add(f"hearth {decoder.mode}")
        start = time.perf_counter()
        if not decoder.prepare():
            raise InvalidConfigError(f"the fast path cannot run this model: {decoder.reason}")
        hearth = B.Hearth(source, decoder, f"hearth {decoder.mode}", threads)
        hearth.prepare_s = time.perf_counter() - start
        systems.append(_with_limits(hearth, source.context_length, decoder.mode))
    gguf = gguf_for(config.model)
    if config.llama_cpp and gguf is not None and B.llama_cpp_available():
        on_progress(0.09, "loading llama.cpp")
        context = min(app_lm.context_length, 4096)
        systems.append(_with_limits(B.LlamaCpp(gguf, threads, context), context, None))
    return systems, app_lm


def _with_limits(system: Any, context: int, probe_mode: str | None) -> Any:
    system.context_limit, system.probe_mode = int(context), probe_mode
    return system


def _held_out_ids(tokenizer: Any, n: int) -> list[int]:
    return tokenizer(HELD_OUT, add_special_tokens=False)["input_ids"][:n]


def _long_prompt(tokenizer: Any, n: int) -> list[int]:
    ids = tokenizer(HELD_OUT, add_special_tokens=False)["input_ids"]
    return (ids * (n // max(1, len(ids)) + 1))[:n]
