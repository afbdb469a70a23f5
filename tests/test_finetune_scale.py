"""Fine-tuning at real scale (#14): a big generated corpus streamed (never cut, bounded memory), only
what the run needs tokenized, validation sized to the run, every skipped input named in the CLI,
bf16 LoRA base, a final full evaluation, big bases estimated and refused, the bench command."""

from __future__ import annotations

import json
import os
import random

import pytest

from engine.finetune.config import DataConfig, JobConfig, TrainConfig
from engine.finetune.data import Budget, build_dataset
from engine.finetune.stream import PIECE_BYTES, STREAM_ABOVE
from engine.finetune.validation import plan_validation

WORDS = ("the sea ship wind night harbour sail wave light keeper stone island morning bread salt rope north "
         "south river bridge market lantern story fisher net boat shore cliff gull storm").split()


def paragraphs(rng: random.Random, count: int) -> str:
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))).capitalize() + ".\n"
                   for _ in range(count))


@pytest.fixture(scope="module")
def tok():
    from tiny_model import make_tokenizer

    return make_tokenizer()


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """A folder as users have them: one big text file (several MB), small notes, and five bad inputs."""
    folder = tmp_path_factory.mktemp("messy")
    rng = random.Random(0)
    block = paragraphs(rng, 2000)
    with (folder / "big.txt").open("w", encoding="utf-8") as fh:
        n = 0
        while fh.tell() < 6 * STREAM_ABOVE:
            fh.write(f"Chapter {n}.\n" + block)
            n += 1
        fh.write("THE LAST LINE OF THE BIG FILE\n")
    for i in range(3):
        (folder / f"notes{i}.md").write_text(paragraphs(rng, 40), encoding="utf-8")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "picture.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "pairs.jsonl").write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n{broken\n",
                                        encoding="utf-8")
    os.symlink(folder / "loop.txt", folder / "loop.txt")
    return folder


def reasons(skipped) -> dict[str, str]:
    return {os.path.basename(s.path): s.reason for s in skipped}


def test_every_bad_input_is_skipped_with_its_reason(tok, messy):
    built = build_dataset(DataConfig(paths=(str(messy),), seq_len=64), tok, plan=lambda s: Budget(train=10, val=4))
    why = reasons(built.skipped)
    assert set(why) == {"blob.bin", "picture.txt", "empty.txt", "pairs.jsonl", "loop.txt"}
    assert "binary" in why["blob.bin"]
    assert why["picture.txt"] == "this is a PNG image named .txt, not text"
    assert "empty" in why["empty.txt"]
    assert why["pairs.jsonl"] == "1 line skipped: 2 (not valid JSON)"
    (pairs,) = [s for s in built.skipped if s.path.endswith("pairs.jsonl")]
    assert (pairs.count, pairs.lines, pairs.headline) == (1, (("line 2", "not valid JSON"),), "1 line skipped")
    assert "loops back on itself" in why["loop.txt"]


def test_a_run_tokenizes_only_what_it_needs_spread_over_the_corpus(tok, messy):
    seen = []
    built = build_dataset(DataConfig(paths=(str(messy),), seq_len=64), tok,
                          plan=lambda s: seen.append(s) or Budget(train=40, val=8))
    s = built.stats
    assert seen and seen[0]["train_examples"] > 1000  # the plan saw the whole corpus's estimated size
    assert s["estimated"] and 40 <= s["train_loaded"] < s["train_examples"] / 10
    assert 8 <= s["val_loaded"] < s["val_examples"]
    big = [r for r in built.rows if r.source.endswith("big.txt")]
    assert big and all(r.estimated for r in big)
    assert "~" in built.summary()


def test_a_big_file_is_streamed_whole_in_bounded_memory(tok, tmp_path):
    """Not cut at any size: the file's last line is in the tokens; memory holds int32 tokens, not text."""
    import tracemalloc

    rng = random.Random(1)
    path = tmp_path / "long.txt"
    with path.open("w", encoding="utf-8") as fh:
        while fh.tell() < 3 * STREAM_ABOVE:
            fh.write(paragraphs(rng, 500))
        fh.write("THE VERY END\n")
    size = path.stat().st_size
    tracemalloc.start()
    built = build_dataset(DataConfig(paths=(str(path),), seq_len=64, val_fraction=0), tok)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert built.rows[0].tokens == len(built.train._buffer) > size / 8
    tail = tok.decode(built.train.stream[-40:].tolist())
    assert "THE VERY END" in tail
    # int32 tokens plus one piece of text at a time (lists of ints would be ~9 bytes per byte of text)
    assert peak < 6 * size + 8 * PIECE_BYTES


