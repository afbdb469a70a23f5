"""Summarize: one call when it fits, map then reduce (in rounds) when it does not; boundaries and errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import engine.texttools.summarize as sm
from engine.cancel import CancelToken
from engine.errors import CancelledError, GenerationError, InvalidConfigError
from engine.generation import GenerationResult
from engine.texttools.summarize import NothingToSummarizeError, SummaryConfig, final_messages, summarize

TEXT = "\n\n".join(f"Paragraph {i}. The sea is wide and the waves are high. Ships sail at night, number {i}."
                   for i in range(40))


@pytest.fixture(scope="module")
def fake_lm():
    from tiny_model import make_tokenizer

    return SimpleNamespace(tokenizer=make_tokenizer(), context_length=4096)


class FakeModel:
    """Stands in for chat(): records every prompt, answers with a fixed note (or '' for chosen calls)."""

    def __init__(self, answer="- a point", empty_calls=()):
        self.prompts, self.streamed, self.answer, self.empty_calls = [], [], answer, set(empty_calls)

    def __call__(self, lm, messages, sampling, on_text, cancel):
        self.prompts.append((messages[0].content + "\n" + messages[-1].content, sampling.max_new_tokens))
        text = "" if len(self.prompts) in self.empty_calls else self.answer
        if on_text is not None:
            self.streamed.append(text)
            on_text(text)
        return GenerationResult(text, 3, 0, "eos", 0.0, 0.0, 0.0)


def prompt_tokens(lm, text, config):
    return sm._Planner(lm, config).prompt_len(final_messages(text, config, False))


def test_exactly_the_context_is_one_call(fake_lm, monkeypatch):
    fake = FakeModel("The sea.")
    monkeypatch.setattr(sm, "_generate", fake)
    n = prompt_tokens(fake_lm, TEXT, SummaryConfig())
    config = SummaryConfig(max_new_tokens=fake_lm.context_length - n, max_chunk_tokens=4096)
    chunks = []
    result = summarize(fake_lm, TEXT, config, on_text=chunks.append)
    assert (result.parts, result.rounds, result.calls) == (1, 0, 1)
    assert result.text == "The sea." and chunks == ["The sea."]
    assert fake.prompts[0][1] == fake_lm.context_length - n


def test_one_token_over_goes_through_parts(fake_lm, monkeypatch):
    fake = FakeModel()
    monkeypatch.setattr(sm, "_generate", fake)
    n = prompt_tokens(fake_lm, TEXT, SummaryConfig())
    progress, streamed = [], []
    result = summarize(fake_lm, TEXT, SummaryConfig(max_new_tokens=fake_lm.context_length - n + 1,
                                                    max_chunk_tokens=4096),
                       on_progress=lambda f, m: progress.append((f, m)), on_text=streamed.append)
    assert result.parts >= 2 and result.calls == result.parts + 1
    assert any(m == f"Summarizing part 2 of {result.parts}" for _, m in progress)
    assert "Combining" in progress[-2][1] and progress[-1] == (1.0, "Done")
    assert [f for f, _ in progress] == sorted(f for f, _ in progress)
    # Every paragraph reached the model in some part prompt.
    seen = "\n".join(p for p, _ in fake.prompts[:-1])
    assert all(f"Paragraph {i}." in seen for i in range(40))
    assert "notes on consecutive parts" in fake.prompts[-1][0]
    assert streamed == ["- a point"]  # only the final summary streams


def test_long_text_combines_in_rounds(fake_lm, monkeypatch):
    # Long notes: the partial summaries of many parts do not fit one final prompt.
    monkeypatch.setattr(sm, "_generate", FakeModel("- " + "a point about ships at sea. " * 40))
    small = SimpleNamespace(tokenizer=fake_lm.tokenizer, context_length=1200)
    text = "\n\n".join([TEXT] * 6)
    result = summarize(small, text, SummaryConfig(length="short", max_chunk_tokens=300))
    assert result.parts > 6 and result.rounds >= 2
    assert result.text.startswith("- a point")


def test_empty_partial_summaries_are_skipped_and_reported(fake_lm, monkeypatch):
    fake = FakeModel("- kept", empty_calls={1, 2})
    monkeypatch.setattr(sm, "_generate", fake)
    result = summarize(fake_lm, TEXT, SummaryConfig(max_chunk_tokens=200))
    assert result.parts > 2
    assert "nothing for 2 of the parts" in result.notice
    assert "- kept" in fake.prompts[-1][0]


def test_every_part_empty_is_an_error(fake_lm, monkeypatch):
    monkeypatch.setattr(sm, "_generate", FakeModel(""))
    with pytest.raises(GenerationError, match="nothing"):
        summarize(fake_lm, TEXT, SummaryConfig(max_chunk_tokens=200))


def test_pieces_are_capped_by_model_size(fake_lm, monkeypatch):
    fake = FakeModel()
    monkeypatch.setattr(sm, "_generate", fake)
    result = summarize(fake_lm, TEXT, SummaryConfig())  # 1842 tokens: over the 1024 a small model gets
    assert result.parts == 2 and sm.auto_chunk_tokens(fake_lm) == 1024


def test_empty_text_and_bad_options(fake_lm):
    with pytest.raises(NothingToSummarizeError):
        summarize(fake_lm, " \n\n ")
    with pytest.raises(InvalidConfigError):
        SummaryConfig(length="huge")
    with pytest.raises(InvalidConfigError):
        SummaryConfig(form="haiku")


def test_length_and_form_reach_the_prompt():
    bullets = final_messages("x", SummaryConfig(length="short", form="bullets", focus="costs"), False)[0].content
    prose = final_messages("x", SummaryConfig(length="long"), False)[0].content
    assert "bulleted list of at most 5" in bullets and "costs" in bullets
    assert "several paragraphs" in prose and "bullet" not in prose


def test_cancel_during_parts(fake_lm, monkeypatch):
    token = CancelToken()

    def cancel_after_first(*args):
        token.cancel()
        return GenerationResult("- x", 1, 0, "cancelled", 0.0, 0.0, 0.0)

    monkeypatch.setattr(sm, "_generate", cancel_after_first)
    with pytest.raises(CancelledError):
        summarize(fake_lm, TEXT, SummaryConfig(max_chunk_tokens=200), cancel=token)


@pytest.fixture(scope="module")
def tiny_lm_1k(tmp_path_factory):
    """A tiny random model with a 1024-token context: room for the summary prompts."""
    from tiny_model import make_tiny_model

    from engine import LoadConfig, load_model

    folder = make_tiny_model(tmp_path_factory.mktemp("tiny-1k"), context=1024)
    return load_model(LoadConfig(path=str(folder), device="cpu"))


def test_tiny_model_end_to_end(tiny_lm_1k):
    """The real generation path on a tiny random model: parts, combining, streaming."""
    tiny_lm = tiny_lm_1k
    streamed = []
    config = SummaryConfig(max_new_tokens=8, max_chunk_tokens=200,
                           sampling=SummaryConfig().sampling.with_(temperature=1.0, top_k=0, top_p=1.0, seed=0))
    result = summarize(tiny_lm, TEXT[:1500], config, on_text=streamed.append)
    assert result.parts >= 2 and result.calls >= 3
    assert "".join(streamed).strip() == result.text


def test_final_markdown_matches_the_form_asked_for():
    from engine.texttools.summarize import to_markdown

    prose = "The licence grants rights. It asks for notices.\nIt has no warranty."
    assert to_markdown(prose, "prose") == "The licence grants rights. It asks for notices.\n\nIt has no warranty."
    assert to_markdown("One. Two!", "bullets") == "- One.\n- Two!"
    assert to_markdown("Intro\n• a\n* b", "bullets") == "Intro\n- a\n- b"
    assert to_markdown("- a\n- b", "prose") == "- a\n- b"
    assert to_markdown("Here's a revised version of the text:\n\n1. Point.", "bullets") == "1. Point."
    assert to_markdown("Here is why it matters: costs.\nMore.", "prose").startswith("Here is why")


def test_a_loop_cut_by_generation_is_reported(fake_lm, monkeypatch):
    # Generation's repetition guard cuts the loop (tests/test_engine_repetition.py); the summary says so.
    calls = []

    def looping(lm, messages, sampling, on_text, cancel):
        calls.append(on_text)
        if on_text is not None:
            on_text("- The licence grants rights.")
        return GenerationResult("- The licence grants rights.", 3, 0, "repetition", 0.0, 0.0, 0.0,
                                notice="The reply began to repeat itself, so it was stopped there.")

    monkeypatch.setattr(sm, "_generate", looping)
    result = summarize(fake_lm, "A short text.", SummaryConfig(form="bullets"))
    assert result.finish_reason == "repetition" and "repeat" in result.notice
    result = summarize(fake_lm, TEXT, SummaryConfig(max_chunk_tokens=200))
    assert result.parts >= 2 and f"repeating itself in {result.parts} of the partial" in result.notice


def test_a_note_cut_by_the_token_limit_ends_at_its_last_whole_sentence():
    from engine.texttools.summarize import drop_unfinished

    assert drop_unfinished("- One point.\n- Two points. And a th") == "- One point.\n- Two points."
    assert drop_unfinished("- One point.\n- Two points\n- Thr") == "- One point.\n- Two points"
    assert drop_unfinished("Done.") == "Done." and drop_unfinished("Short. A very long unfinished tail " * 1) \
        == "Short. A very long unfinished tail"  # the cut would take most of it: kept
