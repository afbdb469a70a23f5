"""``hearth --self-test``: the real window, the real model, a real question.

Loads the default model through the worker, types a question into the chat
box and presses Enter as a user would, then waits for the streamed reply while
a 5 ms timer measures the longest gap between event-loop ticks (the longest
time the window could not have repainted). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtTest import QTest

from engine.config import SamplingConfig

QUESTION = "Write two sentences about the sea."
TIMEOUT_S = 600


class SelfTest(QObject):
    def __init__(self, window, app, startup_to_window_s: float, screenshot: str | None = None) -> None:
        super().__init__(window)
        self.screenshot = screenshot
        self.window = window
        self.app = app
        self.report: dict = {"ok": False, "startup_to_window_s": round(startup_to_window_s, 3)}
        self.max_gap = 0.0
        self._last_tick: float | None = None
        self.ticker = QTimer(self, interval=5, timerType=Qt.TimerType.PreciseTimer, timeout=self._tick)
        window.model_changed.connect(self._on_model)
        window.client.submitted.connect(lambda task: task.failed.connect(self._on_failed))
        window.chat.reply_finished.connect(self._on_reply)
        QTimer.singleShot(TIMEOUT_S * 1000, lambda: self._fail(f"no reply within {TIMEOUT_S} s"))

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None:
            self.max_gap = max(self.max_gap, now - self._last_tick)
        self._last_tick = now

    def _on_model(self, info: dict) -> None:
        self.report["model"] = info["name"]
        self.report["device"] = info["device"]
        chat = self.window.chat
        chat.sampling_override = SamplingConfig(temperature=0.0, max_new_tokens=64, repetition_penalty=1.1)
        self.ticker.start()
        chat.input.setFocus()
        QTest.keyClicks(chat.input, QUESTION)
        QTest.keyClick(chat.input, Qt.Key.Key_Return)
        if chat.task is None:
            self._fail("pressing Enter in the chat box did not send the message")

    def _on_reply(self, result) -> None:
        self.ticker.stop()
        if result is None:
            return  # _on_failed reports it
        self.report.update(
            ok=result.new_tokens >= 1 and bool(result.text.strip()), reply=result.text,
            new_tokens=result.new_tokens, tok_s=round(result.tok_s, 2), ttft_s=round(result.ttft_s, 3),
            finish_reason=result.finish_reason, max_ui_stall_ms=round(self.max_gap * 1000, 1),
            decoder=getattr(result, "decoder", ""), kernels=_kernels())  # which loop answered, on which kernels
        if not self.report["ok"]:
            self.report["error"] = "the model gave an empty reply"
        self._finish()

    def _forget_conversation(self) -> None:
        """The check's own chat is not the user's: leave their history as it was."""
        saved = getattr(self.window.chat, "saved", None)
        if saved is None or saved.store is None or saved.conversation_id is None:
            return
        try:
            saved.store.delete_conversation(saved.conversation_id)
        except Exception as exc:  # never fail the check over this
            print(f"self-test: could not remove its conversation: {exc}", file=sys.stderr)

    def _on_failed(self, message: str, error_type: str) -> None:
        self._fail(f"{error_type}: {message}")

    def _fail(self, message: str) -> None:
        if "error" not in self.report and not self.report.get("ok"):
            self.report["error"] = message
            self.report["ok"] = False
            self._finish()

    def _finish(self) -> None:
        if self.screenshot:
            self.app.processEvents()  # let the status bar lay out its new text first
            self.window.grab().save(self.screenshot)
        self._forget_conversation()
        print(json.dumps(self.report, ensure_ascii=False), flush=True)
        self.window.close()
        self.app.exit(0 if self.report.get("ok") else 1)


def _kernels() -> str:
    """Which matmul kernels this machine runs (compiled here, compiled ahead, or torch's and why)."""
    from engine.fastpath.kernels import build

    return build.describe()
