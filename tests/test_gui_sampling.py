"""The sampling panel (and the form it shares with the presets editor) round-trips and persists settings."""

from engine.config import SamplingConfig


def test_panel_round_trips_and_persists(qtbot):
    from gui.chat.sampling_panel import SamplingPanel
    from gui.settings import configure_settings

    configure_settings()
    panel = SamplingPanel()
    qtbot.addWidget(panel)
    wanted = SamplingConfig(temperature=0.3, top_k=7, seed=5, stop=("###", "a\nb"))
    panel.set_config(wanted)
    assert panel.config() == wanted
    panel.temperature.setValue(1.2)
    again = SamplingPanel()
    qtbot.addWidget(again)
    assert again.config() == wanted.with_(temperature=1.2)  # saved in QSettings as it changed


def test_form_keeps_seed_and_stop_it_does_not_show(qtbot):
    from gui.chat.sampling_form import SamplingForm

    form = SamplingForm()
    qtbot.addWidget(form)
    form.set_config(SamplingConfig(seed=9, stop=("END",)))
    form.max_new_tokens.setValue(64)
    assert form.config() == SamplingConfig(seed=9, stop=("END",), max_new_tokens=64)
