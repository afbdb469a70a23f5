"""Start Hearth: ``hearth`` (or ``python -m gui``); ``--self-test`` checks the whole chain.

The window appears before torch is imported: the engine is imported lazily by
the worker thread when the model loads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from gui import STARTED_AT


def process_start_time() -> float:
    """When the process started (the clock for "window on screen within 3 s")."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # psutil missing or restricted: the first Hearth import is close enough
        return STARTED_AT


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local language models, offline.")
    parser.add_argument("--self-test", action="store_true",
                        help="load the default model, ask it a question through the window, print a JSON report")
    parser.add_argument("--show", action="store_true", help="with --self-test: show the window on the display")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="with --self-test: save a picture of the window once the reply is in")
    parser.add_argument("--model", default=None, help="model folder or .gguf file to load at start")
    args, _qt_args = parser.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test and not args.show and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import engine  # noqa: F401  (offline switches; no torch yet)
    from engine.errors import DataDirError
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    warn_missing_system_libraries()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    try:
        from gui.settings import configure_settings

        configure_settings()
    except DataDirError as exc:
        return report_fatal(str(exc), args.self_test)
    icon = resource_path("hearth.png")
    if icon:
        app.setWindowIcon(QIcon(icon))
    from engine.scheduler import default_scheduler
    from gui.main_window import MainWindow
    from gui.worker import EngineClient

    # The process-wide scheduler: a server started in this process shares the window's model.
    window = MainWindow(EngineClient(scheduler=default_scheduler()), defer_views=True)
    window.show()
    startup = time.time() - process_start_time()
    if args.self_test:
        from gui.selftest import SelfTest

        window._self_test = SelfTest(window, app, startup, screenshot=args.screenshot)
    window.load_model(args.model)
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: window.build_pending_views(one=True))
    code = app.exec()
    if window.property("worker_stuck"):
        os._exit(code)  # the worker is inside a call that cannot be interrupted; nothing unsaved is lost
    return code


def warn_missing_system_libraries() -> None:
    """Qt's X11 plugin aborts the process when a system library is missing; say which, and how to get it."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        return
    if not os.environ.get("DISPLAY") or getattr(sys, "frozen", False):
        return
    import ctypes.util

    missing = [lib for lib in ("xcb-cursor", "xcb-icccm", "xcb-keysyms", "xkbcommon-x11", "EGL")
               if ctypes.util.find_library(lib) is None]
    if missing:
        print("hearth: Qt may not start: missing system libraries " + ", ".join(f"lib{m}" for m in missing) +
              ". On Debian/Ubuntu: sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
              "libxkbcommon-x11-0 libegl1", file=sys.stderr)


def report_fatal(message: str, self_test: bool) -> int:
    if self_test:
        print(message, file=sys.stderr)
        print(json.dumps({"ok": False, "error": message}), flush=True)
        return 1
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.critical(None, "Hearth cannot start", message)
    return 1


def resource_path(name: str) -> str | None:
    from pathlib import Path

    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    path = base / "resources" / name
    return str(path) if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
