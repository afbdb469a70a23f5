"""``hearth-cli bench`` on the tiny model: the report has every figure, and the exact path agrees."""

from __future__ import annotations

import json

import pytest

from engine.errors import InvalidConfigError
from engine.fastpath.benchmark import BenchConfig, _greedy_match


def test_bench_json_reports_speed_and_quality(tiny_model_dir, capsys):
    from engine.cli import main

    code = main(["bench", "--model", str(tiny_model_dir), "--new-tokens", "6", "--repeats", "1", "--json",
                 "--threads", "1", "--perplexity-tokens", "40"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new_tokens"] == 6 and report["prompts"] == 5 and report["device"] == "cpu"
    assert report["baseline"]["tok_s"] > 0 and report["baseline"]["perplexity"] > 1
    assert report["threads"] == 1 and report["perplexity_tokens"] == 40
    assert report["long_prompt_tokens"] == 254  # 500 asked, cut to the tiny model's context of 256
    paths = {p["mode"]: p for p in report["paths"]}
    assert set(paths) == {"exact", "int8"}
    assert paths["exact"]["greedy_match"] == 1.0  # fp32, same function: same greedy tokens
    assert abs(paths["exact"]["perplexity_change_pct"]) < 0.01
    for p in paths.values():
        assert p["ratio"] > 0 and p["ttft_s"] > 0 and p["prepare_s"] >= 0


def test_bench_text_report(tiny_model_dir, capsys):
    from engine.cli import main

    assert main(["bench", "--model", str(tiny_model_dir), "--new-tokens", "3", "--repeats", "1",
                 "--modes", "exact", "--threads", "1", "--long-prompt-tokens", "30", "--perplexity-tokens", "20"]) == 0
    out = capsys.readouterr().out
    assert "TTFT@30" in out
    assert "transformers generate (fp32, eager)" in out and "hearth exact" in out and "hearth int8" not in out


def test_bench_rejects_bad_settings():
    with pytest.raises(InvalidConfigError):
        BenchConfig(new_tokens=1)
    with pytest.raises(InvalidConfigError):
        BenchConfig(modes=("fp4",))


def test_greedy_match_counts_positions_of_the_baseline():
    assert _greedy_match([(1, 2, 3, 4)], [(1, 2, 9, 4)], 64) == 0.75
    assert _greedy_match([(1, 2, 3, 4)], [(1, 2)], 64) == 0.5  # stopping early counts as a miss
    assert _greedy_match([(1, 2, 3, 4), (5,)], [(1, 2, 3, 4), (6,)], 2) == pytest.approx(2 / 3, abs=1e-3)
