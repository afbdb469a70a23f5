"""Presets stored in the database: the built-in five, editable and resettable, and the user's own."""

from __future__ import annotations

import pytest

from engine.config import SamplingConfig
from engine.store import Store, StoreError

BUILTIN = ["Assistant", "Creative writer", "Customer support", "Translator", "Coder"]


def test_builtin_presets_exist_and_can_be_edited_and_reset():
    with Store() as store:
        presets = store.presets()
        assert [p.name for p in presets] == BUILTIN and all(p.builtin for p in presets)
        coder = store.preset_named("coder")
        changed = store.update_preset(coder.id, system_prompt="Only Rust.", sampling=SamplingConfig(temperature=0.0))
        assert changed.system_prompt == "Only Rust." and changed.sampling.greedy
    with Store() as store:  # persisted
        assert store.preset(coder.id).system_prompt == "Only Rust."
        restored = store.reset_preset(coder.id)
        assert restored.system_prompt == coder.system_prompt and restored.sampling == coder.sampling
        with pytest.raises(StoreError, match="built in"):
            store.delete_preset(coder.id)


def test_user_presets_are_added_named_uniquely_and_applied_to_a_conversation():
    with Store() as store:
        mine = store.create_preset("Haiku poet", "Answer in haiku.", SamplingConfig(temperature=1.2))
        assert store.presets()[-1].name == "Haiku poet" and not mine.builtin
        with pytest.raises(StoreError, match="already exists"):
            store.create_preset("haiku POET")
        with pytest.raises(StoreError, match="needs a name"):
            store.create_preset("   ")
        conv = store.create_conversation()
        applied = store.apply_preset(conv.id, mine.id)
        assert applied.preset_id == mine.id and applied.system_prompt == "Answer in haiku."
        assert applied.sampling.temperature == 1.2
        store.delete_preset(mine.id)
        kept = store.conversation(conv.id)
        assert kept.preset_id is None and kept.system_prompt == "Answer in haiku."  # the settings stay
