"""The lab's worker tasks: ``fn(session, *, on_text, on_progress, cancel, **kwargs) -> result``.

``model_path=None`` means the session's current model (what chat uses); a path opens that folder
(a lab folder of either objective, or any model folder) through the session's model cache, which
re-reads it when its weights change on disk, so a model that goes on training is re-read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.config import SamplingConfig
from engine.lab.config import LabTrainConfig

if TYPE_CHECKING:
    from engine.session import Session


def model_for(session: Session, model_path: str | None) -> Any:
    """The current model (None), or a lab or model folder from the session's one cache."""
    from engine.hf_import import ensure_transformers
    from engine.lab.loading import load_any

    ensure_transformers()
    return session.model_for(model_path, opener=load_any)


def lab_estimate_task(session: Session, *, on_text=None, on_progress=None, cancel=None, config: LabTrainConfig):
    from engine.lab.estimate import estimate

    return estimate(config)


def lab_train_task(session: Session, *, on_text=None, on_progress=None, cancel=None, config: LabTrainConfig,
                  on_event=None):
    from engine.hf_import import ensure_transformers
    from engine.lab.train import train_lab

    ensure_transformers()  # the chat model may be loading on another thread
    return train_lab(config, on_text=on_text, on_progress=on_progress, cancel=cancel, on_event=on_event)


def lab_model_info_task(session: Session, *, on_text=None, on_progress=None, cancel=None,
                        model_path: str | None = None) -> dict:
    from engine.lab.loading import is_masked

    lm = model_for(session, model_path)
    info = lm.describe()
    config = lm.model.config
    info.update(layers=getattr(config, "num_hidden_layers", None), heads=getattr(config, "num_attention_heads", None),
                masked=is_masked(lm), model_path=model_path)
    return info


def lab_attention_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str,
                      model_path: str | None = None):
    from engine.gguf.full_model import full_model_for
    from engine.lab.inspect import attention_maps

    lm = model_for(session, model_path)
    full_model_for(lm, on_progress=on_progress)  # a GGUF run quantized: its full model, built once, size said first
    return attention_maps(lm, text)


def lab_token_probs_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str,
                        model_path: str | None = None):
    from engine.lab.inspect import token_probabilities

    return token_probabilities(model_for(session, model_path), text)


def lab_next_tokens_task(session: Session, *, on_text=None, on_progress=None, cancel=None, prefix: str,
                        model_path: str | None = None, k: int = 20):
    from engine.lab.inspect import next_tokens

    return next_tokens(model_for(session, model_path), prefix, k=k)


def lab_fill_mask_task(session: Session, *, on_text=None, on_progress=None, cancel=None, text: str,
                      model_path: str | None = None):
    from engine.lab.inspect import fill_mask

    return fill_mask(model_for(session, model_path), text)


def lab_generate_task(session: Session, *, on_text=None, on_progress=None, cancel=None, prompt: str,
                     model_path: str | None = None, sampling: SamplingConfig | None = None):
    from engine.generation import generate
    from engine.lab.errors import LabError
    from engine.lab.loading import is_masked

    lm = model_for(session, model_path)
    if is_masked(lm):
        raise LabError(f"{lm.name} was trained to fill in blanks, not to continue text. Use fill-in-the-blank.")
    return generate(lm, prompt, sampling or SamplingConfig(max_new_tokens=200), on_text=on_text, cancel=cancel)
