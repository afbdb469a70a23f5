"""Open the real main window on a fake engine (the caller monkeypatches the jobs)."""


def open_main_window(qtbot):
    """A shown MainWindow whose (fake) model has loaded, with the worker idle again.

    Other views react to a new model with work of their own (the first may import
    torch), so wait for it: a test's own task must not queue behind it."""
    from gui.main_window import MainWindow
    from gui.settings import configure_settings

    configure_settings()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.model_changed, timeout=5000):
        win.load_model(None)
    qtbot.waitUntil(lambda: not win.client.is_busy(), timeout=120000)
    return win
