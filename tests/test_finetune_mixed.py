"""LoRA's mixed precision on a CPU (engine/finetune/mixed.py): bf16 matmuls, float32 everything else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.finetune.mixed import (Bf16Embedding, Bf16Linear, FusedLoraLinear, SharedDropout, fast_dropout,
                                   fuse_lora_forward, share_lora_dropout, to_mixed_precision)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _load(folder, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True,
                                                 attn_implementation="sdpa")
    return model.eval()


def _lora(model, dropout=0.05):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def _ids(n=2, t=24):
    return torch.randint(3, 300, (n, t), generator=torch.Generator().manual_seed(1))


def test_mixed_model_gives_the_fp32_logits_within_bf16_rounding(tiny_model_dir):
    ids = _ids()
    with torch.no_grad():
        reference = _load(tiny_model_dir)(input_ids=ids).logits
        mixed = to_mixed_precision(_load(tiny_model_dir, torch.bfloat16))
        logits = mixed(input_ids=ids).logits
    assert logits.dtype == torch.float32
    assert not torch.equal(logits, reference)  # the matmuls did run in bf16
    torch.testing.assert_close(logits, reference, atol=0.05, rtol=0.02)


def test_weights_are_frozen_bf16_and_the_rest_float32_adapters_trainable(tiny_model_dir):
    model = to_mixed_precision(_load(tiny_model_dir, torch.bfloat16))
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied: one bf16 table
    assert isinstance(model.lm_head, Bf16Linear) and isinstance(model.model.embed_tokens, Bf16Embedding)
    for module in model.modules():
        if isinstance(module, (Bf16Linear, Bf16Embedding)):
            assert module.weight.dtype == torch.bfloat16 and not module.weight.requires_grad
    assert model.model.norm.weight.dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in model.buffers() if b.is_floating_point())
    model = _lora(model)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and p.dtype == torch.float32 for n, p in trainable)
    frozen = [p for n, p in model.named_parameters() if not p.requires_grad and p.dim() == 2]
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)


def test_a_training_step_reaches_the_adapters_in_float32(tiny_model_dir):
    model = _lora(to_mixed_precision(_load(tiny_model_dir, torch.bfloat16)))
    share_lora_dropout(model)
    fuse_lora_forward(model)
    model.train()
    ids = _ids()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and g.dtype == torch.float32 for g in grads.values())
    # lora_B starts at zero, so the gradient reaches it first; it must not be zero anywhere.
    assert all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


def test_dropout_masks_are_shared_only_by_modules_reading_the_same_tensor(tiny_model_dir):
    model = _lora(_load(tiny_model_dir))
    assert share_lora_dropout(model) == 7 * 2  # seven Linear layers in each of two decoder layers
    model.train()
    seen = {}

    def keep(name):
        def hook(module, args, output):
            seen[name] = (args[0], output)
        return hook

    layer = model.base_model.model.model.layers[0]
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        module = getattr(layer.self_attn if name[0] in "qkvo" else layer.mlp, name)
        assert isinstance(module.lora_dropout["default"], SharedDropout)
        module.lora_dropout["default"].register_forward_hook(keep(name))
    model(input_ids=_ids(t=64))
    assert seen["q_proj"][0] is seen["k_proj"][0] is seen["v_proj"][0]
    assert seen["q_proj"][1] is seen["k_proj"][1] is seen["v_proj"][1]  # one mask for q, k and v
    assert seen["gate_proj"][1] is seen["up_proj"][1]
    outputs = [seen[n][1] for n in ("q_proj", "o_proj", "gate_proj", "down_proj")]
    assert len({id(o) for o in outputs}) == 4  # different inputs: their own masks
    model.eval()
    x = torch.randn(3, 5)
    assert SharedDropout(0.5, None).eval()(x) is x  # evaluation: no dropout


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_fast_dropout_keeps_p_and_the_expectation_and_its_gradient_is_the_mask(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    y = fast_dropout(x, p)
    sigma = (p * (1 - p) / x.numel()) ** 0.5
    assert abs((y == 0).float().mean().item() - p) < 5 * sigma  # p itself, not rounded
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout: the same expectation
    assert torch.unique(y).tolist() == pytest.approx([0.0, 1 / (1 - p)])
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(sum)/dx is the scaled mask itself
    assert not torch.equal(fast_dropout(x, p), y)  # a new mask each call


def test_dropped_elements_are_independent_within_and_across_masks():
    torch.manual_seed(1)
    p, x = 0.1, torch.ones(1000, 1000)
    a, b = (fast_dropout(x, p) == 0).float(), (fast_dropout(x, p) == 0).float()
    n = x.numel()
    both = p * p
    tolerance = 5 * (both * (1 - both) / n) ** 0.5
    assert abs((a * b).mean().item() - both) < tolerance  # two masks: independent
    flat = a.view(-1)
    assert abs((flat[1:] * flat[:-1]).mean().item() - both) < tolerance  # neighbours in one mask
    assert abs((flat[2:] * flat[:-2]).mean().item() - both) < tolerance
    per_row = a.sum(dim=1)  # each row a binomial count: its variance too
    assert abs(per_row.var().item() / (1000 * p * (1 - p)) - 1) < 0.25
    columns = a.mean(dim=0)  # no position favoured
    assert (columns - p).abs().max().item() < 6 * (p * (1 - p) / 1000) ** 0.5


def test_drop_positions_draw_again_when_the_first_draws_fall_short(monkeypatch):
    from engine.finetune import mixed

    # u = 0 everywhere makes every gap 1: the first draws cover only ~n·p elements, so it must go on.
    monkeypatch.setattr(mixed.torch, "rand", lambda n, **kw: torch.zeros(n, dtype=torch.float64))
    assert mixed._drop_positions(1000, 0.05, torch.device("cpu")).tolist() == list(range(1000))
    monkeypatch.undo()
    positions = mixed._drop_positions(10**6, 0.05, torch.device("cpu"))
    assert bool((positions[1:] > positions[:-1]).all()) and 0 <= int(positions[0]) and int(positions[-1]) < 10**6


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_fused_lora_forward_matches_peft(tiny_model_dir, dropout):
    """The LoRA sum in one addmm, and the A matrices of q/k/v and gate/up in one matmul each: peft's numbers."""
    def run(fused):
        torch.manual_seed(0)
        model = _lora(_load(tiny_model_dir), dropout=dropout)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                nn.init.normal_(p, std=0.1)  # non-zero, so the adapters change the output
        share_lora_dropout(model)  # both runs: the same masks from the same seed
        if fused:
            assert fuse_lora_forward(model) == 14
            assert any(isinstance(m, FusedLoraLinear) for m in model.modules())
            attention = model.base_model.model.model.layers[0].self_attn
            assert attention.q_proj._hearth_siblings is attention.v_proj._hearth_siblings
            assert getattr(attention.o_proj, "_hearth_siblings", None) is None
        model.train()
        ids = _ids()
        out = model(input_ids=ids, labels=ids)
        if fused:  # q, k and v took their columns of one product
            assert attention.q_proj._hearth_siblings._output().shape[-1] == 3 * 4
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return out.logits.detach(), grads

    logits, grads = run(False)
    fused_logits, fused_grads = run(True)
    torch.testing.assert_close(fused_logits, logits, atol=1e-5, rtol=1e-5)
    for name in grads:
        torch.testing.assert_close(fused_grads[name], grads[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_run_training_uses_mixed_precision_for_lora_on_a_bf16_cpu(tiny_model_dir, tmp_path, checkpointing):
    import json

    from safetensors.torch import load_file

    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.train import run_training

    (tmp_path / "text.txt").write_text("The sea is wide and the waves are high.\n" * 60, encoding="utf-8")
    job = JobConfig(base_model=str(tiny_model_dir), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(tmp_path / "text.txt"),), seq_len=32),
                    train=TrainConfig(max_steps=3, eval_steps=3, save_steps=3, batch_size=2, learning_rate=5e-3,
                                      precision="bf16", device="cpu", gradient_checkpointing=checkpointing,
                                      sample_prompts=(), sample_max_tokens=3))
    events = []
    result = run_training(job, on_event=events.append)
    assert result.state == "finished" and result.step == 3
    start = next(e for e in events if e["type"] == "start")
    assert start["precision"] == "bf16 base, fp32 adapter"
    evals = [e["loss"] for e in events if e["type"] == "eval"]
    assert evals[-1] < evals[0]  # it learns
    weights = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert weights and all(w.dtype == torch.float32 for w in weights.values())
    assert json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())["lora_dropout"] == 0.05


