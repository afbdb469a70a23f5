"""Help → About: the app's name, version and the licences of the bundled model and libraries.

The text lives in ``resources/about.md`` so that it travels with the packaged
app and can be read without starting it.
"""

from __future__ import annotations

import platform
from importlib import metadata

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout,
                               QWidget)

from gui.resources import app_icon, resource_path

FALLBACK_TEXT = ("# Hearth\n\nAn offline desktop studio for local language models. "
                 "The About text (resources/about.md) is missing from this installation.")


def app_version() -> str:
    try:
        return metadata.version("hearth")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "development version"


def about_markdown() -> str:
    try:
        return resource_path("about.md").read_text(encoding="utf-8")
    except OSError:
        return FALLBACK_TEXT


def body_without_title(markdown: str) -> str:
    """The dialog shows the name above the text already; drop the file's leading '# Hearth'."""
    lines = markdown.lstrip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).lstrip()


def versions_line() -> str:
    return (f"Version {app_version()} · Python {platform.python_version()} · "
            f"Qt {qVersion()} · PySide6 {PYSIDE_VERSION}")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About Hearth")
        self.setWindowIcon(app_icon())
        self.resize(620, 640)

        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(72, 72))
        title = QLabel("<b style='font-size:18pt'>Hearth</b>")
        title.setTextFormat(Qt.RichText)
        self.versions = QLabel(versions_line())
        self.versions.setTextInteractionFlags(Qt.TextSelectableByMouse)
        heading = QVBoxLayout()
        heading.addWidget(title)
        heading.addWidget(self.versions)
        top = QHBoxLayout()
        top.addWidget(logo, 0, Qt.AlignTop)
        top.addLayout(heading, 1)

        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setMarkdown(body_without_title(about_markdown()))

        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)


def show_about(parent: QWidget | None = None) -> AboutDialog:
    """Open the dialog modally (used by Help → About)."""
    dialog = AboutDialog(parent)
    dialog.exec()
    return dialog
