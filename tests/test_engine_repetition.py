"""RepetitionGuard: loops inside a line and across lines are cut; tables, numbers, code and rules are not.

Scripted token streams use a word-level fake tokenizer shaped like a real BPE one (a word with its leading
space is one token, digits one each, runs of punctuation one token); generation runs on the tiny model
(which, random as it is, falls into loops by itself) and on a scripted decode loop.
"""

import re

import pytest

from engine import SamplingConfig, generate
from engine.generation import generate_ids
from engine.repetition import RepetitionGuard

TOKEN = re.compile(r"\n|[ \t]*[^\W\d_]+|[ \t]*\d|[ \t]*[^\w\s]+|[ \t]+|_")


class WordTokenizer:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, text: str) -> list[int]:
        pieces = TOKEN.findall(text)
        assert "".join(pieces) == text
        return [self.vocab.setdefault(p, len(self.vocab)) for p in pieces]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        words = {i: w for w, i in self.vocab.items()}
        return "".join(words[i] for i in ids)


def run_guard(text: str) -> tuple[RepetitionGuard, WordTokenizer, list[int]]:
    tok = WordTokenizer()
    ids = tok.encode(text)
    guard = RepetitionGuard.for_tokenizer(tok)
    for i in range(len(ids)):  # one token at a time, as a decode loop hands them over
        if guard.push(ids[i:i + 1]):
            break
    return guard, tok, ids


def kept_text(text: str) -> str:
    guard, tok, ids = run_guard(text)
    assert guard.looped, f"no loop found in {text!r}"
    return tok.decode(ids[:guard.keep])


def test_a_loop_inside_one_line_is_cut_after_its_first_copy():
    text = "The licence is based on the design of the Creative Commons" + " Creative Commons" * 40 + "."
    assert kept_text(text) == "The licence is based on the design of the Creative Commons"


def test_a_repeated_sentence_is_cut_before_its_second_copy():
    sentence = " You may copy the work."
    assert kept_text("Terms:" + sentence * 5) == "Terms:" + sentence
    long = " The licensee may copy, modify and distribute the work, in source or object form, provided that " \
           "the notice is kept."  # longer than LONG_UNIT tokens: twice in a row is enough
    guard, tok, ids = run_guard("Summary:" + long * 2 + " Other words follow here.")
    assert guard.looped and tok.decode(ids[:guard.keep]) == "Summary:" + long
    assert kept_text("Done. It is the end. It is the end. It is the end.") == "Done. It is the end."


def test_lines_that_come_round_again_are_cut():
    cycle = "- The work may be copied.\n- The notice must be kept.\n"
    assert kept_text("Key points:\n" + cycle * 3) == "Key points:\n" + cycle
    line = "- The work may be copied.\n"
    assert not run_guard("Key points:\n" + line * 5)[0].looped  # one line may come back a few times
    assert kept_text("Key points:\n" + line * 7) == "Key points:\n" + line


def test_a_table_whose_rows_go_round_keeps_whole_rows():
    # As SmolLM2-135M wrote it, asked for a table of the planets: a cycle of four rows, cut after the first.
    head = "| Planet | Rings |\n| --- | --- |\n| Earth | No |\n| Mars | No |\n| Earth | No |\n"
    cycle = "| Saturn | No |\n| Uranus | No |\n| Neptune | No |\n| Jupiter | No |\n"
    assert kept_text(head + cycle * 3 + "| Saturn") == head + cycle


def test_a_loop_without_letters_is_cut_only_when_long():
    assert not run_guard("Values: " + "0, " * 60 + "done")[0].looped  # 180 tokens of zeros: a list
    assert kept_text("Rule:\n" + "=\n" * 200) == "Rule:\n=\n"


def test_a_counting_loop_whose_numbers_change_is_cut():
    # As SmolLM2-135M translated a licence: the same item again and again, only its number changes.
    item = " Die GNU General Publics-Kommission ist eine freie Lizenz für Software und andere Werke."
    text = "Übersetzung:" + "".join(f" {n}){item}" for n in range(1, 12))
    assert kept_text(text) == "Übersetzung: 1)" + item
    line = " The licensee may copy, modify and distribute the work freely and for free.\n"
    assert kept_text("Terms:\n" + "".join(f"{n}.{line}" for n in range(1, 9))) == "Terms:\n1." + line


def test_a_counting_loop_is_held_back_while_it_may_be_cut():
    tok = WordTokenizer()
    guard = RepetitionGuard.for_tokenizer(tok)
    item = " the licence is a free licence for software and other kinds of works."
    guard.push(tok.encode("List: 1)" + item + " 2)" + item))
    assert tok.decode(guard.ids[:guard.safe_len()]) == "List: 1)" + item
    assert not guard.looped


@pytest.mark.parametrize("text", [
    "1. apples 2. pears 3. plums 4. cherries 5. apples and pears",
    "Step 1: Mix the flour with the water. Step 2: Knead the dough for ten minutes. Step 3: Let it rest "
    "for an hour. Step 4: Bake the bread in a hot oven. Step 5: Let it cool down before you cut it.",
    "".join(f"{n}) The item number {n} has a price of {n * 3} euros and a weight of {n + 2} kilograms.\n"
            for n in range(1, 4)),  # two copies with their numbers changed: not yet a loop
    "".join(f"| {n} | Yes | Yes | No | Yes | Yes | No | Yes |\n" for n in range(1, 30)),  # table rows
    "".join(f"    values[{n}] = read_value(buffer, offset + {n * 4})\n" for n in range(12)),  # code lines
    " ".join(str(n) + "." for n in range(1, 300)),  # numbers only
])
def test_numbered_items_that_differ_or_hold_no_words_are_not_cut(text):
    guard, _, _ = run_guard(text)
    assert not guard.looped, f"cut at token {guard.keep} (period {guard.period})"


