"""The bench's report: figures per system, ratios, the memory bound; as a dict and as a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.loader import LoadedModel

MEMORY_FACTOR = 1.5  # the bound: peak RSS <= 1.5 x the GGUF + the KV cache + the runtime's base
MIB = 1024 * 1024


def build_report(config: Any, lm: LoadedModel, systems: list, *, decode: dict, long: dict, ppl: dict, memory: dict,
                 threads: int, prompts: list, long_ids: list, text_ids: list, load_average: list,
                 ppl_decode: dict | None = None) -> dict:
    import torch

    from engine.fastpath.kernels import build as kernels

    from engine.fastpath.benchmark import gguf_for

    gguf = gguf_for(config.model)
    reference = decode[systems[0].name][:len(prompts)] if systems[0].kind == "transformers" else None
    entries = []
    for s in systems:
        runs = decode[s.name]
        tokens = sum(max(0, len(r.tokens) - 1) for r in runs)
        seconds = sum(r.rest_s for r in runs)
        ttft = _median([r.ttft_s for r in long[s.name]])
        entry = {"name": s.name, "path": s.path, "decode_tok_s": round(tokens / seconds, 2) if seconds else 0.0,
                 "ttft_s": round(ttft, 6), "prompt_tok_s": round(len(long_ids) / ttft, 1) if ttft else 0.0,
                 "perplexity": round(ppl[s.name], 4)}
        if s.name in (ppl_decode or {}):
            entry["perplexity_decode"] = round(ppl_decode[s.name], 4)
        if reference is not None and s is not systems[0]:
            entry["greedy_match"] = greedy_match([r.tokens for r in reference], [r.tokens for r in runs], 64)
        if hasattr(s, "prepare_s"):
            entry["prepare_s"] = round(s.prepare_s, 3)
        if s.name in memory:
            entry["memory"] = memory[s.name]
        entries.append(entry)
    _add_ratios(entries)
    report = {
        "model": lm.name, "file": str(gguf) if gguf else None,
        "file_bytes": gguf.stat().st_size if gguf and gguf.is_file() else None,
        "quantization": lm.extras.get("gguf", {}).get("quantization"),
        "device": str(lm.device), "torch": torch.__version__, "threads": threads,
        "prompts": len(prompts), "prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "new_tokens": config.new_tokens, "repeats": config.repeats,
        "long_prompt_tokens": len(long_ids), "perplexity_tokens": len(text_ids),
        "systems": entries,
        "llama_cpp": _llama_cpp_note(config, gguf, systems),
        "load_average": load_average,
        "kernels": kernels.describe() if str(lm.device) == "cpu" else None,
        # Where the kernels run, a decode step's layers are one C call (kernels/step.c), else torch ops from Python
        "decode_layers": ("C (step.c)" if kernels.load() is not None else "Python") if str(lm.device) == "cpu"
        else None,
    }
    report["memory_bound"] = _memory_bound(report)
    return report


def _add_ratios(entries: list[dict]) -> None:
    """Each system against transformers (the baseline) and against llama.cpp, where they ran."""
    by_name = {e["name"]: e for e in entries}
    for other, key in (("transformers", "vs_transformers"), ("llama.cpp", "vs_llama_cpp")):
        ref = by_name.get(other)
        if ref is None:
            continue
        for e in entries:
            if e is ref:
                continue
            e[key] = {"decode": _ratio(e["decode_tok_s"], ref["decode_tok_s"]),
                      "prompt": _ratio(e["prompt_tok_s"], ref["prompt_tok_s"]),
                      "perplexity_pct": round(100 * (e["perplexity"] / ref["perplexity"] - 1), 3)}
            if "perplexity_decode" in e and "perplexity_decode" in ref:  # token by token, both sides
                ratio = e["perplexity_decode"] / ref["perplexity_decode"]
                e[key]["perplexity_decode_pct"] = round(100 * (ratio - 1), 3)


def _memory_bound(report: dict) -> dict | None:
    """Hearth's peak RSS against 1.5 x the file + its KV cache + the runtime's base (torch and friends)."""
    file_bytes = report.get("file_bytes")
    hearth = next((e for e in report["systems"] if e["name"].startswith("hearth") and "memory" in e
                   and e["memory"].get("probe") == "app"), None)
    if not file_bytes or hearth is None or "peak_rss_bytes" not in hearth["memory"]:
        return None
    mem = hearth["memory"]
    limit = MEMORY_FACTOR * file_bytes + mem.get("kv_cache_bytes", 0) + mem["base_rss_bytes"]
    return {"system": hearth["name"], "peak_rss_bytes": mem["peak_rss_bytes"], "limit_bytes": int(limit),
            "file_bytes": file_bytes, "kv_cache_bytes": mem.get("kv_cache_bytes", 0),
            "runtime_base_bytes": mem["base_rss_bytes"], "within": mem["peak_rss_bytes"] <= limit}


def _llama_cpp_note(config: Any, gguf: Any, systems: list) -> str:
    if any(s.kind == "llama.cpp" for s in systems):
        return "ran"
    if not config.llama_cpp:
        return "not asked for (--no-llama-cpp)"
    if gguf is None:
        return "no GGUF file for this model"
    return "llama-cpp-python is not installed (make bench-llamacpp)"


def greedy_match(reference: list, other: list, first: int) -> float:
    """Share of the baseline's first ``first`` tokens that the other system reproduced, position by position."""
    same = total = 0
    for ref, out in zip(reference, other):
        ref = ref[:first]
        total += len(ref)
        same += sum(a == b for a, b in zip(ref, out))
    return round(same / total, 4) if total else 0.0


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def format_report(r: dict) -> str:
    """The report as a table for a terminal."""
    lines = [f"model {r['model']}" + (f" ({r['quantization']})" if r.get("quantization") else "")
             + f" on {r['device']}, {r['threads']} threads for every system, torch {r['torch']}",
             f"{r['prompts']} prompts of ~{r['prompt_tokens']:.0f} tokens, {r['new_tokens']} new tokens, "
             f"{r['repeats']} rounds; long prompt {r['long_prompt_tokens']} tokens; perplexity on "
             f"{r['perplexity_tokens']} held-out tokens; load average {r['load_average'][0]} -> {r['load_average'][1]}",
             f"{'system':<40} {'decode':>8} {'prompt':>8} {'TTFT':>7} {'ppl':>8} {'peak RSS':>9} "
             f"{'×transf.':>8} {'×llama.cpp dec/prompt':>22} {'greedy=':>7}"]
    for e in r["systems"]:
        mem = e.get("memory", {})
        rss = f"{mem['peak_rss_bytes'] / MIB:.0f} MiB" if "peak_rss_bytes" in mem else "-"
        vs_t = e.get("vs_transformers", {}).get("decode")
        vs_c = e.get("vs_llama_cpp")
        cpp = f"{vs_c['decode']:.2f} / {vs_c['prompt']:.2f}" if vs_c else ""
        match = f"{e['greedy_match'] * 100:.0f}%" if "greedy_match" in e else ""
        lines.append(f"{e['path'][:40]:<40} {e['decode_tok_s']:>8.1f} {e['prompt_tok_s']:>8.1f} {e['ttft_s']:>6.2f}s "
                     f"{e['perplexity']:>8.5g} {rss:>9} {'' if vs_t is None else f'{vs_t:.2f}':>8} {cpp:>22} "
                     f"{match:>7}")
    lines.append("decode and prompt in tokens/s; prompt = long prompt / TTFT")
    for e in r["systems"]:
        if "perplexity_decode" in e:
            vs = e.get("vs_llama_cpp", {}).get("perplexity_decode_pct")
            lines.append(f"{e['path']}: perplexity token by token (the decode route) {e['perplexity_decode']:.5g}"
                         + ("" if vs is None else f", {vs:+.2f} % vs llama.cpp token by token"))
    if r.get("kernels"):
        lines.append(f"one-row int4/int8 matmuls: {r['kernels']}; a decode step's layers: {r.get('decode_layers')}")
    if r["llama_cpp"] != "ran":
        lines.append(f"llama.cpp: {r['llama_cpp']}")
    bound = r.get("memory_bound")
    if bound:
        lines.append(f"memory: {bound['system']} peaked at {bound['peak_rss_bytes'] / MIB:.0f} MiB; bound "
                     f"1.5 × file ({bound['file_bytes'] / MIB:.0f} MiB) + KV cache ({bound['kv_cache_bytes'] / MIB:.0f}"
                     f" MiB) + runtime ({bound['runtime_base_bytes'] / MIB:.0f} MiB) = "
                     f"{bound['limit_bytes'] / MIB:.0f} MiB: {'within' if bound['within'] else 'OVER'}")
    return "\n".join(lines)
