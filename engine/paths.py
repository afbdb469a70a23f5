"""Where Hearth keeps user data.

``HEARTH_DATA_DIR`` moves everything (tests always set it to a temporary
folder); otherwise the platform's user data folder from platformdirs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.errors import DataDirError

APP_NAME = "Hearth"


def data_dir(create: bool = True) -> Path:
    """The user data folder, created if missing; raises DataDirError if unusable."""
    env = os.environ.get("HEARTH_DATA_DIR")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if not create:
        return path
    if path.exists() and not path.is_dir():
        raise DataDirError(f"The data folder {path} is a file, not a folder. "
                           "Set HEARTH_DATA_DIR to a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"Cannot create the data folder {path}: {exc.strerror or exc}") from exc
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".hearth-write-test-"):
            pass
    except OSError as exc:
        raise DataDirError(f"The data folder {path} is not writable: {exc.strerror or exc}. "
                           "Set HEARTH_DATA_DIR to a folder you can write to.") from exc


def subdir(name: str) -> Path:
    path = data_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"Cannot create {path}: {exc.strerror or exc}") from exc
    return path


def models_dir() -> Path:
    """Converted and fine-tuned models live here, one folder each."""
    return subdir("models")


def runs_dir() -> Path:
    """Fine-tuning and lab training runs (checkpoints, logs)."""
    return subdir("runs")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from creation: never briefly readable by others).

    For secrets: the server's API key, keys of remote servers when there is no keychain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
