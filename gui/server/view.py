"""The Server view: serve the window's model to other programs over an OpenAI-compatible API.

On/off, the port, the key (generated once, kept in the data folder, copyable, renewable), the
base URL to paste into other tools, the queue's length and a live log of requests. The server
submits to the window's own scheduler (``window.client.scheduler``), so the model it serves is
the one in the Model box, and the window's requests wait in the same fair queue as the API's.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QSettings, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.errors import HearthError
from gui.colors import ORANGE, RED, accent, css

PORT_KEY, NETWORK_KEY = "server/port", "server/network"
COLUMNS = ("Time", "Client", "Request", "Model", "Tokens", "tok/s", "Status")
MAX_ROWS = 500


class ServerView(QWidget):
    record_logged = Signal(object)  # a RequestRecord, from the server's thread (delivered queued)

    def __init__(self, window) -> None:
        super().__init__()
        from engine.server.keys import stored_key

        self.window_ = window
        self.server = None
        settings = QSettings()
        intro = QLabel("Serve the model in the Model box to editors, scripts and agents on this computer, through "
                       "the OpenAI API (<code>/v1/chat/completions</code>, <code>/v1/completions</code>, "
                       "<code>/v1/models</code>). The window keeps working; its requests and the API's share "
                       "one queue.")
        intro.setWordWrap(True)
        self.toggle = QPushButton("Start serving")
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self._on_toggled)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(int(settings.value(PORT_KEY, 8080)))
        self.network = QCheckBox("Serve the network (other machines can connect, with the key; plain HTTP)")
        self.network.setChecked(settings.value(NETWORK_KEY, False) in (True, "true"))
        self.key = QLineEdit(stored_key())
        self.key.setReadOnly(True)
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.state = QLabel("Off.")
        self.state.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {css(accent(self.palette(), ORANGE))};")  # reads on light and dark
        self.warning.hide()
        self.log = QTableWidget(0, len(COLUMNS))
        self.log.setHorizontalHeaderLabels(COLUMNS)
        self.log.verticalHeader().setVisible(False)
        self.log.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.log.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.log.horizontalHeader().setStretchLastSection(True)
        self._layout(intro)
        self.record_logged.connect(self._add_record)
        self.port.valueChanged.connect(self._update_url)
        self.network.toggled.connect(self._update_url)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._update_state)
        self.timer.start(500)
        self._update_url()

    def _layout(self, intro: QLabel) -> None:
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.network)
        form.addRow("API key", self._with_buttons(self.key, ("Copy", lambda: self._copy(self.key.text())),
                                                  ("Renew", self.renew_key)))
        form.addRow("Base URL", self._with_buttons(self.url, ("Copy", lambda: self._copy(self.url.text()))))
        top = QHBoxLayout()
        top.addWidget(self.toggle)
        top.addWidget(self.state, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addWidget(self.warning)
        layout.addLayout(form)
        layout.addWidget(QLabel("Requests"))
        layout.addWidget(self.log, 1)

    @staticmethod
    def _with_buttons(edit: QLineEdit, *buttons) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        for text, slot in buttons:
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        return box

    # ---- on / off -------------------------------------------------------------------------------------
    def _config(self):
        from engine.server import ServerConfig

        network = self.network.isChecked()
        return ServerConfig(host="0.0.0.0" if network else "127.0.0.1", port=self.port.value(),
                            api_key=self.key.text(), allow_network=network)

    def start(self) -> bool:
        from engine.server import LocalServer

        try:
            config = self._config()
            server = LocalServer(config, self.window_.client.scheduler).start()
        except HearthError as exc:
            self.window_.show_error(str(exc))
            self.toggle.blockSignals(True)
            self.toggle.setChecked(False)
            self.toggle.blockSignals(False)
            return False
        server.log.subscribe(self.record_logged.emit)  # emitted on the server's thread: delivered queued
        self.server = server
        settings = QSettings()
        settings.setValue(PORT_KEY, self.port.value())
        settings.setValue(NETWORK_KEY, self.network.isChecked())
        self.warning.setText(config.warning)
        self.warning.setVisible(bool(config.warning))
        self._set_running(True)
        return True

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.log.unsubscribe(self.record_logged.emit)
            server.stop()
        self.warning.setText("")
        self.warning.hide()
        self._set_running(False)

    def _on_toggled(self, on: bool) -> None:
        if on and self.server is None:
            self.start()
        elif not on:
            self.stop()

    def _set_running(self, running: bool) -> None:
        self.toggle.blockSignals(True)
        self.toggle.setChecked(running)
        self.toggle.blockSignals(False)
        self.toggle.setText("Stop serving" if running else "Start serving")
        self.port.setEnabled(not running)
        self.network.setEnabled(not running)
        self._update_url()
        self._update_state()

    def renew_key(self) -> None:
        from engine.server.keys import renew_key

        self.key.setText(renew_key())
        if self.server is not None:  # the old key stops working now
            self.stop()
            self.start()

    # ---- display --------------------------------------------------------------------------------------
    def _update_url(self) -> None:
        if self.server is not None:
            self.url.setText(self.server.base_url)
            return
        host = "<this computer's address>" if self.network.isChecked() else "127.0.0.1"
        self.url.setText(f"http://{host}:{self.port.value()}/v1")

    def _update_state(self) -> None:
        if self.server is None:
            self.state.setText("Off. Nothing listens; no socket is open.")
            return
        queued = self.window_.client.scheduler.queue_length()
        info = self.window_.model_info or {}
        if info.get("remote"):
            model = "nothing: the current model runs on another server (only local models are served)"
        else:
            model = info.get("name", "no model yet")
        self.state.setText(f"Serving {model} at {self.server.base_url}  ·  {queued} waiting in the queue")

    def _add_record(self, record) -> None:
        row = self.log.rowCount()
        if row >= MAX_ROWS:
            self.log.removeRow(0)
            row -= 1
        self.log.insertRow(row)
        tokens = f"{record.prompt_tokens} + {record.completion_tokens}" if record.completion_tokens else ""
        values = (time.strftime("%H:%M:%S", time.localtime(record.time)), record.client,
                  f"{record.method} {record.path}", record.model, tokens,
                  f"{record.tok_s:.1f}" if record.tok_s else "", str(record.status))
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            if record.note:
                item.setToolTip(record.note)
            if column == len(values) - 1 and record.status >= 400:
                item.setForeground(accent(self.log.palette(), RED))
            self.log.setItem(row, column, item)
        self.log.scrollToBottom()

    @staticmethod
    def _copy(text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def on_window_closing(self) -> None:
        self.stop()
