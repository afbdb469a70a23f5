"""transformers' first import is made thread-safe by engine.hf_import (its lazy module is not)."""

import subprocess
import sys

SCRIPT = """
import threading
import engine  # noqa: F401  (offline switches)
from engine.hf_import import ensure_transformers
errors = []
def first():
    try:
        ensure_transformers()
        from transformers import PreTrainedTokenizerFast  # noqa: F401
    except Exception as exc:
        errors.append(repr(exc))
def second():
    try:
        ensure_transformers()
        from transformers import AutoModel, AutoTokenizer  # noqa: F401
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first), threading.Thread(target=second)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors[0] if errors else "ok")
"""


def test_two_threads_importing_transformers_at_once_both_get_it():
    # Without the lock, about half of such runs failed with "cannot import name 'AutoModel'".
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "ok", out.stdout + out.stderr
