"""Train a Transformer from scratch: files, size (with its estimate), settings, live loss and samples.

Training runs on the lab's own worker thread (its own EngineClient), so chat stays usable meanwhile.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
                               QSplitter, QVBoxLayout, QWidget)

from engine.lab.config import SIZES, LabTrainConfig
from engine.errors import HearthError
from gui.worker import FILES, TRAINING, connect
from gui.loss_plot import LossPlot


class FileList(QListWidget):
    """Files and folders to train on; drop them here."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)

    def paths(self) -> list[str]:
        return [self.item(i).text() for i in range(self.count())]

    def add_paths(self, paths) -> None:
        known = set(self.paths())
        for p in paths:
            if p and p not in known:
                self.addItem(p)
                known.add(p)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:
        self.add_paths(u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile())
        event.acceptProposedAction()


class TrainPanel(QWidget):
    model_ready = Signal(str)  # a folder holding a trained model

    def __init__(self, lab, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lab = lab
        self._task = None  # the training run: its TaskSignals (gui/worker.py)
        self._estimate_task = None
        self._out: str | None = None
        self._build()
        self._estimate_timer = QTimer(self, singleShot=True, interval=400)
        self._estimate_timer.timeout.connect(self._estimate)
        for signal in (self.size.currentIndexChanged, self.tokenizer.currentIndexChanged, self.vocab.valueChanged,
                       self.steps.valueChanged):
            signal.connect(lambda *_: self._estimate_timer.start())
        self.tokenizer.currentIndexChanged.connect(
            lambda *_: self.vocab.setEnabled(self.tokenizer.currentData() == "bpe"))
        self.vocab.setEnabled(False)
        self._set_running(False)

    # -- layout -------------------------------------------------------------------
    def _build(self) -> None:
        self.files = FileList()
        self.files.setMinimumHeight(70)
        add_files, add_folder, remove = QPushButton("Add files…"), QPushButton("Add folder…"), QPushButton("Remove")
        add_files.clicked.connect(self._add_files)
        add_folder.clicked.connect(self._add_folder)
        remove.clicked.connect(lambda: [self.files.takeItem(self.files.row(i)) for i in self.files.selectedItems()])
        self.size = QComboBox()
        for name, s in SIZES.items():
            self.size.addItem(f"{name} — {s.describe()}", name)
        self.objective = QComboBox()
        self.objective.addItem("Causal: predict the next token (generates text)", "clm")
        self.objective.addItem("Masked: fill in hidden tokens (15 % masked)", "mlm")
        self.tokenizer = QComboBox()
        self.tokenizer.addItem("Characters", "char")
        self.tokenizer.addItem("Byte-pair encoding (trained on your files)", "bpe")
        self.vocab = QSpinBox(minimum=300, maximum=50_000, value=2000, singleStep=500)
        self.steps = QSpinBox(minimum=0, maximum=1_000_000, value=0, singleStep=100, specialValueText="size default")
        self.minutes = QDoubleSpinBox(minimum=0, maximum=10_000, value=0, decimals=1, specialValueText="no limit")
        self.minutes.setSuffix(" min")
        self.weight_decay = QDoubleSpinBox(minimum=0, maximum=1, value=0.1, decimals=3, singleStep=0.01)
        self.patience = QSpinBox(minimum=0, maximum=100, value=5, specialValueText="off")
        self.eval_every = QSpinBox(minimum=1, maximum=100_000, value=100, singleStep=50)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("samples start with this text (empty: the start of the held-out text)")
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("a new folder under the Hearth data folder")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(choose)
        form = QFormLayout()
        form.addRow("Size", self.size)
        form.addRow("Objective", self.objective)
        form.addRow("Tokenizer", self.tokenizer)
        form.addRow("Vocabulary (byte-pair)", self.vocab)
        form.addRow("Steps", self.steps)
        form.addRow("Time limit", self.minutes)
        form.addRow("Weight decay", self.weight_decay)
        form.addRow("Early stopping patience", self.patience)
        form.addRow("Evaluate every (steps)", self.eval_every)
        form.addRow("Sample prompt", self.prompt)
        form.addRow("Save to", out_row)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.start_button, self.stop_button = QPushButton("Train"), QPushButton("Stop")
        self.resume_button, self.use_button = QPushButton("Resume a run…"), QPushButton("Look inside it")
        self.chat_button = QPushButton("Chat with it")
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self._resume_dialog)
        self.use_button.clicked.connect(lambda: self._out and self.model_ready.emit(self._out))
        self.chat_button.clicked.connect(self._chat)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button, self.use_button, self.chat_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        file_buttons = QHBoxLayout()
        for b in (add_files, add_folder, remove):
            file_buttons.addWidget(b)
        file_buttons.addStretch(1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("Files to learn from (drop files or folders here):"))
        left_layout.addWidget(self.files)
        left_layout.addLayout(file_buttons)
        left_layout.addLayout(form)
        left_layout.addWidget(self.estimate_label)
        left_layout.addLayout(buttons)
        left_layout.addStretch(1)
        self.progress = QProgressBar(maximum=1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        self.samples = QPlainTextEdit()
        self.samples.setReadOnly(True)
        self.samples.setPlaceholderText("Validation loss and a sample appear here at every evaluation.")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.status)
        right_layout.addWidget(self.plot, 2)
        right_layout.addWidget(self.samples, 2)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def showEvent(self, event) -> None:
        if not self.estimate_label.text():  # the first time the panel is seen: estimate the default size
            self._estimate_timer.start()
        super().showEvent(event)

    # -- the scheduler --------------------------------------------------------------
    def submit(self, fn, device: str = TRAINING, **kwargs):
        """Training runs on the scheduler's "training" thread, so the window's model stays free for chat
        and the lab's viewers meanwhile; the estimate on the "files" thread, so it never waits for training."""
        return self.lab.window.client.submit(fn, device=device, **kwargs)

    def shutdown(self) -> None:
        """The window closes: stop training (the window's client then stops every thread)."""
        if self._task is not None:
            self._task.cancel()

    # -- settings -----------------------------------------------------------------
    def config(self, resume_dir: str | None = None) -> LabTrainConfig:
        out = resume_dir or self.out_dir.text().strip() or self._default_out()
        return LabTrainConfig(files=tuple(self.files.paths()), out_dir=out, size=self.size.currentData(),
                              objective=self.objective.currentData(), tokenizer=self.tokenizer.currentData(),
                              vocab_size=self.vocab.value(), max_steps=self.steps.value(),
                              max_minutes=self.minutes.value(), weight_decay=self.weight_decay.value(),
                              patience=self.patience.value(), eval_every=self.eval_every.value(),
                              sample_prompt=self.prompt.text(), resume=resume_dir is not None)

    def _default_out(self) -> str:
        from engine.paths import runs_dir

        stamp = time.strftime("%Y%m%d-%H%M%S")
        return str(runs_dir() / "lab" / f"{self.size.currentData()}-{self.objective.currentData()}-{stamp}")

    def _estimate(self) -> None:
        from engine.lab.tasks import lab_estimate_task

        try:
            config = LabTrainConfig(files=(), out_dir=".", size=self.size.currentData(),
                                    tokenizer=self.tokenizer.currentData(), vocab_size=self.vocab.value(),
                                    max_steps=self.steps.value())
        except HearthError as exc:
            self.estimate_label.setText(str(exc))
            return
        if self._estimate_task is not None:
            self._estimate_task.abandon()  # its answer is for settings that changed since
        self._estimate_task = connect(self.submit(lab_estimate_task, device=FILES, label="lab estimate",
                                                  config=config),
                                      done=self._show_estimate,
                                      failed=lambda message, _: self.estimate_label.setText(message))

    def _show_estimate(self, est) -> None:
        warn = "" if est.fits else "  ⚠ This will not fit in memory: choose a smaller size."
        self.estimate_label.setText(f"Estimate: {est.describe()}.{warn}")

    # -- actions ------------------------------------------------------------------
    def start(self, resume_dir: str | None = None) -> None:
        from engine.lab.tasks import lab_train_task

        if resume_dir is None and not self.files.paths():
            self.lab.window.show_error("Add the files to learn from first (drop them on the list).")
            return
        try:
            config = self.config(resume_dir)
        except HearthError as exc:
            self.lab.window.show_error(str(exc))
            return
        self._out = config.out_dir
        self.out_dir.setText(config.out_dir)
        self.plot.clear_data()
        self.samples.clear()
        self.status.setText("Starting…")
        self._set_running(True)
        self._task = connect(self.submit(lab_train_task, label="lab training", config=config),
                             chunk=self._append_text, progress=self._on_progress,
                             event=lambda name, payload: self._on_event(payload), done=self._finished,
                             cancelled=self._on_cancelled, failed=self._failed)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.status.setText("Stopping after this step; everything so far is kept…")

    def _resume_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Resume a lab run", self.out_dir.text())
        if folder:
            self.start(resume_dir=folder)

    def _chat(self) -> None:
        if self._out:
            self.lab.window.load_model(self._out)
            self.lab.window.show_notice(f"Loading {Path(self._out).name} for chat and the Notebook…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        done = not running and self._out is not None and (Path(self._out) / "config.json").is_file()
        self.use_button.setEnabled(done)
        self.chat_button.setEnabled(done and _objective(self._out) == "clm")  # a masked model cannot chat

    # -- results ------------------------------------------------------------------
    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(message or "%p %")

    def _on_event(self, event: dict) -> None:
        if event["kind"] == "train":
            self.plot.add_train(int(event["step"]), float(event["loss"]))
        elif event["kind"] == "eval":
            self.plot.add_eval(int(event["step"]), float(event["val_loss"]))

    def _append_text(self, text: str) -> None:
        self.samples.moveCursor(self.samples.textCursor().MoveOperation.End)
        self.samples.insertPlainText(text)
        self.samples.ensureCursorVisible()

    def _finished(self, result) -> None:
        self._task = None
        words = {"done": "Finished", "early_stopped": "Stopped early", "time_limit": "Time limit reached",
                 "cancelled": "Stopped"}
        self.status.setText(f"{words.get(result.finish_reason, result.finish_reason)}: {result.steps} steps in "
                            f"{result.elapsed_s:.0f} s; best validation loss {result.best_val_loss:.3f}. "
                            f"Saved in {result.out_dir}. {result.notice}")
        self._set_running(False)
        if (Path(result.out_dir) / "config.json").is_file():
            self.model_ready.emit(result.out_dir)

    def _on_cancelled(self, result) -> None:
        if result is not None:  # stopped: what was trained so far is saved
            self._finished(result)
        else:
            self._task = None
            self.status.setText("Stopped before anything was saved.")
            self._set_running(False)

    def _failed(self, message: str, error_type: str = "") -> None:
        self._task = None
        self.status.setText("")
        self._set_running(False)
        self.lab.window.show_error(message)

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Files to learn from")
        self.files.add_paths(paths)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of text files")
        if folder:
            self.files.add_paths([folder])

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the model in")
        if folder:
            self.out_dir.setText(folder)


def _objective(folder: str) -> str:
    import json

    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("objective", "clm")
    except (OSError, ValueError):
        return ""
