"""Stored chat turns with a real (tiny) model: replies recorded, failures kept as interrupted, continuation."""

from __future__ import annotations

import pytest

import engine.chat_generation
from engine.config import ChatMessage, SamplingConfig
from engine.errors import GenerationError
from engine.store import INTERRUPTED, Store
from engine.chat_generation import continue_reply
from engine.store.turn import StoredTurn, reply

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=8)


def test_a_turn_stores_user_message_and_reply_with_its_figures(tiny_lm):
    with Store() as store:
        turn = StoredTurn.begin(None, "Be brief.", store=store)
        result, saved = turn.run(tiny_lm, "Hello there", GREEDY)
        thread = store.current_path(turn.conversation_id)
        assert [m.role for m in thread] == ["user", "assistant"]
        assert saved.content == result.text and saved.finish_reason == result.finish_reason
        assert saved.new_tokens == result.new_tokens and saved.model == tiny_lm.name
        assert saved.sampling == GREEDY and store.conversation(turn.conversation_id).system_prompt == "Be brief."
        again, alternative = reply(store, tiny_lm, turn.conversation_id, thread[0].id, GREEDY)
        assert alternative.alternative == (2, 2) and alternative.content == again.text


def test_a_failure_mid_reply_keeps_the_partial_text_marked_interrupted(tiny_lm, monkeypatch):
    def broken_chat(lm, messages, sampling=None, *, system_prompt="", on_text=None, cancel=None):
        on_text("Half an ans")
        raise GenerationError("the device fell over")

    monkeypatch.setattr(engine.chat_generation, "chat", broken_chat)
    with Store() as store:
        turn = StoredTurn.begin(store=store)
        with pytest.raises(GenerationError):
            turn.run(tiny_lm, "Question", GREEDY)
        last = store.current_path(turn.conversation_id)[-1]
        assert (last.role, last.content, last.status) == ("assistant", "Half an ans", INTERRUPTED)


def test_continue_reply_carries_on_after_the_partial_text(tiny_lm):
    result = continue_reply(tiny_lm, [ChatMessage("user", "Tell me about the sea")], "The sea is",
                            GREEDY.with_(max_new_tokens=5))
    assert 1 <= result.new_tokens <= 5
    # The prompt ends with the partial reply's own tokens, after the assistant header.
    partial_ids = tiny_lm.tokenizer("The sea is", add_special_tokens=False)["input_ids"]
    assert result.prompt_tokens > len(partial_ids)


def test_continue_reply_refuses_when_the_context_is_full(tiny_lm):
    long_partial = "The sea is wide and the waves are high. " * 60  # far over the tiny model's 256 tokens
    with pytest.raises(GenerationError, match="cannot be continued"):
        continue_reply(tiny_lm, [ChatMessage("user", "Go on")], long_partial, GREEDY)
