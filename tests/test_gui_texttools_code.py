"""The code editor's ghost text (Tab accepts, Esc dismisses, typing refines) and the code view's completions."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from engine.texttools.code_completion import CompletionResult
from gui.texttools.code_editor import CodeEditor


@pytest.fixture
def editor(qtbot):
    e = CodeEditor()
    qtbot.addWidget(e)
    e.resize(600, 300)
    e.show()
    qtbot.keyClicks(e, "def add(a, b):")
    qtbot.keyClick(e, Qt.Key.Key_Return)  # auto-indents after ':'
    qtbot.keyClicks(e, "ret")
    return e


BEFORE = "def add(a, b):\n    ret"


def test_tab_accepts_and_undo_takes_it_back(editor, qtbot):
    editor.show_ghost("urn a + b")
    assert editor.ghost_text == "urn a + b" and editor.real_text() == BEFORE
    assert editor.textCursor().position() == len(BEFORE)  # the caret stays before the ghost
    with qtbot.waitSignal(editor.ghost_accepted):
        qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == BEFORE + "urn a + b" and not editor.has_ghost()
    assert editor.textCursor().position() == len(BEFORE + "urn a + b")
    editor.undo()
    assert editor.toPlainText() == BEFORE


def test_esc_dismisses_leaving_no_trace(editor, qtbot):
    steps = editor.document().availableUndoSteps()
    editor.show_ghost("urn a + b\n\nprint(add(1, 2))")
    with qtbot.waitSignal(editor.ghost_dismissed):
        qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert editor.toPlainText() == BEFORE and editor.textCursor().position() == len(BEFORE)
    assert editor.document().availableUndoSteps() == steps and not editor.document().isRedoAvailable()


def test_typing_the_ghost_refines_it(editor, qtbot):
    editor.show_ghost("urn a + b")
    qtbot.keyClicks(editor, "urn")
    assert editor.ghost_text == " a + b" and editor.real_text() == BEFORE + "urn"
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == BEFORE + "urn a + b"


def test_shift_for_a_capital_keeps_the_ghost_and_ctrl_z_only_dismisses(editor, qtbot):
    editor.show_ghost("urn Point(a)")
    qtbot.keyClicks(editor, "urn ")
    qtbot.keyPress(editor, Qt.Key.Key_Shift)
    assert editor.ghost_text == "Point(a)"
    qtbot.keyClicks(editor, "P")
    qtbot.keyRelease(editor, Qt.Key.Key_Shift)
    assert editor.ghost_text == "oint(a)"
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not editor.has_ghost() and editor.toPlainText() == BEFORE + "urn P"


def test_typing_something_else_dismisses(editor, qtbot):
    editor.show_ghost("urn a + b")
    qtbot.keyClicks(editor, "x")
    assert not editor.has_ghost() and editor.toPlainText() == BEFORE + "x"
    qtbot.keyClick(editor, Qt.Key.Key_Tab)  # no ghost: Tab indents
    assert editor.toPlainText() == BEFORE + "x    "


def test_click_dismisses_and_highlighting_is_grey(editor, qtbot):
    editor.show_ghost("urn a + b")
    block = editor.document().findBlockByNumber(1)
    ghost_formats = [r for r in block.layout().formats() if r.start >= len("    ret")]
    assert ghost_formats and all(r.format.fontItalic() for r in ghost_formats)
    qtbot.mouseClick(editor.viewport(), Qt.MouseButton.LeftButton)
    assert not editor.has_ghost() and editor.toPlainText() == BEFORE


class FakeCompletion:
    """Replaces engine complete_task: answers a fixed text, or waits to be released first."""

    def __init__(self, text="urn a + b"):
        self.text, self.release, self.requests = text, threading.Event(), []
        self.release.set()

    def __call__(self, session, *, on_text=None, on_progress=None, cancel=None, request):
        self.requests.append(request)
        self.release.wait(10)
        return CompletionResult(self.text, "prefix", "boundary", 10, "ret")


@pytest.fixture
def view(qtbot, monkeypatch):
    from texttools_fakes import FakeWindow

    import gui.texttools.code_view as code_view

    fake = FakeCompletion()
    monkeypatch.setattr(code_view, "complete_task", fake)
    window = FakeWindow()
    v = code_view.CodeView(window)
    qtbot.addWidget(v)
    v.resize(900, 500)
    v.show()
    v.fake = fake
    yield v
    window.close()


def test_ctrl_space_shows_ghost_from_the_worker(view, qtbot):
    view.editor.setPlainText(BEFORE)
    view.editor.moveCursor(view.editor.textCursor().MoveOperation.End)
    view.editor.setFocus()
    view.fake.release.clear()
    qtbot.keyClick(view.editor, Qt.Key.Key_Space, Qt.KeyboardModifier.ControlModifier)
    view.editor.highlighter.relex()  # re-highlighting while the model thinks is not an edit
    view.fake.release.set()
    qtbot.waitUntil(view.editor.has_ghost, timeout=10000)
    request = view.fake.requests[0]
    assert request.prefix == BEFORE and request.suffix == "" and request.language == "python"
    assert view.editor.ghost_text == "urn a + b" and "Tab accepts" in view.status.text()


def test_a_late_completion_for_old_text_is_dropped(view, qtbot):
    view.fake.release.clear()
    view.editor.setPlainText(BEFORE)
    view.editor.moveCursor(view.editor.textCursor().MoveOperation.End)
    view.request_completion()
    qtbot.keyClicks(view.editor, "u")  # the user types on while the model thinks
    view.fake.release.set()
    qtbot.waitUntil(lambda: not view.busy, timeout=10000)
    assert not view.editor.has_ghost() and view.editor.toPlainText() == BEFORE + "u"


def test_open_and_save_keep_encoding(view, tmp_path, qtbot):
    path = tmp_path / "café.py"
    path.write_bytes("# Café – naïve\nx = 1\n".encode("cp1252"))
    with qtbot.waitSignal(view.file_opened, timeout=10000):
        assert view.open_file(str(path))  # read on the engine's thread
    assert view.encoding == "cp1252" and view.editor.toPlainText().startswith("# Café")
    assert view.language.currentText() == "Python" and view.window_.notices
    view.editor.appendPlainText("y = 2")
    assert view.title.text().startswith("●")
    assert view.save()
    assert path.read_bytes().decode("cp1252").endswith("y = 2")
    assert not view.title.text().startswith("●")
    errors = len(view.window_.errors)
    view.open_file(str(tmp_path / "missing.py"))
    qtbot.waitUntil(lambda: len(view.window_.errors) > errors, timeout=10000)
    assert "no such file" in view.window_.errors[-1] and view.path == str(path)


def test_complete_while_typing_after_a_pause(view, qtbot):
    view.auto.setChecked(True)
    view.delay.setValue(200)
    view.activateWindow()
    view.editor.setFocus()
    qtbot.waitUntil(view.editor.hasFocus, timeout=5000)
    qtbot.keyClicks(view.editor, "def add(a, b):")
    qtbot.keyClick(view.editor, Qt.Key.Key_Return)
    qtbot.keyClicks(view.editor, "ret")
    qtbot.waitUntil(view.editor.has_ghost, timeout=10000)
    assert view.fake.requests[-1].prefix == BEFORE
    view.auto.setChecked(False)  # the setting is remembered
    from PySide6.QtCore import QSettings

    assert QSettings().value("code/auto_complete", type=bool) is False


def test_highlighting_follows_the_whole_file(qtbot):
    from gui.texttools.code_highlighter import lexer_for

    e = CodeEditor()
    qtbot.addWidget(e)
    e.resize(400, 200)
    e.show()
    e.setPlainText('def f():\n    """Doc\n    still the docstring\n    """\n    return 1\n')
    e.highlighter.set_lexer(lexer_for("x.py"))
    assert e.highlighter.language == "Python"

    def colour(line: int, column: int):
        block = e.document().findBlockByNumber(line)
        for r in block.layout().formats():
            if r.start <= column < r.start + r.length:
                return r.format.foreground().color().name()
        return None

    assert colour(2, 6) == colour(1, 6) is not None  # line 3 is inside the docstring: coloured as a string
    assert colour(0, 0) != colour(1, 6)  # 'def' is a keyword, not a string
    assert e.line_number_width() > 0 and e.numbers.width() == e.line_number_width()
