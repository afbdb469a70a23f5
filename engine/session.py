"""What a worker holds between tasks: the loaded model(s).

GUI tasks are plain functions ``fn(session, *, on_text, on_progress, cancel, **kwargs)``
that run on the worker thread; the session is their only shared state, so a
task can use the model another task loaded without knowing about threads.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ModelNotLoadedError


class Session:
    def __init__(self) -> None:
        self.model: Any = None  # the current LoadedModel, or None
        self.others: dict[str, Any] = {}  # extra models by path (compare view, ...)
        self.state: dict[str, Any] = {}  # per-feature scratch space, keyed by feature name

    def require_model(self) -> Any:
        if self.model is None:
            raise ModelNotLoadedError("No model is loaded yet. Wait for loading to finish, or open a model.")
        return self.model

    def set_model(self, lm: Any) -> None:
        old, self.model = self.model, lm
        if old is not None and old is not lm:
            del old
            _free_memory()

    def model_for(self, path: str | None) -> Any:
        """The current model if ``path`` is None or its own path; else a cached extra one."""
        from engine.config import LoadConfig
        from engine.loader import load_model

        if path is None or (self.model is not None and str(self.model.path) == str(path)):
            return self.require_model()
        if path not in self.others:
            device = str(self.model.device) if self.model is not None else "auto"
            lm = load_model(LoadConfig(path=path, device=device))
            prepare = lm.extras.get("prepare_fast_path")  # in the background, as for the main model
            if callable(prepare):
                prepare(lm)
            self.others[path] = lm
        return self.others[path]


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
