"""Code completion: FIM prompts, token healing, sensible stopping boundaries, the tiny model end to end."""

from __future__ import annotations

import pytest

from engine.texttools.code_boundary import Boundary
from engine.texttools.code_completion import CompletionRequest, build_prompt, complete_code, fim_format


def cut(boundary: Boundary, text: str, final: bool = True) -> str:
    at = boundary.find_cut(text, final=final)
    return text if at is None else text[:at]


def test_python_stops_at_end_of_block():
    b = Boundary("def add(a, b):\n    ret", language="python")
    assert cut(b, "urn a + b\ndef sub(a, b):\n    return a - b\n").rstrip() == "urn a + b"
    opener = Boundary("def add(a, b):", language="python")
    body = "\n    '''Add.'''\n    return a + b\nprint(add(1, 2))\n"
    assert cut(opener, body) == "\n    '''Add.'''\n    return a + b"


def test_brace_language_keeps_or_drops_the_closing_brace():
    text = "return x;\n}\n\nint g() {\n"
    assert cut(Boundary("int f(int a) {\n  ", language="c"), text) == "return x;\n}"
    assert cut(Boundary("int f(int a) {\n  ", "\n}\n", language="c"), text) == "return x;"
    # A block the completion opens itself ends when it closes.
    assert cut(Boundary("if (x) ", language="javascript"), "{\n  y();\n}\nz();\n") == "{\n  y();\n}"


def test_suffix_repeat_line_limit_blank_lines_single_line():
    b = Boundary("a = 1\n", "print(a)\n")
    assert cut(b, "b = 2\nprint(a)\n") == "b = 2"
    assert cut(Boundary("x\n", max_lines=3), "1\n2\n3\n4\n5") == "1\n2\n3"
    assert cut(Boundary("x\n"), "1\n\n\n2") == "1\n"
    assert cut(Boundary("f(", ")\n"), "a, b)\nmore") == "a, b)"


def test_a_repeated_line_ends_the_completion():
    b = Boundary("def f(s):\n    ", language="python")
    text = "s = s.strip()\n    s = s.lower()\n    s = s.strip()\n    s = s.lower()\n"
    assert cut(b, text) == "s = s.strip()\n    s = s.lower()"
    assert cut(b, "i += 1\n    i += 1\n    return i") == "i += 1\n    i += 1\n    return i"  # short lines may repeat


def test_a_growing_last_line_is_not_judged_early():
    b = Boundary("def f():\n    ", language="python")
    assert b.find_cut("x = 1\ny", final=False) is None  # 'y' may still become '    y'


@pytest.fixture(scope="module")
def fim_tokenizer():
    from tiny_model import make_tokenizer

    tok = make_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    return tok


def test_fim_prompt_layout_and_healing(fim_tokenizer):
    vocab = fim_tokenizer.get_vocab()
    pre, suf, mid, order = fim_format(fim_tokenizer)
    assert (pre, suf, mid, order) == (vocab["<fim_prefix>"], vocab["<fim_suffix>"], vocab["<fim_middle>"], "psm")
    request = CompletionRequest(prefix="def add(a, b):\n    ret", suffix="\n\nclass Point:\n")
    ids, mode, healed = build_prompt(fim_tokenizer, request, 512)
    assert mode == "fim" and ids[0] == pre and ids[-1] == mid and suf in ids
    assert healed and request.prefix.endswith(healed)
    prefix_text = fim_tokenizer.decode(ids[1:ids.index(suf)])
    assert prefix_text + healed == request.prefix
    assert fim_tokenizer.decode(ids[ids.index(suf) + 1:-1]) == request.suffix


def test_fim_prompt_keeps_the_code_nearest_the_cursor(fim_tokenizer):
    request = CompletionRequest(prefix="START " + "x = 1\n" * 300 + "NEAR", suffix="after\n" * 300 + "END")
    ids, _, _ = build_prompt(fim_tokenizer, request, 200)
    text = fim_tokenizer.decode(ids)
    assert len(ids) <= 200 and "START" not in text and "END" not in text and "after" in text


def test_no_fim_tokens_means_prefix_mode(tiny_lm):
    assert fim_format(tiny_lm.tokenizer) is None
    ids, mode, healed = build_prompt(tiny_lm.tokenizer, CompletionRequest(prefix="x = 1\ny = "), 64)
    assert mode == "prefix" and tiny_lm.tokenizer.decode(ids) + healed == "x = 1\ny = "


def test_complete_with_tiny_model_heals_and_streams(tiny_lm):
    streamed = []
    request = CompletionRequest(prefix="def add(a, b):\n    ret", language="python", max_new_tokens=12)
    result = complete_code(tiny_lm, request, on_text=streamed.append)
    assert result.mode == "prefix" and result.healed
    assert result.finish_reason in ("boundary", "eos", "length")
    assert "\ufffd" not in result.text
    assert "".join(streamed).rstrip().startswith(result.text.rstrip()[:1] if result.text else "")


def test_healed_first_token_continues_the_typed_text(tiny_lm):
    from engine.texttools.code_decode import healed_first_token

    tok = tiny_lm.tokenizer
    greedy = CompletionRequest(prefix="").sampling
    for prefix in ("def add(a, b):\n    ret", "class Point:\n    "):
        ids, _, healed = build_prompt(tok, CompletionRequest(prefix=prefix), 128)
        first = healed_first_token(tiny_lm, ids, healed, greedy)
        text = tok.decode([first])
        assert text.startswith(healed)
        if healed[-1].isspace():  # typed indentation is never widened
            assert not text[len(healed):][:1].isspace()


def test_bad_request():
    from engine.errors import InvalidConfigError

    with pytest.raises(InvalidConfigError):
        CompletionRequest(prefix="x", max_lines=0)
