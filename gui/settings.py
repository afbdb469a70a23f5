"""QSettings live in the data folder too, so HEARTH_DATA_DIR moves everything."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QSettings

from engine.paths import data_dir


def configure_settings() -> None:
    QCoreApplication.setOrganizationName("Hearth")
    QCoreApplication.setApplicationName("Hearth")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(data_dir() / "settings"))
