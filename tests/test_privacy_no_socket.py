"""The privacy promise, checkable: with the server off, Hearth opens no socket at all."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-private"), context=2048)


def test_loading_chatting_summarizing_and_training_open_no_socket(model_dir, tmp_path, monkeypatch):
    from engine.chat_generation import chat
    from engine.config import ChatMessage, LoadConfig, SamplingConfig
    from engine.errors import GenerationError
    from engine.finetune.config import DataConfig, JobConfig, TrainConfig
    from engine.finetune.train import run_training
    from engine.loader import load_model
    from engine.texttools.summarize import SummaryConfig, summarize

    attempts: list[tuple] = []

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs) -> None:
            attempts.append(args)  # recorded even if a library swallows the error below
            raise OSError("Hearth must not open a socket while the server is off")

    monkeypatch.setattr(socket, "socket", NoSocket)
    lm = load_model(LoadConfig(path=str(model_dir), device="cpu"))
    sampling = SamplingConfig(max_new_tokens=8)
    assert chat(lm, [ChatMessage("user", "Hello")], sampling).new_tokens >= 1
    text = "The sea is wide and the waves are high. Ships sail over the sea at night. " * 40
    try:  # a random tiny model may write nothing worth keeping; what matters here is that it ran
        summarize(lm, text, SummaryConfig(length="short", max_new_tokens=8, max_chunk_tokens=256))
    except GenerationError as exc:
        assert "wrote nothing" in str(exc)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The sea is wide and the waves are high.\n" * 30, encoding="utf-8")
    job = JobConfig(base_model=str(model_dir), out_dir=str(tmp_path / "run"),
                    data=DataConfig(paths=(str(corpus),), seq_len=32),
                    train=TrainConfig(max_steps=2, eval_steps=2, save_steps=2, batch_size=2, sample_prompts=()))
    assert run_training(job).state == "finished"
    assert attempts == []
    with pytest.raises(OSError):  # and the trap does catch a socket when one is opened
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert len(attempts) == 1
