"""Hearth's desktop window (PySide6). Talks to the engine only through ``gui.worker``."""

import time as _time

# When the app was started, for the self-test's "startup_to_window_s".
STARTED_AT = _time.time()
