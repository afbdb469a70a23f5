"""One description per setting: SamplingConfig's and TrainConfig's field settings build both the window's
forms and hearth-cli's flags, so a field added with a setting shows up in both."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from engine.cli import build_parser
from engine.cli._common import add_setting_options, settings_from
from engine.config import SamplingConfig
from engine.errors import InvalidConfigError
from engine.finetune.config import DataConfig, TrainConfig
from engine.setting import described, setting


@dataclass(frozen=True)
class MoreSampling(SamplingConfig):
    typical_p: float = setting(1.0, "Typical-p", "Keep tokens close to the expected surprise (1 = off)",
                               minimum=0.05, maximum=1.0, step=0.05)


@dataclass(frozen=True)
class MoreTraining(TrainConfig):
    label_smoothing: float = setting(0.0, "Label smoothing", "Soften the targets", minimum=0.0, maximum=0.5,
                                     step=0.05, group="guards")
    packing_off: bool = setting(False, "Pad instead of packing", "One example per sequence", group="length")


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def subcommand(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_the_flags_people_already_use_are_kept():
    assert {"--temperature", "--top-p", "--top-k", "--min-p", "--repetition-penalty", "--max-new-tokens", "--seed",
            "--stop"} <= flags(subcommand("generate")) & flags(subcommand("chat"))
    assert {"--method", "--rank", "--alpha", "--dropout", "--target-modules", "--epochs", "--max-steps", "--lr",
            "--schedule", "--warmup", "--batch-size", "--grad-accum", "--seq-len", "--weight-decay", "--l1",
            "--eval-steps", "--save-steps", "--patience", "--val-fraction", "--no-dedupe", "--no-random-offset",
            "--prompt", "--device", "--seed"} <= flags(subcommand("finetune"))


@pytest.mark.parametrize("command, classes", [("generate", [SamplingConfig]), ("chat", [SamplingConfig]),
                                              ("finetune", [TrainConfig, DataConfig])])
def test_every_described_field_is_a_flag(command, classes):
    wanted = {d.flag for cls in classes for d in described(cls) if d.flag}
    assert wanted and wanted <= flags(subcommand(command))


def test_generate_flags_make_a_sampling_config():
    args = subcommand("generate").parse_args(["hi", "--temperature", "0", "--top-k", "3", "--stop", "END",
                                              "--stop", "###", "--seed", "4"])
    assert settings_from(args, SamplingConfig) == SamplingConfig(temperature=0.0, top_k=3, stop=("END", "###"),
                                                                 seed=4, max_new_tokens=256)


def test_finetune_flags_make_the_job(tmp_path):
    from engine.cli.finetune import job_from_args

    args = subcommand("finetune").parse_args([
        "a.txt", "--model", str(tmp_path), "--out", str(tmp_path / "run"), "--rank", "8", "--alpha", "12",
        "--dropout", "0.1", "--target-modules", "q_proj, v_proj", "--warmup", "0.2", "--no-dedupe",
        "--prompt", "Hi", "--prompt", "Yo", "--seq-len", "64", "--val-fraction", "0.2", "--seed", "3",
        "--method", "full"])
    job = job_from_args(args)
    t, d = job.train, job.data
    assert (t.method, t.lora_rank, t.lora_alpha, t.lora_dropout, t.warmup_ratio) == ("full", 8, 12, 0.1, 0.2)
    assert t.target_modules == ("q_proj", "v_proj") and t.sample_prompts == ("Hi", "Yo")
    assert t.learning_rate == 2e-5  # full fine-tuning's default when --lr is not given
    assert (d.seq_len, d.val_fraction, d.dedupe, d.random_offset, d.seed, t.seed) == (64, 0.2, False, True, 3, 3)
    assert d.paths[-1].endswith("a.txt")
    defaults = job_from_args(subcommand("finetune").parse_args(["--model", str(tmp_path), "--out", str(tmp_path)]))
    assert defaults.train == TrainConfig() and defaults.data == DataConfig(seed=TrainConfig().seed)


def test_a_new_sampling_field_appears_as_a_flag_and_a_form_row(qtbot):
    from gui.chat.sampling_form import SamplingForm

    parser = argparse.ArgumentParser()
    add_setting_options(parser, MoreSampling)
    assert settings_from(parser.parse_args(["--typical-p", "0.5"]), MoreSampling).typical_p == 0.5
    assert "Keep tokens close" in parser.format_help()

    class Form(SamplingForm):
        config_type = MoreSampling

    form = Form()
    qtbot.addWidget(form)
    label = form.form.labelForField(form.typical_p)
    assert label.text() == "Typical-p" and form.typical_p.maximum() == 1.0
    form.typical_p.setValue(0.4)
    assert form.config() == MoreSampling(typical_p=0.4)
    assert len(form.edit_signals()) == len(SamplingForm().edit_signals()) + 1


def test_a_new_training_field_appears_as_a_flag_and_a_form_row(qtbot):
    from gui.finetune.form import FinetuneForm

    parser = argparse.ArgumentParser()
    add_setting_options(parser, MoreTraining)
    args = parser.parse_args(["--label-smoothing", "0.1", "--packing-off"])
    made = settings_from(args, MoreTraining)
    assert (made.label_smoothing, made.packing_off) == (0.1, True)

    class Form(FinetuneForm):
        train_type = MoreTraining

    form = Form()
    qtbot.addWidget(form)
    assert form.label_smoothing.parentWidget().title() == "Over-fitting guards"
    assert form.label_smoothing.parentWidget().layout().labelForField(form.label_smoothing).text() == "Label smoothing"
    assert form.packing_off.text() == "Pad instead of packing"
    form.label_smoothing.setValue(0.25)
    form.packing_off.setChecked(True)
    with qtbot.waitSignal(form.changed):
        form.batch.setValue(8)
    config = form.train_config()
    assert (config.label_smoothing, config.packing_off, config.batch_size) == (0.25, True, 8)


def test_the_forms_show_every_described_field_and_keep_their_values(qtbot):
    from gui.chat.sampling_form import SamplingForm
    from gui.finetune.form import FinetuneForm

    sampling = SamplingForm()
    finetune = FinetuneForm()
    qtbot.addWidget(sampling)
    qtbot.addWidget(finetune)
    assert [d.name for d in sampling.fields] == ["temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                                                 "max_new_tokens", "repetition_guard"]
    sampling.repetition_guard.setChecked(False)
    assert sampling.config().repetition_guard is False
    assert finetune.train_config() == TrainConfig() and finetune.data_config([]) == DataConfig()
    finetune.method.setCurrentIndex(finetune.method.findData("full"))
    finetune.targets.setText("q_proj,v_proj")
    finetune.prompts.setPlainText("One\n\nTwo")
    finetune.dedupe.setChecked(False)
    train = finetune.train_config()
    assert (train.method, train.learning_rate, train.target_modules, train.sample_prompts) == \
        ("full", 2e-5, ("q_proj", "v_proj"), ("One", "Two"))
    assert finetune.data_config(["x"]).dedupe is False
    finetune.epochs.setMinimum(0)
    finetune.epochs.setValue(0)
    with pytest.raises(InvalidConfigError, match="epochs"):
        finetune.train_config()
