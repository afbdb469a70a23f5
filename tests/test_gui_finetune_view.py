"""The fine-tuning view and the Compare view with pytest-qt, on the tiny model and a fake window."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QObject, Signal

from engine.config import SamplingConfig

PARAGRAPH = "The sea is wide and the waves are high. Ships sail over the sea at night.\n"


class _Panel:
    def config(self) -> SamplingConfig:
        return SamplingConfig(temperature=0.0, max_new_tokens=6)


class _Picker:
    def __init__(self) -> None:
        self.refreshed = 0

    def refresh(self) -> None:
        self.refreshed += 1


class FakeWindow(QObject):
    """What a view needs of the main window."""

    model_changed = Signal(object)

    def __init__(self, client, info) -> None:
        super().__init__()
        self.client, self.model_info, self.sampling_panel = client, info, _Panel()
        self.model_picker = _Picker()
        self.errors: list[str] = []
        self.notices: list[str] = []
        self.views: dict = {}
        self.shown = None

    def show_error(self, text: str) -> None:
        self.errors.append(text)

    def show_notice(self, text: str) -> None:
        self.notices.append(text)

    def show_view(self, title: str) -> None:
        self.shown = title


@pytest.fixture
def window(qtbot, tiny_model_dir):
    from engine.config import LoadConfig
    from engine.tasks import load_task
    from gui.worker import EngineClient

    client = EngineClient()
    task = client.submit(load_task, config=LoadConfig(path=str(tiny_model_dir), device="cpu"))
    with qtbot.waitSignal(task.done, timeout=60_000):  # signals come queued: not missed yet
        pass
    win = FakeWindow(client, {"path": str(tiny_model_dir), "name": "tiny", "context_length": 256})
    yield win
    for view in win.views.values():
        view.on_window_closing()
    client.shutdown()


@pytest.fixture
def corpus(tmp_path):
    for i in range(4):
        (tmp_path / f"part{i}.txt").write_text(f"Part {i}. " + PARAGRAPH * 6, encoding="utf-8")
    (tmp_path / "qa.jsonl").write_text(json.dumps({"prompt": "Where?", "completion": "At sea."}) + "\n{oops\n")
    (tmp_path / "image.bin").write_bytes(bytes(range(256)) * 4)
    return tmp_path


def make_view(qtbot, window, child_process=False):
    """The view; training in a child process (as in the app) or on a worker thread (as when packaged)."""
    from gui.finetune.view import FinetuneView

    view = FinetuneView(window)
    view.use_child_process = child_process
    window.views["Fine-tune"] = view
    qtbot.addWidget(view)
    view.resize(1100, 760)
    view.show()
    return view


def wait_trained(qtbot, view, timeout=120_000):
    """Training has ended and the runs list (read on the files thread) shows its outcome."""
    qtbot.waitUntil(lambda: view.train_task is None and view.runs_task is None, timeout=timeout)


def wait_preview(qtbot, view):
    # The suggested settings may change the sequence length, which previews again: wait for the last one.
    qtbot.waitUntil(lambda: view.stats is not None and view.preview_task is None
                    and not view.preview_timer.isActive(), timeout=60_000)
    qtbot.waitUntil(lambda: view.estimate_label.text().startswith("Estimate"), timeout=60_000)


def short_run(view, steps=4):
    form = view.form
    form.seq_len.setValue(32)
    form.max_steps.setValue(steps)
    form.eval_steps.setValue(2)
    form.save_steps.setValue(2)
    form.batch.setValue(2)
    form.lr.setValue(0.005)
    form.prompts.setPlainText("Where do ships sail?")


def test_preview_lists_examples_skips_and_totals(qtbot, window, corpus):
    view = make_view(qtbot, window)
    assert view.form.seq_len.maximum() == 256  # capped to the model's context
    view.files.add_paths([str(corpus)])
    wait_preview(qtbot, view)
    model = view.preview.model
    sources = {model.data(model.index(r, 0)) for r in range(model.rowCount())}
    assert "qa.jsonl:1" in sources and any(s.startswith("part") for s in sources)
    skipped = [view.preview.skipped.item(i).text() for i in range(view.preview.skipped.count())]
    assert any("image.bin" in s and "binary" in s for s in skipped)
    header = next(i for i, s in enumerate(skipped) if "qa.jsonl" in s)
    assert skipped[header].endswith("line skipped:") or skipped[header].endswith("lines skipped:")
    assert skipped[header + 1].strip() == "line 2: not valid JSON"  # each line named, with its reason
    assert "line" in view.preview.skipped_label.text() and "1 file" in view.preview.skipped_label.text()
    assert "training and" in view.preview.totals.text() and "weights trained" in view.estimate_label.text()
    assert view.form.max_steps.value() > 0  # settings suggested from the data size


def test_empty_folder_shows_a_clear_message(qtbot, window, tmp_path):
    view = make_view(qtbot, window)
    (tmp_path / "empty").mkdir()
    view.files.add_paths([str(tmp_path / "empty")])
    qtbot.waitUntil(lambda: "No files found" in view.preview.totals.text(), timeout=30_000)
    view.start()  # starting anyway: the training task itself refuses, with the same message
    wait_trained(qtbot, view, 60_000)
    assert "No files found" in window.errors[-1] and view.start_button.isEnabled()


def test_train_watch_save_and_compare(qtbot, window, corpus, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from engine.paths import models_dir
    from gui.finetune.compare_view import CompareView

    view = make_view(qtbot, window, child_process=True)
    view.files.add_paths([str(corpus)])
    wait_preview(qtbot, view)
    short_run(view)
    view.start()
    assert view.stop_button.isEnabled() and not view.start_button.isEnabled()
    wait_trained(qtbot, view, 180_000)
    assert window.errors == []
    assert view.status.text().startswith("Finished at step 4/4")
    assert view.plot.train_steps == [1, 2, 3, 4] and view.plot.val_steps == [0, 2, 4]
    assert "before" in view.result_label.text() and "step 4" in view.samples.toPlainText()
    run = view.selected_run()
    assert run is not None and run.state == "finished" and view.save_button.isEnabled()

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("my-tuned", True))
    view.save_as_model()
    qtbot.waitUntil(lambda: view.export_task is None, timeout=60_000)
    assert (models_dir() / "my-tuned" / "config.json").is_file() and window.model_picker.refreshed == 1

    compare = CompareView(window)
    window.views["Compare"] = compare
    qtbot.addWidget(compare)
    view.open_compare()
    assert window.shown == "Compare"
    qtbot.waitUntil(lambda: compare.tuned.currentData() == run.output, timeout=30_000)  # the list is read again
    compare.prompt.setPlainText("Where do ships sail?")
    compare.send()
    qtbot.waitUntil(lambda: compare.base_task is None and compare.tuned_task is None, timeout=60_000)
    assert compare.base_out.toPlainText() and compare.tuned_out.toPlainText()
    assert "[" not in compare.tuned_out.toPlainText()[:1]  # not an error message
    labels = [compare.tuned.itemText(i) for i in range(compare.tuned.count())]
    assert any("my-tuned (saved model)" in label for label in labels)


def test_stop_then_resume_from_the_runs_list(qtbot, window, corpus):
    view = make_view(qtbot, window, child_process=True)
    view.files.add_paths([str(corpus)])
    wait_preview(qtbot, view)
    short_run(view, steps=40)
    view.start()
    qtbot.waitUntil(lambda: len(view.plot.train_steps) >= 1, timeout=120_000)
    window.model_changed.emit({"path": "/elsewhere/other-model", "name": "other", "context_length": 256})
    assert any("Training goes on with its own copy" in n for n in window.notices)
    assert "other" in view.base_label.text()  # the next run uses the new model
    window.model_changed.emit(window.model_info)
    view.stop()
    wait_trained(qtbot, view)
    assert view.status.text().startswith("Stopped at step")
    run = view.selected_run()
    assert run.state == "stopped" and run.resumable and view.resume_button.isEnabled()
    stopped_at = run.step
    view.resume()  # reads the run's events first, then starts
    qtbot.waitUntil(lambda: view.plot.train_steps and view.plot.train_steps[-1] > stopped_at + 1, timeout=120_000)
    view.stop()
    wait_trained(qtbot, view)
    assert view.selected_run().step > stopped_at
    assert window.errors == []


def test_export_job_writes_config_and_commands(qtbot, window, corpus, tmp_path, monkeypatch):
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    view = make_view(qtbot, window)
    view.files.add_paths([str(corpus)])
    out = tmp_path / "export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    monkeypatch.setattr(QMessageBox, "open", lambda self: None)
    view.export_run_script()
    job = json.loads((out / "job.json").read_text())
    assert job["data"]["paths"] == [str(corpus)] and job["base_model"] == window.model_info["path"]
    script = (out / "run.sh").read_text()
    assert "torchrun --nproc_per_node=2 -m engine.cli finetune --config job.json" in script
    assert "accelerate launch" in script
    assert QGuiApplication.clipboard().text().startswith("torchrun")


def test_closing_the_window_mid_training_keeps_a_resumable_run(qtbot, window, corpus):
    from engine.finetune.runs import list_runs

    view = make_view(qtbot, window)
    view.files.add_paths([str(corpus)])
    wait_preview(qtbot, view)
    short_run(view, steps=40)
    view.start()
    qtbot.waitUntil(lambda: len(view.plot.train_steps) >= 1, timeout=120_000)
    view.on_window_closing()  # what MainWindow.closeEvent calls
    (run,) = list_runs()
    assert run.state == "stopped" and run.resumable and 0 < run.step < 40


def test_rising_validation_loss_is_pointed_out(qtbot, window):
    view = make_view(qtbot, window)
    for step, loss in ((0, 3.0), (5, 2.5), (10, 2.6)):
        view._on_event({"type": "eval", "step": step, "loss": loss})
    assert not window.notices
    view._on_event({"type": "eval", "step": 15, "loss": 2.7})
    assert "memorising" in window.notices[-1]
    assert view.plot.val_steps == [0, 5, 10, 15]


@pytest.fixture
def big_corpus(tmp_path):
    """A big text file (streamed, estimated from its size) among the bad inputs of #14."""
    import os
    import random

    from engine.finetune.stream import STREAM_ABOVE

    rng = random.Random(0)
    words = PARAGRAPH.split()
    block = "".join(" ".join(rng.choice(words) for _ in range(12)) + ".\n" for _ in range(3000))
    with (tmp_path / "big.txt").open("w", encoding="utf-8") as fh:
        while fh.tell() < 3 * STREAM_ABOVE:
            fh.write(block)
    for i in range(3):
        (tmp_path / f"part{i}.txt").write_text(f"Part {i}. " + PARAGRAPH * 6, encoding="utf-8")
    (tmp_path / "picture.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "empty.txt").write_bytes(b"")
    os.symlink(tmp_path / "loop.txt", tmp_path / "loop.txt")
    return tmp_path


def test_big_corpus_preview_says_what_a_run_reads_and_validates_on(qtbot, window, big_corpus):
    view = make_view(qtbot, window)
    view.files.add_paths([str(big_corpus)])
    wait_preview(qtbot, view)
    assert "~" in view.preview.totals.text() and view.stats["estimated"]
    model = view.preview.model
    big = next(r for r in range(model.rowCount()) if model.data(model.index(r, 0)) == "big.txt")
    assert model.data(model.index(big, 3)).startswith("~")
    skipped = [view.preview.skipped.item(i).text() for i in range(view.preview.skipped.count())]
    assert any("picture.txt: this is a PNG image named .txt" in s for s in skipped)
    assert any("empty.txt" in s for s in skipped) and any("loop.txt" in s and "loops" in s for s in skipped)
    view.form.max_steps.setValue(10)
    qtbot.waitUntil(lambda: "One pass of 10 steps reads" in view.estimate_label.text(), timeout=60_000)
    assert "Validating on " in view.estimate_label.text() and " held-out sequences" in view.estimate_label.text()


def test_a_job_that_cannot_fit_is_refused_before_start(qtbot, window, corpus, monkeypatch):
    from engine.finetune import estimate as est

    monkeypatch.setattr(est, "_available_memory", lambda: 64 * 2**20)  # 64 MB free
    view = make_view(qtbot, window)
    view.files.add_paths([str(corpus)])
    wait_preview(qtbot, view)
    qtbot.waitUntil(lambda: not view.start_button.isEnabled(), timeout=30_000)
    assert "64 MB is free" in view.estimate_label.text() and "needs about" in view.estimate_label.text()
    view.start()
    assert "64 MB is free" in window.errors[-1] and view.train_task is None


def test_resume_a_run_killed_before_its_first_checkpoint(qtbot, window, corpus):
    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.runlog import RunLog
    from engine.finetune.runs import new_run_dir

    folder = new_run_dir("killed")
    job = JobConfig(base_model=window.model_info["path"], out_dir=str(folder),
                    data=DataConfig(paths=(str(corpus),), seq_len=32),
                    train=TrainConfig(max_steps=2, eval_steps=2, batch_size=2, sample_prompts=()))
    job.save()
    RunLog(folder).start(method="lora", max_steps=2, step=0, message="")  # its pid is this process: not training
    view = make_view(qtbot, window, child_process=True)
    qtbot.waitUntil(lambda: view.runs.count() == 2, timeout=30_000)
    view.runs.setCurrentIndex(1)
    assert view.selected_run().state == "interrupted" and view.resume_button.isEnabled()
    view.resume()  # reads the run's events first, then starts
    qtbot.waitUntil(lambda: view.status.text().startswith(("Finished", "Training failed")), timeout=180_000)
    assert view.status.text().startswith("Finished at step 2/2"), window.errors
    assert any("starting it again from step 0 with the same job" in n for n in window.notices)
    assert window.errors == []


def test_the_status_names_the_first_step_while_it_runs():
    from types import SimpleNamespace

    from gui.finetune.view import first_step_text

    start = {"type": "start", "step": 0, "max_steps": 30}
    assert first_step_text(start) == "Step 1/30 under way…"
    estimate = SimpleNamespace(steps=30, seconds=300.0)
    assert first_step_text(start, estimate) == "Step 1/30 under way (about 0:10 a step, as estimated)…"
    resumed = {"type": "start", "step": 12, "max_steps": 40}
    assert first_step_text(resumed, estimate) == "Step 13/40 under way…"  # the estimate was of another job
