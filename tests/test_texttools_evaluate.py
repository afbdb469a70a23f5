"""eval-texttools: the loop and faithfulness checks, the shipped set, a run on the tiny model, the CLI."""

from __future__ import annotations

import json

import pytest

from engine.errors import InvalidConfigError
from engine.texttools.evaluate import (TOOLS, default_set, evaluate, faithful_share, has_loop, load_cases,
                                       sentences)


@pytest.mark.parametrize("text", [
    "It follows the design of the Creative Commons Creative Commons Creative Commons Creative Commons licences.",
    "- You may copy it.\n- You may share it.\n- You may copy it.\n- Fine.\n- You may copy it.",
    "The work is free. The licensee may copy and share the work in any medium. The licensee may copy and share "
    "the work in any medium.",
])
def test_loops_are_found(text):
    assert has_loop(text)


@pytest.mark.parametrize("text", [
    "The licence lets anyone copy, change and share the work, provided the notice is kept.",
    "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |",
    "values = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
    "1. Copy the work.\n2. Keep the notice.\n3. Share it.",
    "def a():\n    return None\n\ndef b():\n    return None\n",
    "Very, very, very good.",
])
def test_legitimate_text_is_not_a_loop(text):
    assert not has_loop(text)


def test_faithful_share_counts_sentences_whose_content_words_are_all_in_the_source():
    source = "The licence grants everyone the right to copy and distribute verbatim copies of the document."
    summary = "- The licence grants the right to copy the document.\n- It was written by Napoleon in Paris."
    assert sentences(summary) == ["The licence grants the right to copy the document.",
                                  "It was written by Napoleon in Paris."]
    assert faithful_share(summary, source) == 0.5
    assert faithful_share("Copies are distributed.", source) == 1.0  # plural and tense do not count
    assert faithful_share("", source) == 0.0
    assert faithful_share("The text outlines the right to copy.", source) == 1.0  # words about the source
    # A sentence the model broke over lines is one sentence.
    assert sentences("The licence grants the right\n\nto copy.\n- A point.") == [
        "The licence grants the right to copy.", "A point."]


def test_the_shipped_set_has_every_tool_and_readable_files():
    cases = load_cases(default_set())
    assert {c.tool for c in cases} == set(TOOLS)
    for case in cases:
        assert case.file.read_text(encoding="utf-8").strip()
        if case.tool == "complete":
            assert "<|cursor|>" in case.file.read_text(encoding="utf-8")
    assert len(load_cases(default_set(), ("summarize",), limit=1)) == 1
    big = [c for c in cases if c.tool == "summarize" and c.options.get("length") == "short"]
    assert max(len(c.file.read_text().split()) for c in big) >= 10_000  # the long-text check of issue 15


def test_a_bad_set_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidConfigError, match="cases.json"):
        load_cases(tmp_path)
    (tmp_path / "cases.json").write_text(json.dumps({"summarize": [{"file": "x.txt", "length": "huge"}]}))
    (tmp_path / "x.txt").write_text("Some text.")
    from engine.texttools.evaluate import run_case
    from engine.cancel import CancelToken

    with pytest.raises(InvalidConfigError, match="length"):
        run_case(None, load_cases(tmp_path)[0], CancelToken())


def small_set(tmp_path):
    (tmp_path / "a.txt").write_text("The sea is wide and the waves are high. Ships sail over the sea at night.\n")
    (tmp_path / "b.py").write_text("def add(a, b):\n    <|cursor|>\n")
    (tmp_path / "cases.json").write_text(json.dumps({
        "summarize": [{"file": "a.txt", "length": "short", "max_new_tokens": 24}],
        "translate": [{"file": "a.txt", "target": "French", "source": "English"}],
        "complete": [{"file": "b.py", "language": "python", "max_new_tokens": 16}],
    }))
    return tmp_path


def test_evaluate_runs_every_tool_and_reports_each(tiny_lm, tmp_path):
    report = evaluate(tiny_lm, load_cases(small_set(tmp_path)))
    assert set(report["tools"]) == set(TOOLS) and len(report["cases"]) == 3
    for figures in report["tools"].values():
        assert figures["calls"] == 1
        assert 0 <= figures["loops"] <= 1 and figures["seconds_per_call"] >= 0
        assert figures["empty"] + figures["cut_by_token_limit"] + figures["cut_for_repetition"] <= 3
    assert 0.0 <= report["tools"]["summarize"]["faithful_sentence_share"] <= 1.0
    json.dumps(report)  # one JSON


def test_cli_prints_one_json(tiny_model_dir, tmp_path, capsys):
    from engine.cli import main

    code = main(["eval-texttools", "--set", str(small_set(tmp_path)), "--tool", "complete",
                 "--model", str(tiny_model_dir), "--device", "cpu", "--cases"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["tools"]) == ["complete"] and report["cases"][0]["case"].startswith("complete:b.py")
