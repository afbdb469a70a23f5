"""Translation and the command line (summarize, complete, translate) on the tiny model."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.cli.texttools import split_at
from engine.errors import InvalidConfigError
from engine.texttools.language_detect import detect_language, language_name
from engine.texttools.translate import DEFAULT_SAMPLING, NothingToTranslateError, TranslateRequest, translate


@pytest.mark.parametrize("text,code", [
    ("The weather is nice and the children are playing in the park.", "en"),
    ("Le chat est sur la table et il est content.", "fr"),
    ("Der Hund ist nicht in dem Haus, und die Katze auch nicht.", "de"),
    ("Привет, как у тебя дела?", "ru"),
    ("東京は日本の首都です", "ja"),
    ("12 34", None),
])
def test_detect_language(text, code):
    assert detect_language(text) == code


def test_language_names():
    assert language_name("fr") == "French" and language_name("GERMAN") == "German"
    assert language_name("Klingon") == "Klingon"
    with pytest.raises(InvalidConfigError):
        TranslateRequest(text="hi", target=" ")


def test_translate_streams_pieces_in_order(tiny_lm):
    streamed, progress = [], []
    text = "\n\n".join(["The sea is wide and the waves are high. Ships sail over the sea at night."] * 12)
    request = TranslateRequest(text=text, target="fr", sampling=DEFAULT_SAMPLING.with_(max_new_tokens=4,
                                                                                         temperature=0.0))
    result = translate(tiny_lm, request, on_text=streamed.append, on_progress=lambda f, m: progress.append(m))
    assert result.source == "English" and result.detected and result.target == "French"
    assert result.parts >= 2 and f"Translating part 2 of {result.parts}" in progress
    assert "".join(streamed).count("\n\n") >= result.parts - 1


def test_translate_same_language_and_empty(tiny_lm):
    result = translate(tiny_lm, TranslateRequest(text="Bonjour, le chat est sur la table.", target="French"))
    assert result.parts == 0 and "already in French" in result.notice
    with pytest.raises(NothingToTranslateError):
        translate(tiny_lm, TranslateRequest(text="  ", target="fr"))


def test_split_at_line_and_column():
    text = "a = 1\nb = 2\n"
    assert split_at(text, 2, 3) == ("a = 1\nb ", "= 2\n")
    assert split_at(text, 1, None) == ("a = 1", "\nb = 2\n")
    with pytest.raises(ValueError):
        split_at(text, 9, 1)


def test_cli_summarize_complete_translate(tiny_model_dir, tmp_path, capsys):
    model = ["--model", str(tiny_model_dir), "--device", "cpu"]
    (tmp_path / "a.md").write_text("The sea is wide. Ships sail at night.\n\nThe waves are high.")
    (tmp_path / "code.py").write_text("def add(a, b):\n    ret\n")
    assert main(["summarize", str(tmp_path / "a.md"), "--length", "short", "--bullets",
                 "--max-new-tokens", "8", *model]) == 0
    err = capsys.readouterr().err
    assert "1 part(s)" in err
    assert main(["complete", str(tmp_path / "code.py"), "--line", "2", *model]) == 0
    assert "[prefix, stopped:" in capsys.readouterr().err
    assert main(["translate", "--to", "de", "The sea is wide and the ships are high.", *model]) == 0
    assert "English (detected) -> German" in capsys.readouterr().err


def test_cli_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    assert main(["summarize", str(tmp_path / "empty.txt")]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "missing.pdf")]) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "c.py").write_text("x = 1\n")
    assert main(["complete", str(tmp_path / "c.py"), "--line", "5", "--model", str(tmp_path)]) == 2
    assert "--line must be between 1 and 2" in capsys.readouterr().err
