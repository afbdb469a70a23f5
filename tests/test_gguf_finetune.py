"""Fine-tuning on a GGUF base: trained as its full-precision model, the adapter records the .gguf, merging works."""

from __future__ import annotations

import pytest

from gguf_files import tiny_gguf

PARAGRAPH = "The sea is wide and the waves are high. Ships sail over the sea at night.\n"


def test_lora_on_a_gguf_base_trains_counts_and_merges(tmp_path):
    import torch

    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.estimate import count_parameters
    from engine.finetune.merge import adapter_base, load_merged
    from engine.finetune.train import run_training

    base = tiny_gguf(tmp_path, quant="Q8_0")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"part{i}.txt").write_text(f"Part {i}. " + PARAGRAPH * 6, encoding="utf-8")
    job = JobConfig(base_model=str(base), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(corpus),), seq_len=32),
                    train=TrainConfig(max_steps=2, eval_steps=2, save_steps=2, batch_size=2, learning_rate=5e-3,
                                      sample_prompts=(), sample_max_tokens=3))
    total, trainable, config = count_parameters(job)
    assert config["model_type"] == "llama" and 0 < trainable < total
    result = run_training(job)
    assert result.state == "finished"
    assert adapter_base(result.output) == str(base)
    model, tokenizer = load_merged(result.output)
    ids = torch.tensor([tokenizer("The sea")["input_ids"]])
    assert model(ids).logits.shape[-1] == 320


@pytest.mark.usefixtures("one_torch_thread")
def test_tokenizer_of_a_gguf_base(tmp_path):
    from engine.finetune.tasks import load_tokenizer
    from engine.session import Session

    base = tiny_gguf(tmp_path, quant="Q4_0")
    tokenizer, context = load_tokenizer(Session(), str(base))
    assert context == 512 and tokenizer("hello")["input_ids"]
