"""Form rows from a config class's settings (engine/setting.py): the editor for each field, its value, its
row. The sampling form and the fine-tuning form are built from these, so a new field with a setting
shows up in them without touching the form.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QPlainTextEdit, QSpinBox,
                               QWidget)

from engine.setting import Described, described, split


def form_fields(*classes: type) -> list[Described]:
    """The fields the forms show, of every class, in (group order of appearance, order, declaration) order."""
    fields = [d for cls in classes for d in described(cls) if d.setting.form]
    groups = list(dict.fromkeys(d.setting.group for d in fields))
    return sorted(fields, key=lambda d: (groups.index(d.setting.group), d.setting.order))  # stable


def editor_for(d: Described) -> QWidget:
    """A check box, combo box, spin box or text field for ``d``, showing its default."""
    s = d.setting
    if d.kind is bool:
        editor: QWidget = QCheckBox(d.label)
    elif s.choices:
        editor = QComboBox()
        for value, label in s.choices:
            editor.addItem(label, value)
    elif d.kind is int:
        editor = QSpinBox()
        editor.setRange(int(s.minimum if s.minimum is not None else -2**31),
                        int(s.maximum if s.maximum is not None else 2**31 - 1))
        editor.setSingleStep(int(s.step or 1))
    elif d.kind is float:
        editor = QDoubleSpinBox()
        editor.setDecimals(s.decimals)
        editor.setRange(s.minimum if s.minimum is not None else -1e9, s.maximum if s.maximum is not None else 1e9)
        editor.setSingleStep(s.step or 10 ** -s.decimals)
    elif d.kind is tuple and s.separator == "\n":
        editor = QPlainTextEdit()
        editor.setMaximumHeight(60)
    else:
        editor = QLineEdit()
    editor.setToolTip(s.help + (", one per line" if isinstance(editor, QPlainTextEdit) else ""))
    if d.default is not None:
        set_value(editor, d, d.default)
    return editor


def set_value(editor: QWidget, d: Described, value: Any) -> None:
    if isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QComboBox):
        index = editor.findData(value)
        editor.setCurrentIndex(index if index >= 0 else 0)
    elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        editor.setValue(value)
    elif isinstance(editor, QPlainTextEdit):
        editor.setPlainText(d.setting.separator.join(value))
    else:
        editor.setText(d.setting.separator.join(value) if d.kind is tuple else str(value))


def value_of(editor: QWidget, d: Described) -> Any:
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    text = editor.toPlainText() if isinstance(editor, QPlainTextEdit) else editor.text()
    return split(text, d.setting.separator) if d.kind is tuple else text


def edited(editor: QWidget) -> SignalInstance:
    """The signal an editor sends when the user changes its value."""
    if isinstance(editor, QCheckBox):
        return editor.toggled
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.valueChanged
    if isinstance(editor, QPlainTextEdit):
        return editor.textChanged
    return editor.editingFinished


def add_row(form: QFormLayout, d: Described, editor: QWidget) -> None:
    """A labelled row; a check box carries its own label."""
    if isinstance(editor, QCheckBox):
        form.addRow(editor)
    else:
        form.addRow(d.label, editor)
