"""What a scheduler's device thread holds between tasks: the current model and the one model cache.

Tasks are plain functions ``fn(session, *, on_text, on_progress, cancel, **kwargs)`` that run on
that thread (engine/scheduler.py); the session is their only shared state, so a task can use the
model another task loaded without knowing about threads.

Every model a task needs besides the current one (the compare view's fine-tuned result, a lab
folder, another chat model) comes from :meth:`Session.model_for`: one cache, keyed by path and
re-read when the weights change on disk, filled through the loader (``engine.loader``) so every
model gets the same preparation and fast path. Features that open a folder their own way (an
adapter merged into its base, a masked lab model) pass an ``opener`` that ends in
``engine.loader.wrap_model``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import ModelNotLoadedError

if TYPE_CHECKING:
    from engine.loader import LoadedModel

EXTRA_MODELS = 2  # models kept besides the current one; the oldest is dropped first


class Session:
    def __init__(self, *, extra_models: int = EXTRA_MODELS) -> None:
        self.model: LoadedModel | None = None  # the current model
        self.state: dict[str, Any] = {}  # per-feature scratch space (tokenizers...), keyed by feature name
        self.extra_models = extra_models
        self._cache: OrderedDict[str, tuple[tuple, LoadedModel]] = OrderedDict()  # path -> (weights stamp, model)

    def require_model(self) -> LoadedModel:
        if self.model is None:
            raise ModelNotLoadedError("No model is loaded yet. Wait for loading to finish, or open a model.")
        return self.model

    def set_model(self, lm: LoadedModel | None) -> None:
        old, self.model = self.model, lm
        if lm is not None:
            self._cache.pop(str(lm.path), None)  # it is the current one now, not an extra one
        if old is not None and old is not lm:
            del old
            _free_memory()

    @property
    def device(self) -> str:
        """Where extra models go: the current model's device, else the best one available."""
        return str(self.model.device) if self.model is not None else "auto"

    def model_for(self, path: str | Path | None, *,
                  opener: Callable[[str, str], LoadedModel] | None = None) -> LoadedModel:
        """The current model if ``path`` is None or its own path; else a cached extra model.

        ``opener(path, device) -> LoadedModel`` opens the folder (default: ``engine.loader.load_model``).
        A cached model whose weights changed on disk since it was read (a lab model that went on
        training) is read again.
        """
        if path is None or (self.model is not None and str(self.model.path) == str(path)):
            return self.require_model()
        key = str(path)
        stamp = weights_stamp(key)
        entry = self._cache.get(key)
        if entry is not None and entry[0] == stamp:
            self._cache.move_to_end(key)
            return entry[1]
        if entry is not None:
            del self._cache[key]
        while len(self._cache) >= max(1, self.extra_models):  # make room before loading, not after
            self._cache.popitem(last=False)
            _free_memory()
        lm = (opener or _load)(key, self.device)
        prepare = lm.extras.get("prepare_fast_path")  # in the background, as for the current model
        if callable(prepare):
            prepare(lm)
        self._cache[key] = (stamp, lm)
        return lm

    def cached_paths(self) -> list[str]:
        return list(self._cache)

    def forget(self, path: str | Path) -> None:
        """Drop a cached extra model (its folder was deleted or replaced)."""
        if self._cache.pop(str(path), None) is not None:
            _free_memory()


def weights_stamp(path: str) -> tuple:
    """What changes when a model folder's weights are rewritten: their names, sizes and times."""
    folder = Path(path)
    if not folder.is_dir():
        try:
            st = folder.stat()
        except OSError:
            return ()
        return ((folder.name, st.st_size, st.st_mtime_ns),)
    stamp = []
    for pattern in ("*.safetensors", "*.bin"):
        for file in sorted(folder.glob(pattern)):
            try:
                st = file.stat()
            except OSError:
                continue
            stamp.append((file.name, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def _load(path: str, device: str) -> LoadedModel:
    from engine.config import LoadConfig
    from engine.loader import load_model

    return load_model(LoadConfig(path=path, device=device))


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
