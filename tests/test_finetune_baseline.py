"""LoRA measures the validation loss "before training" after its first step, with the adapter off: the first
step waits for no evaluation, and the numbers are those an evaluation before step 1 gives."""

from __future__ import annotations

import json

import pytest

from engine.finetune.config import DataConfig, JobConfig, TrainConfig
from engine.finetune.train import run_training
from tiny_model import write_parts



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = write_parts(tmp_path_factory.mktemp("corpus"), 8)
    return folder


def job_for(model, corpus, out, **train):
    settings = dict(max_steps=3, eval_steps=3, save_steps=3, batch_size=2, learning_rate=5e-3,
                    sample_prompts=("Where do ships sail?",), sample_max_tokens=3, patience=0)
    settings.update(train)
    return JobConfig(base_model=str(model), out_dir=str(out), data=DataConfig(paths=(str(corpus),), seq_len=32),
                     train=TrainConfig(**settings))


def test_the_first_step_comes_before_the_baseline_with_the_same_numbers(tiny_model_dir, corpus, tmp_path,
                                                                        monkeypatch):
    from engine.finetune import baseline

    order = []
    later = run_training(job_for(tiny_model_dir, corpus, tmp_path / "later"),
                         on_event=lambda e: order.append((e["type"], e.get("step"))),
                         on_progress=lambda f, m: order.append(("progress", m)))
    # the first training step is taken before any validation: nothing evaluated it first
    first_eval = next(i for i, (kind, _) in enumerate(order) if kind == "eval")
    first_step = next(i for i, (kind, m) in enumerate(order) if kind == "progress" and str(m).startswith("Step 1/"))
    assert first_step < first_eval and order[first_eval] == ("eval", 0)
    assert order.index(("train", 1)) < first_eval  # step 1 is reported before the baseline is measured
    assert ("samples", 0) in order
    assert any(kind == "progress" and "before training" in str(m) for kind, m in order[first_step:])

    monkeypatch.setattr(baseline, "deferred", lambda job, **kw: False)  # the evaluation before step 1
    events = []
    before = run_training(job_for(tiny_model_dir, corpus, tmp_path / "before"), on_event=events.append)
    evals = [e for e in events if e["type"] == "eval"]
    assert evals[0]["step"] == 0
    later_events = [json.loads(line) for line in (tmp_path / "later" / "events.jsonl").read_text().splitlines()]
    later_evals = [e for e in later_events if e["type"] == "eval"]
    assert [e["step"] for e in later_evals] == [e["step"] for e in evals] == [0, 3]
    assert later_evals[0]["loss"] == pytest.approx(evals[0]["loss"], rel=1e-6)  # the same base, the same sample
    assert later.ppl_before == pytest.approx(before.ppl_before, rel=1e-6)
    # the same training, up to the random state the evaluations leave behind at different moments
    assert later.ppl_after == pytest.approx(before.ppl_after, rel=1e-2)
    samples = [e for e in later_events if e["type"] == "samples" and e["step"] == 0]
    assert samples[0]["samples"] == next(e for e in events if e["type"] == "samples" and e["step"] == 0)["samples"]


def test_full_fine_tuning_and_resumed_runs_evaluate_as_before(tiny_model_dir, corpus, tmp_path):
    from engine.finetune.baseline import deferred

    job = job_for(tiny_model_dir, corpus, tmp_path / "run")
    assert deferred(job, has_val=True, resume=False)
    assert not deferred(job, has_val=True, resume=True)  # a resumed run measured it when it began
    assert not deferred(job, has_val=False, resume=False)
    full = job.with_(train=TrainConfig(method="full", max_steps=3))
    assert not deferred(full, has_val=True, resume=False)  # full training changes the base itself


def test_a_run_stopped_before_its_first_evaluation_has_no_after(tiny_model_dir, corpus, tmp_path):
    """The step-0 loss is the base's: it is the 'before', never the 'after' of a run stopped at step 2."""
    from engine.cancel import CancelToken

    cancel = CancelToken()

    def stop_after_step_2(event):
        if event["type"] == "train" and event["step"] >= 2:
            cancel.cancel()

    result = run_training(job_for(tiny_model_dir, corpus, tmp_path / "run", max_steps=6, eval_steps=6,
                                  save_steps=6), on_event=stop_after_step_2, cancel=cancel)
    assert result.state == "stopped" and result.step < 6
    assert result.ppl_before is not None
    assert result.ppl_after is None and result.best_eval_loss is None
