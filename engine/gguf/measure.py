"""Peak memory and speed of a GGUF run quantized, measured in a fresh process.

``python -m engine.gguf.measure FILE.gguf [--tokens N] [--synthetic-1b FOLDER]`` prints one JSON object:
the file's size, the runtime's base (resident memory once torch, transformers
and the engine are imported and their kernels touched, before any model), the
peak while loading and generating, the KV cache, and

    ratio = (peak - base - KV cache) / file size      (issue #11's target: <= 1.5)

plus load time and decode tokens/s. A fresh process is needed because the
operating system only reports the peak over a process's whole life.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _warm_up() -> None:
    """What every model needs before its weights: the libraries and their kernels, paged in."""
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast  # noqa: F401

    import engine.chat_generation  # noqa: F401
    import engine.gguf.load  # noqa: F401
    from engine.fastpath.linear import Int4, Int8

    torch.randn(512, 512) @ torch.randn(512, 512)  # starts the intra-op thread pool
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # what chat templates compile with

    ImmutableSandboxedEnvironment().from_string("{{ x }}").render(x=1)
    x = torch.randn(1, 64)
    Int4.from_groups(torch.zeros(64, 64, dtype=torch.uint8), torch.ones(64, 2), torch.zeros(64, 2))(x)
    Int8.quantize(torch.randn(64, 64))(x)


def measure(path: str | Path, *, new_tokens: int = 64, prompt: str = "Write a short story about the sea.") -> dict:
    """Call in a fresh process (see the module's doc)."""
    from engine.gguf.memory import rss_bytes

    _warm_up()
    base = rss_bytes()
    from engine import ChatMessage, LoadConfig, SamplingConfig, chat, load_model

    start = time.perf_counter()
    lm = load_model(LoadConfig(path=str(path), device="cpu"))
    load_s = time.perf_counter() - start
    after_load = rss_bytes()
    reply = chat(lm, [ChatMessage("user", prompt)], SamplingConfig(max_new_tokens=new_tokens, temperature=0.0,
                                                                   repetition_guard=False))
    forward = lm.extras["decoder"]._prepared.forward
    kv = forward.cache.numel() * forward.cache.element_size() if forward.cache is not None else 0
    from engine.fastpath.bench_memory import peak_rss

    peak = peak_rss()
    file_bytes = Path(path).stat().st_size
    return {"file": Path(path).name, "quantization": lm.extras["gguf"]["quantization"],
            "parameters": lm.describe()["parameters"], "file_bytes": file_bytes, "base_rss": base,
            "rss_after_load": after_load, "peak_rss": peak, "kv_cache_bytes": kv,
            "ratio": round((peak - base - kv) / file_bytes, 3), "load_s": round(load_s, 2),
            "prompt_tokens": reply.prompt_tokens, "new_tokens": reply.new_tokens, "tok_s": round(reply.tok_s, 2),
            "ttft_s": round(reply.ttft_s, 3), "decoder": reply.decoder, "reply": reply.text[:120]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.gguf.measure", description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", help="a .gguf file (default: the built-in model)")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens to generate")
    parser.add_argument("--compare-speed", action="store_true",
                        help="the default model: GGUF int4 against the converted int8 folder, interleaved")
    parser.add_argument("--synthetic-1b", metavar="FOLDER",
                        help="write the synthetic 1 B-parameter Q4_K_M llama into FOLDER (once) and measure it")
    args = parser.parse_args(argv)
    if args.compare_speed:
        print(json.dumps(compare_speed(new_tokens=args.tokens), indent=1))
        return 0
    path = args.file
    if args.synthetic_1b:
        from engine.gguf.synthetic import one_billion, write_synthetic_gguf

        path = Path(args.synthetic_1b) / "synthetic-1b-Q4_K_M.gguf"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic_gguf(path, one_billion("Q4_K_M"))
            print(f"wrote {path}", file=sys.stderr)
            # writing touched memory this process should not be charged for: measure in a new one
            import subprocess

            return subprocess.call([sys.executable, "-m", "engine.gguf.measure", str(path),
                                    "--tokens", str(args.tokens)])
    if path is None:
        from engine.default_model import find_default_gguf

        path = find_default_gguf()
    print(json.dumps(measure(path, new_tokens=args.tokens), indent=1))
    return 0



def compare_speed(*, rounds: int = 2, new_tokens: int = 64) -> dict:
    """Decode tok/s and time to first token for a ~500-token prompt, interleaved in this process: the default
    model read from its GGUF (int4 groups) against its converted folder on the int8 fast path (the route
    before issue #11). Converts the folder first if the data folder has none."""
    import statistics

    from engine import LoadConfig, SamplingConfig, load_model
    from engine.cancel import CancelToken
    from engine.convert import ensure_default_model
    from engine.generation import generate_ids

    folder = ensure_default_model(on_progress=lambda f, m: None, cancel=CancelToken())
    systems = {"gguf int4": load_model(LoadConfig(device="cpu")),
               "folder int8": load_model(LoadConfig(path=str(folder), device="cpu"))}
    for lm in systems.values():
        lm.extras["decoder"].prepare()
    tok = systems["gguf int4"].tokenizer
    prompts = [tok(p)["input_ids"] for p in ("Write a short story about the sea.", "Explain how a bicycle works.")]
    long_prompt = (tok("The history of the sea and of the ships that sail on it. " * 40)["input_ids"])[:500]
    sampling = SamplingConfig(max_new_tokens=new_tokens, temperature=0.0, repetition_guard=False)
    speeds = {name: [] for name in systems}
    ttfts = {name: [] for name in systems}
    for _ in range(rounds):
        for name, lm in systems.items():
            for ids in prompts:
                lm.extras["decoder"].forget()
                speeds[name].append(generate_ids(lm, ids, sampling).tok_s)
            lm.extras["decoder"].forget()
            ttfts[name].append(generate_ids(lm, long_prompt, sampling.with_(max_new_tokens=1)).ttft_s)
    out = {name: {"tok_s": round(statistics.median(speeds[name]), 2),
                  "ttft_500_s": round(statistics.median(ttfts[name]), 3)} for name in systems}
    out["ratio_gguf_to_int8"] = round(out["gguf int4"]["tok_s"] / out["folder int8"]["tok_s"], 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
