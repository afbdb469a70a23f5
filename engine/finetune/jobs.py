"""The runs on disk (for the Resume list) and the worker tasks of the fine-tuning view.

Tasks have the worker signature ``fn(session, *, on_text, on_progress, cancel, **kwargs)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.finetune.config import DataConfig, JobConfig
from engine.finetune.runlog import read_events, read_status

ACTIVE: set[str] = set()  # run folders training in this process right now
FINAL_STATES = ("finished", "early_stopped")


@dataclass
class RunInfo:
    folder: str
    name: str
    state: str  # running, interrupted, stopped, finished, early_stopped, failed
    method: str
    step: int
    max_steps: int
    base_model: str
    output: str | None  # adapter/ or model/ folder, once saved
    resumable: bool
    best_eval_loss: float | None
    ppl_before: float | None
    ppl_after: float | None
    updated: float
    message: str = ""

    @property
    def is_adapter(self) -> bool:
        return bool(self.output) and Path(self.output).name == "adapter"

    def label(self) -> str:
        return f"{self.name} — {self.state.replace('_', ' ')} at step {self.step}/{self.max_steps}"


def run_info(folder: Path | str) -> RunInfo | None:
    """What a run folder holds, or None if it is not a run."""
    from engine.finetune.train import last_checkpoint

    folder = Path(folder)
    if not (folder / "job.json").is_file():
        return None
    status = read_status(folder)
    try:
        job = JobConfig.load(folder)
    except Exception:  # noqa: BLE001 - a damaged job.json: list the run, but it cannot resume
        job = None
    state = status.get("state", "interrupted")
    if state == "running" and not _alive(status, str(folder)):
        state = "interrupted"
    output = None
    for name in ("adapter", "model"):
        if (folder / name).is_dir():
            output = str(folder / name)
    step, max_steps = int(status.get("step", 0) or 0), int(status.get("max_steps", 0) or 0)
    resumable = (job is not None and state not in ("running",) + FINAL_STATES
                 and last_checkpoint(folder) is not None)
    return RunInfo(str(folder), folder.name, state, status.get("method", job.train.method if job else "?"),
                   step, max_steps, job.base_model if job else "", output, resumable,
                   status.get("best_eval_loss"), status.get("ppl_before"), status.get("ppl_after"),
                   float(status.get("updated", folder.stat().st_mtime)), status.get("message", ""))


def _alive(status: dict, folder: str) -> bool:
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return folder in ACTIVE
    if os.name == "nt":  # os.kill(pid, 0) would end the process there; trust a recent heartbeat
        return time.time() - float(status.get("updated", 0)) < 300
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run under ``root`` (default: the runs folder), newest first."""
    from engine.paths import runs_dir

    root = Path(root) if root else runs_dir()
    runs = [info for p in root.iterdir() if p.is_dir() and (info := run_info(p)) is not None] \
        if root.is_dir() else []
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def new_run_dir(base_name: str) -> Path:
    """A fresh folder name under the runs folder: <model>-<date>-<time>."""
    from engine.paths import runs_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = runs_dir() / f"{base_name}-{stamp}"
    n = 2
    while folder.exists():
        folder = runs_dir() / f"{base_name}-{stamp}-{n}"
        n += 1
    return folder


# --- worker tasks -----------------------------------------------------------------------------------

