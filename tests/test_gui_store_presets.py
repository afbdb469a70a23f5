"""The presets editor: built-in presets edited and reset, user presets added and deleted."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.chat.history import ChatHistory
from gui.chat.presets_bar import PresetsBar
from gui.chat.presets_dialog import PresetsDialog


@pytest.fixture
def history():
    h = ChatHistory(lambda text: None)
    yield h
    h.store.close()


def names(dialog):
    return [dialog.list.item(i).text() for i in range(dialog.list.count())]


def test_edit_reset_add_and_delete_presets(qtbot, history, monkeypatch):
    dialog = PresetsDialog(history)
    qtbot.addWidget(dialog)
    assert names(dialog) == ["Assistant", "Creative writer", "Customer support", "Translator", "Coder"]
    dialog.list.setCurrentRow(3)
    assert dialog.name.text() == "Translator" and not dialog.delete_button.isEnabled()
    dialog.prompt.setPlainText("Translate into German.")
    dialog.sampling.temperature.setValue(0.0)
    dialog.save()
    translator = history.store.preset_named("Translator")
    assert translator.system_prompt == "Translate into German." and translator.sampling.greedy
    dialog.reset()
    assert history.store.preset_named("Translator").system_prompt.startswith("You are a professional translator")

    dialog.new_preset()
    assert names(dialog)[-1] == "My preset  (yours)" and dialog.delete_button.isEnabled()
    dialog.name.setText("Pirate")
    dialog.prompt.setPlainText("Talk like a pirate.")
    dialog.save()
    assert history.store.preset_named("pirate").system_prompt == "Talk like a pirate."
    dialog.name.setText("Coder")  # a name that is taken: a message, nothing changed
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    dialog.save()
    assert "already exists" in warnings[0] and history.store.preset_named("Pirate")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.delete()
    assert "Pirate  (yours)" not in names(dialog) and len(history.store.presets()) == 5


def test_presets_bar_lists_presets_and_reports_a_choice(qtbot, history):
    bar = PresetsBar(history)
    qtbot.addWidget(bar)
    assert [bar.combo.itemText(i) for i in range(bar.combo.count())][:3] == ["Custom", "Assistant",
                                                                                "Creative writer"]
    creative = history.store.preset_named("Creative writer")
    with qtbot.waitSignal(bar.preset_chosen) as blocker:
        bar.choose(creative.id)
    assert blocker.args[0].name == "Creative writer" and bar.current_id() == creative.id
    bar.show_preset(None)
    assert bar.combo.currentText() == "Custom" and bar.current_id() is None