def test_chunked_loss_equals_the_model_loss_and_its_gradient(tiny_model_dir):
    from engine.finetune.mixed import ChunkedLossMixin, chunked_lm_loss

    def run(chunked):
        torch.manual_seed(0)
        model = to_mixed_precision(_load(tiny_model_dir, torch.bfloat16))
        if not chunked:
            model.__class__ = type(model).__mro__[2]  # the model's own class, under the mixin's subclass
        assert isinstance(model, ChunkedLossMixin) == chunked
        model = _lora(model, dropout=0.0)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                nn.init.normal_(p, std=0.1)
        model.train()
        ids = _ids()
        labels = ids.clone()
        labels[0, :5] = -100  # a prompt without targets
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return out, grads

    plain, grads = run(False)
    chunked, chunked_grads = run(True)
    assert chunked.logits is None and plain.logits is not None  # no logits for a training step
    torch.testing.assert_close(chunked.loss, plain.loss, atol=1e-4, rtol=1e-4)
    for name in grads:  # the same up to bf16 rounding, which happens at other points
        assert (chunked_grads[name] - grads[name]).norm() <= 0.01 * grads[name].norm()
    # several chunks give the same sum as one
    hidden, weight = torch.randn(10, 8), torch.randn(30, 8).bfloat16()
    labels = torch.tensor([1, 2, -100, 4, 5, 6, 7, 8, 9, -100])
    one, n = chunked_lm_loss(hidden, weight, labels, rows=64)
    many, _ = chunked_lm_loss(hidden, weight, labels, rows=3)
    assert n == 8 and torch.allclose(one, many)
    logits = (hidden.bfloat16() @ weight.t()).float()
    torch.testing.assert_close(one, torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))


