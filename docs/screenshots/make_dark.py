"""The dark-palette screenshots in docs/screenshots/ (chat-dark.png, lab-dark.png, finetune-dark.png).

    .venv/bin/python docs/screenshots/make_dark.py DATA_DIR docs/screenshots [chat lab finetune]

DATA_DIR is a scratch HEARTH_DATA_DIR (your own data is never touched). The window gets Qt's Fusion style and
a dark QPalette like a desktop's dark theme; every colour Hearth draws comes from that palette (gui/colors.py).
The fine-tune shot trains a tiny random model (tests/tiny_model.py) for 40 steps first, to have a run to show.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
DATA, OUT = Path(sys.argv[1]), Path(sys.argv[2])
WANT = sys.argv[3:] or ["chat", "lab", "finetune"]
os.environ["HEARTH_DATA_DIR"] = str(DATA)
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # palettes, tiny_model

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from palettes import dark_palette  # noqa: E402


app = QApplication([])
app.setStyle("Fusion")
app.setPalette(dark_palette())

from engine.config import SamplingConfig  # noqa: E402
from engine.scheduler import default_scheduler  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.settings import configure_settings  # noqa: E402
from gui.worker import EngineClient  # noqa: E402

configure_settings()


def wait(condition, timeout=600, what=""):
    end = time.time() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.time() > end:
            raise SystemExit(f"timed out waiting for {what}")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


window = MainWindow(EngineClient(scheduler=default_scheduler()))
window.resize(1374, 780)
window.show()
window.load_model(None)
wait(lambda: window.model_info is not None, what="the model")
print("model", window.model_info.get("name"), flush=True)

if "chat" in WANT:
    chat = window.chat
    window.show_view("Chat")
    chat.sampling_override = SamplingConfig(temperature=0.0, max_new_tokens=64, repetition_penalty=1.1)
    replies = []
    chat.reply_finished.connect(replies.append)
    chat.input.setFocus()
    QTest.keyClicks(chat.input, "Write two sentences about the sea.")
    QTest.keyClick(chat.input, Qt.Key.Key_Return)
    wait(lambda: replies, what="the reply")
    window.show_error("An example error: this is what a failure looks like.")
    wait(lambda: True)
    window.grab().save(str(OUT / "chat-dark.png"))
    window.error_banner.hide()
    print("chat done", flush=True)

if "lab" in WANT:
    window.show_view("Lab")
    wait(lambda: True)
    from gui.lab.view import LabView

    lab = window.findChild(LabView)
    lab.tabs.setCurrentWidget(lab.tokens)
    lab.tokens.run()
    wait(lambda: lab.tokens.strip.tokens, what="token probabilities")
    lab.tokens.strip.token_clicked.emit(11)
    wait(lambda: True)
    window.grab().save(str(OUT / "lab-dark.png"))
    print("lab done", flush=True)

if "finetune" in WANT:
    run = DATA / "runs" / "demo"
    if not (run / "events.jsonl").exists() and not any(run.glob("*.jsonl")):
        from tiny_model import make_tiny_model

        model = make_tiny_model(DATA / "models" / "tiny-llama")
        subprocess.run([sys.executable, "-m", "engine.cli", "finetune", "/usr/share/common-licenses", "--model",
                        str(model), "--out", str(run), "--max-steps", "40", "--eval-steps", "5", "--save-steps",
                        "20", "--seq-len", "64", "--batch-size", "4", "--lr", "3e-3", "--prompt",
                        "What may I do with this software?", "--sample-max-tokens", "16"], check=True)
    tiny = DATA / "models" / "tiny-llama"
    window.load_model(str(tiny))  # the run's base model: the view previews the data with its tokenizer
    wait(lambda: window.model_info and window.model_info.get("name") == "tiny-llama", what="the tiny model")
    window.show_view("Fine-tune")
    from gui.finetune.view import FinetuneView

    ft = window.findChild(FinetuneView)
    ft.files.add_paths(["/usr/share/common-licenses"])
    ft.refresh_runs()
    wait(lambda: ft.runs.count() > 1, what="the runs list")
    ft.runs.setCurrentIndex(1)
    wait(lambda: len(ft.plot.val_steps) > 0, what="the run's history", timeout=120)
    end = time.time() + 15
    wait(lambda: getattr(ft, "preview_task", None) is None and time.time() > end, what="preview", timeout=180)
    window.grab().save(str(OUT / "finetune-dark.png"))
    print("finetune done", flush=True)
window.close()
