"""The seam: importing the engine or the app's entry point loads no torch (the window shows first), the
engine loads no Qt, and the engine's core opens a feature's own model type without importing the feature."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "accelerate")


def modules_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``code``."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["engine", "engine.cli", "gui.app", "gui.main_window"])
def test_importing_loads_no_torch(module):
    loaded = modules_after(f"import {module}")
    assert module.split(".")[0] in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_engine_loads_no_qt():
    loaded = modules_after("import engine, engine.cli, engine.loader, engine.tasks, engine.store")
    assert loaded.isdisjoint({"PySide6", "shiboken6", "pyqtgraph", "gui"})


def test_a_lab_folder_loads_through_the_table_of_model_types(tmp_path):
    """engine/model_types.py tells the loader which module registers ``hearth_lab``: a fresh process that
    never imported the lab opens a lab folder like any model."""
    from engine.lab.config import LabTrainConfig
    from engine.lab.train import train_lab

    (tmp_path / "text.txt").write_text("abcdefgh" * 200, encoding="utf-8")
    config = LabTrainConfig(files=(str(tmp_path / "text.txt"),), out_dir=str(tmp_path / "model"), size="tiny",
                            context=16, batch_size=4, max_steps=2, warmup_steps=1, eval_every=2, eval_batches=1,
                            dropout=0.0, sample_tokens=4, patience=0)
    folder = train_lab(config).out_dir
    loaded = modules_after(
        "from engine.config import LoadConfig\nfrom engine.loader import load_model\n"
        f"assert 'engine.lab' not in sys.modules\nlm = load_model(LoadConfig(path={str(folder)!r}, device='cpu'))\n"
        "assert lm.model.config.model_type == 'hearth_lab', lm.model.config.model_type")
    assert "torch" in loaded


def test_an_unknown_or_builtin_model_type_imports_nothing():
    from engine.model_types import REGISTERING_MODULES, register_model_type

    assert "llama" not in REGISTERING_MODULES
    for config in ({"model_type": "llama"}, {}, [], {"model_type": 3}):
        register_model_type(config)  # no error, nothing to import