def test_evaluation_and_generation_keep_the_models_own_forward(tiny_model_dir):
    model = to_mixed_precision(_load(tiny_model_dir, torch.bfloat16))
    ids = _ids()
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    assert out.logits is not None and out.logits.dtype == torch.float32 and torch.isfinite(out.loss)
    generated = model.generate(input_ids=ids[:1, :5], max_new_tokens=3, do_sample=False, use_cache=True)
    assert generated.shape == (1, 8)


# --- threads and the reported speed (why `hearth-cli finetune` and the window trained slower than the bench) ---

class _State:
    is_world_process_zero, epoch, max_steps = True, 0.0, 10

    def __init__(self, step=0):
        self.global_step = step


def test_the_load_rule_leaves_out_the_runs_own_threads(monkeypatch):
    import os

    from engine.finetune.callbacks import decode_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 2.0, 2.0))
    assert decode_threads(2) == 1  # someone else keeps both cores busy
    assert decode_threads(2, own=2) == 2  # the load is this run's own two threads


def test_thread_choice_warms_up_on_every_thread_then_times_them_before_one(monkeypatch):
    import os

    from engine.finetune import callbacks

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.9, 1.9))  # the run's own 2 threads: not busy
    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    cb = callbacks.ThreadCallback(2)
    cb.on_train_begin(None, _State(), None)
    steps = callbacks.FIRST_TRIAL + 2
    for step in range(1, steps + 1):
        cb.on_step_begin(None, _State(step), None)
        cb.on_step_end(None, _State(step), None)
    # warm-up, every thread timed FIRST_TRIAL times, then the one-thread trial
    assert chosen[1:steps + 1] == [2] * (callbacks.FIRST_TRIAL + 1) + [1]
    assert cb.chooser.cost[2] is not None and cb.chooser.cost[1] is not None
    assert cb.timed == steps - 1  # the warm-up step was not recorded

    monkeypatch.setattr(os, "getloadavg", lambda: (4.5, 4.0, 4.0))  # others keep both cores busy
    cb.on_step_begin(None, _State(steps + 1), None)
    assert chosen[-1] == 1


def test_reported_tokens_per_s_leaves_out_the_warm_up_step(monkeypatch):
    from engine.finetune import callbacks

    now = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])

    class Log:
        progress: dict = {}

    report = callbacks.ReportCallback(Log(), lambda f, m: None, tokens_per_step=1000)
    report.on_train_begin(None, _State(), None)
    for step, (begin, end) in enumerate([(0, 20), (20, 30), (30, 40)], start=1):
        now[0] = begin
        report.on_step_begin(None, _State(step), None)
        now[0] = end
        report.on_step_end(None, _State(step), None)
    assert report.step_seconds == [20.0, 10.0, 10.0]
    assert report.tokens_per_s() == pytest.approx(100.0)  # 2 × 1000 tokens in 20 s, not 3000 in 40


