"""Peak resident memory of one bench system, measured in a fresh process.

One process that holds transformers, Hearth and llama.cpp at once says nothing
about any one of them, and peak RSS never goes down, so each system is loaded
alone in a child process (``python -m engine.fastpath.bench_memory``) that
runs the long prompt and a few tokens and reports:

- ``base_rss_bytes``: after importing the runtime (torch, transformers, the engine), before the model;
- ``peak_rss_bytes``: the process's peak (VmHWM) after loading and generating;
- ``kv_cache_bytes``: Hearth's KV cache at the end (its cache is preallocated in 256-position steps);
- ``cuda_peak_bytes``: on CUDA, the most GPU memory torch held at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.loader import LoadedModel

PROBE_NEW_TOKENS = 8
PROBE_TIMEOUT_S = 1800


def probe(kind: str, config: Any, threads: int, prompt_tokens: int, mode: str | None) -> dict:
    """Run the child; returns its figures, or {"error": ...} (a failed probe does not fail the bench)."""
    args = {"kind": kind, "mode": mode, "threads": threads, "prompt_tokens": prompt_tokens,
            "config": {k: v for k, v in asdict(config).items() if k in ("model", "device")}}
    try:
        done = subprocess.run([sys.executable, "-m", "engine.fastpath.bench_memory", json.dumps(args)],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"the memory probe took more than {PROBE_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"the memory probe failed: {tail[0][:300]}"}
    return json.loads(lines[-1])


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries it across exec, so a child started by
    a process that holds three models would report the parent's peak. VmHWM belongs to this image only."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import psutil

    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak:
        return int(peak)
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # macOS: bytes


def _child(args: dict) -> dict:
    import torch
    import transformers  # noqa: F401  (part of the runtime's base, as in the app)

    from engine.cancel import CancelToken
    from engine.fastpath import bench_systems as B
    from engine.fastpath.benchmark import HELD_OUT, BenchConfig, gguf_for, load_app_model, load_baseline

    kind, mode, threads = args["kind"], args["mode"], args["threads"]
    if kind == "llama.cpp":
        import llama_cpp  # noqa: F401  (its library is part of its base)
    config = BenchConfig(**args["config"])
    torch.set_num_threads(threads)
    cancel, quiet = CancelToken(), (lambda f, m: None)
    base = _rss()
    kv = 0
    if kind == "llama.cpp":
        system = B.LlamaCpp(gguf_for(config.model), threads, 4096)
        text = system.llm.tokenize(HELD_OUT.encode("utf-8"), add_bos=False)
        system.generate(_repeat(text, args["prompt_tokens"]), PROBE_NEW_TOKENS, cancel)
    else:
        lm = load_app_model(config, quiet, cancel) if mode == "app" else load_baseline(config, quiet, cancel)
        ids = _repeat(lm.tokenizer(HELD_OUT, add_special_tokens=False)["input_ids"], args["prompt_tokens"])
        if kind == "transformers":
            B.Transformers(lm).generate(ids, PROBE_NEW_TOKENS, cancel)
        else:
            decoder = lm.extras["decoder"] if mode == "app" else _fast_decoder(lm, mode)
            B.Hearth(lm, decoder, kind, threads).generate(ids, PROBE_NEW_TOKENS, cancel)
            cache = decoder.ready_for(lm).forward.cache
            kv = 0 if cache is None else cache.numel() * cache.element_size()
    figures = {"probe": mode or kind, "base_rss_bytes": base, "peak_rss_bytes": peak_rss(), "kv_cache_bytes": kv}
    if torch.cuda.is_available() and config.device.startswith("cuda"):
        figures["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    return figures


def _fast_decoder(lm: LoadedModel, mode: str) -> Any:
    from engine.fastpath.decoder import FastDecoder

    decoder = FastDecoder(lm, mode)
    if not decoder.prepare():
        raise RuntimeError(decoder.reason)
    return decoder


def _repeat(ids: list[int], n: int) -> list[int]:
    return (ids * (n // max(1, len(ids)) + 1))[:n]


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
