"""eval-texttools on two inputs of the shipped set with the real default model (slow: `pytest -m integration`)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_eval_on_two_inputs_finds_no_loop(default_lm):
    from engine.texttools.evaluate import default_set, evaluate, load_cases

    cases = load_cases(default_set(), ("summarize", "complete"), limit=1)  # the BSD licence, a Python function
    report = evaluate(default_lm, cases)
    json.dumps(report)
    summary, code = report["tools"]["summarize"], report["tools"]["complete"]
    assert summary["calls"] == code["calls"] == 1
    assert summary["loops"] == code["loops"] == 0
    assert summary["empty"] == 0 and 0 < summary["mean_words"] < 200
    assert 0.0 <= summary["faithful_sentence_share"] <= 1.0
    assert [c["case"].split(":")[0] for c in report["cases"]] == ["summarize", "complete"]
