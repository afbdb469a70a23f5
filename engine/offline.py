"""Switch every Hugging Face library to offline mode before any of them is imported.

Hearth never downloads: users choose it because it is offline. Importing this
module (``engine/__init__`` does it first) sets the documented environment
switches, so a missing file is an error instead of a network request.
"""

import os

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# transformers prints progress bars on stderr; the engine reports progress itself.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