def test_validation_is_a_fixed_sample_sized_to_the_run():
    train = TrainConfig(max_steps=30, eval_steps=20, batch_size=4)
    plan = plan_validation(train, seq_len=512, steps=30, batch=4, held_out=796)
    assert plan.sample == 18 and plan.evaluations == 2 and plan.share <= 0.15 + 1e-9
    assert plan.describe().startswith("validating on 18 of 796 held-out sequences")
    tiny = plan_validation(TrainConfig(max_steps=4, eval_steps=1), seq_len=512, steps=4, batch=1, held_out=796)
    assert tiny.sample == 16  # never fewer than the minimum, even when that costs more than 15 %
    long = TrainConfig(max_steps=2000, eval_steps=200, batch_size=8)
    big = plan_validation(long, seq_len=512, steps=2000, batch=8, held_out=50_000)
    assert 16 < big.sample < 50_000 and big.share <= 0.15 + 1e-9
    every = plan_validation(TrainConfig(max_steps=30, eval_all=True), seq_len=512, steps=30, batch=4, held_out=796)
    assert every.sample == 796 and "validating on all 796" in every.describe()


def test_estimate_cli_names_every_skipped_input(tiny_model_dir, messy, capsys):
    from engine.cli import main

    code = main(["finetune", str(messy), "--model", str(tiny_model_dir), "--estimate", "--max-steps", "5",
                 "--seq-len", "64", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {os.path.basename(k["path"]) for k in out["skipped"]} == {
        "blob.bin", "picture.txt", "empty.txt", "pairs.jsonl", "loop.txt"}
    assert all(k["reason"] for k in out["skipped"])
    (pairs,) = [k for k in out["skipped"] if k["path"].endswith("pairs.jsonl")]
    assert pairs["skipped"] == 1 and pairs["lines"] == [{"where": "line 2", "reason": "not valid JSON"}]
    assert out["skipped_summary"] == "4 files and 1 line of 1 file skipped"
    assert out["validation_plan"]["sample"] < out["validation_plan"]["held_out"]
    assert out["validation"].startswith("validating on ") and " of ~" in out["validation"]
    assert out["estimate"]["coverage"].startswith("One pass of 5 steps reads 20 of ~")

    assert main(["finetune", str(messy), "--model", str(tiny_model_dir), "--estimate", "--max-steps", "5",
                 "--seq-len", "64"]) == 0
    err = capsys.readouterr().err
    assert "4 files and 1 line of 1 file skipped:" in err
    assert "picture.txt: this is a PNG image named .txt, not text" in err
    assert "pairs.jsonl: 1 line skipped:\n      line 2: not valid JSON" in err
    for name in ("blob.bin", "empty.txt", "loop.txt"):
        assert f"{name}: " in err


def test_bf16_base_with_fp32_adapter_and_a_final_full_evaluation(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from engine.finetune.train import run_training

    rng = random.Random(2)
    for i in range(4):
        (tmp_path / f"part{i}.txt").write_text(paragraphs(rng, 400), encoding="utf-8")
    (tmp_path / "picture.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    job = JobConfig(base_model=str(tiny_model_dir), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(tmp_path),), seq_len=64, val_fraction=0.25),
                    train=TrainConfig(max_steps=3, eval_steps=3, batch_size=8, precision="bf16",
                                      final_full_eval=True, sample_prompts=()))
    events = []
    said = []
    result = run_training(job, on_event=events.append, on_text=said.append)
    assert result.state == "finished" and result.full_eval_loss is not None
    start = next(e for e in events if e["type"] == "start")
    assert start["precision"] == "bf16 base, fp32 adapter"
    assert [os.path.basename(k["path"]) for k in start["skipped"]] == ["picture.txt"]
    assert start["stats"]["val_sample"] < start["stats"]["val_examples"]  # the minimum, 128 × 64 tokens
    assert any(e["type"] == "full_eval" for e in events)
    weights = load_file(os.path.join(result.output, "adapter_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}


def big_config_job(tmp_path, **train) -> JobConfig:
    """A 3 B-class llama known only by its config (counted on the meta device; no weights exist)."""
    folder = tmp_path / "llama-3b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
        "num_attention_heads": 24, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 4096, "tie_word_embeddings": True}))
    return JobConfig(base_model=str(folder), out_dir=str(tmp_path / "run"), data=DataConfig(seq_len=512),
                     train=TrainConfig(batch_size=1, max_steps=10, **train))


def test_a_3b_base_fits_24_gb_with_lora_bf16_and_checkpointing(tmp_path, monkeypatch):
    from engine.finetune import estimate as est

    monkeypatch.setattr(est, "_available_memory", lambda: 24 * 2**30)
    job = big_config_job(tmp_path, precision="bf16", gradient_checkpointing=True)
    total, trainable, cfg = est.count_parameters(job)
    assert 2.8e9 < total < 3.6e9 and trainable < total / 50
    assert est.memory_needed(job, total, trainable, cfg) < 24 * 2**30
    fitted, notice = est.fit_to_memory(job.with_(train=TrainConfig(batch_size=1, max_steps=10, precision="bf16")))
    assert fitted.train.gradient_checkpointing or not notice  # turned on when that is what makes it fit


def test_what_cannot_fit_is_refused_with_both_numbers(tmp_path, monkeypatch):
    from engine.errors import OutOfMemoryError
    from engine.finetune import estimate as est

    monkeypatch.setattr(est, "_available_memory", lambda: 24 * 2**30)
    job = big_config_job(tmp_path, method="full", precision="fp32")
    with pytest.raises(OutOfMemoryError) as caught:
        est.fit_to_memory(job)
    message = str(caught.value)
    assert "24.0 GB is free" in message and "needs about" in message and "GB of memory" in message
    assert "would take about" in message


def test_bench_finetune_reports_both_systems(tiny_model_dir, messy, capsys):
    from engine.cli import main

    assert main(["bench-finetune", str(messy / "big.txt"), "--model", str(tiny_model_dir), "--steps", "3",
                 "--batch-size", "2", "--seq-len", "32", "--eval-sequences", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["baseline"]["precision"] == "fp32" and report["hearth"]["precision"] != "fp32"
    assert report["hearth"]["eval_loss"] != report["baseline"]["eval_loss"]  # bf16 base: not the same numbers
    for name in ("baseline", "hearth"):
        assert report[name]["tokens_per_s"] > 0 and report[name]["eval_loss"] > 0
        assert len(report[name]["step_seconds"]) == 3
    assert report["speedup"] > 0 and abs(report["loss_change"]) < 1


@pytest.mark.integration
def test_a_1b_gguf_base_is_estimated_and_refused_when_it_cannot_fit(tmp_path, monkeypatch):
    """The bench's synthetic 1 B llama GGUF (written here, ~660 MB): counted from its metadata, LoRA on its
    bf16 full-precision model estimated, and refused before loading, with both numbers, on 2 GB free."""
    from engine.errors import OutOfMemoryError
    from engine.finetune import estimate as est
    from engine.gguf.synthetic import one_billion, write_synthetic_gguf

    base = write_synthetic_gguf(tmp_path / "one-b.gguf", one_billion())
    job = JobConfig(base_model=str(base), out_dir=str(tmp_path / "run"), data=DataConfig(seq_len=512),
                    train=TrainConfig(batch_size=4, max_steps=30, precision="bf16"))
    total, trainable, cfg = est.count_parameters(job)
    assert total > 1e9 and 0 < trainable < total / 50
    stats = {"train_examples": 1000, "train_tokens": 512_000, "val_examples": 100}
    estimate = est.estimate_for(job, total, trainable, cfg, stats)
    # bf16 weights and the float32 activations of 4 × 512 tokens: 1.59 GiB per 512 measured (bench/README.md)
    assert 2 * total + 4 * 1.4 * 2**30 < estimate.memory_bytes < 2 * total + 4 * 1.8 * 2**30 + 2**30
    assert "1.04 B weights" in estimate.summary() and estimate.seconds > 0
    monkeypatch.setattr(est, "_available_memory", lambda: 2 * 2**30)
    with pytest.raises(OutOfMemoryError, match="only 2.0 GB is free"):
        est.fit_to_memory(job)


def test_a_file_of_many_broken_lines_names_them_in_bounded_memory(tok, tmp_path):
    from engine.finetune.sources import MAX_KEPT_LINES, skipped_summary

    good = json.dumps({"prompt": "Where do ships sail?", "completion": "Over the sea."})
    lines = [good if n % 3 == 0 else ("{broken" if n % 3 == 1 else json.dumps({"prompt": "no answer"}))
             for n in range(3 * MAX_KEPT_LINES)]
    (tmp_path / "many.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    built = build_dataset(DataConfig(paths=(str(tmp_path),), seq_len=64, val_fraction=0), tok)
    (skipped,) = built.skipped
    assert skipped.count == 2 * MAX_KEPT_LINES and len(skipped.lines) == MAX_KEPT_LINES
    assert skipped.lines[:2] == (("line 2", "not valid JSON"),
                                 ("line 3", "no messages, prompt/completion, input/output or text field"))
    assert skipped.reason.startswith(f"{2 * MAX_KEPT_LINES:,} lines skipped: 2 (not valid JSON), 3 (no messages")
    assert skipped.reason.endswith(f"and {2 * MAX_KEPT_LINES - 12:,} more")
    assert skipped_summary(built.skipped) == f"{2 * MAX_KEPT_LINES:,} lines of 1 file skipped"


def test_the_estimate_is_of_the_job_start_runs(tmp_path, monkeypatch):
    """Where only gradient checkpointing makes a job fit, Start turns it on: the estimate counts it too and
    says so; where even that is not enough, both refuse with the same memory figure."""
    from engine.errors import OutOfMemoryError
    from engine.finetune import estimate as est

    job = big_config_job(tmp_path, precision="bf16")
    job = job.with_(data=DataConfig(seq_len=2048), train=TrainConfig(batch_size=4, max_steps=10, precision="bf16"))
    total, trainable, cfg = est.count_parameters(job)
    plain = est.memory_needed(job, total, trainable, cfg)
    checkpointed_job = job.with_(train=TrainConfig(batch_size=4, max_steps=10, precision="bf16",
                                                   gradient_checkpointing=True))
    checkpointed = est.memory_needed(checkpointed_job, total, trainable, cfg)
    assert checkpointed < plain
    stats = {"train_examples": 1000, "train_tokens": 2_048_000, "val_examples": 100}

    monkeypatch.setattr(est, "_available_memory", lambda: (plain + checkpointed) // 2)
    estimate = est.estimate(job, stats)
    assert estimate.fits and estimate.checkpointing and estimate.memory_bytes == checkpointed
    assert "gradient checkpointing" in estimate.summary() and "Gradient checkpointing will be on" in estimate.notes[0]
    fitted, notice = est.fit_to_memory(job)
    assert fitted.train.gradient_checkpointing and notice

    monkeypatch.setattr(est, "_available_memory", lambda: checkpointed // 2)
    estimate = est.estimate(job, stats)
    assert not estimate.fits and "even with gradient checkpointing" in estimate.refusal()
    with pytest.raises(OutOfMemoryError) as caught:
        est.fit_to_memory(job)
    assert est._gb(checkpointed) in str(caught.value) and est._gb(checkpointed) in estimate.refusal()


def test_a_split_read_whole_is_counted_even_when_the_other_is_estimated(tok, messy):
    built = build_dataset(DataConfig(paths=(str(messy),), seq_len=64), tok, plan=lambda s: Budget(train=None, val=4))
    s = built.stats
    assert not s["train_estimated"] and s["val_estimated"] and s["estimated"]
    assert s["train_examples"] == s["train_loaded"] == len(built.train)  # counted, not the size's estimate
    assert s["train_tokens"] == sum(r.tokens for r in built.rows if r.split == "train")
    assert s["val_loaded"] < s["val_examples"]
    summary = built.summary()
    assert summary.startswith(f"{s['train_examples']:,} training and ~{s['val_examples']:,} validation")


def test_the_time_estimate_is_for_the_threads_training_uses(tiny_model_dir, monkeypatch):
    from engine.finetune import estimate as est
    from engine.finetune import tasks

    asked = []
    monkeypatch.setattr(est, "matmul_flops", lambda dtype="float32", threads=None: asked.append(threads) or 1e11)
    job = JobConfig(base_model=str(tiny_model_dir), out_dir="/tmp/unused", data=DataConfig(seq_len=64),
                    train=TrainConfig(max_steps=10, precision="fp32"))
    stats = {"train_examples": 100, "train_tokens": 6400, "val_examples": 10}
    est.estimate(job, stats, threads=1)
    tasks.estimate_task(None, job=job, stats=stats)
    assert asked == [1, tasks.gui_threads() or os.cpu_count()]  # the CLI's --threads, the window's (every core)
