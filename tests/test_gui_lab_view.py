"""The lab view with pytest-qt: attention maps, token probabilities, next tokens, training, bad input."""

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, Signal

from engine.config import SamplingConfig


class FakeWindow(QObject):
    model_changed = Signal(object)

    def __init__(self):
        super().__init__()
        from gui.worker import EngineClient

        self.client = EngineClient(self)
        self.model_info = None
        self.errors, self.notices, self.loaded = [], [], []
        self.sampling_panel = type("Panel", (), {"config": lambda self: SamplingConfig(temperature=0.0)})()

    def show_error(self, text):
        self.errors.append(text)

    def show_notice(self, text):
        self.notices.append(text)

    def load_model(self, path=None):
        self.loaded.append(path)


def one_thread(session, **kwargs):
    """A task that makes its worker thread use one torch thread: far faster on a shared CPU."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def lab(qtbot, tiny_model_dir):
    from gui.lab.view import LabView

    window = FakeWindow()
    window.client.submit(one_thread)
    view = LabView(window)
    window.client.submit(one_thread, device="training")
    qtbot.addWidget(view)
    view.resize(1100, 800)
    view.add_model_folder(str(tiny_model_dir))
    yield view
    view.on_window_closing()
    window.client.shutdown()


def test_attention_heatmap_and_head_grid(lab, qtbot):
    panel = lab.attention
    panel.run()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30000)
    assert panel.result.weights.shape[:2] == (2, 4)  # the tiny Llama: 2 layers × 4 heads
    n = len(panel.result.tokens)
    assert panel.heatmap.matrix.shape == (n, n)
    assert "tiny" not in lab.window.errors
    panel.layer.setValue(1)
    panel.head.setCurrentIndex(3)  # head 2
    assert (panel.heatmap.matrix == panel.result.weights[1, 2]).all()
    panel.grid_mode.setChecked(True)
    assert panel.grid.maps.shape[0] == 4
    tile = panel.grid._tile_rect(1).center()
    qtbot.mouseClick(panel.grid, Qt.MouseButton.LeftButton, pos=tile)
    assert not panel.grid_mode.isChecked() and panel.head.currentIndex() == 2
    image = panel.current_picture().grab().toImage()
    assert image.width() > 100 and image.height() > 100


def test_token_probabilities_colour_and_tooltip(lab, qtbot):
    panel = lab.tokens
    panel.text.setPlainText("Hello there! How are you today?")
    panel.run()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30000)
    assert "perplexity" in panel.summary.text()
    tokens = panel.strip.tokens
    assert tokens[0].prob is None and all(0 <= t.prob <= 1 for t in tokens[1:])
    assert len(panel.strip.boxes) == len(tokens)
    tip = panel.strip.tooltip_for(2)
    assert "Top 5" in tip and tip.count("%") == 6
    assert panel.strip.index_at(panel.strip.boxes[2].center()) == 2
    qtbot.mouseClick(panel.strip, Qt.MouseButton.LeftButton, pos=panel.strip.boxes[2].center().toPoint())
    assert panel.details.text() == tip  # the alternatives stay in view after a click


def test_next_token_click_appends(lab, qtbot):
    panel = lab.next
    panel.prefix.setPlainText("The sea")
    panel.run()
    qtbot.waitUntil(lambda: len(panel.bars.items) == 20, timeout=30000)
    probs = [p for _, p in panel.bars.items]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    first = panel.candidates[0].text
    qtbot.mouseClick(panel.bars, Qt.MouseButton.LeftButton, pos=QPoint(200, 4 + panel.bars.ROW // 2))
    assert panel.prefix.toPlainText() == "The sea" + first


def test_too_little_text_is_reported(lab, qtbot, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("hello", encoding="utf-8")
    lab.train.files.add_paths([str(short)])
    lab.train.out_dir.setText(str(tmp_path / "out"))
    lab.train.start()
    qtbot.waitUntil(lambda: bool(lab.window.errors), timeout=30000)
    assert "Too little text" in lab.window.errors[-1] and "characters" in lab.window.errors[-1]
    assert lab.train.start_button.isEnabled()


def test_training_shows_loss_and_offers_the_model(lab, qtbot, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcdefgh " * 400, encoding="utf-8")
    panel = lab.train
    panel.files.add_paths([str(corpus)])
    panel.out_dir.setText(str(tmp_path / "model"))
    panel.steps.setValue(4)
    panel.eval_every.setValue(2)
    panel.start()
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel._task is None, timeout=120000)
    assert not lab.window.errors
    assert panel.plot.train_steps == [1, 2, 3, 4] and panel.plot.val_steps == [2, 4]
    assert "validation loss" in panel.samples.toPlainText()
    assert lab.model_path() == str(tmp_path / "model")  # the new model is what the viewers look at
    assert panel.chat_button.isEnabled()
    panel.chat_button.click()
    assert lab.window.loaded == [str(tmp_path / "model")]


def test_generate_appends_to_the_prefix(lab, qtbot):
    panel = lab.next
    panel.prefix.setPlainText("The sea")
    panel.generate()
    qtbot.waitUntil(lambda: not panel._generating, timeout=60000)
    assert not lab.window.errors
    assert panel.prefix.toPlainText().startswith("The sea") and len(panel.prefix.toPlainText()) > len("The sea")


def test_masked_lab_model_fills_blanks(lab, qtbot, tmp_path):
    from engine.lab.config import LabTrainConfig
    from engine.lab.train import train_lab

    (tmp_path / "c.txt").write_text("abcdefgh" * 200, encoding="utf-8")
    folder = train_lab(LabTrainConfig(files=(str(tmp_path / "c.txt"),), out_dir=str(tmp_path / "mlm"), size="tiny",
                                      objective="mlm", context=16, batch_size=8, max_steps=4, eval_every=4,
                                      eval_batches=1, sample_tokens=4)).out_dir
    lab.add_model_folder(folder)
    qtbot.waitUntil(lambda: "fills in blanks" in lab.info.text(), timeout=30000)
    assert not lab.next.fill_box.isHidden() and not lab.next.generate_button.isEnabled()
    lab.next.mask_input.setText("abc<mask>efgh")
    lab.next.fill()
    qtbot.waitUntil(lambda: lab.next.fill_button.isEnabled() and bool(lab.next.fill_result.text()), timeout=30000)
    assert lab.next.fill_result.text().startswith("Best guess: abc") and "blank 1:" in lab.next.fill_result.text()
