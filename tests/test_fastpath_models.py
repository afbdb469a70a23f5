"""The fast path on each supported family, on merged-in LoRA adapters, and declining the rest."""

from __future__ import annotations

import pytest
import torch

from engine import LoadConfig, load_model
from engine.config import SamplingConfig
from engine.fastpath import FastDecoder, attach
from engine.generation import generate_ids

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=24, repetition_penalty=1.0, repetition_guard=False)


def save_tiny(folder, config_cls, model_cls, **extra):
    from tiny_model import make_tokenizer

    tokenizer = make_tokenizer()
    config = config_cls(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id, **extra)
    torch.manual_seed(1)
    model = model_cls(config)
    with torch.no_grad():  # random norms and biases, so folding them in is really tested
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(1.0 + 0.5 * torch.randn_like(p) if "norm" in name else 0.1 * torch.randn_like(p))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def both_paths(lm, prompt="The sea is wide and"):
    ids = lm.tokenizer(prompt)["input_ids"]
    lm.extras["decoder"] = None
    plain = generate_ids(lm, ids, GREEDY).token_ids
    decoder = FastDecoder(lm, "exact")
    lm.extras["decoder"] = decoder
    fast = generate_ids(lm, ids, GREEDY).token_ids
    assert decoder.describe()["status"] == "ready", decoder.describe()
    return plain, fast


@pytest.mark.parametrize("family", ["qwen2", "qwen3", "mistral", "llama_bias"])
def test_family_matches_the_plain_path(tmp_path, family):
    import transformers as T

    kinds = {"qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, {}),
             "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, {"head_dim": 8}),
             "mistral": (T.MistralConfig, T.MistralForCausalLM, {"sliding_window": 64}),
             "llama_bias": (T.LlamaConfig, T.LlamaForCausalLM, {"attention_bias": True,
                                                                 "tie_word_embeddings": False})}
    config_cls, model_cls, extra = kinds[family]
    lm = load_model(LoadConfig(path=str(save_tiny(tmp_path / family, config_cls, model_cls, **extra)),
                               device="cpu"))
    assert isinstance(lm.extras.get("decoder"), FastDecoder)
    plain, fast = both_paths(lm)
    assert fast == plain and len(plain) > 0
    if family == "mistral":  # the window is applied per layer (past it: tests/test_fastpath_architectures.py)
        spec = lm.extras["decoder"]._prepared.spec
        assert spec.windows == (64, 64) and spec.max_positions == 128


def test_lora_adapters_are_merged_for_decoding(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    lm = load_model(LoadConfig(path=str(tiny_model_dir), device="cpu"))
    torch.manual_seed(3)
    lm.model = get_peft_model(lm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj",
                                                                                        "down_proj"]))
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # LoRA B starts at zero; make the adapter change the output
    plain, fast = both_paths(lm)
    assert fast == plain
    base = lm.model.get_base_model()
    ids = lm.tokenizer("The sea")["input_ids"]
    with torch.inference_mode(), lm.model.disable_adapter():
        unadapted = base(torch.tensor([ids])).logits[0, -1]
    with torch.inference_mode():
        ours = lm.extras["decoder"]._prepared.forward.forward(torch.tensor(ids), 0)
    assert not torch.allclose(ours, unadapted, atol=1e-3)  # the adapter really was merged


def test_unsupported_models_stay_on_the_plain_path(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tiny_model import make_tokenizer

    tokenizer = make_tokenizer()
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2,
                               n_positions=64)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_model(LoadConfig(path=str(tmp_path), device="cpu"))
    assert "decoder" not in lm.extras
    assert "gpt2" in lm.extras["fast_path_off"]
    ids = lm.tokenizer("The sea")["input_ids"]
    assert generate_ids(lm, ids, GREEDY.with_(max_new_tokens=5)).new_tokens == 5


def test_fast_false_and_the_off_switch_attach_nothing(tiny_model_dir, monkeypatch):
    assert "decoder" not in load_model(LoadConfig(path=str(tiny_model_dir), device="cpu", fast=False)).extras
    lm = load_model(LoadConfig(path=str(tiny_model_dir), device="cpu", fast=False))
    monkeypatch.setenv("HEARTH_FAST_MODE", "off")
    assert attach(lm) is None and "decoder" not in lm.extras


def test_bf16_models_take_the_same_route_as_on_cuda(tiny_model_dir):
    """bf16 weights (what CUDA loads): RoPE in fp32, cache and attention in bf16, fp32 softmax."""
    lm = load_model(LoadConfig(path=str(tiny_model_dir), device="cpu", dtype="bfloat16", fast=False))
    decoder = FastDecoder(lm, "exact")
    assert decoder.prepare() and decoder._prepared.forward.dtype == torch.bfloat16
    ids = lm.tokenizer("The sea is wide and the waves")["input_ids"]
    forward = decoder._prepared.forward
    with torch.inference_mode():
        forward.forward(torch.tensor(ids[:-1]), 0, logits=False)
        ours = forward.forward(torch.tensor(ids[-1:]), len(ids) - 1)
        theirs = lm.model(torch.tensor([ids])).logits[0, -1].float()
    torch.testing.assert_close(ours, theirs, rtol=0.05, atol=0.02)
    lm.extras["decoder"] = decoder
    assert len(generate_ids(lm, ids, GREEDY).token_ids) == GREEDY.max_new_tokens
