"""The servers the user added, and their keys.

Nothing is ever sent to a server that is not in this list (or given on the command line).
The list lives in ``<data>/remote/servers.json`` (addresses and model names, no secrets);
keys go to the platform's keychain through ``keyring`` when it has a working one, otherwise
to ``<data>/remote/keys.json``, a file only the user can read (0600). ``key_storage()`` says
which, so the dialog can tell the user.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.paths import write_private
from engine.remote.client import RemoteServer

SERVICE = "Hearth"


def _folder() -> Path:
    from engine.paths import subdir

    return subdir("remote")


def _keychain():
    """The keyring backend, or None when there is no real one (headless Linux, a frozen app without one)."""
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
        if isinstance(backend, (fail.Keyring, null.Keyring)) or getattr(backend, "priority", 0) <= 0:
            return None
        return keyring
    except Exception:  # noqa: BLE001 — any keyring failure means: use the file
        return None


def key_storage() -> str:
    """A sentence for the dialog: where the key will be kept."""
    if _keychain() is not None:
        return "The key is kept in this computer's keychain."
    return f"No keychain is available here: the key is kept in {_keys_file()}, readable only by you."


def _keys_file() -> Path:
    return _folder() / "keys.json"


def save_key(base_url: str, key: str) -> None:
    ring = _keychain()
    if ring is not None:
        try:
            if key:
                ring.set_password(SERVICE, base_url, key)
            else:
                try:
                    ring.delete_password(SERVICE, base_url)
                except Exception:  # noqa: BLE001 — nothing stored: fine
                    pass
            return
        except Exception:  # noqa: BLE001 — a locked or broken keychain: fall back to the file
            pass
    keys = _read_json(_keys_file(), {})
    if key:
        keys[base_url] = key
    else:
        keys.pop(base_url, None)
    write_private(_keys_file(), json.dumps(keys, indent=1))


def load_key(base_url: str) -> str:
    ring = _keychain()
    if ring is not None:
        try:
            value = ring.get_password(SERVICE, base_url)
            if value:
                return value
        except Exception:  # noqa: BLE001
            pass
    return str(_read_json(_keys_file(), {}).get(base_url, ""))


def saved_servers() -> list[dict]:
    """[{"base_url": ..., "models": [...]}] in the order they were added."""
    data = _read_json(_folder() / "servers.json", [])
    return [s for s in data if isinstance(s, dict) and isinstance(s.get("base_url"), str)]


def add_server(base_url: str, models: list[str], key: str) -> RemoteServer:
    server = RemoteServer(base_url, key)
    servers = [s for s in saved_servers() if s["base_url"] != server.base_url]
    servers.append({"base_url": server.base_url, "models": list(models)})
    write_private(_folder() / "servers.json", json.dumps(servers, indent=1))
    save_key(server.base_url, key)
    return server


def remove_server(base_url: str) -> None:
    servers = [s for s in saved_servers() if s["base_url"] != base_url]
    write_private(_folder() / "servers.json", json.dumps(servers, indent=1))
    save_key(base_url, "")


def server_for(base_url: str) -> RemoteServer:
    """A saved server with its key."""
    return RemoteServer(base_url, load_key(base_url))


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
