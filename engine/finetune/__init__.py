"""Fine-tuning: build a dataset from the user's files, train LoRA or full with transformers' Trainer.

Modules, one job each:

* ``config``     — ``DataConfig``, ``TrainConfig``, ``JobConfig`` (validated, saved as ``job.json``)
* ``sources``    — files and folders → examples (``Record``), with what was skipped and why
* ``data``       — examples → token sequences (text packed, chat/pairs masked), dedupe, split, preview
* ``defaults``   — settings that follow the data size and the hardware
* ``estimate``   — memory, time and disk before starting
* ``trainer``    — ``HearthTrainer`` (Trainer + optional L1 penalty)
* ``callbacks``  — cancel, progress/loss events, samples at evaluation
* ``runlog``     — a run folder's ``status.json`` and ``events.jsonl``
* ``train``      — ``run_training(job, ...)``: the one entry point (GUI, CLI, torchrun)
* ``merge``      — adapter + base → a full model folder
* ``perplexity`` — perplexity of a model on text
* ``export``     — a job as ``job.json`` plus torchrun / accelerate commands
* ``runs``       — the runs on disk (the Resume list, a run's state and history)
* ``tasks``      — the GUI worker tasks (``*_task``)
* ``errors``     — ``DatasetError``, ``TrainingError``, ``RunNotFoundError``
"""
