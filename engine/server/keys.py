"""The server's API key: generated once, kept in the data folder (readable by the user only).

The app shows it (and can renew it); ``hearth-cli serve`` uses the same one unless given
``--api-key``, so scripts set up against the app keep working against the command line.
"""

from __future__ import annotations

from pathlib import Path

from engine.paths import write_private
from engine.server.security import new_key

KEY_FILE = "api_key"


def key_path() -> Path:
    from engine.paths import subdir

    return subdir("server") / KEY_FILE


def stored_key() -> str:
    """The saved key, created on first use."""
    path = key_path()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        key = ""
    return key or renew_key()


def renew_key() -> str:
    """A new key replaces the old one (clients using the old key get 401 from now on)."""
    key = new_key()
    write_private(key_path(), key + "\n")
    return key