def _saved_bytes(model, ids) -> tuple[int, torch.Tensor]:
    """Bytes of the activations autograd keeps for one training forward (weights left out), and the loss."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    return sum(saved.values()), loss


@pytest.mark.parametrize("dropout", [0.0, 0.05])
def test_activations_match_the_estimate_and_checkpointing_frees_them(tmp_path, dropout):
    """The estimate counts what a LoRA step on the mixed path really keeps (float32 activations, dropout masks,
    no logits), and with checkpointing (as _prepare_model enables it, peft and mixed.py on top) only the layers'
    inputs are kept. The shared dropout's memo holds no tensor once the step is over."""
    import gc
    import json

    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.estimate import activation_bytes
    from engine.finetune.train import _prepare_model
    from tiny_model import make_tiny_model

    # wide enough that the per-layer activations dominate, as in a real model (not the shared attention mask)
    tiny_model_dir = make_tiny_model(tmp_path / "model", hidden=128)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    ids = _ids(n=2, t=64)
    measured = {}
    for checkpointing in (False, True):
        job = JobConfig(base_model=str(tiny_model_dir), out_dir=str(tmp_path / "run"), data=DataConfig(seq_len=64),
                        train=TrainConfig(batch_size=2, precision="bf16", device="cpu", lora_dropout=dropout,
                                          gradient_checkpointing=checkpointing))
        model = _prepare_model(_load(tiny_model_dir, torch.bfloat16), job).train()
        measured[checkpointing], loss = _saved_bytes(model, ids)
        loss.backward()
        expected = activation_bytes(job, cfg, batch=2) + ids.numel() * cfg["hidden_size"] * 4  # + the loss's gradient
        if not checkpointing:
            assert abs(measured[False] - expected) < 0.15 * expected, (measured[False], expected)
        memos = {id(m.memo): m.memo for m in model.modules() if isinstance(m, SharedDropout)}
        del loss
        gc.collect()
        assert all(memo._input is None or memo._input() is None for memo in memos.values())
        assert all(memo._output is None or memo._output() is None for memo in memos.values())
    assert measured[True] < measured[False] / 3


def test_freed_activations_go_back_to_the_system_where_glibc_allows():
    import platform

    from engine.finetune.mixed import return_freed_memory

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert return_freed_memory() is glibc


def test_the_heap_returns_freed_memory_only_where_memory_is_tight():
    from engine.finetune.mixed import lean_heap_wanted

    gib = 2**30
    assert not lean_heap_wanted(2 * gib, 20 * gib, checkpointing=False)  # room for a heap that keeps its holes
    assert lean_heap_wanted(12 * gib, 20 * gib, checkpointing=False)
    assert lean_heap_wanted(2 * gib, 20 * gib, checkpointing=True)  # checkpointing is chosen to save memory
    assert lean_heap_wanted(2 * gib, 0, checkpointing=False)  # free memory unknown: the safe side


@pytest.mark.parametrize("checkpointing", [False, True])
def test_prepare_model_fixes_the_heap_only_for_a_lean_run(tiny_model_dir, tmp_path, monkeypatch, checkpointing):
    from engine.finetune import mixed
    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.train import _prepare_model

    calls = []
    monkeypatch.setattr(mixed, "return_freed_memory", lambda: calls.append("lean") or True)
    job = JobConfig(base_model=str(tiny_model_dir), out_dir=str(tmp_path / "run"), data=DataConfig(seq_len=32),
                    train=TrainConfig(batch_size=2, precision="bf16", device="cpu",
                                      gradient_checkpointing=checkpointing))
    _prepare_model(_load(tiny_model_dir, torch.bfloat16), job)
    assert calls == (["lean"] if checkpointing else [])  # a tiny model is far from this machine's free memory


def test_fused_rms_norm_gives_the_models_own_numbers_and_gradients(tiny_model_dir):
    from engine.finetune.mixed import FusedRMSNormMixin

    model = to_mixed_precision(_load(tiny_model_dir, torch.bfloat16))
    norms = [m for m in model.modules() if isinstance(m, FusedRMSNormMixin)]
    assert len(norms) == 2 * 2 + 1  # two per decoder layer and the final one
    norm = norms[0]
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 7, norm.weight.shape[0], requires_grad=True)
    y = norm(x)
    own = type(norm).__mro__[2].forward(norm, x)  # the model's own class, after the mixin
    torch.testing.assert_close(y, own)
    g = torch.randn_like(y)
    (fused,) = torch.autograd.grad(y, x, g)
    (reference,) = torch.autograd.grad(own, x, g)
    torch.testing.assert_close(fused, reference)
