"""Shared test set-up: a temporary data folder for every test, Qt offscreen, tiny models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory, monkeypatch):
    """Every test gets an empty HEARTH_DATA_DIR: nothing touches the user's real data."""
    path = tmp_path_factory.mktemp("hearth-data")
    monkeypatch.setenv("HEARTH_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small matrices: one thread is as fast, and far faster when other processes share the CPU.

    Use it per module: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    """A loaded tiny model (shared: tests must not change its weights)."""
    from engine import LoadConfig, load_model

    return load_model(LoadConfig(path=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def default_lm(tmp_path_factory):
    """The real default model, converted once per test session into a temporary data folder."""
    from engine.default_model import find_default_gguf

    try:
        find_default_gguf()
    except Exception as exc:  # pragma: no cover - only without `make setup`
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("default-model-data")
    old = os.environ.get("HEARTH_DATA_DIR")
    os.environ["HEARTH_DATA_DIR"] = str(folder)
    try:
        from engine import LoadConfig, load_model

        lm = load_model(LoadConfig(device="cpu"))
    finally:
        if old is None:
            os.environ.pop("HEARTH_DATA_DIR", None)
        else:
            os.environ["HEARTH_DATA_DIR"] = old
    lm.extras["data_dir"] = folder
    return lm
