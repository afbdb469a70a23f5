"""Load a GGUF straight onto the fast path: ``load_gguf(path, config, ...) -> LoadedModel``.

Order matters for bad input and for memory: the file is checked (format,
architecture keys, tensor shapes) and the memory estimate compared with what
is available before anything big is built, so a bad or too-big file fails at
once with one sentence and whatever was loaded before stays loaded.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from engine.cancel import CancelToken
from engine.config import LoadConfig
from engine.errors import ModelLoadError
from engine.fastpath.decoder import PREFILL_CHUNK, FastDecoder, Prepared, fingerprint
from engine.fastpath.forward import LeanForward
from engine.gguf import cache, memory
from engine.gguf.metadata import ModelMeta, check_shapes, read_meta
from engine.gguf.reader import GGUFFile, open_gguf
from engine.gguf.tokenizer import build_tokenizer
from engine.gguf.trim import Repack, repack_heap, trim

if TYPE_CHECKING:
    from engine.loader import LoadedModel

ProgressFn = Callable[[float, str], None]

# llama.cpp's general.file_type numbers (llama_ftype) for the common files.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
              18: "Q6_K", 32: "BF16"}


class GGUFDecoder(FastDecoder):
    """The fast decoder over weights built from the file: ready at once, never repacked, never cached."""

    def __init__(self, lm: LoadedModel, forward: LeanForward, spec: Any, label: str) -> None:
        self._ready_forward, self._spec = forward, spec
        super().__init__(lm, "int8" if lm.device.type == "cpu" else "exact", disk_cache=False)
        self.mode = label
        self.prepare()

    def _build(self, lm: LoadedModel) -> Prepared:
        return Prepared(spec=self._spec, forward=self._ready_forward, mode=self.mode,
                        fingerprint=fingerprint(lm.model), model=lm.model)

    def _cache_path(self, lm: LoadedModel, snapshot: tuple):
        return None


def load_gguf(path: str | Path, config: LoadConfig, *, on_progress: ProgressFn, cancel: CancelToken,
              name: str | None = None) -> Any:
    """Raises BadModelFileError / NotEnoughMemoryError (nothing loaded), or DirectUnsupported for an
    architecture this path does not read (the caller converts such files instead)."""
    path = Path(path)
    with repack_heap() as heap:  # the build's temporaries go back to the OS; the heap's policy after (trim.py)
        return _read(path, config, name, heap, on_progress=on_progress, cancel=cancel)


def _read(path: Path, config: LoadConfig, name: str | None, heap: Repack, *, on_progress: ProgressFn,
          cancel: CancelToken) -> Any:
    on_progress(0.02, f"Opening {path.name}…")
    f = open_gguf(path)
    try:
        meta = read_meta(f)
        heap.keep = not heap_holes_fit(meta, f.size)
        check_shapes(f, meta)
        needed = memory.of_file(f, meta)
        memory.check_fits(path, needed.total)
        cancel.raise_if_cancelled()
        on_progress(0.05, f"Reading the tokenizer of {path.name}…")
        tokenizer = build_tokenizer(f)
        quant = quant_label(f)
        f.drop_metadata()  # everything needed from it is read: free it before the weights are built
        gc.collect()  # the builder's wrapper and vocabulary dicts sit in reference cycles
        trim()
        return _build(f, meta, tokenizer, needed, quant, config, name or path.stem, on_progress=on_progress,
                      cancel=cancel)
    finally:
        f.close()


def _build(f: GGUFFile, meta: ModelMeta, tokenizer: Any, needed: memory.MemoryEstimate, quant: str,
           config: LoadConfig, name: str, *, on_progress: ProgressFn, cancel: CancelToken) -> Any:
    from engine.device import pick_device
    from engine.gguf.model import GGUFCausalLM
    from engine.loader import LoadedModel

    device = pick_device(config.device)
    spec = meta.spec()
    packed = cache.load(f.path, spec) if device.type == "cpu" else None
    if packed is None:
        packed = _repack(f, meta, device, on_progress=on_progress, cancel=cancel)
    else:
        on_progress(0.9, f"Read the packed weights of {f.path.name} from the cache")
    ropes = meta.ropes()
    dtype = torch.float32  # the residual stream and KV cache; matmul inputs are bf16

    def new_forward() -> LeanForward:
        return LeanForward(packed, spec, ropes, device, dtype)

    model = GGUFCausalLM(meta.shape_config(), new_forward, parameter_count(f), str(f.path), quant, device=device)
    lm = LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=torch.bfloat16,
                     context_length=meta.context, name=name, path=f.path)
    lm.extras["gguf"] = {"path": str(f.path), "quantization": quant, "file_bytes": f.size,
                         "expected_bytes": needed.running, "architecture": meta.arch}
    decoder = GGUFDecoder(lm, new_forward(), spec, f"GGUF {quant}")
    lm.extras["decoder"] = decoder
    lm.extras["prepare_fast_path"] = decoder.prepare_in_background
    trim()
    on_progress(1.0, "Ready")
    return lm


def _repack(f: GGUFFile, meta: ModelMeta, device: torch.device, *, on_progress: ProgressFn,
            cancel: CancelToken) -> Any:
    from engine.gguf.pack import build_weights

    threads = torch.get_num_threads()
    # One thread: repacking is many small memory-bound ops, and with two threads on a busy machine
    # it was 12x slower (12.5 s against 1.0 s for the default model).
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            packed = build_weights(f, meta, device=device, on_progress=on_progress, cancel=cancel)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ModelLoadError(f.path, "not enough memory to load this model.") from exc
    finally:
        torch.set_num_threads(threads)
    if device.type == "cpu" and time.perf_counter() - start > cache.CACHE_AFTER_S:
        on_progress(0.95, f"Saving the packed weights of {f.path.name} for next time…")
        cache.save(f.path, packed)
    return packed


# What a load keeps resident besides the weights and the KV cache whatever the file's size: the tokenizer (~13 MiB),
# library code paged in (~18), the modules it imports (~11), Python's object arenas (~6) (bench/README.md, GGUF direct).
RUNTIME_OVER_WEIGHTS = 48 << 20


def heap_holes_fit(meta: ModelMeta, file_bytes: int) -> bool:
    """Whether, after loading, glibc's heap may keep what a prompt pass frees (the pass reuses it: no page faults,
    15-30 % faster prompts) within issue #11's bound, 1.5 x the file + KV cache + base. Its holes are about one prompt
    chunk's activations (float32: gate|up, the activation, q|k|v, a few [chunk, hidden]; measured 8 MB for the default
    model, 34 MB for a 1 B llama); the half file of slack must hold them and the load's own costs. The default model
    (94 MiB) has ~4 MiB to spare: its blocks stay mapped each on their own."""
    qkv = (meta.heads + 2 * meta.kv_heads) * meta.head_dim
    holes = PREFILL_CHUNK * (3 * meta.intermediate + 4 * meta.hidden + qkv) * 4
    return RUNTIME_OVER_WEIGHTS + holes <= file_bytes // 2


def quant_label(f: GGUFFile) -> str:
    """"Q4_K_M", or the commonest matrix type when the file does not say."""
    file_type = f.value("general.file_type", None)
    if isinstance(file_type, int) and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    counts = Counter(t.tensor_type.name for t in f.reader.tensors if len(t.shape) == 2)
    return counts.most_common(1)[0][0] if counts else "unknown"


def parameter_count(f: GGUFFile) -> int:
    return sum(int(t.n_elements) for t in f.reader.tensors if not t.name.startswith("rope_"))
