"""``hearth-cli bench`` on the tiny model: every system has every figure, and the exact path agrees."""

from __future__ import annotations

import json

import pytest

from engine.errors import InvalidConfigError
from engine.fastpath.bench_report import build_report, greedy_match


def run_json(capsys, *args) -> dict:
    from engine.cli import main

    assert main(["bench", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_json_reports_every_system(tiny_model_dir, capsys):
    report = run_json(capsys, "--model", str(tiny_model_dir), "--new-tokens", "6", "--repeats", "1",
                      "--threads", "1", "--perplexity-tokens", "40", "--no-memory")
    assert report["new_tokens"] == 6 and report["prompts"] == 5 and report["device"] == "cpu"
    assert report["threads"] == 1 and report["perplexity_tokens"] == 40
    assert report["long_prompt_tokens"] == 254  # 500 asked, cut to the tiny model's context of 256
    assert report["file"] is None and report["llama_cpp"] == "no GGUF file for this model"
    systems = {s["name"]: s for s in report["systems"]}
    assert list(systems) == ["transformers", "hearth exact", "hearth int8"]
    base = systems["transformers"]
    assert base["decode_tok_s"] > 0 and base["perplexity"] > 1 and "vs_transformers" not in base
    exact = systems["hearth exact"]
    assert exact["greedy_match"] == 1.0  # fp32, same function: same greedy tokens
    assert abs(exact["vs_transformers"]["perplexity_pct"]) < 0.01
    for s in systems.values():
        assert s["ttft_s"] > 0 and s["prompt_tok_s"] == pytest.approx(254 / s["ttft_s"], rel=0.01)
    assert systems["hearth int8"]["prepare_s"] >= 0 and "memory" not in base


def test_bench_measures_peak_memory_in_a_fresh_process(tiny_model_dir):
    from engine.fastpath.bench_memory import probe
    from engine.fastpath.benchmark import BenchConfig

    import torch

    ballast = torch.ones(2 ** 28)  # 1 GiB in this process: the child must not report this process's peak
    figures = probe("hearth", BenchConfig(model=str(tiny_model_dir)), 1, 40, "int8")
    assert "error" not in figures, figures
    assert figures["peak_rss_bytes"] >= figures["base_rss_bytes"] > 50 * 2 ** 20  # torch alone is more
    assert figures["peak_rss_bytes"] < ballast.numel() * 4  # a tiny model: far below 1 GiB
    assert figures["kv_cache_bytes"] == 2 * 2 * 2 * 256 * 8 * 4  # layers x K,V x KV heads x 256 x Dh x fp32


def test_bench_text_report(tiny_model_dir, capsys):
    from engine.cli import main

    assert main(["bench", "--model", str(tiny_model_dir), "--new-tokens", "3", "--repeats", "1", "--no-memory",
                 "--modes", "exact", "--threads", "1", "--long-prompt-tokens", "30", "--perplexity-tokens", "20"]) == 0
    out = capsys.readouterr().out
    assert "long prompt 30 tokens" in out and "1 threads for every system" in out
    assert "transformers generate (float32, eager)" in out and "hearth exact" in out and "hearth int8" not in out


def test_bench_rejects_bad_settings():
    from engine.fastpath.benchmark import BenchConfig

    with pytest.raises(InvalidConfigError):
        BenchConfig(new_tokens=1)
    with pytest.raises(InvalidConfigError):
        BenchConfig(modes=("fp4",))
    with pytest.raises(InvalidConfigError):
        BenchConfig(model="m.gguf", synthetic="Q4_0")
    from engine.fastpath.benchmark import synthetic_model

    with pytest.raises(InvalidConfigError, match="Q4_K_M"):
        synthetic_model("Q3_XS")


def test_greedy_match_counts_positions_of_the_baseline():
    assert greedy_match([(1, 2, 3, 4)], [(1, 2, 9, 4)], 64) == 0.75
    assert greedy_match([(1, 2, 3, 4)], [(1, 2)], 64) == 0.5  # stopping early counts as a miss
    assert greedy_match([(1, 2, 3, 4), (5,)], [(1, 2, 3, 4), (6,)], 2) == pytest.approx(2 / 3, abs=1e-3)


def test_report_compares_with_llama_cpp_and_checks_the_memory_bound(tmp_path):
    """Ratios against llama.cpp and the 1.5 x file + KV + runtime bound, from figures made up here."""
    from types import SimpleNamespace as NS

    from engine.fastpath.bench_systems import Run
    from engine.fastpath.benchmark import BenchConfig

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"\0" * 1000)
    systems = [NS(name="hearth Q4_0", kind="hearth", path="hearth Q4_0"),
               NS(name="llama.cpp", kind="llama.cpp", path="llama.cpp (m.gguf)")]
    decode = {"hearth Q4_0": [Run((1, 2, 3), 0.1, 1.0)], "llama.cpp": [Run((1, 2, 3, 4, 5), 0.1, 1.0)]}
    long = {"hearth Q4_0": [Run((1,), 0.5, 0.0)], "llama.cpp": [Run((1,), 1.0, 0.0)]}
    memory = {"hearth Q4_0": {"probe": "app", "base_rss_bytes": 500, "peak_rss_bytes": 2100, "kv_cache_bytes": 100},
              "llama.cpp": {"probe": "llama.cpp", "base_rss_bytes": 400, "peak_rss_bytes": 1500, "kv_cache_bytes": 0}}
    lm = NS(name="m", extras={"gguf": {"quantization": "Q4_0"}}, device="cpu")
    report = build_report(BenchConfig(model=str(gguf)), lm, systems, decode=decode, long=long,
                          ppl={"hearth Q4_0": 10.1, "llama.cpp": 10.0}, memory=memory, threads=2, prompts=[[1, 2]],
                          long_ids=[0] * 500, text_ids=[0] * 40, load_average=[0.0, 0.0])
    hearth = report["systems"][0]
    assert hearth["vs_llama_cpp"] == {"decode": 0.5, "prompt": 2.0, "perplexity_pct": 1.0}
    assert report["memory_bound"]["limit_bytes"] == 1500 + 100 + 500 and report["memory_bound"]["within"]
    assert report["file_bytes"] == 1000 and report["quantization"] == "Q4_0" and report["llama_cpp"] == "ran"
