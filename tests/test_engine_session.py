"""engine.session: the one model cache (by path, re-read when the weights change, oldest dropped first)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from engine.errors import ModelNotLoadedError
from engine.session import Session


def fake_opener(opened):
    def opener(path, device):
        opened.append((path, device))
        return SimpleNamespace(path=path, device=device, extras={})
    return opener


def folder(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    (path / "model.safetensors").write_bytes(b"x")
    return str(path)


def test_current_model_and_missing_model(tmp_path):
    session = Session()
    with pytest.raises(ModelNotLoadedError):
        session.model_for(None)
    current = SimpleNamespace(path=tmp_path / "main", device="cpu", extras={})
    session.set_model(current)
    assert session.model_for(None) is current
    assert session.model_for(str(tmp_path / "main")) is current


def test_extra_models_are_cached_and_reread_when_their_weights_change(tmp_path):
    opened = []
    session = Session()
    a = folder(tmp_path, "a")
    first = session.model_for(a, opener=fake_opener(opened))
    assert session.model_for(a, opener=fake_opener(opened)) is first
    assert opened == [(a, "auto")]
    weights = tmp_path / "a" / "model.safetensors"
    weights.write_bytes(b"longer now")
    os.utime(weights, ns=(1, 1))
    assert session.model_for(a, opener=fake_opener(opened)) is not first
    assert len(opened) == 2


def test_oldest_extra_model_is_dropped_first(tmp_path):
    opened = []
    session = Session(extra_models=2)
    a, b, c = (folder(tmp_path, n) for n in "abc")
    for path in (a, b, a, c):  # a is used again, so b is the oldest when c comes
        session.model_for(path, opener=fake_opener(opened))
    assert session.cached_paths() == [a, c]


def test_loader_models_through_the_cache(tiny_model_dir):
    session = Session()
    lm = session.model_for(str(tiny_model_dir))
    assert lm.path == tiny_model_dir
    assert "decoder" in lm.extras or "fast_path_off" in lm.extras  # the loader decided on the fast path
    assert session.model_for(str(tiny_model_dir)) is lm
