"""The fast decode loop that ``generate_ids`` uses through ``lm.extras["decoder"]``.

A ``FastDecoder`` is attached to a LoadedModel at load time but does nothing
until it is prepared (weights packed, or read from the disk cache). In the app
preparation runs on a background thread, and until it is ready ``supports``
says no, so replies start at once on the plain transformers path. Elsewhere
(CLI, scripts) the first decode prepares it on the spot.

It keeps the KV cache between calls: when a new prompt starts with the tokens
of the previous one (the next turn of a chat), only the new part is computed.
If the model's weights change in place (training, merging an adapter) the
packed copy is stale; the decoder notices, steps aside, and prepares again.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from engine.config import SamplingConfig
from engine.fastpath import weights as W
from engine.fastpath.forward import LeanForward
from engine.fastpath.graph import StaticStep
from engine.fastpath.sampler import Sampler
from engine.fastpath.threads import ThreadChooser
from engine.fastpath.spec import ArchSpec, UnsupportedModelError, base_model, describe, rope_tables

if TYPE_CHECKING:
    from engine.loader import LoadedModel

PREFILL_CHUNK = 256  # prompt tokens per forward: bounds memory (512: +4 MiB peak, same speed), cancel checked between

IDLE, PREPARING, READY, OFF = "idle", "preparing", "ready", "off"


@dataclass
class Prepared:
    spec: ArchSpec
    forward: LeanForward
    mode: str
    fingerprint: tuple
    model: Any  # the module the weights came from


def fingerprint(model: Any) -> tuple:
    """Changes when any parameter is replaced or modified in place (``_version`` counts writes)."""
    params = list(model.parameters())
    return (id(model), len(params), sum(map(_version, params)), hash(tuple(id(p) for p in params)),
            str(params[0].device) if params else "")


def _version(tensor: torch.Tensor) -> int:
    try:
        return tensor._version
    except RuntimeError:  # an inference tensor keeps no version counter (and cannot be changed in place)
        return 0


def resolve_mode(mode: str, device: torch.device) -> str:
    """``auto``: int8 weights on CPU (the int8 kernel is CPU-only here), the model's dtype elsewhere."""
    if mode == "auto":
        return "int8" if device.type == "cpu" else "exact"
    if mode == "int8" and device.type != "cpu":
        return "exact"
    if mode not in W.MODES:
        raise ValueError(f"fast path mode must be auto, exact or int8, not {mode!r}")
    return mode


