"""Model → Connect to a server…: a base URL, an optional key, the server's model list.

Fetching the list runs as a task on the scheduler's "files" thread (never stuck behind a long
reply); choosing a model saves the server (its key in the keychain or a private file, as the
dialog says) and asks the window to use it. Nothing is sent anywhere until the user clicks Fetch.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QPushButton, QVBoxLayout, QWidget)

from engine.errors import InvalidConfigError
from engine.remote.client import RemoteServer
from engine.remote.tasks import list_models_task
from gui.worker import FILES, connect

DEFAULT_URL = "http://127.0.0.1:8080/v1"


class ConnectDialog(QDialog):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        from engine.remote.servers import key_storage, load_key, saved_servers

        self.window_ = window
        self.task = None
        self.chosen: tuple[RemoteServer, str] | None = None
        self.setWindowTitle("Connect to a server")
        self.resize(520, 420)
        saved = saved_servers()
        self.url = QLineEdit(saved[-1]["base_url"] if saved else DEFAULT_URL)
        self.url.setPlaceholderText(DEFAULT_URL)
        self.key = QLineEdit(load_key(self.url.text()) if saved else "")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional: the server's API key")
        self.fetch = QPushButton("Fetch models")
        self.fetch.clicked.connect(self._fetch)
        self.forget = QPushButton("Forget this server")
        self.forget.setToolTip("Remove it, its models and its key from Hearth")
        self.forget.clicked.connect(self._forget)
        self.forget.setEnabled(any(s["base_url"] == self.url.text().rstrip("/") for s in saved))
        self.models = QListWidget()
        self.models.itemDoubleClicked.connect(lambda _item: self._accept())
        self.status = QLabel("Any OpenAI-compatible server: another Hearth (hearth-cli serve), vLLM, llama.cpp, "
                             "Ollama, LM Studio, TGI.")
        self.status.setWordWrap(True)
        self.storage = QLabel(key_storage())
        self.storage.setWordWrap(True)
        self.storage.setStyleSheet("color: palette(mid);")
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.url, 1)
        row.addWidget(self.fetch)
        form.addRow("Base URL", row)
        form.addRow("API key", self.key)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this model")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        self.models.currentRowChanged.connect(
            lambda row: self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(row >= 0))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Models on the server:"))
        layout.addWidget(self.models, 1)
        layout.addWidget(self.storage)
        bottom = QHBoxLayout()
        bottom.addWidget(self.forget)
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

    def server(self) -> RemoteServer:
        return RemoteServer(self.url.text().strip() or DEFAULT_URL, self.key.text().strip())

    def _fetch(self) -> None:
        try:
            server = self.server()
        except InvalidConfigError as exc:
            self.status.setText(str(exc))
            return
        self.models.clear()
        self.fetch.setEnabled(False)
        self.status.setText(f"Asking {server.host} for its models…")
        self._server = server
        self.task = connect(self.window_.client.submit(list_models_task, label="list server models", device=FILES,
                                                       server=server),
                            done=self._on_models, failed=self._on_failed)

    def _on_models(self, models: list) -> None:
        self.fetch.setEnabled(True)
        for info in models:
            context = f"  ·  context {info.context_length:,} tokens" if info.context_length else ""
            self.models.addItem(f"{info.id}{context}")
            self.models.item(self.models.count() - 1).setData(256, info.id)
        self.status.setText(f"{len(models)} model(s) on {self._server.host}." if models else
                            f"{self._server.host} lists no models.")
        if models:
            self.models.setCurrentRow(0)

    def _on_failed(self, message: str, error_type: str) -> None:
        self.fetch.setEnabled(True)
        self.status.setText(message)

    def _forget(self) -> None:
        from engine.remote.servers import remove_server

        url = self.url.text().strip().rstrip("/")
        remove_server(url)
        self.models.clear()
        self.key.clear()
        self.forget.setEnabled(False)
        self.status.setText(f"Forgot {url}: its models leave the Model box, and its key is deleted.")
        refresh = getattr(getattr(self.window_, "model_picker", None), "refresh", None)
        if callable(refresh):
            refresh()

    def _accept(self) -> None:
        item = self.models.currentItem()
        if item is None:
            return
        from engine.remote.servers import add_server

        server = self._server
        names = [self.models.item(i).data(256) for i in range(self.models.count())]
        add_server(server.base_url, names, server.api_key)
        self.chosen = (server, item.data(256))
        self.accept()
