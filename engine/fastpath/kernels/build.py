"""Compile the kernels' C files once per machine into the data folder and load them with ctypes.

Every ``*.c`` beside this file goes into one shared library (gemv.c: one-row
matmuls; gemm.c: prompts; step.c: a whole decode step's layers). The library is keyed by the sources, the compiler
and its flags, and the CPU's feature flags (``-march=native`` code must not run on another CPU that
reads the same data folder). Compiling takes about a second, the first time
only; ``make setup`` does it ahead (``build.describe()`` loads, and so builds, the library).
A machine without a compiler (the packaged app on most desktops) loads the best of the
libraries ``prebuild`` compiled ahead for portable CPU levels, where they were shipped.
Anything else that goes wrong (no compiler, a failed build, a CPU without AVX2 and
FMA) leaves ``load()`` returning None with the reason in ``reason()``: the
linears then keep torch's kernels. The kernels run their best path here: AVX-512
VNNI (isa 2), else AVX2 + FMA (isa 1: faster than torch's AVX2 kernels,
bench/README.md); the plain C path alone (isa 0) was slower than torch's
kernels, so a CPU with neither keeps torch's. ``HEARTH_KERNELS`` chooses:
``0`` turns the kernels off, ``generic`` runs their plain C path, ``avx2`` the
AVX2 path from a library compiled without AVX-512 (``-mno-avx512f``: the code an
AVX2-only desktop CPU runs, for tests and benchmarks on an AVX-512 machine).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SOURCES = tuple(sorted(Path(__file__).parent.glob("*.c")))  # all compiled into one library
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=gnu11")
OPENMP = "-fopenmp"
ISA_NAMES = {0: "generic C", 1: "AVX2", 2: "AVX-512 VNNI"}
AVX2_ONLY = ("-mno-avx512f",)  # HEARTH_KERNELS=avx2: no AVX-512 instruction anywhere in the library
# Libraries compiled ahead for machines without a compiler (the packaged app: build.spec calls prebuild()), one per
# CPU level, best first: the flags each is compiled with, and the /proc/cpuinfo flags a CPU needs to run it.
PREBUILT = Path(__file__).with_name("prebuilt")
PORTABLE = {
    "avx512": (("-march=x86-64-v4", "-mavx512vnni", "-mavx512vbmi"),
               ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi", "avx2", "fma")),
    "avx2": (("-march=x86-64-v3",), ("avx2", "fma", "f16c", "bmi2")),
}
COMPILE_TIMEOUT = 120  # seconds

_state: dict = {}  # "lib" (ctypes.CDLL or None), "reason", "isa"
_compiled: dict[str, Path] = {}  # cache key -> the library this process built or found (any data folder)


def compiler() -> str | None:
    """The C compiler: ``CC`` if set, else the system's ``cc`` / ``gcc`` / ``clang``."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def _cpuinfo(*keys: str) -> list[str]:
    """The lines of /proc/cpuinfo for ``keys`` (one per core), [] where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.split(":")[0].strip() in keys]


def cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags."""
    lines = _cpuinfo("flags", "model name")
    return "\n".join(sorted(set(lines))) if lines else f"{platform.machine()} {platform.processor()}"


def cache_key(cc: str, flags: tuple[str, ...]) -> str:
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    digest = hashlib.sha256()
    sources = [part for src in SOURCES for part in (src.name.encode(), src.read_bytes())]
    for part in (*sources, " ".join(flags).encode(), version.encode(), cpu_signature().encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def build(directory: Path, cc: str | None = None, reuse: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """The compiled library under ``directory`` (compiled now if missing; with ``reuse``, one this process
    already has elsewhere, e.g. under another test's data folder); ``extra`` flags after ``FLAGS``. Raises
    RuntimeError on failure."""
    cc = cc or compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (cc, gcc or clang; set CC)")
    errors = []
    for flags in (FLAGS + extra + (OPENMP,), FLAGS + extra):  # without OpenMP the kernels run on one thread
        try:
            key = cache_key(cc, flags)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"{cc} --version failed: {exc}") from exc
        target = directory / f"gemv-{key}.so"
        if target.exists():
            return target
        if reuse and key in _compiled and _compiled[key].exists():
            return _compiled[key]
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gemv-", suffix=".so")
        os.close(fd)
        try:
            run = subprocess.run([cc, *flags, "-o", tmp, *map(str, SOURCES), "-lm"], capture_output=True, text=True,
                                 timeout=COMPILE_TIMEOUT)
            if run.returncode == 0:
                os.replace(tmp, target)  # atomic: another process may be building the same file
                _compiled[key] = target
                return target
            errors.append(run.stderr.strip().splitlines()[-1:] or [f"exit {run.returncode}"])
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append([str(exc)])
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError(f"{cc} could not compile the kernels ({', '.join(s.name for s in SOURCES)}): {errors[0][0]}")


def prebuild(directory: Path, cc: str | None = None) -> list[Path]:
    """Compile one library per ``PORTABLE`` level into ``directory`` (``kernels-<level>.so``), for a machine that
    has no compiler; returns those that compiled. The packaged app carries them in ``PREBUILT``."""
    cc = cc or compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (cc, gcc or clang; set CC)")
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for level, (flags, _) in PORTABLE.items():
        target = directory / f"kernels-{level}.so"
        portable = tuple(f for f in FLAGS if f != "-march=native") + flags + ("-mtune=generic", OPENMP)
        command = [cc, *portable, "-o", str(target), *map(str, SOURCES), "-lm"]
        if subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT).returncode == 0:
            made.append(target)
    return made