@pytest.mark.parametrize("text", [
    # A Markdown table: the rule row and the cells repeat, the rows do not.
    "| Name | Yes | Yes |\n|------|-----|-----|\n| Ann | Yes | Yes |\n| Bob | Yes | Yes |\n| Cid | No | Yes |\n",
    "|" + " --- |" * 12 + "\n|" + "   |" * 12 + "\n",
    # Numbers: a counting list, a list of zeros, a numbered list.
    ", ".join(str(i) for i in range(1, 80)),
    "weights = [" + "0, " * 30 + "0]\n",
    "".join(f"{i}. Point number {i} of the list\n" for i in range(1, 25)),
    # Code: the same line in several places, indentation, a short line repeated.
    "def a():\n    return None\n\n\ndef b():\n    return None\n\n\ndef c():\n    return None\n",
    "class A:\n" + "".join(f"    x{i} = self.read()\n" for i in range(12)),
    "if a:\n    if b:\n        if c:\n            if d:\n                pass\n                pass\n",
    "grid = \"" + "*****\\n" * 20 + "\"\n",  # escapes are not words
    "data = bytes([" + "0x00, " * 20 + "0x01])\n",
    "print()\nprint()\nprint()\nprint()\nprint()\n",
    "<table>\n" + "".join(f"  <tr>\n    <td>{name}</td>\n    <td>No</td>\n  </tr>\n"
                          for name in ("Earth", "Mars", "Venus", "Saturn")) + "</table>\n",
    "| Yes | Yes | Yes | Yes | Yes | Yes |\n" * 5,
    "}\n}\n}\n}\n}\n}\n}\n}\n",
    # Markdown separators and blank lines.
    "Part one.\n\n---\n\nPart two.\n\n---\n\nPart three.\n\n---\n\n" + "=" * 60 + "\n\n\n\n\n\nEnd.",
    # A refrain said twice, a word said three times.
    "Row, row, row your boat. Very, very, very good. Go on, go on.",
    "Sing it again:\nLa la la, the sea is calm.\nLa la la, the sea is calm.\nLa la la, the sea is calm.\nEnd.",
])
def test_legitimate_repetition_is_not_cut(text):
    guard, _, _ = run_guard(text)
    assert not guard.looped, f"cut at token {guard.keep} (period {guard.period})"


def test_a_phrase_that_may_become_a_loop_is_held_back_until_it_differs():
    tok = WordTokenizer()
    guard = RepetitionGuard.for_tokenizer(tok)
    guard.push(tok.encode("We like the big red car and the big red"))
    # "the big red" came again: a second copy of "the big red car and" may be under way.
    assert tok.decode(guard.ids[:guard.safe_len()]) == "We like the big red car and"
    guard.push(tok.encode(" bus"))
    assert guard.safe_len() >= len(guard.ids) - 2 and not guard.looped


class ScriptedDecoder:
    """A decode loop that hands over a fixed token list, one by one, until told to stop."""

    def __init__(self, ids: list[int]) -> None:
        self.ids, self.mode = ids, "scripted"

    def supports(self, sampling) -> bool:
        return True

    def decode(self, lm, input_ids, sampling, *, on_tokens, should_stop):
        out = []
        for token in self.ids[:sampling.max_new_tokens]:
            out.append(token)
            on_tokens([token])
            if should_stop():
                break
        return out


class ScriptedLM:
    def __init__(self, tokenizer, ids: list[int]) -> None:
        self.tokenizer, self.extras = tokenizer, {"decoder": ScriptedDecoder(ids)}
        self.eos_token_ids = {10_000}
        self.context_length, self.device = 4096, "cpu"


def test_generate_ids_cuts_the_loop_streams_only_kept_text_and_says_repetition(monkeypatch):
    import engine.fastpath.decoder as fast_decoder

    monkeypatch.setattr(fast_decoder, "route", lambda lm, decoder, fast: "scripted")
    tok = WordTokenizer()
    text = "It is the Creative Commons" + " Creative Commons" * 30
    lm = ScriptedLM(tok, tok.encode(text))
    streamed: list[str] = []
    result = generate_ids(lm, [1], SamplingConfig(temperature=0.0, max_new_tokens=100), on_text=streamed.append)
    assert result.finish_reason == "repetition" and "repeat" in result.notice
    assert result.text == "".join(streamed) == "It is the Creative Commons"
    assert result.new_tokens < 20  # generation stopped soon after the loop began
    off = generate_ids(lm, [1], SamplingConfig(temperature=0.0, max_new_tokens=40, repetition_guard=False))
    assert off.finish_reason == "length" and off.text.count("Creative") > 10


@pytest.mark.parametrize("fast", [True, False])
def test_tiny_model_loop_is_stopped_on_both_decode_loops(tiny_lm, fast):
    # The random tiny model repeats a token or two forever: both loops must stop it the same way.
    lm = tiny_lm
    if not fast:
        from engine.loader import LoadedModel

        lm = LoadedModel(tiny_lm.model, tiny_lm.tokenizer, tiny_lm.device, tiny_lm.dtype, tiny_lm.context_length,
                         tiny_lm.name, tiny_lm.path, extras={})
    sampling = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_new_tokens=120)
    streamed: list[str] = []
    result = generate(lm, "The sea is", sampling, on_text=streamed.append)
    free = generate(lm, "The sea is", sampling.with_(repetition_guard=False))
    assert result.finish_reason == "repetition" and free.finish_reason == "length"
    assert "".join(streamed) == result.text and free.text.startswith(result.text)
    assert result.new_tokens < free.new_tokens and len(result.text) < len(free.text)
    assert list(result.token_ids) == list(free.token_ids[:len(result.token_ids)])
