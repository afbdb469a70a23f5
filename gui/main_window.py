"""The main window: side bar of views, model picker, sampling dock, status bar, banners.

It owns the one shared worker (``self.client``) and knows which model is
loaded (``self.model_info``, a dict from ``LoadedModel.describe()``). Views
are built from the registry in ``gui/views.py``.
"""

from __future__ import annotations

import importlib

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QListWidget, QMainWindow, QProgressBar,
                               QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from engine.config import LoadConfig
from gui.banner import Banner
from gui.device_menu import DeviceMenu
from gui.model_picker import ModelPicker
from gui.chat.sampling_panel import SamplingPanel
from gui.views import VIEWS
from gui.worker import EngineClient, TaskSignals


class MainWindow(QMainWindow):
    model_changed = Signal(object)  # the new model_info dict

    def __init__(self, client: EngineClient | None = None, defer_views: bool = False) -> None:
        super().__init__()
        self._defer_views = defer_views
        self.setWindowTitle("Hearth")
        self.resize(1180, 780)
        self.client = client or EngineClient(self)
        self.model_info: dict | None = None
        self._load_task: TaskSignals | None = None
        self._load_path: str | None = None
        self.error_banner = Banner("error")
        self.notice_banner = Banner("notice")
        self.sampling_panel = SamplingPanel()
        self._build_status_bar()
        self._build_toolbar()
        self._build_views()
        self._build_menus()

    # -- construction -------------------------------------------------------------
    def _build_views(self) -> None:
        self.nav = QListWidget()
        self.nav.setFixedWidth(120)
        self.nav.setIconSize(QSize(20, 20))
        self.stack = QStackedWidget()
        self.views: dict[str, QWidget] = {}
        self._pending: list[tuple[int, str, str]] = []
        for row, (title, target) in enumerate(VIEWS):
            self.nav.addItem(title)
            if self._defer_views and row > 0:
                # Built right after the window is on screen (see build_pending_views).
                self.stack.addWidget(QWidget())
                self._pending.append((row, title, target))
            else:
                self.stack.addWidget(self._make_view(title, target))
        self.nav.currentRowChanged.connect(self._select_view)
        self.nav.setCurrentRow(0)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.error_banner)
        column.addWidget(self.notice_banner)
        column.addWidget(self.stack, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.addWidget(self.nav)
        row.addWidget(right, 1)
        self.setCentralWidget(central)
        dock = QDockWidget("Sampling", self)
        dock.setObjectName("samplingDock")
        dock.setWidget(self.sampling_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.sampling_dock = dock

    def _make_view(self, title: str, target: str) -> QWidget:
        module_name, class_name = target.split(":")
        try:
            view = getattr(importlib.import_module(module_name), class_name)(self)
        except Exception as exc:  # one broken view must not take the whole app down
            import traceback

            traceback.print_exc()
            view = QLabel(f"The {title} view could not start: {type(exc).__name__}: {exc}")
            view.setWordWrap(True)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.views[title] = view
        return view

    def build_pending_views(self, one: bool = False) -> None:
        """Build deferred views: one per event-loop turn after start-up, or all at once."""
        while self._pending:
            row, title, target = self._pending.pop(0)
            placeholder = self.stack.widget(row)
            current = self.stack.currentIndex()
            self.stack.removeWidget(placeholder)
            self.stack.insertWidget(row, self._make_view(title, target))
            self.stack.setCurrentIndex(current)
            placeholder.deleteLater()
            if one:
                break
        if self._pending and one:
            QTimer.singleShot(0, lambda: self.build_pending_views(one=True))

    @property
    def chat(self):
        return self.views.get("Chat")

    def _select_view(self, row: int) -> None:
        if any(pending_row == row for pending_row, _, _ in self._pending):
            self.build_pending_views()
        self.stack.setCurrentIndex(row)

    def show_view(self, title: str) -> None:
        self.nav.setCurrentRow([t for t, _ in VIEWS].index(title))

    def _build_toolbar(self) -> None:
        bar = QToolBar("Model")
        bar.setObjectName("modelToolbar")
        bar.setMovable(False)
        bar.addWidget(QLabel(" Model: "))
        self.model_picker = ModelPicker()
        self.model_picker.model_requested.connect(self.load_model)
        self.model_picker.connect_requested.connect(self.connect_to_server)
        bar.addWidget(self.model_picker)
        self.addToolBar(bar)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.status_model = QLabel("No model")
        self.status_stats = QLabel("")  # tokens/s and context use of the last reply
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 1000)
        self.load_progress.setMinimumWidth(320)
        self.load_progress.setTextVisible(True)
        self.load_progress.hide()
        status.addWidget(self.status_model)
        status.addWidget(self.load_progress, 1)
        status.addPermanentWidget(self.status_stats)
        self._speed = ""
        self._context = ""

    def _show_stats(self, speed: str | None = None, context: str | None = None) -> None:
        self._speed = self._speed if speed is None else speed
        self._context = self._context if context is None else context
        self.status_stats.setText("   ·   ".join(p for p in (self._speed, self._context) if p) + "  ")

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open model folder…", lambda: self.model_picker._on_activated(
            self.model_picker.findData("__open_folder__")))
        file_menu.addAction("Open GGUF file…", lambda: self.model_picker._on_activated(
            self.model_picker.findData("__open_gguf__")))
        self.file_menu = file_menu
        if hasattr(self.chat, "install_menus"):  # conversations: search, import, export
            self.chat.install_menus(file_menu)
        file_menu.addSeparator()
        file_menu.addAction("Quit", self.close, "Ctrl+Q")
        model_menu = self.menuBar().addMenu("&Model")
        self.device_menu = DeviceMenu(self, model_menu)
        model_menu.addSeparator()
        model_menu.addAction("Connect to a server…", self.connect_to_server)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.sampling_dock.toggleViewAction())
        self.view_menu = view_menu
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Run diagnostics", self.run_diagnostics)
        help_menu.addAction("About Hearth", self._show_about)
        self.help_menu = help_menu

    def _show_about(self) -> None:
        from gui.about import show_about

        show_about(self)

    # -- messages -----------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.error_banner.show_message(text)

    def show_notice(self, text: str) -> None:
        self.notice_banner.show_message(text)

    def report_generation(self, result) -> None:
        """Show speed and context use after a reply (any view may call it)."""
        context = None
        if self.model_info:
            used = result.prompt_tokens + result.new_tokens
            total = self.model_info["context_length"]
            context = f"context {used:,} / {total:,} tokens ({100 * used / total:.0f} %)"
        decoder = getattr(result, "decoder", "")
        self._show_stats(f"{result.tok_s:.1f} tok/s" + (f" ({decoder})" if decoder else ""), context)

    # -- model loading ------------------------------------------------------------
    def connect_to_server(self) -> None:
        """Model → Connect to a server…: choose a model on an OpenAI-compatible server and use it."""
        from gui.remote_dialog import ConnectDialog

        dialog = ConnectDialog(self)
        if dialog.exec() and dialog.chosen is not None:
            from engine.remote.model import remote_path

            server, model = dialog.chosen
            self.model_picker.refresh()
            self.load_model(remote_path(server.base_url, model))

    def load_model(self, path: str | None = None) -> TaskSignals:
        from engine.remote.model import parse_remote_path
        from engine.tasks import load_task

        self._load_path = path
        self.load_progress.setValue(0)
        self.load_progress.setFormat("Loading…")
        self.load_progress.show()
        self.status_model.setText("Loading model…")
        if self._load_task is not None:  # a newer choice wins; the older load's outcome is not shown
            self._load_task.abandon()
        if parse_remote_path(path) is not None:  # a model on a server the user added
            from engine.remote.tasks import connect_path_task

            self.status_model.setText("Connecting to the server…")
            task = self._load_task = self.client.submit(connect_path_task, label="connect to server", path=path)
        else:
            config = LoadConfig(path=path, device=DeviceMenu.value("device"), dtype=DeviceMenu.value("dtype"))
            task = self._load_task = self.client.submit(load_task, label="load model", config=config)
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_finished)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        return task

    def _on_progress(self, fraction: float, message: str) -> None:
        self.load_progress.setValue(int(fraction * 1000))
        self.load_progress.setFormat(message or "%p %")
        self.load_progress.setToolTip(message)

    def _on_finished(self, result) -> None:
        self._load_task = None
        self.load_progress.hide()
        self.model_info = result
        if result.get("remote"):  # where the model runs, always in sight
            self.status_model.setText(f"{result['name']} · runs on the server {result['host']}")
            self.status_model.setToolTip(f"Prompts and replies go to {result.get('base_url', result['host'])}.")
            self.show_notice(f"{result['name']} runs on the server {result['host']}: chat, summarize, translate, "
                             "the notebook and code completion work through it. Fine-tuning, Compare and the Lab "
                             "need a model whose weights are on this computer.")
        else:
            self.status_model.setText(f"{result['name']} · {result['device']} · {result['dtype']} · on this computer")
            self.status_model.setToolTip("")
        self._show_stats("", f"context {result['context_length']:,} tokens")
        self.model_picker.remember(self._load_path)
        self.error_banner.hide()
        self.build_pending_views()  # every view must hear about the model
        self.model_changed.emit(result)

    def _on_failed(self, message: str, error_type: str) -> None:
        self._load_task = None
        self.load_progress.hide()
        self.status_model.setText(f"{self.model_info['name']} · {self.model_info['device']}" if self.model_info
                                  else "No model loaded")
        self.model_picker.refresh()
        self.show_error(message + ("" if self.model_info else "  Choose another model in the Model box."))

    def _on_cancelled(self, result) -> None:
        self._load_task = None
        self.load_progress.hide()

    # -- help -------------------------------------------------------------------
    def run_diagnostics(self) -> None:
        from gui.diagnostics import DiagnosticsDialog

        DiagnosticsDialog(self).exec()

    # -- closing ------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Closing mid-reply or mid-training: cancel, give the worker a moment, then go."""
        for view in self.views.values():
            closing = getattr(view, "on_window_closing", None)
            if callable(closing):
                closing()
        stopped = self.client.shutdown(timeout_ms=4000)
        if not stopped:  # stuck in a call that cannot be interrupted (e.g. converting a GGUF)
            self.setProperty("worker_stuck", True)
        event.accept()
