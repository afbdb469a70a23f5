"""Worker tasks for remote models: list a server's models, and make one of them the current model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.remote.client import RemoteServer

if TYPE_CHECKING:
    from engine.session import Session


def list_models_task(session: Session, *, on_text=None, on_progress=None, cancel=None, server: RemoteServer) -> list:
    from engine.remote.client import list_models

    return list_models(server)


def connect_task(session: Session, *, on_text=None, on_progress=None, cancel=None, server: RemoteServer,
                 model: str | None = None) -> dict:
    """Make the server's ``model`` the session's current model; returns its description (like load_task)."""
    from engine.remote.model import connect_model

    if on_progress:
        on_progress(0.2, f"Connecting to {server.host}…")
    remote = connect_model(server, model)
    session.set_model(remote)
    return remote.describe()


def connect_path_task(session: Session, *, on_text=None, on_progress=None, cancel=None, path: str) -> dict:
    """The same for a remembered ``remote://`` path (the Model box's entries), with the saved key."""
    from engine.remote.model import parse_remote_path
    from engine.remote.servers import server_for

    base_url, model = parse_remote_path(path) or ("", "")
    return connect_task(session, on_progress=on_progress, server=server_for(base_url), model=model or None)
