"""Open a lab folder for the lab's viewers, whichever objective it was trained for.

``engine.loader.load_model`` opens causal lab models for chat and the Notebook; a masked model
cannot continue text, so it is opened here as a masked LM instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import ModelLoadError
from engine.lab.hf_model import MODEL_TYPE


def is_lab_folder(path) -> bool:
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def is_masked(lm) -> bool:
    """True for a model trained to fill in blanks rather than to continue text."""
    return getattr(lm.model.config, "model_type", "") == MODEL_TYPE and lm.model.config.objective == "mlm"


def load_any(path, device: str = "auto"):
    """A LoadedModel for ``path``: any model folder, including lab folders of both objectives."""
    from engine.config import LoadConfig
    from engine.loader import check_model_folder, load_model

    folder = Path(path)
    if not is_lab_folder(folder):
        return load_model(LoadConfig(path=str(folder), device=device))
    check_model_folder(folder)
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from engine.loader import wrap_model

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        auto = AutoModelForMaskedLM if config.get("objective") == "mlm" else AutoModelForCausalLM
        model = auto.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(folder, f"the lab model could not be read ({type(exc).__name__}: {exc}).") from exc
    return wrap_model(model, tokenizer, folder, LoadConfig(path=str(folder), device=device))
