"""The fine-tuning studio: drop files, check the dataset, train, watch the losses, keep the result.

Training runs in a child process (engine/finetune/process.py) or, in a packaged app, on the
scheduler's "training" thread, so the window stays responsive and chat keeps working; the
dataset preview, the estimate, the run list and each run's event file are read on its "files"
thread. Every task's signals (gui/worker.py) are its own: the view connects to each one.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from engine.errors import HearthError
from engine.finetune import runs as ft_runs
from engine.finetune import tasks as ft_tasks
from engine.finetune.config import JobConfig
from gui.finetune.dataset_preview import DatasetPreview, FileDropList
from gui.finetune.form import FinetuneForm
from gui.colors import RED, accent, css
from gui.loss_plot import LossPlot
from engine.finetune.process import can_use_child_process, start_training_process
from gui.worker import FILES, TRAINING, connect


class FinetuneView(QWidget):
    # Training runs in a child process when it can (the window never waits for the Trainer's
    # interpreter lock); a packaged app trains on the scheduler's training thread instead.
    use_child_process = can_use_child_process()

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        # Each task's TaskSignals (gui/worker.py) while it runs, else None.
        self.train_task = self.preview_task = self.estimate_task = self.export_task = None
        self.runs_task = self.history_task = None
        self.running_job: JobConfig | None = None
        self.stats: dict | None = None
        self.user_edited = False
        self.base_model: str | None = None
        self._build()
        self._connect()
        self._on_model_changed(getattr(window, "model_info", None))
        self.refresh_runs(announce=True)

    # -- construction -------------------------------------------------------------
    def _build(self) -> None:
        self.base_label = QLabel()
        self.runs = QComboBox()
        self.runs.setMinimumContentsLength(30)
        self.runs.setToolTip("Earlier runs: select one to see its curves; Resume continues an interrupted one")
        self.resume_button = QPushButton("Resume")
        top = QHBoxLayout()
        top.addWidget(self.base_label, 1)
        top.addWidget(QLabel("Runs:"))
        top.addWidget(self.runs)
        top.addWidget(self.resume_button)

        self.files = FileDropList()
        self.preview = DatasetPreview()
        data_tab = QWidget()
        data_layout = QVBoxLayout(data_tab)
        data_split = QSplitter(Qt.Orientation.Vertical)
        data_split.addWidget(self.files)
        data_split.addWidget(self.preview)
        data_split.setSizes([140, 400])
        data_layout.addWidget(data_split)
        self.form = FinetuneForm()
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(data_tab, "Data")
        self.tabs.addTab(scroll, "Settings")

        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.export_button = QPushButton("Export job…")
        self.save_button = QPushButton("Save as model…")
        self.compare_button = QPushButton("Compare…")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.export_button, self.save_button, self.compare_button):
            buttons.addWidget(b)
        self.estimate_label = QLabel("Add files to see an estimate.")
        self.estimate_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("Idle.")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        self.samples = QPlainTextEdit()
        self.samples.setReadOnly(True)
        self.samples.setPlaceholderText("Answers to the sample prompts appear here at each evaluation.")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        right = QWidget()
        column = QVBoxLayout(right)
        column.addLayout(buttons)
        column.addWidget(self.estimate_label)
        column.addWidget(self.progress)
        column.addWidget(self.status)
        column.addWidget(self.result_label)
        watch = QSplitter(Qt.Orientation.Vertical)
        watch.addWidget(self.plot)
        watch.addWidget(self.samples)
        watch.setSizes([360, 140])
        column.addWidget(watch, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(right)
        split.setSizes([460, 560])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.preview_timer = QTimer(self, singleShot=True, interval=400)
        self.estimate_timer = QTimer(self, singleShot=True, interval=400)
        self._set_running(False)

    def _connect(self) -> None:
        self.files.changed.connect(self.preview_timer.start)
        self.form.changed.connect(self._on_form_changed)
        self.preview_timer.timeout.connect(self.refresh_preview)
        self.estimate_timer.timeout.connect(self.refresh_estimate)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.export_button.clicked.connect(self.export_run_script)
        self.save_button.clicked.connect(self.save_as_model)
        self.compare_button.clicked.connect(self.open_compare)
        self.runs.currentIndexChanged.connect(self._on_run_selected)
        if hasattr(self.window, "model_changed"):
            self.window.model_changed.connect(self._on_model_changed)

    def _submit(self, fn, device: str = FILES, **kwargs):
        """Submit to the window's scheduler: training on its own thread, the rest on the files thread."""
        return self.window.client.submit(fn, device=device, **kwargs)

    # -- state --------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and self.base_model is not None)
        self.stop_button.setEnabled(running)
        self.files.setEnabled(True)
        self.runs.setEnabled(not running)
        self._update_run_buttons()

    def _update_run_buttons(self) -> None:
        info = self.selected_run()
        idle = self.train_task is None
        self.resume_button.setEnabled(idle and info is not None and info.resumable)
        self.save_button.setEnabled(idle and info is not None and info.output is not None)
        self.compare_button.setEnabled(info is not None and info.output is not None)

    def _on_model_changed(self, info) -> None:
        self.base_model = info.get("path") if info else None
        name = info.get("name") if info else None
        self.base_label.setText(f"Base model: <b>{name}</b>" if name else "Base model: load a model first")
        if info and info.get("remote"):  # a model on a server: there are no weights here to train
            self.base_model = None
            self.base_label.setText(f"Base model: <b>{name}</b> runs on the server {info.get('host', '')}; "
                                    "fine-tuning needs a model whose weights are on this computer. Choose a local "
                                    "model in the Model box.")
        if info and info.get("context_length"):
            self.form.set_context_limit(int(info["context_length"]))
        if self.train_task is not None and self.running_job and self.base_model != self.running_job.base_model:
            self._notice(f"Training goes on with its own copy of {Path(self.running_job.base_model).name}; "
                         f"the new model is for chat and the next run.")
        self._set_running(self.train_task is not None)
        if self.files.paths():
            self.preview_timer.start()

    def _on_form_changed(self) -> None:
        self.user_edited = True
        data_keys = (self.form.seq_len.value(), self.form.val_fraction.value(), self.form.dedupe.isChecked(),
                     self.form.random_offset.isChecked())
        if getattr(self, "_data_keys", None) != data_keys:
            self._data_keys = data_keys
            if self.files.paths():
                self.preview_timer.start()
                return
        self.estimate_timer.start()

    # -- dataset preview and estimate ----------------------------------------------
    def refresh_preview(self) -> None:
        paths = self.files.paths()
        if not paths:
            self.preview.show_message("No dataset yet.")
            self.stats = None
            return
        if self.base_model is None:
            self.preview.show_message("Load a model first: its tokenizer counts the tokens.")
            return
        if self.preview_task is not None:
            self.preview_task.abandon()  # the files or settings changed since
            self.preview_task = None
        self.preview.show_message("Reading the files…")
        try:
            data = self.form.data_config(paths)
        except HearthError as exc:
            self.preview.show_message(str(exc))
            return
        self.preview_task = connect(self._submit(ft_tasks.preview_task, label="dataset preview", data=data,
                                                 base_model=self.base_model),
                                    done=self._on_preview, failed=self._on_preview_failed,
                                    cancelled=lambda _: self._clear("preview_task"))

    def refresh_estimate(self) -> None:
        if self.stats is None or self.base_model is None:
            return
        try:
            job = self.make_job()
        except HearthError as exc:
            self.estimate_label.setText(f"<span style='color:{self._error_css()}'>{exc}</span>")
            return
        if self.estimate_task is not None:
            self.estimate_task.abandon()
        self.estimate_task = connect(self._submit(ft_tasks.estimate_task, label="training estimate", job=job,
                                                  stats=self.stats),
                                     done=self._on_estimate, failed=self._on_estimate_failed,
                                     cancelled=lambda _: self._clear("estimate_task"))

    def make_job(self, out_dir: str | None = None) -> JobConfig:
        if self.base_model is None:
            raise HearthError("Load a model first: it is the base that is fine-tuned.")
        out = out_dir or str(ft_runs.new_run_dir(Path(self.base_model).name))
        return JobConfig(base_model=self.base_model, out_dir=out, data=self.form.data_config(self.files.paths()),
                         train=self.form.train_config())

    # -- training -----------------------------------------------------------------
    def start(self) -> None:
        if not self.files.paths():
            self._error("Add files or folders to train on first (drop them on the Data tab).")
            return
        estimate = getattr(self, "last_estimate", None)
        if estimate is not None and not estimate.fits:
            self._error(estimate.refusal())
            return
        try:
            job = self.make_job()
        except HearthError as exc:
            self._error(str(exc))
            return
        self.plot.clear_data()
        self.samples.clear()
        self.result_label.clear()
        self._submit_training(job, resume=False)

    def resume(self) -> None:
        info = self.selected_run()
        if info is None or not info.resumable:
            return
        try:
            job = JobConfig.load(info.folder)
        except HearthError as exc:
            self._error(str(exc))
            return
        self.resume_button.setEnabled(False)
        self._load_history(info.folder, then=lambda events: (self.plot.load_events(events),
                                                              self._submit_training(job, resume=True)))

    def _submit_training(self, job: JobConfig, resume: bool) -> None:
        self.running_job = job
        client = self.window.client
        if self.use_child_process:
            task = client.start_elsewhere(
                lambda listener: start_training_process(job, resume=resume, threads=ft_tasks.gui_threads(),
                                                        listener=listener), label="training")
        else:
            task = client.submit(ft_tasks.train_task, label="training", device=TRAINING, job=job, resume=resume,
                                 threads=ft_tasks.gui_threads())
        self.train_task = connect(task, progress=self._on_progress, chunk=self._on_text,
                                  event=lambda name, payload: self._on_event(payload), done=self._on_trained,
                                  failed=self._on_train_failed, cancelled=self._on_train_cancelled)
        self.progress.setValue(0)
        self.status.setText(("Resuming " if resume else "Starting ") + f"{job.name}…")
        self._set_running(True)

    def stop(self) -> None:
        if self.train_task is not None:
            self.train_task.cancel()  # a child process saves a checkpoint and ends after this step
            self.status.setText("Stopping after this step; the best and the last checkpoints are kept…")
            self.stop_button.setEnabled(False)

    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind in ("train", "eval"):
            self.plot.add_event(event)
            if kind == "eval" and _rising(self.plot.val_losses):
                self._notice("Validation loss has risen at the last evaluations while training goes on: the "
                             "model may be memorising its data. Early stopping keeps the best checkpoint.")
        elif kind == "samples":
            lines = [f"— step {event['step']} —"] + [f"{p}\n  → {a}" for p, a in event["samples"]]
            self.samples.appendPlainText("\n".join(lines))
        elif kind == "start":
            stats = event.get("stats", {})
            for line in (stats.get("validation", "").capitalize(), stats.get("coverage", ""),
                         event.get("precision", "") and f"Precision: {event['precision']}."):
                if line:
                    self._notice(line)
            for notice in event.get("notices", []):
                self._notice(notice)
            self.status.setText(first_step_text(event, getattr(self, "last_estimate", None)))
        elif kind == "notice" and event.get("text"):
            self._notice(event["text"])
        elif kind == "full_eval" and event.get("perplexity"):
            self._notice(f"Validation perplexity on all held-out data after training: {event['perplexity']:.2f}")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(message)

    def _on_text(self, text: str) -> None:
        if text.strip():
            self._notice(text.strip())

    # -- results ------------------------------------------------------------------
    def _clear(self, name: str) -> None:
        setattr(self, name, None)

    def _on_trained(self, result) -> None:
        self._training_ended()
        self.progress.setValue(1000 if result.state == "finished" else self.progress.value())
        words = {"finished": "Finished", "early_stopped": "Stopped early (validation loss stopped improving)",
                 "stopped": "Stopped"}
        # the run's name and result folder: a whole path does not wrap and was cut off; the tooltip has it
        where = Path(result.output)
        self.status.setText(f"{words.get(result.state, result.state)} at step {result.step}/{result.max_steps}. "
                            f"Saved in {where.parent.name}/{where.name}")
        self.status.setToolTip(str(where))
        text = _perplexity_text(result.ppl_before, result.ppl_after)
        if getattr(result, "full_ppl", None):
            text += f" · on all held-out data: {result.full_ppl:.2f}"
        self.result_label.setText(text)
        self.refresh_runs(select=result.run_dir)

    def _on_preview(self, result) -> None:
        self.preview_task = None
        self.preview.show_dataset(result)
        self.stats = result.stats
        self._suggest()
        self.refresh_estimate()

    def _error_css(self) -> str:
        return css(accent(self.palette(), RED))  # readable on a light or a dark theme (gui/colors.py)

    def _on_estimate(self, result) -> None:
        self.estimate_task = None
        self.last_estimate = result
        lines = "".join(f"<br>{line}" for line in (result.validation.capitalize(), result.coverage,
                                                    *getattr(result, "notes", ())) if line)
        warnings = "".join(f"<br><span style='color:{self._error_css()}'>{w}</span>" for w in result.warnings)
        self.estimate_label.setText("Estimate: " + result.summary() + lines + warnings)
        if not self.running_job_active():
            self.start_button.setEnabled(result.fits)
            self.start_button.setToolTip("" if result.fits else result.refusal())

    def running_job_active(self) -> bool:
        return self.train_task is not None

    def _on_exported(self, result) -> None:
        self.export_task = None
        picker = getattr(self.window, "model_picker", None)
        if picker is not None:
            picker.refresh()
        self._notice(f"Saved as model {Path(result).name}: choose it in the Model box, or in Compare.")
        self.status.setText(f"Saved {result}")
        self._update_run_buttons()

    def _suggest(self) -> None:
        if self.user_edited or not self.stats:
            return
        from engine.finetune.defaults import suggest

        try:
            train = self.form.train_config()
        except HearthError:
            return
        self.form.apply(suggest(train, self.stats, gpu=bool(self.stats.get("gpu"))))
        self.user_edited = False

    def _on_train_failed(self, message: str, error_type: str) -> None:
        self._training_ended()
        self.status.setText("Training failed.")
        self._error(message)
        self.refresh_runs()

    def _on_preview_failed(self, message: str, error_type: str) -> None:
        self.preview_task = None
        self.stats = None
        self.preview.show_message(message)
        self.estimate_label.setText("")

    def _on_estimate_failed(self, message: str, error_type: str) -> None:
        self.estimate_task = None
        self.estimate_label.setText(f"No estimate: {message}")

    def _on_export_failed(self, message: str, error_type: str) -> None:
        self.export_task = None
        self._error(message)
        self._update_run_buttons()

    def _on_train_cancelled(self, result) -> None:
        self._training_ended()
        self.status.setText("Stopped before training began.")
        self.refresh_runs()

    def _training_ended(self) -> None:
        self.train_task = None
        self.running_job = None
        self._set_running(False)

    # -- runs ---------------------------------------------------------------------
    def refresh_runs(self, select: str | None = None, announce: bool = False) -> None:
        """List the runs again (on the files thread: each run's folder is read)."""
        current = select or (self.selected_run().folder if self.selected_run() else None)
        if self.runs_task is not None:
            self.runs_task.abandon()
        self.runs_task = connect(self._submit(ft_tasks.list_runs_task, label="list runs"),
                                 done=lambda runs: self._show_runs(runs, current, announce),
                                 failed=lambda *_: self._show_runs([], current, announce))

    def _show_runs(self, runs: list, current: str | None, announce: bool) -> None:
        self.runs_task = None
        self.runs.blockSignals(True)
        self.runs.clear()
        self.runs.addItem("(new run)", None)
        for info in runs:
            self.runs.addItem(info.label(), info)
            if info.folder == current:
                self.runs.setCurrentIndex(self.runs.count() - 1)
        self.runs.blockSignals(False)
        self._update_run_buttons()
        interrupted = [r for r in runs if r.state == "interrupted" and r.resumable]
        if announce and interrupted:
            run = interrupted[0]
            then = "continue from its last checkpoint" if run.step else "start it again from step 0 (it stopped " \
                   "before its first checkpoint), with the same settings"
            self._notice(f"The fine-tuning run {run.name} was interrupted at step {run.step}. "
                         f"Select it under Runs and press Resume to {then}.")

    def _load_history(self, folder: str, then) -> None:
        """Read a run's event file on the files thread, then ``then(events)`` (unless another run was
        chosen meanwhile)."""
        if self.history_task is not None:
            self.history_task.abandon()
        self.history_task = connect(self._submit(ft_tasks.run_history_task, label="run history", run_dir=folder),
                                    done=lambda events: (self._clear("history_task"), then(events)),
                                    failed=lambda message, _: (self._clear("history_task"), self._error(message)))

    def selected_run(self):
        return self.runs.currentData() if hasattr(self, "runs") else None

    def _on_run_selected(self) -> None:
        info = self.selected_run()
        self._update_run_buttons()
        if info is None or self.train_task is not None:
            return
        self.status.setText(f"{info.label()}{' · ' + info.message if info.message else ''}")
        self.result_label.setText(_perplexity_text(info.ppl_before, info.ppl_after))
        self._load_history(info.folder, then=self._show_history)

    def _show_history(self, events: list[dict]) -> None:
        if self.train_task is not None:
            return  # training started meanwhile: its live events own the plot
        self.plot.load_events(events)
        samples = [e for e in events if e["type"] == "samples"]
        self.samples.setPlainText("" if not samples else "\n".join(
            [f"— step {samples[-1]['step']} —"] + [f"{p}\n  → {a}" for p, a in samples[-1]["samples"]]))

    def save_as_model(self) -> None:
        info = self.selected_run()
        if info is None or info.output is None:
            return
        name, ok = QInputDialog.getText(self, "Save as model", "Model name:", text=info.name)
        if ok and name.strip():
            self.status.setText(f"Saving {name.strip()}…")
            self.save_button.setEnabled(False)
            self.export_task = connect(self._submit(ft_tasks.export_task, label="save as model", run_dir=info.folder,
                                                    name=name.strip()),
                                       done=self._on_exported, failed=self._on_export_failed,
                                       cancelled=lambda _: self._clear("export_task"))

    def export_run_script(self) -> None:
        from engine.finetune.export import export_run_script

        try:
            job = self.make_job()
        except HearthError as exc:
            self._error(str(exc))
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the job to a folder")
        if not folder:
            return
        try:
            path, script = export_run_script(job, folder)
        except OSError as exc:
            self._error(f"Could not write to {folder}: {exc.strerror or exc}")
            return
        self.show_export(path, script)

    def show_export(self, path: Path, script: str) -> None:
        commands = [line for line in script.splitlines() if line.startswith(("torchrun", "accelerate"))]
        QGuiApplication.clipboard().setText(commands[0] if commands else script)
        box = QMessageBox(QMessageBox.Icon.Information, "Job exported",
                          f"Wrote {path} and run.sh. The torchrun command is on the clipboard.", parent=self)
        box.setDetailedText(script)
        box.open()

    def open_compare(self) -> None:
        info = self.selected_run()
        compare = getattr(self.window, "views", {}).get("Compare")
        if compare is None or info is None:
            return
        compare.select_output(info.output)
        self.window.show_view("Compare")

    # -- messages and closing ----------------------------------------------------
    def _error(self, text: str) -> None:
        show = getattr(self.window, "show_error", None)
        show(text) if show else QMessageBox.warning(self, "Fine-tuning", text)

    def _notice(self, text: str) -> None:
        show = getattr(self.window, "show_notice", None)
        if show:
            show(text)

    def on_window_closing(self) -> None:
        """Stop training so it saves a last checkpoint; Resume continues it next time."""
        task = self.train_task
        if task is None:
            return
        task.cancel()
        if task.handle is not None and not task.handle.wait(30):  # stuck: end it; the run is left interrupted
            kill = getattr(task.handle, "kill", None)
            if callable(kill):
                kill()


def first_step_text(start: dict, estimate=None) -> str:
    """What the status says from the data being ready until the first step is done (a step can take a while;
    a LoRA run's first validation comes after it)."""
    from engine.finetune.progress import format_duration

    step, steps = start.get("step", 0) + 1, start.get("max_steps", 0)
    about = ""
    if estimate is not None and getattr(estimate, "steps", 0) and estimate.steps == steps:
        about = f" (about {format_duration(estimate.seconds / estimate.steps)} a step, as estimated)"
    return f"Step {step}/{steps} under way{about}…"


def _rising(losses: list[float], evaluations: int = 2) -> bool:
    """True when each of the last ``evaluations`` validation losses is higher than the one before."""
    tail = losses[-(evaluations + 1):]
    return len(tail) == evaluations + 1 and all(b > a for a, b in zip(tail, tail[1:]))


def _perplexity_text(before, after) -> str:
    if before and after:
        return f"Validation perplexity: <b>{before:.2f}</b> before → <b>{after:.2f}</b> after"
    if after:
        return f"Validation perplexity after: <b>{after:.2f}</b>"
    if before:  # stopped before its first evaluation after step 0
        return f"Validation perplexity before training: <b>{before:.2f}</b> (no evaluation since)"
    return ""
