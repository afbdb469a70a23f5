"""LoRA on the real default model: a few steps on a small text lower the validation loss, and the adapter
loads with plain peft."""

from __future__ import annotations

import pytest

from engine.finetune.config import DataConfig, JobConfig, TrainConfig
from engine.finetune.train import run_training

TEXT = ("The lighthouse keeper of Vell Island lit the lamp at dusk and wrote the weather in a blue book. "
        "Every night he counted the ships that passed the northern rocks.\n")


@pytest.mark.integration
def test_lora_on_the_default_model_lowers_validation_loss(default_lm, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for i in range(3):
        (tmp_path / f"log{i}.txt").write_text(TEXT * 6, encoding="utf-8")
    job = JobConfig(base_model=str(default_lm.path), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(tmp_path),), seq_len=64, val_fraction=0.3),
                    train=TrainConfig(max_steps=4, eval_steps=4, save_steps=4, batch_size=2, learning_rate=1e-3,
                                      sample_prompts=("Who lit the lamp?",), sample_max_tokens=8))
    result = run_training(job, threads=1)
    assert result.state == "finished" and result.ppl_after < result.ppl_before
    from engine.gguf.full_model import build_full_model

    # the default model is its GGUF: the base trained on is its full-precision model
    base = build_full_model(default_lm.path) if default_lm.path.suffix == ".gguf" else \
        AutoModelForCausalLM.from_pretrained(default_lm.path)
    tuned = PeftModel.from_pretrained(base, result.output)
    assert any("lora_A" in name for name, _ in tuned.named_parameters())
