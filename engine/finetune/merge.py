"""A finished run → a full model folder under the models folder, loadable like any other model.

LoRA runs are merged (``PeftModel.merge_and_unload``); full runs are copied.
The folder is written under a temporary name and renamed at the end, so a full
disk never leaves half a model where the model picker would list it.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any, Callable

from engine.cancel import CancelToken
from engine.errors import ModelLoadError
from engine.finetune.errors import RunNotFoundError, TrainingError


def adapter_base(adapter_dir: Path | str) -> str:
    """The base model folder an adapter was trained on (from adapter_config.json)."""
    path = Path(adapter_dir) / "adapter_config.json"
    try:
        base = json.loads(path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise RunNotFoundError(f"{adapter_dir}: not a PEFT adapter folder (no readable adapter_config.json).") \
            from exc
    if not base or not (Path(base).is_dir() or Path(base).suffix.lower() == ".gguf" and Path(base).is_file()):
        raise ModelLoadError(base or adapter_dir, "the adapter's base model folder is missing; "
                                                  "it must be where it was when the adapter was trained.")
    return base


def load_merged(adapter_dir: Path | str, *, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer): the base with the adapter merged in, in memory."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = adapter_base(adapter_dir)
    try:
        if base.lower().endswith(".gguf"):  # trained on a GGUF: its full-precision model
            from engine.gguf.full_model import build_full_model

            model = build_full_model(base, dtype=dtype or torch.float32)
        else:
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or torch.float32, local_files_only=True)
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        tok_dir = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").is_file() else base
        if tok_dir == base and base.lower().endswith(".gguf"):
            from engine.gguf.full_model import gguf_tokenizer

            tokenizer = gguf_tokenizer(base)[0]
        else:
            tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - peft and transformers raise many types
        raise ModelLoadError(adapter_dir, f"the adapter could not be applied ({type(exc).__name__}: {exc}).") \
            from exc
    return model.to(device).eval(), tokenizer


def save_as_model(run_dir: Path | str, *, name: str | None = None, out_dir: Path | str | None = None,
                  on_progress: Callable[[float, str], None] | None = None,
                  cancel: CancelToken | None = None) -> Path:
    """Write the run's result as a model folder (default: models folder / run name); return it."""
    from engine.paths import models_dir

    progress = on_progress or (lambda f, m: None)
    run_dir = Path(run_dir)
    adapter, full = run_dir / "adapter", run_dir / "model"
    if not adapter.is_dir() and not full.is_dir():
        raise RunNotFoundError(f"{run_dir}: the run has no saved result yet (no adapter/ or model/ folder).")
    target = Path(out_dir) if out_dir else models_dir() / (name or run_dir.name)
    if target.exists():
        raise TrainingError(f"{target} already exists. Choose another name.")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if adapter.is_dir():
            progress(0.1, "Merging the adapter into the base model…")
            model, tokenizer = load_merged(adapter)
            if cancel is not None:
                cancel.raise_if_cancelled()
            progress(0.6, f"Saving {target.name}…")
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        else:
            progress(0.3, f"Copying {target.name}…")
            shutil.copytree(full, tmp)
        (tmp / "hearth_finetune.json").write_text(json.dumps({"run": str(run_dir)}), encoding="utf-8")
        tmp.rename(target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise TrainingError(f"Could not write {target}: {why}. Nothing was changed.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(1.0, f"Saved {target.name}")
    return target