class FastDecoder:
    def __init__(self, lm: LoadedModel, mode: str = "auto", *, disk_cache: bool = True,
                 static_step: bool | None = None) -> None:
        """``static_step``: decode steps of fixed shapes (graph.py), captured in a CUDA graph on CUDA;
        None: on CUDA only, unless HEARTH_CUDA_GRAPH=0."""
        self._lm = weakref.ref(lm)
        if static_step is None:
            static_step = lm.device.type == "cuda" and os.environ.get("HEARTH_CUDA_GRAPH", "1") != "0"
        self.static_step = static_step
        self._static: StaticStep | None = None
        self.requested_mode = mode
        self.mode = resolve_mode(mode, lm.device)
        self.disk_cache = disk_cache
        self.status, self.reason = IDLE, ""
        self._loaded_fingerprint = fingerprint(lm.model)  # the weights as read from lm.path
        self._prepared: Prepared | None = None
        self._state_lock = threading.Lock()  # guards status / _prepared / _thread
        self._decode_lock = threading.Lock()  # one decode at a time owns the KV cache
        self._thread: threading.Thread | None = None
        self._background = False  # prepare_in_background was asked for: never block a decode on it
        self._cached_ids: list[int] = []  # tokens whose keys/values are in the KV cache
        self.threads = ThreadChooser()  # intra-op threads per decode step, chosen by measuring
        self.prefill_threads = ThreadChooser(explore_every=4)  # per prompt token, for prompt chunks
        self.last_route = ""  # what the last decode() ran on, in words (results and the status bar show it)

    # -- preparation ---------------------------------------------------------------
    def prepare(self) -> bool:
        """Prepare now, on this thread. Returns whether the fast path is ready."""
        lm = self._lm()
        if lm is None:
            return False
        with self._state_lock:
            self.status = PREPARING
        try:
            prepared = self._build(lm)
            if lm.device.type == "cpu" and self.mode != "exact":
                from engine.fastpath.kernels import build

                build.load()  # compiled here (once per machine, ~1 s), not at the first token
        except UnsupportedModelError as exc:
            return self._set(OFF, str(exc), None)
        except Exception as exc:  # a failed preparation only costs speed: the plain path stays
            return self._set(OFF, f"preparation failed ({type(exc).__name__}: {exc})", None)
        return self._set(READY, "", prepared)

    def prepare_in_background(self, lm: LoadedModel = None) -> None:
        """Start preparing on a daemon thread; returns at once."""
        with self._state_lock:
            self._background = True
            if self.status in (PREPARING, OFF, READY) or (self._thread is not None and self._thread.is_alive()):
                return
            self.status = PREPARING
            self._thread = threading.Thread(target=self.prepare, name="hearth-fastpath-prepare", daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status == READY

    def _set(self, status: str, reason: str, prepared: Prepared | None) -> bool:
        with self._state_lock:
            self.status, self.reason = status, reason
            if prepared is not None or status == OFF:
                self._prepared = prepared
        return status == READY

    def _build(self, lm: LoadedModel) -> Prepared:
        model = lm.model
        spec = describe(model)
        snapshot = fingerprint(model)
        dtype = lm.dtype if self.mode == "exact" else torch.float32
        packed = self._packed(lm, spec, snapshot)
        forward = LeanForward(packed, spec, rope_tables(model, spec), lm.device, dtype)
        return Prepared(spec=spec, forward=forward, mode=self.mode, fingerprint=snapshot, model=model)

    def _packed(self, lm: LoadedModel, spec: ArchSpec, snapshot: tuple) -> W.PackedWeights:
        path = self._cache_path(lm, snapshot)
        embed = base_model(lm.model).model.embed_tokens.weight.detach()
        if path is not None and path.is_file():
            packed = W.load_cached(path, self.mode, spec, embed)
            if packed is not None:
                return packed
        with torch.inference_mode():
            packed = W.pack(lm.model, spec, self.mode, lm.dtype)
        if path is not None:
            W.save_cached(path, packed)
        return packed

    def _cache_path(self, lm: LoadedModel, snapshot: tuple):
        """Only int8 weights are worth caching, and only while they are exactly the folder's weights."""
        if not self.disk_cache or self.mode != "int8" or snapshot != self._loaded_fingerprint:
            return None
        if base_model(lm.model) is not lm.model:  # peft adapters on top: not the folder's weights
            return None
        key = W.cache_key(lm.path, self.mode, lm.dtype)
        if key is None:
            return None
        try:
            from engine.paths import subdir

            return subdir("fastpath") / f"{key}.safetensors"
        except Exception:  # an unusable data folder only costs the cache
            return None

    # -- the generation hook ---------------------------------------------------------
    def ready_for(self, lm: LoadedModel) -> Prepared | None:
        """The prepared state if it matches ``lm.model`` as it is now; prepares or re-prepares if needed."""
        if self.status == OFF:
            return None
        prepared = self._prepared
        if prepared is not None:
            if prepared.model is lm.model and prepared.fingerprint == fingerprint(lm.model):
                return prepared
            with self._state_lock:  # stale: the weights changed since they were packed
                self._prepared, self.status = None, IDLE
            self._cached_ids = []
        if self.status == PREPARING:
            return None
        if self._background:  # the app prepares off the GUI's path: keep the plain path meanwhile
            self.prepare_in_background()
            return None
        return self._prepared if self.prepare() else None

    def supports(self, sampling: SamplingConfig) -> bool:
        lm = self._lm()
        return lm is not None and self.ready_for(lm) is not None

    def describe(self) -> dict:
        info = {"status": self.status, "mode": self.mode, "reason": self.reason}
        lm = self._lm()
        if self.mode != "exact" and self.status == READY and lm is not None and lm.device.type == "cpu":
            from engine.fastpath.kernels import build

            info["kernels"] = build.describe()  # one-row matmuls: Hearth's kernels, or torch's and why
        return info

    def forget(self) -> None:
        """Drop the reusable prompt prefix (benchmarks: every run computes its whole prompt)."""
        with self._decode_lock:
            self._cached_ids = []

    def decode(self, lm: LoadedModel, input_ids: list[int], sampling: SamplingConfig, *,
               on_tokens: Callable[[list[int]], None], should_stop: Callable[[], bool]) -> list[int]:
        prepared = self.ready_for(lm)
        total = len(input_ids) + sampling.max_new_tokens
        if prepared is None or total > prepared.spec.max_positions or not input_ids:
            from engine.generation import hf_decode

            self.last_route = plain_route(lm, self) if prepared is None else \
                f"transformers: {total:,} tokens are more than the fast path's {prepared.spec.max_positions:,}"
            return hf_decode(lm, input_ids, sampling, on_tokens=on_tokens, should_stop=should_stop)
        graph = " + CUDA graph" if self.static_step and lm.device.type == "cuda" else ""
        self.last_route = f"fast {self.mode}{graph}"
        threads, streamed = torch.get_num_threads(), []

        def stream(ids: list[int]) -> None:
            streamed.extend(ids)
            on_tokens(ids)

        try:
            with self._decode_lock, torch.inference_mode():
                return self._decode(prepared, lm, input_ids, sampling, stream, should_stop)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:
            if streamed:  # the reply has begun: it cannot be taken back, so the error stands
                raise
            # A fault of the fast path itself must not cost the user the reply: step aside for good.
            self._set(OFF, f"decoding failed ({type(exc).__name__}: {exc})", None)
            self._cached_ids = []
            self.last_route = plain_route(lm, self)
            from engine.generation import hf_decode

            return hf_decode(lm, input_ids, sampling, on_tokens=on_tokens, should_stop=should_stop)
        finally:
            torch.set_num_threads(threads)  # the choosers change it per step

    def _decode(self, prepared: Prepared, lm: LoadedModel, input_ids: list[int], sampling: SamplingConfig,
                on_tokens: Callable[[list[int]], None], should_stop: Callable[[], bool]) -> list[int]:
        fwd, device = prepared.forward, lm.device
        eos = lm.eos_token_ids
        fwd.reserve(len(input_ids) + sampling.max_new_tokens)
        # The prompt but its last token runs in chunks; the last token always takes the one-token route,
        # so the first reply token's logits do not depend on how much of the prompt was already cached
        # (with int8 weights the two routes round differently): a seed gives the same reply again.
        last = len(input_ids) - 1
        pos = _common_prefix(self._cached_ids, input_ids, limit=last)
        self._cached_ids = input_ids[:pos]
        while pos < last:
            chunk = input_ids[pos:min(last, pos + PREFILL_CHUNK)]
            self._prefill(fwd, chunk, pos, device)
            pos += len(chunk)
            self._cached_ids = input_ids[:pos]
            if should_stop():
                return []
        logits = self._step(fwd, input_ids[last], last, device)
        pos += 1
        self._cached_ids = list(input_ids)
        sampler = Sampler(sampling, prepared.spec.vocab, input_ids, device)
        out: list[int] = []
        while True:
            token = sampler(logits)
            out.append(token)
            on_tokens([token])
            if token in eos or len(out) >= sampling.max_new_tokens or should_stop():
                return out
            logits = self._step(fwd, token, pos, device)
            pos += 1
            self._cached_ids.append(token)

    def _prefill(self, fwd: LeanForward, chunk: list[int], pos: int, device: torch.device) -> None:
        if device.type != "cpu":
            fwd.forward(torch.tensor(chunk, device=device), pos, logits=False)
            return
        n = self.prefill_threads.pick()
        torch.set_num_threads(n)
        start = time.perf_counter()
        fwd.forward(torch.tensor(chunk), pos, logits=False)
        self.prefill_threads.record(n, (time.perf_counter() - start) / len(chunk))

    def _step(self, fwd: LeanForward, token: int, pos: int, device: torch.device) -> torch.Tensor:
        """One token through the model, with the thread count the chooser picks (CPU only)."""
        if self.static_step:
            if self._static is None or not self._static.valid_for(fwd):
                self._static = StaticStep(fwd)  # a new cache (or model): capture again
            if device.type != "cpu":
                try:
                    return self._static(token, pos)
                except torch.OutOfMemoryError:
                    raise
                except RuntimeError:  # a capture CUDA refuses costs the graph, not the fast path
                    self.static_step, self._static = False, None
        if device.type != "cpu":
            return fwd.forward(torch.tensor([token], device=device), pos)
        n = self.threads.pick()
        torch.set_num_threads(n)
        start = time.perf_counter()
        logits = self._static(token, pos) if self.static_step else fwd.forward(torch.tensor([token]), pos)
        self.threads.record(n, time.perf_counter() - start)
        return logits


def _common_prefix(a: list[int], b: list[int], limit: int) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y or n >= limit:
            break
        n += 1
    return n


def route(lm: LoadedModel, decoder: Any, fast: bool) -> str:
    """Which decode loop produced a result, and if it is the plain one, why ("fast int8", "transformers: ...")."""
    if fast:
        return getattr(decoder, "last_route", "") or f"fast {getattr(decoder, 'mode', '')}".strip()
    return plain_route(lm, decoder)


def plain_route(lm: LoadedModel, decoder: Any) -> str:
    """"transformers", with the reason the fast path did not run, when there is one."""
    if decoder is None:
        reason = lm.extras.get("fast_path_off", "")
    elif getattr(decoder, "status", None) == PREPARING:
        reason = "the fast path is still being prepared"
    elif getattr(decoder, "status", None) == OFF:
        reason = decoder.reason
    else:
        reason = ""
    return f"transformers: {reason}" if reason else "transformers"


def default_mode() -> str:
    return os.environ.get("HEARTH_FAST_MODE", "auto")
