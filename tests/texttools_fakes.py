"""A stand-in for MainWindow for the text-tool view tests: a real worker, a fixed model, recorded messages."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine.config import SamplingConfig


class FakeSampling:
    def __init__(self, config: SamplingConfig) -> None:
        self._config = config

    def config(self) -> SamplingConfig:
        return self._config


class FakeWindow(QObject):
    model_changed = Signal(object)

    def __init__(self, lm=None, sampling: SamplingConfig | None = None) -> None:
        super().__init__()
        from gui.worker import EngineClient

        self.client = EngineClient(self)
        self.client.session.model = lm  # set before any task runs on the worker thread
        self.model_info = lm.describe() if lm is not None else {"name": "fake", "context_length": 1024}
        self.sampling_panel = FakeSampling(sampling or SamplingConfig(temperature=0.0, max_new_tokens=6))
        self.errors: list[str] = []
        self.notices: list[str] = []

    def show_error(self, text: str) -> None:
        self.errors.append(text)

    def show_notice(self, text: str) -> None:
        self.notices.append(text)

    def close(self) -> None:
        self.client.shutdown()
