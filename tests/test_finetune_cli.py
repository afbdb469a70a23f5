"""``hearth-cli finetune`` / ``eval-ppl`` / ``merge-adapter`` / ``finetune-runs``, and the same entry point
under ``torchrun --nproc_per_node=2`` (CPU, gloo) giving the same artefacts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from tiny_model import PARAGRAPH, write_parts



@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = write_parts(tmp_path_factory.mktemp("cli-corpus"), 6)
    return folder


def args_for(model, corpus, out, *extra):
    return ["finetune", str(corpus), "--model", str(model), "--out", str(out), "--max-steps", "2",
            "--eval-steps", "2", "--seq-len", "32", "--batch-size", "2", "--prompt", "Hi", *extra]


def test_finetune_merge_list_and_perplexity(tiny_model_dir, corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args_for(tiny_model_dir, corpus, out, "--json", "--merge", "cli-model")) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["state"] == "finished" and Path(result["output"]).name == "adapter"
    assert "validation loss" in captured.err and "Saved model:" in captured.err
    from engine.paths import models_dir

    assert (models_dir() / "cli-model" / "model.safetensors").is_file()

    assert main(["finetune-runs"]) == 0  # the default runs folder is empty: the run lives in tmp_path
    assert "No fine-tuning runs yet" in capsys.readouterr().out

    text = tmp_path / "eval.txt"
    text.write_text(PARAGRAPH * 5, encoding="utf-8")
    assert main(["eval-ppl", "--model", str(tiny_model_dir), str(text), "--seq-len", "32", "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert main(["eval-ppl", "--adapter", result["output"], str(text), "--seq-len", "32", "--json"]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert base["tokens"] == tuned["tokens"] > 0 and base["perplexity"] != tuned["perplexity"]


def test_bad_input_exits_with_a_message(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(args_for(tiny_model_dir, tmp_path / "empty", tmp_path / "r")) == 1
    assert "No files found" in capsys.readouterr().err
    assert main(["finetune", "--resume", "--out", str(tmp_path / "nothing")]) == 1
    assert "job file" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed")
def test_torchrun_two_processes_make_the_same_artefacts(tiny_model_dir, corpus, tmp_path):
    single = tmp_path / "single"
    assert main(args_for(tiny_model_dir, corpus, single)) == 0
    job = json.loads((single / "job.json").read_text())
    job["out_dir"] = str(tmp_path / "ddp")
    (tmp_path / "job.json").write_text(json.dumps(job))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([torchrun, "--nproc_per_node=2", "-m", "engine.cli", "finetune", "--config",
                           str(tmp_path / "job.json")], cwd=Path(__file__).parent.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    def files(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                      if p.is_file() and "checkpoint" not in str(p))

    ddp = tmp_path / "ddp"
    assert files(ddp) == files(single)
    status = json.loads((ddp / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 2
    steps = [json.loads(line)["step"] for line in (ddp / "events.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "train"]
    assert steps == [1, 2]  # one process writes the log



def test_resume_of_a_run_killed_before_its_first_checkpoint(tiny_model_dir, corpus, tmp_path, capsys):
    """As after `kill -9` while the data was read: a job.json, a status that says running, half a checkpoint;
    the CLI starts it again from step 0 with the same job, says so once, and names each skipped line."""
    import argparse

    from engine.cli.finetune import job_from_args, register

    (corpus_with_bad := tmp_path / "corpus").mkdir()
    for f in corpus.iterdir():
        shutil.copy(f, corpus_with_bad / f.name)
    (corpus_with_bad / "qa.jsonl").write_text(json.dumps({"prompt": "Hi", "completion": "Hello."}) + "\n{oops\n",
                                              encoding="utf-8")
    out = tmp_path / "run"
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    job = job_from_args(parser.parse_args(args_for(tiny_model_dir, corpus_with_bad, out)))
    job.save()
    (out / "status.json").write_text(json.dumps({"state": "running", "pid": 2 ** 22 + 7, "step": 0}))
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # written in part: no trainer_state.json

    assert main(["finetune", "--resume", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("starting it again from step 0 with the same job") == 1
    assert "qa.jsonl: 1 line skipped:\n      line 2: not valid JSON" in err
    assert "Finished at step 2/2" in err
    assert not (out / "checkpoints" / "checkpoint-2").exists() or (out / "checkpoints" / "checkpoint-2" /
                                                                   "trainer_state.json").is_file()
