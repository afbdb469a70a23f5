"""The model picker: the default model, models in the data folder, recent ones, and "Open…"."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from engine.default_model import DEFAULT_MODEL_NAME

RECENT_KEY = "models/recent"
OPEN_FOLDER, OPEN_GGUF, CONNECT = "__open_folder__", "__open_gguf__", "__connect__"


def known_models() -> list[tuple[str, str]]:
    """(label, path) of model folders under the data folder (converted, fine-tuned, lab)."""
    from engine.paths import models_dir

    out = []
    try:
        for folder in sorted(models_dir().iterdir()):
            if folder.name.startswith(".") or folder.name == DEFAULT_MODEL_NAME:
                continue
            if (folder / "config.json").is_file():
                out.append((folder.name, str(folder)))
    except OSError:
        pass
    return out


def _default_path() -> str | None:
    from engine.errors import ModelLoadError

    try:
        from engine.default_model import find_default_gguf

        return str(find_default_gguf())
    except ModelLoadError:  # not installed: loading it says so
        return None


def model_label(path: str) -> str:
    """A remembered model's name in the box: the folder's name, or a server's model marked with its host."""
    from engine.remote.model import parse_remote_path

    remote = parse_remote_path(path)
    if remote is None:
        return Path(path).name
    base_url, model = remote
    return f"{model} (remote · {base_url.split('://', 1)[-1].split('/', 1)[0]})"


def remote_models() -> list[tuple[str, str]]:
    """(label, remote path) of the models of the servers the user added."""
    from engine.remote.model import remote_path
    from engine.remote.servers import saved_servers

    out = []
    for server in saved_servers():
        for model in server.get("models", []):
            path = remote_path(server["base_url"], str(model))
            out.append((model_label(path), path))
    return out


class ModelPicker(QComboBox):
    model_requested = Signal(object)  # a path, or None for the default model
    connect_requested = Signal()  # "Connect to a server…" was chosen

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumContentsLength(28)
        self.setToolTip("The model used by chat and the text tools")
        self._current: str | None = None
        self.refresh()
        self.activated.connect(self._on_activated)

    def refresh(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem(f"{DEFAULT_MODEL_NAME} (built in)", None)
        self._add_footprint(self.count() - 1, _default_path(), f"{DEFAULT_MODEL_NAME} (built in)")
        seen = set()
        for label, path in known_models() + [(model_label(p), p) for p in self.recent()] + remote_models():
            if path not in seen:
                seen.add(path)
                self.addItem(label, path)
                self.setItemData(self.count() - 1, path, role=3)  # tooltip: the full path
                self._add_footprint(self.count() - 1, path, label)
        self.insertSeparator(self.count())
        self.addItem("Open model folder…", OPEN_FOLDER)
        self.addItem("Open GGUF file…", OPEN_GGUF)
        self.addItem("Connect to a server…", CONNECT)
        self._select(self._current)
        self.blockSignals(False)

    def _add_footprint(self, index: int, path: str | None, label: str) -> None:
        """The model's file size and expected memory, in its row and its tooltip."""
        from engine.gguf.memory import footprint

        size = footprint(path) if path else None
        if size is None:
            return
        self.setItemText(index, f"{label} · {size.label()}")
        self.setItemData(index, f"{path}\n{size.label()}", role=3)

    @staticmethod
    def recent() -> list[str]:
        value = QSettings().value(RECENT_KEY) or []
        return [value] if isinstance(value, str) else list(value)

    def remember(self, path: str | None) -> None:
        self._current = path
        if path is not None:
            recent = [path] + [p for p in self.recent() if p != path]
            QSettings().setValue(RECENT_KEY, recent[:10])
        self.refresh()

    def _select(self, path: str | None) -> None:
        index = self.findData(path)
        self.setCurrentIndex(max(0, index))

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == CONNECT:
            self._select(self._current)
            self.connect_requested.emit()
            return
        if data == OPEN_FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Open a transformers model folder")
        elif data == OPEN_GGUF:
            path, _ = QFileDialog.getOpenFileName(self, "Open a GGUF model", "", "GGUF models (*.gguf)")
        else:
            path = data if data is not None else None
            if path == self._current:
                return
            self.model_requested.emit(path)
            return
        self._select(self._current)  # until the new one has loaded
        if path:
            self.model_requested.emit(path)
