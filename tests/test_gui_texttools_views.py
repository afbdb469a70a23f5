"""Summarize, translate and notebook views against a real worker (tiny model or a stand-in job)."""

from __future__ import annotations

import pytest

from engine.texttools.summarize import SummaryResult


@pytest.fixture
def window(tiny_lm):
    from texttools_fakes import FakeWindow

    w = FakeWindow(tiny_lm)
    yield w
    w.close()


def fake_summarize_task(session, *, on_text=None, on_progress=None, cancel=None, text, config=None, model_path=None):
    for i in range(1, 4):
        on_progress((i - 1) / 4, f"Summarizing part {i} of 3")
    on_progress(0.75, "Combining the partial summaries")
    for chunk in ("- The sea ", "is wide.\n", "- Ships sail at night."):
        on_text(chunk)
    assert config.length == "short" and config.form == "bullets"
    return SummaryResult("- The sea is wide.\n- Ships sail at night.", 3, 1, 4, 999)


def test_summarize_view_files_progress_and_output(window, qtbot, tmp_path, monkeypatch):
    import gui.texttools.summarize_view as sv

    monkeypatch.setattr(sv, "summarize_task", fake_summarize_task)
    view = sv.SummarizeView(window)
    qtbot.addWidget(view)
    (tmp_path / "a.md").write_text("The sea is wide.\n\nShips sail at night.")
    (tmp_path / "b.txt").write_bytes("Café".encode("cp1252"))
    view.load_files([str(tmp_path)])
    qtbot.waitUntil(lambda: "Ships sail" in view.input.toPlainText(), timeout=10000)
    assert "# a.md" in view.input.toPlainText() and "From a.md, b.txt." == view.source_label.text()
    assert any("cp1252" in n for n in window.notices)
    progress = []
    view.length.setCurrentText("Short")
    view.bullets.setChecked(True)
    view.summarize()
    view.task.progress.connect(lambda f, m: progress.append(m))  # signals come queued: nothing missed yet
    qtbot.waitUntil(lambda: view.status.text().startswith("Summary of"), timeout=10000)
    assert progress[1] == "Summarizing part 2 of 3" and progress[-1].startswith("Combining")
    assert view.summary_markdown == "- The sea is wide.\n- Ships sail at night."
    assert "Ships sail at night." in view.output.toPlainText() and view.save_button.isEnabled()
    monkeypatch.setattr(sv.QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "s.md"), ""))
    view.save_summary()
    assert (tmp_path / "s.md").read_text() == view.summary_markdown + "\n"


def test_summarize_view_bad_input(window, qtbot, tmp_path):
    from gui.texttools.summarize_view import SummarizeView

    view = SummarizeView(window)
    qtbot.addWidget(view)
    view.summarize()
    assert "nothing to summarize" in window.errors[-1]
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 broken")
    view.load_files([str(tmp_path / "scan.pdf")])
    qtbot.waitUntil(lambda: len(window.errors) == 2, timeout=10000)
    assert "scan.pdf" in window.errors[-1] and "damaged" in window.errors[-1]
    view.load_files([str(tmp_path)])  # a folder with nothing readable in it
    qtbot.waitUntil(lambda: len(window.errors) == 3, timeout=10000)
    assert "no readable document" in window.errors[-1]


def fake_translate_task(session, *, on_text=None, on_progress=None, cancel=None, request):
    from engine.texttools.translate import TranslationResult

    assert request.source == "" and request.target == "German"
    for chunk in ("Das Meer ", "ist weit."):
        on_text(chunk)
    return TranslationResult("Das Meer ist weit.", "English", "German", True, 1)


def test_translate_view_streams_and_swaps(window, qtbot, monkeypatch):
    import gui.texttools.translate_view as tv

    monkeypatch.setattr(tv, "translate_task", fake_translate_task)
    view = tv.TranslateView(window)
    qtbot.addWidget(view)
    view.source.setCurrentText("Detect language")
    view.target.setCurrentText("German")
    view.input.setPlainText("The sea is wide.")
    chunks = []
    view.translate()
    view.task.chunk.connect(chunks.append)  # signals come queued: nothing missed yet
    qtbot.waitUntil(lambda: "→" in view.status.text(), timeout=20000)
    assert view.status.text() == "English (detected) → German"
    assert chunks == ["Das Meer ", "ist weit."] and view.output.toPlainText() == "Das Meer ist weit."
    view.swap()
    assert view.source.currentText() == "German" and view.target.currentText() == "English"
    assert view.input.toPlainText() == "Das Meer ist weit." and view.output.toPlainText() == "The sea is wide."


def test_translate_view_with_the_tiny_model(window, qtbot):
    from gui.texttools.translate_view import TranslateView

    view = TranslateView(window)
    qtbot.addWidget(view)
    view.target.setCurrentText("fr")
    view.input.setPlainText("The sea is wide and the ships are high.")
    view.translate()
    qtbot.waitUntil(lambda: "→" in view.status.text(), timeout=20000)
    assert view.status.text().startswith("English (detected) → French") and not window.errors


def test_notebook_continues_at_the_cursor_as_one_undo_step(window, qtbot):
    from gui.texttools.notebook_view import NotebookView

    view = NotebookView(window)
    qtbot.addWidget(view)
    view.editor.setPlainText("Once upon a time|THE END")
    cursor = view.editor.textCursor()
    cursor.setPosition(len("Once upon a time"))
    view.editor.setTextCursor(cursor)
    view.generate()
    assert view.editor.isReadOnly()
    qtbot.waitUntil(lambda: "new tokens" in view.status.text(), timeout=20000)
    text = view.editor.toPlainText()
    assert text.startswith("Once upon a time") and text.endswith("|THE END")
    assert not view.editor.isReadOnly()
    view._count()
    qtbot.waitUntil(lambda: "tokens" in view.tokens.text(), timeout=10000)
    assert view.tokens.text().endswith(f"/ {window.model_info['context_length']:,} tokens")
    assert len(text) > len("Once upon a time|THE END")
    view.editor.undo()
    assert view.editor.toPlainText() == "Once upon a time|THE END"
