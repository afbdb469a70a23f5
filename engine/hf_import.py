"""transformers, imported for the first time by one thread at a time.

While transformers is first imported, it swaps its own entry in ``sys.modules`` for a lazy
module; a second thread importing it at that moment gets the half-made module and fails with
"cannot import name 'AutoModel' from 'transformers'" (seen at start-up: the chat model loading on
one scheduler thread while the documents' embedder loads on another). Every entry point that may be
the first to import it calls :func:`ensure_transformers` first.
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()
_done = False


def ensure_transformers() -> None:
    """Import transformers if no thread has yet; other threads wait until it is whole."""
    global _done
    if _done:
        return
    with _LOCK:
        if not _done:
            import transformers  # noqa: F401

            _done = True
