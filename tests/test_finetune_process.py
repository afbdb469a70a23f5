"""engine/finetune/process.py: training in a child process behind the scheduler's Handle."""

from __future__ import annotations

import pytest

from engine.finetune.config import DataConfig, JobConfig, TrainConfig
from engine.finetune.errors import TrainingError
from engine.finetune.process import start_training_process


class Recorder:
    def __init__(self):
        self.kinds = []

    def __getattr__(self, name):
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args: self.kinds.append(name[3:])


def test_a_child_that_fails_ends_the_handle_with_its_error(tmp_path):
    (tmp_path / "data.txt").write_text("The sea is wide. " * 50, encoding="utf-8")
    job = JobConfig(base_model=str(tmp_path / "no-such-model"), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(tmp_path / "data.txt"),), seq_len=32),
                    train=TrainConfig(max_steps=2))
    recorder = Recorder()
    handle = start_training_process(job, listener=recorder)
    with pytest.raises(TrainingError) as info:
        handle.result(timeout=180)
    assert info.value.error_type == "ModelLoadError" and "no-such-model" in str(info.value)
    assert recorder.kinds[0] == "started" and recorder.kinds[-2:] == ["failed", "ended"]
    assert [e.kind for e in handle.events(timeout=1)][-2:] == ["failed", "ended"]
    assert handle.process.poll() is not None  # the child has exited
