"""generate / chat on a tiny random model: finish reasons, stop strings, cancel, context overflow."""

from engine import CancelToken, ChatMessage, SamplingConfig, chat, generate
from engine.chat_generation import build_chat_prompt
from engine.generation import fit_prompt

# The random tiny model repeats itself; these tests are about the decode loop, so the guard is off.
GREEDY = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_new_tokens=12, repetition_guard=False)


def test_greedy_generation_is_deterministic_and_streams_the_same_text(tiny_lm):
    chunks = []
    first = generate(tiny_lm, "The sea is", GREEDY, on_text=chunks.append)
    second = generate(tiny_lm, "The sea is", GREEDY)
    assert first.text == second.text
    assert "".join(chunks) == first.text
    assert first.new_tokens == 12 and first.finish_reason == "length"
    assert first.prompt_tokens > 0 and first.tok_s > 0


def test_seeded_sampling_is_reproducible(tiny_lm):
    sampling = SamplingConfig(temperature=1.0, top_k=20, top_p=0.95, min_p=0.01, max_new_tokens=10, seed=7)
    assert generate(tiny_lm, "Hello", sampling).text == generate(tiny_lm, "Hello", sampling).text


def test_stop_string_ends_generation_and_is_not_in_the_output(tiny_lm):
    free = generate(tiny_lm, "The sea is", GREEDY.with_(max_new_tokens=20))
    assert len(free.text) > 4
    stop = free.text[3:5]  # a stop string that appears in the greedy continuation
    chunks = []
    result = generate(tiny_lm, "The sea is", GREEDY.with_(max_new_tokens=20, stop=(stop,)), on_text=chunks.append)
    assert result.finish_reason == "stop"
    assert stop not in result.text and stop not in "".join(chunks)
    assert free.text.startswith(result.text)


def test_cancel_stops_within_one_token(tiny_lm):
    token = CancelToken()
    seen = []

    def on_text(chunk):
        seen.append(chunk)
        token.cancel()

    result = generate(tiny_lm, "The sea is", GREEDY.with_(max_new_tokens=200), on_text=on_text, cancel=token)
    assert result.finish_reason == "cancelled"
    assert result.new_tokens <= 3  # the token that triggered the cancel, maybe one held-back one


def test_a_prompt_longer_than_the_context_is_fitted_with_a_notice(tiny_lm):
    long_prompt = "the sea " * 400  # far beyond the tiny model's 256-token context
    result = generate(tiny_lm, long_prompt, GREEDY.with_(max_new_tokens=8))
    assert result.prompt_truncated and "context" in result.notice
    assert result.prompt_tokens + result.new_tokens <= tiny_lm.context_length


def test_fit_prompt_boundaries():
    ids, max_new, cut = fit_prompt(list(range(100)), context_length=128, max_new_tokens=28)
    assert (len(ids), max_new, cut) == (100, 28, False)
    ids, max_new, cut = fit_prompt(list(range(101)), context_length=128, max_new_tokens=28)
    assert cut and ids[-1] == 100 and len(ids) + max_new <= 128


def test_chat_uses_the_chat_template(tiny_lm):
    prompt = build_chat_prompt(tiny_lm.tokenizer, [ChatMessage("user", "hi there")], "Be brief.",
                               tiny_lm.context_length, 16)
    text = tiny_lm.tokenizer.decode(prompt.input_ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_long_conversation_drops_oldest_turns_but_keeps_the_system_prompt(tiny_lm):
    messages = []
    for i in range(30):
        messages += [ChatMessage("user", f"question {i} about the sea"), ChatMessage("assistant", f"answer {i}")]
    messages.append(ChatMessage("user", "last question"))
    result = chat(tiny_lm, messages, GREEDY, system_prompt="SYSTEM RULES")
    assert result.dropped_turns > 0 and "left out" in result.notice
    prompt = build_chat_prompt(tiny_lm.tokenizer, messages, "SYSTEM RULES", tiny_lm.context_length, 12)
    text = tiny_lm.tokenizer.decode(prompt.input_ids)
    assert "SYSTEM RULES" in text and "last question" in text and "question 0 " not in text
    assert len(prompt.input_ids) + prompt.max_new_tokens <= tiny_lm.context_length


def test_one_huge_message_is_cut_to_fit(tiny_lm):
    result = chat(tiny_lm, [ChatMessage("user", "x y z " * 5000)], GREEDY, system_prompt="keep me")
    assert result.prompt_truncated and result.prompt_tokens < tiny_lm.context_length


def test_model_without_chat_template_gets_a_fallback(tmp_path):
    from tiny_model import make_tiny_model

    from engine import LoadConfig, load_model

    lm = load_model(LoadConfig(path=str(make_tiny_model(tmp_path / "m", chat_template=False))))
    assert lm.tokenizer.chat_template
    result = chat(lm, [ChatMessage("user", "hello")], GREEDY)
    assert result.new_tokens >= 1


def test_the_result_names_the_decode_loop_that_made_it(tiny_model_dir):
    from engine import LoadConfig, load_model

    plain = load_model(LoadConfig(path=str(tiny_model_dir), fast=False))
    assert "decoder" not in plain.extras
    assert generate(plain, "The sea", GREEDY).decoder == "transformers"
