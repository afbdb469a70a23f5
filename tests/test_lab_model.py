"""The lab's Transformer: shapes, masks, attention weights, positional code, configuration."""

import math

import pytest
import torch

from engine.errors import InvalidConfigError
from engine.lab.attention import lab_attention_maps, layer_attention
from engine.lab.model import LabModelConfig, LabTransformer, count_parameters, sinusoid_table


def make(objective="clm", **kw):
    torch.manual_seed(0)
    config = LabModelConfig(vocab_size=37, d_model=32, n_heads=4, n_layers=2, d_ff=64, context=24,
                            dropout=0.0, objective=objective, **kw)
    return LabTransformer(config).eval()


def test_logits_shape_and_parameter_count():
    model = make()
    ids = torch.randint(0, 37, (3, 10))
    assert model(ids).shape == (3, 10, 37)
    assert count_parameters(model.config) == sum(p.numel() for p in model.parameters())


def test_causal_mask_hides_the_future():
    model = make("clm")
    ids = torch.randint(0, 37, (2, 16))
    changed = ids.clone()
    changed[:, 9:] = (changed[:, 9:] + 5) % 37  # perturb every token from position 9 on
    with torch.no_grad():
        before, after = model(ids), model(changed)
    assert torch.allclose(before[:, :9], after[:, :9], atol=1e-5)  # earlier positions never saw them
    assert not torch.allclose(before[:, 9:], after[:, 9:], atol=1e-3)


def test_masked_objective_sees_both_ways():
    model = make("mlm")
    ids = torch.randint(0, 37, (1, 16))
    changed = ids.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 37
    with torch.no_grad():
        assert not torch.allclose(model(ids)[:, :12], model(changed)[:, :12], atol=1e-5)


def test_step_by_step_attention_matches_pytorch():
    model = make("clm")
    layer = model.encoder.layers[0]
    x = torch.randn(2, 7, 32)
    mask = model.mask_for(7, x.device)
    ours = layer_attention(layer, x, mask)  # (B, H, T, T)
    _, theirs = layer.self_attn(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    assert ours.shape == (2, 4, 7, 7)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_attention_maps_are_causal_distributions():
    model = make("clm")
    logits, maps = lab_attention_maps(model, torch.randint(0, 37, (1, 9)))
    assert logits.shape == (1, 9, 37) and len(maps) == 2
    for weights in maps:
        assert torch.allclose(weights.sum(-1), torch.ones(1, 4, 9), atol=1e-5)
        assert torch.all(weights.triu(diagonal=1) == 0)


def test_sinusoidal_positions():
    pe = sinusoid_table(50, 16)
    assert pe.shape == (50, 16)
    assert math.isclose(pe[7, 0].item(), math.sin(7), abs_tol=1e-5)
    assert math.isclose(pe[7, 1].item(), math.cos(7), abs_tol=1e-5)
    assert math.isclose(pe[7, 2].item(), math.sin(7 / 10000 ** (2 / 16)), abs_tol=1e-5)


def test_embedding_is_scaled_by_sqrt_d():
    model = make()
    ids = torch.tensor([[3]])
    expected = model.embed.weight[3] * math.sqrt(32) + sinusoid_table(1, 32)[0]
    assert torch.allclose(model.embed_tokens(ids)[0, 0], expected, atol=1e-5)


def test_longer_than_context_is_refused():
    with pytest.raises(ValueError, match="context"):
        make()(torch.zeros(1, 25, dtype=torch.long))


@pytest.mark.parametrize("kw, word", [({"d_model": 30, "n_heads": 4}, "multiple"),
                                      ({"objective": "seq2seq"}, "objective"), ({"context": 1}, "context")])
def test_bad_configs_are_refused(kw, word):
    base = dict(vocab_size=10, d_model=32, n_heads=4)
    base.update(kw)
    with pytest.raises(InvalidConfigError, match=word):
        LabModelConfig(**base)
