"""Fine-tuning: build a dataset from the user's files, train LoRA or full with transformers' Trainer.

Modules, one job each:

* ``config``     — ``DataConfig``, ``TrainConfig``, ``JobConfig`` (validated, saved as ``job.json``)
* ``data``       — files → examples → token blocks (text packed, chat/pairs masked), split, preview
* ``estimate``   — memory, time and disk before starting
* ``callbacks``  — cancel, progress/loss events, samples at evaluation, status file
* ``train``      — ``run_training(job, ...)``: the one entry point (GUI, CLI, torchrun)
* ``merge``      — adapter + base → a full model folder
* ``perplexity`` — perplexity of a model on text
* ``jobs``       — the runs on disk (for Resume), and the GUI worker tasks
"""