def cpu_flags() -> set[str]:
    lines = _cpuinfo("flags")
    return set(lines[0].split(":", 1)[1].split()) if lines else set()


def prebuilt(folder: Path | None = None) -> Path | None:
    """The best library compiled ahead (``prebuild``) that this CPU can run, or None."""
    folder, flags = folder or PREBUILT, cpu_flags()
    for level, (_, needs) in PORTABLE.items():
        path = folder / f"kernels-{level}.so"
        if path.is_file() and set(needs) <= flags:
            return path
    return None


def _library(choice: str) -> tuple[Path, bool]:
    """The library to load, and whether it was compiled ahead: this machine's own build (``-march=native``), or
    where it has no compiler (or the build fails) the best prebuilt one the packaged app carries."""
    from engine.paths import subdir

    try:
        return build(subdir("kernels"), extra=AVX2_ONLY if choice == "avx2" else ()), False
    except RuntimeError:
        path = prebuilt() if choice not in ("avx2", "generic") else None
        if path is None:
            raise
        return path, True


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.hearth_int4_gemv.argtypes = [p, i32, p, p, i32, p, p, i64, i64, i64, i32, i32]
    lib.hearth_int8_gemv.argtypes = [p, i32, p, p, p, p, i64, i64, i32, i32]
    for fn in (lib.hearth_int4_gemv, lib.hearth_int8_gemv, lib.hearth_gemv_isa, lib.hearth_gemv_openmp):
        fn.restype = ctypes.c_int
    return lib


def load() -> ctypes.CDLL | None:
    """The kernels' library, built and loaded once per process; None (and ``reason()``) where they cannot run."""
    if "lib" in _state:
        return _state["lib"]
    lib, reason, isa = None, "", 0
    choice = os.environ.get("HEARTH_KERNELS", "1").strip().lower()
    if choice in ("0", "off", "torch"):
        reason = "HEARTH_KERNELS=0"
    else:
        try:
            import torch  # noqa: F401  (its libgomp first: the library then shares torch's OpenMP runtime)

            path, ahead = _library(choice)
            lib = _declare(ctypes.CDLL(str(path)))
            _state["prebuilt"] = ahead
            isa = lib.hearth_gemv_isa()
            if choice == "generic":
                isa = 0
            elif isa < 1:
                lib, reason = None, "this CPU has no AVX2 + FMA (torch's kernels are faster than plain C)"
        except Exception as exc:  # never fatal: torch's kernels stay
            lib, reason = None, str(exc)
    if lib is None:
        log.info("one-row int4/int8 matmuls on torch's kernels: %s", reason)
    _state.update(lib=lib, reason=reason, isa=isa)
    return lib


def isa() -> int:
    """The ISA path the kernels run (``ISA_NAMES``); meaningful when ``load()`` is not None."""
    load()
    return _state["isa"]


def reason() -> str:
    """Why the kernels do not run ('' when they do)."""
    load()
    return _state["reason"]


def describe() -> str:
    """Which kernel one-row int4/int8 matmuls run, in words (the bench and the status say it)."""
    lib = load()
    if lib is None:
        return f"torch's kernels ({reason()})"
    threads = "" if lib.hearth_gemv_openmp() else ", one thread (no OpenMP)"
    ahead = ", compiled ahead (no compiler here)" if _state.get("prebuilt") else ""
    return f"Hearth's {ISA_NAMES.get(isa(), '?')} kernels, int8 activations per 32{threads}{ahead}"


def reset() -> None:
    """Choose again at the next ``load()`` (tests: another HEARTH_KERNELS or a missing compiler)."""
    _state.clear()

