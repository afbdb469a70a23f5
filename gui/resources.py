"""Files in ``resources/`` (icon, About text), found the same way from source and from a build.

In the source tree they sit beside ``gui/``; PyInstaller puts them at
``sys._MEIPASS/resources`` (see build.spec).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon


def resources_dir() -> Path:
    frozen_base = getattr(sys, "_MEIPASS", None)
    if frozen_base:
        return Path(frozen_base) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(name: str) -> Path:
    return resources_dir() / name


def app_icon() -> QIcon:
    """Hearth's icon in every size that was drawn (an empty icon if resources are missing)."""
    icon = QIcon()
    for name in ("hearth.png", "hearth-512.png"):
        path = resource_path(name)
        if path.is_file():
            icon.addFile(str(path))
    return icon
