"""The fast decode path against the plain transformers path, on the tiny model.

Same greedy tokens in fp32 (exact mode), the same behaviour for cancel and stop
strings, reproducible seeded sampling; the int8 path stays close.
"""

from __future__ import annotations

import pytest

from engine.config import SamplingConfig
from engine.fastpath import FastDecoder
from engine.generation import FINISH_CANCELLED, FINISH_STOP, generate, generate_ids, hf_decode

PROMPTS = ["The sea is wide", "def add(a, b):\n", "Hello there! How", "0 1 2 3 4"]
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=40, repetition_penalty=1.0, repetition_guard=False)


@pytest.fixture
def use(tiny_lm):
    """Run a test with a chosen decoder in tiny_lm.extras, restoring the original afterwards."""
    original = tiny_lm.extras.get("decoder")

    def set_decoder(decoder):
        tiny_lm.extras["decoder"] = decoder
        return decoder

    yield set_decoder
    tiny_lm.extras["decoder"] = original


def run(lm, prompt, sampling, **kwargs):
    ids = lm.tokenizer(prompt)["input_ids"]
    return generate_ids(lm, ids, sampling, **kwargs)


def test_loader_attaches_a_fast_decoder(tiny_lm):
    decoder = tiny_lm.extras["decoder"]
    assert isinstance(decoder, FastDecoder)
    assert decoder.supports(GREEDY)  # prepares on first use outside the app
    assert decoder.describe()["status"] == "ready"


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_exact_greedy_tokens_match_the_plain_path(tiny_lm, use, penalty):
    sampling = GREEDY.with_(repetition_penalty=penalty)
    fast = FastDecoder(tiny_lm, "exact")
    for prompt in PROMPTS:
        use(None)
        plain = run(tiny_lm, prompt, sampling)
        use(fast)
        quick = run(tiny_lm, prompt, sampling)
        assert quick.token_ids == plain.token_ids, prompt
        assert quick.text == plain.text and quick.finish_reason == plain.finish_reason
    assert fast.describe()["status"] == "ready"


def test_int8_path_stays_close_to_the_plain_path(tiny_lm, use):
    fast = FastDecoder(tiny_lm, "int8")
    same = total = 0
    for prompt in PROMPTS:
        use(None)
        plain = run(tiny_lm, prompt, GREEDY)
        use(fast)
        quick = run(tiny_lm, prompt, GREEDY)
        assert fast.describe()["mode"] == "int8"
        # Position by position: after the first difference the two continuations drift apart.
        same += sum(a == b for a, b in zip(plain.token_ids, quick.token_ids))
        total += len(plain.token_ids)
    assert same / total >= 0.5


def test_prompt_logits_match_transformers(tiny_lm):
    """Every layer at once: the next-token logits after a prompt equal the HF forward's."""
    import torch

    decoder = FastDecoder(tiny_lm, "exact")
    assert decoder.prepare()
    ids = tiny_lm.tokenizer(PROMPTS[0])["input_ids"]
    with torch.inference_mode():
        ours = decoder._prepared.forward.forward(torch.tensor(ids), 0)
        theirs = tiny_lm.model(torch.tensor([ids])).logits[0, -1]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["exact", "int8"])
def test_should_stop_ends_at_the_token_that_raised_it(tiny_lm, mode):
    """transformers checks its stopping criteria before streaming a token, so the plain path makes one
    token more after a stop; the fast path stops on the spot. Both stream every token they return."""
    ids = tiny_lm.tokenizer(PROMPTS[0])["input_ids"]
    plain_seen: list[int] = []
    plain = hf_decode(tiny_lm, ids, GREEDY, on_tokens=plain_seen.extend, should_stop=lambda: len(plain_seen) >= 3)
    fast_seen: list[int] = []
    fast = FastDecoder(tiny_lm, mode).decode(tiny_lm, ids, GREEDY, on_tokens=fast_seen.extend,
                                             should_stop=lambda: len(fast_seen) >= 3)
    assert fast == fast_seen and len(fast) == 3
    assert plain == plain_seen and len(plain) == 4
    if mode == "exact":
        assert fast == plain[:3]


def test_cancel_token_ends_generation_on_both_paths(tiny_lm, use):
    from engine.cancel import CancelToken

    results = {}
    for name, decoder in (("plain", None), ("fast", FastDecoder(tiny_lm, "exact"))):
        use(decoder)
        token = CancelToken()
        chunks: list[str] = []

        def on_text(chunk):  # used within this iteration only
            chunks.append(chunk)  # noqa: B023
            token.cancel()  # noqa: B023

        results[name] = run(tiny_lm, PROMPTS[2], GREEDY.with_(max_new_tokens=60), on_text=on_text, cancel=token)
        assert results[name].finish_reason == FINISH_CANCELLED
    fast, plain = results["fast"].token_ids, results["plain"].token_ids
    assert fast and plain[:len(fast)] == fast and len(plain) - len(fast) <= 1  # see the test above


def test_stop_strings_behave_the_same(tiny_lm, use):
    use(None)
    full = run(tiny_lm, PROMPTS[0], GREEDY).text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip(), "the tiny model's reply is too short to pick a stop string"
    sampling = GREEDY.with_(stop=(stop,))
    plain = run(tiny_lm, PROMPTS[0], sampling)
    use(FastDecoder(tiny_lm, "exact"))
    quick = run(tiny_lm, PROMPTS[0], sampling)
    assert plain.finish_reason == quick.finish_reason == FINISH_STOP
    assert quick.text == plain.text and stop not in quick.text


@pytest.mark.parametrize("mode", ["exact", "int8"])
def test_seeded_sampling_is_reproducible(tiny_lm, use, mode):
    use(FastDecoder(tiny_lm, mode))
    sampling = SamplingConfig(temperature=0.9, top_k=20, top_p=0.9, min_p=0.02, repetition_penalty=1.2,
                              max_new_tokens=30, seed=1234)
    first = run(tiny_lm, PROMPTS[1], sampling)
    again = run(tiny_lm, PROMPTS[1], sampling)
    other = run(tiny_lm, PROMPTS[1], sampling.with_(seed=99))
    assert first.token_ids == again.token_ids
    assert first.token_ids != other.token_ids


def test_generate_and_length_limit_use_the_fast_path(tiny_lm, use):
    calls = []
    fast = FastDecoder(tiny_lm, "exact")
    original = fast._decode
    fast._decode = lambda *a, **k: calls.append(1) or original(*a, **k)
    use(fast)
    result = generate(tiny_lm, "The sea", GREEDY.with_(max_new_tokens=7))
    assert calls and result.new_tokens == 7 and result.finish_reason == "length"