def gui_threads() -> int:
    """CPU threads for training inside the window: one core is left for the window itself.

    On a busy machine this is also faster: torch's threads spin-wait for each other,
    and a thread the system puts aside stalls all the others.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def train_task(session, *, on_text=None, on_progress=None, cancel=None, job: JobConfig, resume: bool = False,
               on_event: Callable[[dict], None] | None = None, threads: int | None = None):
    import gc

    from engine.finetune.train import run_training

    # Libraries call gc.collect() during training (accelerate's free_memory); a full collection over
    # every object of torch and transformers holds the GIL for ~0.3 s and freezes the window. Objects
    # alive now are long-lived: moving them out of the collector's sight keeps each collection short.
    gc.freeze()
    ACTIVE.add(str(Path(job.out_dir)))
    try:
        return run_training(job, resume=resume, on_text=on_text, on_progress=on_progress, on_event=on_event,
                            cancel=cancel, threads=threads)
    finally:
        ACTIVE.discard(str(Path(job.out_dir)))


def preview_task(session, *, on_text=None, on_progress=None, cancel=None, data: DataConfig, base_model: str):
    """Build the dataset with the base model's tokenizer; return it for the preview table."""
    from engine.finetune.data import build_dataset

    import torch

    tokenizer, context = load_tokenizer(session, base_model)
    _warm_up_imports()
    built = build_dataset(data, tokenizer, max_context=context, on_progress=on_progress, cancel=cancel)
    built.stats["gpu"] = torch.cuda.is_available()  # for the suggested settings
    return built


def _warm_up_imports() -> None:
    """Import the training libraries now, on this worker, while the user reads the preview.

    Importing holds the interpreter lock in long stretches; done here, it does not
    stall the window at the moment training starts.
    """
    import peft  # noqa: F401
    import transformers.trainer  # noqa: F401

    import engine.finetune.train  # noqa: F401


def load_tokenizer(session, base_model: str) -> tuple[Any, int]:
    """The tokenizer and context length of a model folder, cached in the session."""
    cache = session.state.setdefault("finetune_tokenizers", {})
    if base_model not in cache:
        import json

        from transformers import AutoTokenizer

        from engine.errors import ModelLoadError
        from engine.loader import check_model_folder

        check_model_folder(Path(base_model))
        try:
            tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
            config = json.loads((Path(base_model) / "config.json").read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(base_model, f"the tokenizer could not be read ({exc}).") from exc
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        context = int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)
        cache[base_model] = (tokenizer, context)
    return cache[base_model]


def estimate_task(session, *, on_text=None, on_progress=None, cancel=None, job: JobConfig, stats: dict):
    from engine.finetune.estimate import estimate

    return estimate(job, stats)


def export_task(session, *, on_text=None, on_progress=None, cancel=None, run_dir: str, name: str | None = None):
    from engine.finetune.merge import save_as_model

    return str(save_as_model(run_dir, name=name, on_progress=on_progress, cancel=cancel))


def history(folder: Path | str) -> list[dict]:
    return read_events(Path(folder))


def tuned_model(session, path: str) -> Any:
    """A LoadedModel for a run's result: an adapter merged into its base in memory, or a model folder."""
    cache = session.state.setdefault("finetune_tuned", {})
    if path in cache:
        return cache[path]
    if (Path(path) / "adapter_config.json").is_file():
        import torch

        from engine.finetune.merge import adapter_base, load_merged
        from engine.loader import LoadedModel, context_length_of

        from engine.device import pick_device

        device = session.model.device if session.model is not None else pick_device("auto")
        model, tokenizer = load_merged(path, device=str(device))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        from engine.chat_generation import ensure_chat_template

        ensure_chat_template(tokenizer)
        run = Path(path).parent
        lm = LoadedModel(model=model, tokenizer=tokenizer, device=torch.device(str(device)), dtype=torch.float32,
                         context_length=context_length_of(model.config, tokenizer), name=f"{run.name} (LoRA)",
                         path=Path(path), extras={"base": adapter_base(path)})
    else:
        from engine.config import LoadConfig
        from engine.loader import load_model

        lm = load_model(LoadConfig(path=path, device="auto" if session.model is None else str(session.model.device)))
    cache.clear()  # one fine-tuned model at a time: they are as big as the base
    cache[path] = lm
    return lm


def tuned_chat_task(session, *, on_text=None, on_progress=None, cancel=None, path: str, messages, sampling=None,
                    system_prompt: str = ""):
    """Chat with a run's result (the Compare view's right-hand side)."""
    from engine.chat_generation import chat

    if on_progress is not None:
        on_progress(0.0, "Loading the fine-tuned model…")
    lm = tuned_model(session, path)
    return chat(lm, list(messages), sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)
