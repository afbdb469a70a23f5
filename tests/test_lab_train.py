"""Training the lab's Transformer from scratch: both objectives learn, runs save, reload and resume."""

import json

import pytest

from engine.cancel import CancelToken
from engine.config import LoadConfig, SamplingConfig
from engine.lab.config import LabTrainConfig
from engine.lab.errors import LabRunError, NotEnoughTextError, TooBigError
from engine.lab.train import train_lab

PATTERN = "abcdefgh"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "pattern.txt"
    path.write_text(PATTERN * 400, encoding="utf-8")
    return path


def fast(files, out, **kw):
    """The tiny size cut down to seconds: short windows, no dropout, a brisk schedule."""
    settings = dict(files=(str(f) for f in files), out_dir=str(out), size="tiny", context=16, batch_size=16,
                    max_steps=60, learning_rate=3e-3, warmup_steps=5, eval_every=20, eval_batches=2,
                    dropout=0.0, sample_tokens=16, patience=0)
    settings.update(kw)
    settings["files"] = tuple(settings["files"])
    return LabTrainConfig(**settings)


@pytest.fixture(scope="module")
def clm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clm")
    (folder / "pattern.txt").write_text(PATTERN * 400, encoding="utf-8")
    events = []
    result = train_lab(fast([folder / "pattern.txt"], folder / "model"), on_event=events.append)
    return result, events


def test_causal_objective_learns_a_repeating_text(clm_run):
    result, events = clm_run
    assert result.finish_reason == "done" and result.steps == 60
    assert result.best_val_loss < 0.3  # from ln(11) ≈ 2.4 at the start
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [20, 40, 60]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert sum(e["kind"] == "train" for e in events) == 60


def test_masked_objective_learns_to_fill_blanks(corpus, tmp_path):
    result = train_lab(fast([corpus], tmp_path / "mlm", objective="mlm", max_steps=100, mask_fraction=0.3))
    assert result.best_val_loss < 0.5
    from engine.lab.inspect import fill_mask
    from engine.lab.loading import is_masked, load_any

    lm = load_any(tmp_path / "mlm", device="cpu")
    assert is_masked(lm)
    filled, options = fill_mask(lm, "abcd<mask>fghabc<mask>e")  # 13 characters + the start token: within 16
    assert filled == PATTERN + "abcde"
    assert len(options) == 2 and options[0][0][0] == "e"


def test_saved_folder_reloads_and_generates(clm_run):
    from engine.generation import generate
    from engine.loader import load_model

    folder = clm_run[0].out_dir
    names = {p.name for p in __import__("pathlib").Path(folder).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "lab.json"} <= names
    lm = load_model(LoadConfig(path=folder, device="cpu"))  # the same loader chat and the Notebook use
    assert lm.context_length == 16
    out = generate(lm, "abcd", SamplingConfig(temperature=0.0, max_new_tokens=8, repetition_penalty=1.0))
    assert out.text == "efghabcd"
    assert json.loads((lm.path / "lab.json").read_text())["objective"] == "clm"


def test_resume_goes_on_from_the_checkpoint(corpus, tmp_path):
    out = tmp_path / "run"
    first = train_lab(fast([corpus], out, max_steps=20, eval_every=10))
    assert first.steps == 20
    with pytest.raises(LabRunError, match="already holds"):
        train_lab(fast([corpus], out, max_steps=20))
    second = train_lab(fast([], out, max_steps=30, eval_every=10, resume=True))
    assert second.steps == 30
    steps = [e["step"] for e in second.history if e["kind"] == "train"]
    assert steps == list(range(1, 31))  # the log of the first part is kept


def test_resume_needs_a_run(tmp_path):
    with pytest.raises(LabRunError, match="no lab training run"):
        train_lab(fast([], tmp_path / "nothing", resume=True))


def test_cancel_keeps_a_usable_model(corpus, tmp_path):
    token = CancelToken()
    seen = []

    def on_event(event):
        seen.append(event)
        if event["kind"] == "train" and event["step"] == 3:
            token.cancel()

    result = train_lab(fast([corpus], tmp_path / "c"), cancel=token, on_event=on_event)
    assert result.finish_reason == "cancelled" and result.steps == 3
    assert (tmp_path / "c" / "model.safetensors").is_file()
    assert (tmp_path / "c" / "training" / "state.pt").is_file()


def test_too_little_text_says_how_much_is_needed(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("too short", encoding="utf-8")
    with pytest.raises(NotEnoughTextError, match=r"at least [\d,]+ are needed \(about [\d,]+ characters\)"):
        train_lab(fast([short], tmp_path / "o"))


def test_a_size_that_does_not_fit_is_refused(corpus, tmp_path, monkeypatch):
    import engine.lab.estimate as est

    monkeypatch.setattr(est, "available_memory", lambda device: 100 * 2**20)
    with pytest.raises(TooBigError, match="needs about .* only 100 MiB is free"):
        train_lab(fast([corpus], tmp_path / "big", size="medium"))
    assert not (tmp_path / "big" / "model.safetensors").exists()


def test_estimate_grows_with_size():
    from engine.lab.estimate import estimate

    small = estimate(LabTrainConfig(files=(), out_dir="x", size="tiny", device="cpu"))
    big = estimate(LabTrainConfig(files=(), out_dir="x", size="medium", device="cpu"))
    assert 300_000 < small.parameters < big.parameters
    assert small.memory_bytes < big.memory_bytes and small.step_seconds < big.step_seconds
    assert "M parameters" in small.describe()


def test_tokenizers_round_trip_text():
    from engine.lab.tokenizer import train_tokenizer

    text = "Hello, wörld!\n\tTabs and 東京."
    for kind in ("char", "bpe"):
        tok = train_tokenizer([text * 5], kind, vocab_size=300)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.mask_token_id is not None and tok.eos_token_id is not None
    assert len(train_tokenizer([text], "char")) == len(set(text)) + 3
