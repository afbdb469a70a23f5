"""``hearth-cli lab``: train, generate, attention (with a PNG), probabilities, next tokens."""

import pytest

from engine.cli import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-cli")
    (root / "c.txt").write_text("abcdefgh" * 300, encoding="utf-8")
    code = main(["lab", "train", str(root / "c.txt"), "--out", str(root / "m"), "--context", "16",
                 "--batch-size", "8", "--steps", "6", "--eval-every", "3", "--device", "cpu"])
    assert code == 0
    return root / "m"


def test_train_saves_a_model(trained, capsys):
    assert (trained / "model.safetensors").is_file() and (trained / "lab.json").is_file()


def test_generate_from_the_lab_model(trained, capsys):
    assert main(["lab", "generate", str(trained), "abc", "--max-new-tokens", "5", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip()) == 5  # five characters from a character-level model


def test_attention_png(trained, tmp_path, capsys):
    png = tmp_path / "a.png"
    assert main(["lab", "attention", "--model", str(trained), "abcd", "--layer", "1", "--head", "2",
                 "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "layer 1, head 2" in out and "'d'" in out
    assert main(["lab", "attention", "--model", str(trained), "abcd", "--layer", "9"]) == 2


def test_probs_and_next(trained, capsys):
    assert main(["lab", "probs", "--model", str(trained), "abcdefgh"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(["lab", "next", "--model", str(trained), "abc", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "s.txt").write_text("tiny", encoding="utf-8")
    assert main(["lab", "train", str(tmp_path / "s.txt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Too little text" in err and "Traceback" not in err
