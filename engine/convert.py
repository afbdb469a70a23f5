"""Convert a GGUF file once into a safetensors model folder (where it is not read in place).

Since issue #11 GGUF files of the architectures in ``engine/gguf/metadata.py``
run straight from the file; this conversion serves the rest, and callers that
want a transformers model (``LoadConfig(fast=False)``).

transformers dequantizes GGUF weights on every load (about half a minute for
the default model on two cores); a converted folder loads in well under a
second. The conversion writes into a temporary folder and renames it into
place, so an interrupted conversion is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from engine.cancel import CancelToken
from engine.errors import CancelledError, ModelLoadError

ProgressFn = Callable[[float, str], None]
SOURCE_FILE = "hearth-source.json"
EXPECTED_SECONDS = 30.0  # measured for the default model on 2 CPU cores


def ensure_default_model(*, on_progress: ProgressFn, cancel: CancelToken) -> Path:
    from engine.default_model import bundled_converted_dir, default_model_dir, find_default_gguf

    bundled = bundled_converted_dir()
    if bundled is not None:
        return bundled
    target = default_model_dir()
    if _is_complete(target):
        return target
    return convert_gguf(find_default_gguf(), target, on_progress=on_progress, cancel=cancel)


def ensure_gguf_converted(gguf: Path, *, on_progress: ProgressFn, cancel: CancelToken) -> Path:
    """Any other GGUF gets its own folder, keyed by name and content fingerprint."""
    from engine.paths import models_dir

    fingerprint = _fingerprint(gguf)
    target = models_dir() / f"{gguf.stem}-{fingerprint[:8]}"
    if _is_complete(target):
        return target
    return convert_gguf(gguf, target, on_progress=on_progress, cancel=cancel)


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()


def _is_complete(folder: Path) -> bool:
    return (folder / SOURCE_FILE).is_file() and (folder / "config.json").is_file()


def convert_gguf(gguf: Path, target: Path, *, on_progress: ProgressFn, cancel: CancelToken) -> Path:
    """Dequantize ``gguf`` and save it as a safetensors folder at ``target``."""
    _check_gguf_header(gguf)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    on_progress(0.0, f"Preparing {gguf.name} (one time only)…")
    try:
        _convert_into(gguf, tmp, on_progress=on_progress, cancel=cancel)
        _move_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    on_progress(0.75, "Model prepared")
    return target


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished conversion into place. A second Hearth started at the same time may
    have finished first: its complete folder (perhaps being loaded right now) is kept."""
    if _is_complete(target):
        return
    if target.exists():  # an old, incomplete conversion: keep it aside, never delete in silence
        target.rename(target.with_name(f".broken-{target.name}-{int(time.time())}"))
    try:
        os.replace(tmp, target)
    except OSError:
        if not _is_complete(target):  # not the race above: a real failure
            raise


def _check_gguf_header(gguf: Path) -> None:
    try:
        with gguf.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(gguf, f"cannot read the file ({exc.strerror or exc}).") from exc
    if magic != b"GGUF":
        raise ModelLoadError(gguf, "not a GGUF file (the first bytes are not 'GGUF').")


def _convert_into(gguf: Path, out: Path, *, on_progress: ProgressFn, cancel: CancelToken) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    done = threading.Event()

    def tick() -> None:  # the dequantizing call gives no progress: estimate from elapsed time
        start = time.monotonic()
        while not done.wait(0.25):
            elapsed = time.monotonic() - start
            fraction = 0.7 * (1 - 0.5 ** (elapsed / (EXPECTED_SECONDS / 2)))
            on_progress(0.05 + fraction, f"Converting {gguf.name} to safetensors (one time only)… {elapsed:.0f} s")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        if cancel.cancelled:
            raise CancelledError()
        from engine.gguf.full_model import dequantized

        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                     local_files_only=True, quantization_config=dequantized())
    except CancelledError:
        raise
    except Exception as exc:
        raise ModelLoadError(gguf, f"transformers cannot read this GGUF ({type(exc).__name__}: {exc}).") from exc
    finally:
        done.set()
        ticker.join()
    if cancel.cancelled:
        raise CancelledError()
    # The loaded model still says it is GGUF-quantized, which blocks saving;
    # its weights are plain fp32 now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / SOURCE_FILE).write_text(json.dumps({"gguf": str(gguf), "converted": time.time()}), encoding="utf-8")
