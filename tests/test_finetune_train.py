"""Training on a tiny model: LoRA and full runs, stop and resume, merge, failures that keep what was saved."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from engine.cancel import CancelToken
from engine.errors import OutOfMemoryError
from engine.finetune.config import DataConfig, JobConfig, TrainConfig
from engine.finetune.errors import RunNotFoundError, TrainingError
from engine.finetune.runs import list_runs, run_info
from engine.finetune.runlog import read_events, read_status
from engine.finetune.train import last_checkpoint, run_training
from tiny_model import PARAGRAPH, write_parts



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = write_parts(tmp_path_factory.mktemp("corpus"), 6)
    (folder / "qa.jsonl").write_text(json.dumps({"prompt": "Where do ships sail?", "completion": "Over the sea."})
                                     + "\n", encoding="utf-8")
    return folder


def make_job(model, corpus, out, **train):
    settings = dict(max_steps=4, eval_steps=2, save_steps=2, batch_size=2, learning_rate=5e-3,
                    sample_prompts=(), sample_max_tokens=3)
    settings.update(train)
    return JobConfig(base_model=str(model), out_dir=str(out), data=DataConfig(paths=(str(corpus),), seq_len=32),
                     train=TrainConfig(**settings))


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, corpus, tmp_path_factory):
    job = make_job(tiny_model_dir, corpus, tmp_path_factory.mktemp("runs") / "lora",
                   sample_prompts=("Where do ships sail?",))
    events = []
    result = run_training(job, on_event=events.append)
    return job, result, events


def test_lora_run_saves_a_standard_peft_adapter(lora_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    job, result, events = lora_run
    assert (result.state, result.step, result.method) == ("finished", 4, "lora")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, result.output)
    assert not torch.allclose(before, tuned(ids).logits)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and {"train", "eval", "samples"} <= set(kinds)
    assert [e["step"] for e in events if e["type"] == "eval"] == [0, 2, 4]
    assert result.ppl_before and result.ppl_after and result.ppl_after < result.ppl_before
    assert read_events(job.out_dir) == events  # the window can redraw a run from disk
    assert read_status(job.out_dir)["state"] == "finished"


def test_merge_gives_a_model_the_loader_opens(lora_run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.config import LoadConfig
    from engine.finetune.merge import save_as_model
    from engine.loader import load_model
    from engine.paths import models_dir

    job, result, _ = lora_run
    folder = save_as_model(job.out_dir, name="tuned")
    assert folder == models_dir() / "tuned"
    lm = load_model(LoadConfig(path=str(folder), device="cpu"))
    ids = torch.tensor([[5, 6, 7, 8]])
    base = AutoModelForCausalLM.from_pretrained(job.base_model)
    expected = PeftModel.from_pretrained(base, result.output).eval()(ids).logits
    assert torch.allclose(lm.model(ids).logits, expected, atol=1e-4)
    with pytest.raises(TrainingError, match="already exists"):
        save_as_model(job.out_dir, name="tuned")


def test_full_fine_tuning_with_a_dataset_smaller_than_a_batch(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(3)))
    job = make_job(tiny_model_dir, data, tmp_path / "full", method="full", max_steps=2, batch_size=8,
                   learning_rate=1e-3)
    job = job.with_(data=DataConfig(paths=(str(data),), seq_len=32, val_fraction=0))
    result = run_training(job)
    assert result.state == "finished" and result.output.endswith("model")
    assert any("batch size was lowered to 3" in n for n in result.notices)
    tuned = AutoModelForCausalLM.from_pretrained(result.output)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(tuned.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)


def test_stop_keeps_checkpoints_and_resume_continues(tiny_model_dir, corpus, tmp_path):
    job = make_job(tiny_model_dir, corpus, tmp_path / "stopped", max_steps=6, eval_steps=4, save_steps=4)
    token = CancelToken()

    def stop_at_three(event):  # the loss of step 2 is logged while step 3 is under way
        if event["type"] == "train" and event["step"] == 2:
            token.cancel()

    stopped = run_training(job, on_event=stop_at_three, cancel=token)
    assert (stopped.state, stopped.step) == ("stopped", 3)
    checkpoint = last_checkpoint(job.out_dir)
    assert checkpoint.name == "checkpoint-3" and (checkpoint / "optimizer.pt").is_file()
    info = run_info(job.out_dir)
    assert info.state == "stopped" and info.resumable and info.output  # the best model so far is saved too

    # A crash (kill -9) leaves "running" with a dead pid: the run is listed as interrupted.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = read_status(job.out_dir)
    (tmp_path / "stopped" / "status.json").write_text(json.dumps({**status, "state": "running", "pid": dead.pid}))
    (listed,) = [r for r in list_runs(tmp_path) if r.name == "stopped"]
    assert listed.state == "interrupted" and listed.resumable

    resumed = run_training(job, resume=True)
    assert (resumed.state, resumed.step) == ("finished", 6)
    steps = [e["step"] for e in read_events(job.out_dir) if e["type"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # replayed steps are not drawn twice
    assert not run_info(job.out_dir).resumable


def test_refuses_a_used_folder_and_resume_without_checkpoint(tiny_model_dir, corpus, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="already holds a run"):
        run_training(make_job(tiny_model_dir, corpus, tmp_path / "used"))
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"
    with pytest.raises(RunNotFoundError, match="no run to resume"):
        run_training(make_job(tiny_model_dir, corpus, tmp_path / "none"), resume=True)


def test_resume_before_the_first_checkpoint_starts_again_from_step_0(tiny_model_dir, corpus, tmp_path):
    """A run killed while loading or at its first evaluation has a job.json and a status, no checkpoint."""
    from engine.finetune.runlog import RunLog

    job = make_job(tiny_model_dir, corpus, tmp_path / "killed", max_steps=2)
    job.save()
    RunLog(tmp_path / "killed").start(method="lora", max_steps=2, step=0, message="")
    (tmp_path / "killed" / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # half written: no trainer_state
    info = run_info(job.out_dir)
    assert info.state == "interrupted" and info.resumable and info.step == 0
    said = []
    result = run_training(job, resume=True, on_text=said.append)
    assert (result.state, result.step) == ("finished", 2)
    assert any("starting it again from step 0 with the same job" in t for t in said)
    starts = [e for e in read_events(job.out_dir) if e["type"] == "start"]
    assert [e["step"] for e in starts] == [0]


def test_disk_full_while_saving_keeps_the_last_good_checkpoint(tiny_model_dir, corpus, tmp_path, monkeypatch):
    from engine.finetune.trainer import HearthTrainer

    original = HearthTrainer._save_optimizer_and_scheduler

    def fail_second_time(self, output_dir):
        if self.state.global_step >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, output_dir)

    monkeypatch.setattr(HearthTrainer, "_save_optimizer_and_scheduler", fail_second_time)
    job = make_job(tiny_model_dir, corpus, tmp_path / "full-disk", max_steps=2, eval_steps=1, save_steps=1)
    with pytest.raises(TrainingError, match="disk is full.*checkpoint-1.*kept"):
        run_training(job)
    checkpoints = sorted(p.name for p in (tmp_path / "full-disk" / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-1"]
    assert run_info(job.out_dir).state == "failed" and run_info(job.out_dir).resumable


def test_out_of_memory_suggests_a_smaller_batch(tiny_model_dir, corpus, tmp_path, monkeypatch):
    import torch

    from engine.finetune.trainer import HearthTrainer

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(HearthTrainer, "training_step", oom)
    job = make_job(tiny_model_dir, corpus, tmp_path / "oom", batch_size=2)
    with pytest.raises(OutOfMemoryError, match="batch size 2 .* Try batch size 1 with gradient accumulation 2"):
        run_training(job)
    assert read_status(job.out_dir)["state"] == "failed"


def test_l1_penalty_is_added_to_the_training_loss_only(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, TrainingArguments

    from engine.finetune.trainer import HearthTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = HearthTrainer(model=model, args=args, l1=0.5)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    inputs = {"input_ids": ids, "labels": ids}
    model.eval()
    plain = float(trainer.compute_loss(model, dict(inputs)))
    model.train()
    model.config.use_cache = False
    with torch.no_grad():
        penalised = float(trainer.compute_loss(model, dict(inputs)))
    weights = [p for p in model.parameters() if p.requires_grad]
    mean_abs = float(sum(p.abs().sum() for p in weights) / sum(p.numel() for p in weights))
    assert penalised == pytest.approx(plain + 0.5 * mean_abs, rel=1e-4)


def test_estimate_and_perplexity(lora_run, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.finetune.estimate import estimate
    from engine.finetune.perplexity import perplexity

    job, _, _ = lora_run
    stats = {"train_examples": 40, "train_tokens": 1280, "val_examples": 4, "val_tokens": 128}
    lora = estimate(job, stats)
    full = estimate(job.with_(train=TrainConfig(method="full", max_steps=4)), stats)
    assert 0 < lora.trainable < full.trainable == full.params
    assert lora.memory_bytes < full.memory_bytes and lora.disk_bytes < full.disk_bytes
    assert lora.seconds > 0 and lora.steps == 4 and "weights trained" in lora.summary()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    result = perplexity(model, tok, PARAGRAPH * 10, seq_len=32, stride=16)
    assert result.tokens == len(tok(PARAGRAPH * 10)["input_ids"]) - 1
    assert 1 < result.perplexity < 10_000


def test_a_job_refused_for_its_data_leaves_no_run_behind(tiny_model_dir, tmp_path):
    from engine.finetune.errors import DatasetError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No files found"):
        run_training(make_job(tiny_model_dir, tmp_path / "empty", tmp_path / "runs" / "refused"))
    assert not (tmp_path / "runs" / "refused").exists() and list_runs(tmp_path / "runs") == []
