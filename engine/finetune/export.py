"""Export a job for a bigger machine: its ``job.json`` and the commands that run it there."""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.finetune.config import JobConfig


def launch_commands(job_file: Path | str, processes: int = 2) -> dict[str, str]:
    """The same entry point under torchrun (CPU gloo or GPUs) and accelerate."""
    job_file = shlex.quote(str(job_file))
    return {
        "single": f"hearth-cli finetune --config {job_file}",
        "torchrun": f"torchrun --nproc_per_node={processes} -m engine.cli finetune --config {job_file}",
        "accelerate": f"accelerate launch --num_processes {processes} -m engine.cli finetune --config {job_file}",
        "resume": f"hearth-cli finetune --config {job_file} --resume",
    }


def export_run_script(job: JobConfig, folder: Path | str, processes: int = 2) -> tuple[Path, str]:
    """Write ``job.json`` and ``run.sh`` into ``folder``; return the job file and the script text."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    job_file = job.save(folder / "job.json")
    commands = launch_commands(job_file.name, processes)
    script = "\n".join([
        "#!/bin/sh",
        "# Fine-tuning job exported by Hearth. Edit base_model, data.paths and out_dir in job.json",
        "# if the files live elsewhere on this machine, then run one of these:",
        f"# one process:           {commands['single']}",
        f"# {processes} processes (torchrun): {commands['torchrun']}",
        f"# accelerate:            {commands['accelerate']}",
        f"# after an interruption: {commands['resume']}",
        'cd "$(dirname "$0")"',
        commands["torchrun"],
        "",
    ])
    (folder / "run.sh").write_text(script, encoding="utf-8")
    return job_file, script
