"""Sampling presets: a name, a system prompt and sampling settings, stored in the database."""

from __future__ import annotations

import json
import sqlite3
import time

from engine.config import SamplingConfig
from engine.store.builtin_presets import BUILTIN_PRESETS
from engine.store.errors import NotFoundError, StoreError
from engine.store.records import Preset


class PresetsMixin:
    def presets(self) -> list[Preset]:
        """Built-in presets first (in their order), then the user's, by name."""
        rows = self.db.query("SELECT * FROM presets ORDER BY builtin_key IS NULL, position, name COLLATE NOCASE")
        return [Preset.from_row(r) for r in rows]

    def preset(self, preset_id: int) -> Preset:
        row = self.db.query_one("SELECT * FROM presets WHERE id = ?", (preset_id,))
        if row is None:
            raise NotFoundError(f"There is no preset {preset_id}.")
        return Preset.from_row(row)

    def preset_named(self, name: str) -> Preset:
        row = self.db.query_one("SELECT * FROM presets WHERE name = ? COLLATE NOCASE", (name.strip(),))
        if row is None:
            raise NotFoundError(f"There is no preset named {name!r}.")
        return Preset.from_row(row)

    def create_preset(self, name: str, system_prompt: str = "", sampling: SamplingConfig | None = None) -> Preset:
        name = _clean_name(name)
        now = time.time()
        try:
            with self.db.write() as conn:
                cur = conn.execute(
                    "INSERT INTO presets (name, system_prompt, sampling, position, created_at, updated_at) "
                    "VALUES (?, ?, ?, 1000, ?, ?)",
                    (name, system_prompt, json.dumps((sampling or SamplingConfig()).to_dict()), now, now))
        except StoreError as exc:
            _raise_if_duplicate(exc, name)
            raise
        return self.preset(cur.lastrowid)

    def update_preset(self, preset_id: int, *, name: str | None = None, system_prompt: str | None = None,
                      sampling: SamplingConfig | None = None) -> Preset:
        current = self.preset(preset_id)
        values = (_clean_name(name) if name is not None else current.name,
                  system_prompt if system_prompt is not None else current.system_prompt,
                  json.dumps((sampling or current.sampling).to_dict()), time.time(), preset_id)
        try:
            with self.db.write() as conn:
                conn.execute("UPDATE presets SET name = ?, system_prompt = ?, sampling = ?, updated_at = ? "
                             "WHERE id = ?", values)
        except StoreError as exc:
            _raise_if_duplicate(exc, values[0])
            raise
        return self.preset(preset_id)

    def reset_preset(self, preset_id: int) -> Preset:
        """Put a built-in preset back as Hearth ships it."""
        preset = self.preset(preset_id)
        if not preset.builtin:
            raise StoreError(f"{preset.name!r} is your own preset; only built-in presets can be reset.")
        name, prompt, sampling = BUILTIN_PRESETS[preset.builtin_key]
        return self.update_preset(preset_id, name=name, system_prompt=prompt, sampling=sampling)

    def delete_preset(self, preset_id: int) -> None:
        preset = self.preset(preset_id)
        if preset.builtin:
            raise StoreError(f"{preset.name!r} is built in and cannot be deleted (you can edit or reset it).")
        with self.db.write() as conn:
            conn.execute("DELETE FROM presets WHERE id = ?", (preset_id,))


def _raise_if_duplicate(exc: StoreError, name: str) -> None:
    if isinstance(exc.__cause__, sqlite3.IntegrityError):
        raise StoreError(f"A preset named {name!r} already exists; choose another name.") from exc


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise StoreError("A preset needs a name.")
    if len(name) > 80:
        raise StoreError("A preset name can be at most 80 characters long.")
    return name
