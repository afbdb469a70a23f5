"""Load a model: the embedded default, a transformers folder, or a GGUF file.

``load_model`` is the one entry point. It never downloads (see ``engine.offline``)
and turns every failure into a :class:`ModelLoadError` that names the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.cancel import CancelToken
from engine.config import LoadConfig
from engine.errors import CancelledError, ModelLoadError

if TYPE_CHECKING:  # types only: importing the loader stays free of torch
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from engine.gguf.model import GGUFCausalLM

ProgressFn = Callable[[float, str], None]

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


@dataclass
class LoadedModel:
    """A model ready to generate: what every engine operation takes."""

    model: PreTrainedModel | GGUFCausalLM  # in eval mode; GGUFCausalLM: a GGUF run quantized (logits only)
    tokenizer: PreTrainedTokenizerBase  # with a chat template (engine/chat_template.py)
    device: torch.device
    dtype: torch.dtype
    context_length: int
    name: str
    path: Path
    extras: dict = field(default_factory=dict)  # per-model caches (fast decode, ...)

    @property
    def eos_token_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config, self.model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(v for v in value if isinstance(v, int))
        return ids

    def describe(self) -> dict:
        info = {"name": self.name, "path": str(self.path), "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""), "context_length": self.context_length,
                "parameters": parameter_count(self.model)}
        gguf = self.extras.get("gguf")
        if gguf:  # run quantized from the file: its quantization is what the status bar should say
            info.update(dtype=f"GGUF {gguf['quantization']}", quantization=gguf["quantization"],
                        file_bytes=gguf["file_bytes"])
        return info

    @property
    def is_quantized_gguf(self) -> bool:
        """Read from a GGUF and run on its own quantization: ``model`` is a stand-in with logits only
        (``engine.gguf.full_model.full_model_for`` builds the transformers model when a feature needs it)."""
        return "gguf" in self.extras


def parameter_count(model: Any) -> int:
    count = getattr(model, "num_parameters", None)
    if callable(count):
        return int(count())
    return sum(p.numel() for p in model.parameters())


def _noop(fraction: float, message: str) -> None:
    pass


def load_model(config: LoadConfig | None = None, *, on_progress: ProgressFn | None = None,
               cancel: CancelToken | None = None) -> LoadedModel:
    """Load ``config.path`` (None: the default model) onto the chosen device."""
    config = config or LoadConfig()
    on_progress = on_progress or _noop
    cancel = cancel or CancelToken()
    from engine import convert
    from engine.hf_import import ensure_transformers

    ensure_transformers()  # before any thread-unsafe first import of transformers below

    if config.path is None:
        from engine.default_model import DEFAULT_MODEL_NAME, find_default_gguf

        if direct_gguf(config):
            return load_gguf_file(find_default_gguf(), config, name=DEFAULT_MODEL_NAME, on_progress=on_progress,
                                  cancel=cancel)
        folder = convert.ensure_default_model(on_progress=on_progress, cancel=cancel)
    else:
        path = Path(config.path)
        if not path.exists():
            raise ModelLoadError(path, "no such file or folder.")
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelLoadError(path, "not a model. Choose a model folder (with config.json) or a .gguf file.")
            if direct_gguf(config):
                return load_gguf_file(path, config, on_progress=on_progress, cancel=cancel)
            folder = convert.ensure_gguf_converted(path, on_progress=on_progress, cancel=cancel)
        else:
            folder = path
    cancel.raise_if_cancelled()
    return load_folder(folder, config, on_progress=on_progress, cancel=cancel)


def direct_gguf(config: LoadConfig) -> bool:
    """GGUF files run on their own quantization through the fast path, unless the fast path is off
    (``LoadConfig(fast=False)``, ``HEARTH_FAST_MODE=off``): then they are converted for transformers."""
    from engine.fastpath.decoder import default_mode

    return config.fast and default_mode() != "off"


def load_gguf_file(path: Path, config: LoadConfig, *, name: str | None = None, on_progress: ProgressFn,
                   cancel: CancelToken) -> LoadedModel:
    """Read ``path`` in place (engine.gguf); an architecture the direct path does not read is converted
    into a folder as before (and then runs on the fast path through transformers, or the plain path)."""
    from engine.gguf.load import load_gguf
    from engine.gguf.metadata import DirectUnsupported

    try:
        lm = load_gguf(path, config, on_progress=on_progress, cancel=cancel, name=name)
    except DirectUnsupported as exc:
        from engine import convert

        folder = convert.ensure_gguf_converted(path, on_progress=on_progress, cancel=cancel)
        lm = load_folder(folder, config, on_progress=on_progress, cancel=cancel)
        lm.extras["gguf_converted"] = f"converted, not read in place: {exc}"
        return lm
    cancel.raise_if_cancelled()
    return lm


def check_model_folder(folder: Path) -> Any:
    """Fail early, with a clear reason, on folders that are not models; return the parsed config.json."""
    if not (folder / "config.json").is_file():
        raise ModelLoadError(folder, "this folder has no config.json, so it is not a transformers model folder.")
    try:
        model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(folder / "config.json", f"the file is not valid JSON ({exc}).") from exc
    if not any(any(folder.glob(p)) for p in WEIGHT_PATTERNS):
        raise ModelLoadError(folder, "no weights found (expected model.safetensors or pytorch_model.bin).")
    for weights in folder.glob("*.safetensors"):
        _check_safetensors(weights)
    return model_config


def _check_safetensors(path: Path) -> None:
    """A truncated download passes the header check of some loaders; test the sizes."""
    import struct

    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("file shorter than its header")
            header_len = struct.unpack("<Q", raw)[0]
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length past the end of the file")
            header = json.loads(fh.read(header_len))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(path, f"the weights file is truncated or corrupt ({exc}).") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end > size:
        raise ModelLoadError(path, f"the weights file is truncated: {size:,} bytes, "
                                   f"but its header describes {8 + header_len + end:,}.")


def context_length_of(model_config: Any, tokenizer: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        value = getattr(model_config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10_000_000:
        return value
    return 2048


def load_folder(folder: Path, config: LoadConfig, *, on_progress: ProgressFn,
                cancel: CancelToken) -> LoadedModel:
    folder = Path(folder)
    model_config = check_model_folder(folder)
    from engine.gguf.memory import check_fits, footprint

    size = footprint(folder)
    if size is not None:  # refuse, with both numbers, what would swap the machine to a halt
        check_fits(folder, size.memory_bytes)
    on_progress(0.8, f"Loading {folder.name}…")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.device import pick_device, pick_dtype
    from engine.model_types import register_model_type

    register_model_type(model_config)  # a feature's own model type (the lab's Transformer)

    device = pick_device(config.device)
    dtype = pick_dtype(device, config.dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(folder, f"the tokenizer could not be read ({type(exc).__name__}: {exc}).") from exc
    cancel.raise_if_cancelled()
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    except torch.OutOfMemoryError as exc:
        raise ModelLoadError(folder, "not enough memory to load this model.") from exc
    except Exception as exc:
        raise ModelLoadError(folder, f"the weights could not be loaded ({type(exc).__name__}: {exc}).") from exc
    if cancel.cancelled:
        raise CancelledError()
    on_progress(1.0, "Ready")
    from engine.default_model import DEFAULT_MODEL_NAME

    name = DEFAULT_MODEL_NAME if folder.name == DEFAULT_MODEL_NAME else folder.name
    return wrap_model(model, tokenizer, folder, config, name=name, device=device)


def wrap_model(model: Any, tokenizer: Any, path: Path, config: LoadConfig | None = None, *, name: str | None = None,
               device: Any = None, extras: dict | None = None) -> LoadedModel:
    """The one way a model becomes a LoadedModel: on its device, in eval mode, with a prepared tokenizer
    and, when its architecture allows, the fast decode path.

    ``load_folder`` ends here, and so do the models the features open themselves (a fine-tuning
    adapter merged into its base, a lab folder opened as a masked model), so every model gets the same.
    """
    from engine.chat_template import prepare_tokenizer
    from engine.device import pick_device

    config = config or LoadConfig(path=str(path))
    device = device if device is not None else pick_device(config.device)
    model.to(device)
    model.eval()
    prepare_tokenizer(tokenizer)
    lm = LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=model.dtype,
                     context_length=context_length_of(model.config, tokenizer), name=name or Path(path).name,
                     path=Path(path), extras=dict(extras or {}))
    if config.fast:  # the fast decode path (engine/fastpath); prepared lazily, never blocks loading
        from engine.fastpath import attach

        attach(lm, config)
    return lm
