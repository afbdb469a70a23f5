"""Looking inside any model: attention maps, token probabilities, next tokens, fill-in-the-blank."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.lab.errors import AttentionUnavailableError
from engine.lab.inspect import attention_maps, encode, next_tokens, token_probabilities


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_attention_maps_of_a_transformers_model(tiny_lm):
    before = tiny_lm.model.config._attn_implementation
    maps = attention_maps(tiny_lm, "The sea is wide and the waves are high.")
    t = len(maps.tokens)
    assert maps.weights.shape == (2, 4, t, t)
    assert np.allclose(maps.weights.sum(-1), 1.0, atol=1e-4)
    assert np.allclose(np.triu(maps.weights, k=1), 0.0)  # a causal model never looks ahead
    assert maps.tokens[0] == "<|endoftext|>"  # the start-of-text context token comes first
    assert np.allclose(maps.map(1, None), maps.weights[1].mean(0))
    assert tiny_lm.model.config._attn_implementation == before  # chat keeps its fast kernel


def test_a_model_without_attention_weights_is_explained():
    class Silent(torch.nn.Module):
        config = SimpleNamespace(_attn_implementation="eager")

        def forward(self, input_ids, **kw):
            return SimpleNamespace(attentions=None, logits=torch.zeros(1, input_ids.size(1), 5))

    from tiny_model import make_tokenizer

    lm = SimpleNamespace(model=Silent(), tokenizer=make_tokenizer(), device=torch.device("cpu"),
                         context_length=64, name="silent")
    with pytest.raises(AttentionUnavailableError, match="silent does not return attention weights"):
        attention_maps(lm, "hello")


def test_token_probabilities_and_perplexity(tiny_lm):
    result = token_probabilities(tiny_lm, "Hello there! How are you today?")
    scored = [t for t in result.tokens if t.prob is not None]
    assert result.tokens[0].prob is None and len(scored) == len(result.tokens) - 1
    for t in scored:
        assert 0.0 <= t.prob <= 1.0 and len(t.top) == 5
        assert [p for _, p in t.top] == sorted((p for _, p in t.top), reverse=True)
        assert t.prob <= t.top[0][1] + 1e-6
    expected = math.exp(-sum(math.log(t.prob) for t in scored) / len(scored))
    assert math.isclose(result.perplexity, expected, rel_tol=1e-6)
    # the same numbers as a direct forward pass
    ids = [t.token_id for t in result.tokens]
    with torch.no_grad():
        probs = tiny_lm.model(torch.tensor([ids])).logits[0].softmax(-1)
    assert math.isclose(scored[0].prob, probs[0, ids[1]].item(), rel_tol=1e-4)


def test_long_text_is_cut_with_a_notice(tiny_lm):
    text = "The sea is wide. " * 200  # far beyond the tiny model's 256-token context
    enc = encode(tiny_lm, text, 10_000)
    assert len(enc.ids) == tiny_lm.context_length
    assert "only the first" in enc.notice and "context" in enc.notice
    maps = attention_maps(tiny_lm, text)
    assert len(maps.tokens) == 256 and maps.notice


def test_next_tokens_are_a_sorted_distribution(tiny_lm):
    tokens, notice = next_tokens(tiny_lm, "The sea", k=10)
    probs = [t.prob for t in tokens]
    assert len(tokens) == 10 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    assert notice == ""


@pytest.fixture(scope="module")
def lab_models(tmp_path_factory):
    """A causal and a masked lab model, briefly trained (enough to be real, not to be good)."""
    from engine.lab.config import LabTrainConfig
    from engine.lab.train import train_lab

    root = tmp_path_factory.mktemp("lab-inspect")
    (root / "c.txt").write_text("the cat sat on the mat. " * 120, encoding="utf-8")
    out = {}
    for objective in ("clm", "mlm"):
        config = LabTrainConfig(files=(str(root / "c.txt"),), out_dir=str(root / objective), size="tiny",
                                context=24, batch_size=8, max_steps=10, eval_every=10, eval_batches=1,
                                objective=objective, sample_tokens=8)
        out[objective] = train_lab(config).out_dir
    return out


def test_lab_models_can_be_inspected(lab_models):
    from engine.lab.inspect import fill_mask
    from engine.lab.loading import is_masked, load_any

    clm = load_any(lab_models["clm"], device="cpu")
    maps = attention_maps(clm, "the cat")
    assert maps.weights.shape == (2, 4, 8, 8)  # start token + 7 characters; tiny: 2 layers × 4 heads
    assert np.allclose(np.triu(maps.weights, k=1), 0.0)
    mlm = load_any(lab_models["mlm"], device="cpu")
    assert is_masked(mlm) and not is_masked(clm)
    bidirectional = attention_maps(mlm, "the cat")
    assert not np.allclose(np.triu(bidirectional.weights, k=1), 0.0)
    probs = token_probabilities(mlm, "the mat")
    assert probs.method.startswith("pseudo") and all(t.prob is not None for t in probs.tokens[1:])
    filled, options = fill_mask(mlm, "the c<mask>t")
    assert len(options) == 1 and len(filled) == len("the cat")


def test_masked_lab_folder_refuses_chat_with_a_reason(lab_models):
    from engine.config import LoadConfig
    from engine.errors import ModelLoadError
    from engine.loader import load_model

    with pytest.raises(ModelLoadError, match="fill in the blank"):
        load_model(LoadConfig(path=lab_models["mlm"], device="cpu"))


@pytest.mark.integration
def test_default_model_attention_and_probabilities(default_lm):
    before = default_lm.model.config._attn_implementation
    maps = attention_maps(default_lm, "The capital of France is Paris.")
    assert maps.weights.shape[:2] == (30, 9)  # SmolLM2-135M: 30 layers × 9 heads
    assert np.allclose(maps.weights.sum(-1), 1.0, atol=1e-3)
    assert default_lm.model.config._attn_implementation == before
    probs = token_probabilities(default_lm, "The capital of France is Paris.")
    paris = [t for t in probs.tokens if t.text == " Paris"][0]
    assert paris.prob > 0.3 and paris.top[0][0] == " Paris"  # the model knows this one
    assert 1.0 < probs.perplexity < 1000
