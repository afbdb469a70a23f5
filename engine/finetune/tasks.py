"""The worker tasks of the fine-tuning and compare views.

Tasks have the worker signature ``fn(session, *, on_text, on_progress, cancel, **kwargs)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.finetune.config import DataConfig, JobConfig
from engine.finetune.runs import ACTIVE

if TYPE_CHECKING:
    from engine.session import Session


def gui_threads() -> int | None:
    """CPU threads for training started from the window: None, as the CLI, every core with the count chosen
    by measuring (ThreadCallback: one thread where the machine's other programs keep it busy).

    It was cores - 1 "to leave one for the window": on 2 cores that halved training (146 against ~280
    tok/s), and the window trains in a child process and is idle meanwhile (bench/README.md, issue #14).
    """
    return None


def train_task(session: Session, *, on_text=None, on_progress=None, cancel=None, job: JobConfig, resume: bool = False,
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


PREVIEW_SEQUENCES = 1024  # tokenized for the preview at most (~0.5 M tokens at 512)


def preview_task(session: Session, *, on_text=None, on_progress=None, cancel=None, data: DataConfig, base_model: str):
    """Build the dataset with the base model's tokenizer; return it for the preview table."""
    from engine.finetune.data import Budget, build_dataset

    import torch

    tokenizer, context = load_tokenizer(session, base_model)
    _warm_up_imports()
    # A small corpus is counted exactly; of a big one only a spread-out share is tokenized for the
    # table (the totals are estimated from the sizes), so the preview of 100 MB takes seconds.
    built = build_dataset(data, tokenizer, max_context=context, on_progress=on_progress, cancel=cancel,
                          plan=lambda stats: Budget(train=PREVIEW_SEQUENCES, val=PREVIEW_SEQUENCES // 4))
    built.stats["gpu"] = torch.cuda.is_available()  # for the suggested settings
    return built


def _warm_up_imports() -> None:
    """Import the training libraries now, on this worker, while the user reads the preview.

    Importing holds the interpreter lock in long stretches; done here, it does not
    stall the window at the moment training starts.
    """
    from engine.hf_import import ensure_transformers

    ensure_transformers()  # another thread may be importing it for the first time
    import peft  # noqa: F401
    import transformers.trainer  # noqa: F401

    import engine.finetune.train  # noqa: F401


def load_tokenizer(session: Session, base_model: str) -> tuple[Any, int]:
    """The tokenizer and context length of a model folder, cached in the session."""
    cache = session.state.setdefault("finetune_tokenizers", {})
    if base_model not in cache:
        import json

        from engine.hf_import import ensure_transformers

        ensure_transformers()
        from transformers import AutoTokenizer

        from engine.errors import ModelLoadError
        from engine.gguf.full_model import gguf_tokenizer, is_gguf
        from engine.loader import check_model_folder

        if is_gguf(base_model):  # read from the file's metadata
            cache[base_model] = gguf_tokenizer(base_model)
            return cache[base_model]
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


def estimate_task(session: Session, *, on_text=None, on_progress=None, cancel=None, job: JobConfig, stats: dict):
    from engine.finetune.estimate import estimate

    return estimate(job, stats, threads=gui_threads())  # what the window trains on


def export_task(session: Session, *, on_text=None, on_progress=None, cancel=None, run_dir: str,
                name: str | None = None):
    from engine.finetune.merge import save_as_model

    return str(save_as_model(run_dir, name=name, on_progress=on_progress, cancel=cancel))


def list_runs_task(session: Session, *, on_text=None, on_progress=None, cancel=None, root: str | None = None) -> list:
    """Every fine-tuning run, newest first (reads each run's files: not for the UI thread)."""
    from engine.finetune.runs import list_runs

    return list_runs(root)


def tuned_outputs_task(session: Session, *, on_text=None, on_progress=None, cancel=None) -> list:
    """Compare's list: every run's result and every model saved from a run."""
    from engine.finetune.runs import tuned_outputs

    return tuned_outputs()


def run_history_task(session: Session, *, on_text=None, on_progress=None, cancel=None, run_dir: str) -> list[dict]:
    """A run's event file (losses, evaluations, samples), parsed."""
    from engine.finetune.runs import history

    return history(run_dir)


def tuned_model(session: Session, path: str) -> Any:
    """A LoadedModel for a run's result (an adapter merged into its base in memory, or a model
    folder), from the session's one model cache."""
    return session.model_for(path, opener=open_tuned)


def open_tuned(path: str, device: str) -> Any:
    if not (Path(path) / "adapter_config.json").is_file():
        from engine.config import LoadConfig
        from engine.loader import load_model

        return load_model(LoadConfig(path=path, device=device))
    from engine.config import LoadConfig
    from engine.device import pick_device
    from engine.finetune.merge import adapter_base, load_merged
    from engine.loader import wrap_model

    dev = pick_device(device)
    model, tokenizer = load_merged(path, device=str(dev))
    return wrap_model(model, tokenizer, Path(path), LoadConfig(path=path, device=device), device=dev,
                      name=f"{Path(path).parent.name} (LoRA)", extras={"base": adapter_base(path)})


def tuned_chat_task(session: Session, *, on_text=None, on_progress=None, cancel=None, path: str, messages,
                    sampling=None,
                    system_prompt: str = ""):
    """Chat with a run's result (the Compare view's right-hand side)."""
    from engine.chat_generation import chat

    if on_progress is not None:
        on_progress(0.0, "Loading the fine-tuned model…")
    lm = tuned_model(session, path)
    return chat(lm, list(messages), sampling, system_prompt=system_prompt, on_text=on_text, cancel=cancel)
