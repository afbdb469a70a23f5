"""The Transformer lab: build a small Transformer from scratch, train it, and look inside any model.

* :mod:`engine.lab.model` — the classic Transformer, written to be read.
* :mod:`engine.lab.hf_model` — the same as a transformers model (lab folders load everywhere).
* :mod:`engine.lab.tokenizer`, :mod:`engine.lab.data`, :mod:`engine.lab.train` — training from files.
* :mod:`engine.lab.inspect` — attention maps, token probabilities, next-token distributions of any model.
* :mod:`engine.lab.tasks` — the worker tasks the GUI submits.
"""
