#!/usr/bin/env bash
# The bench on a CUDA machine, one command: `bench/gpu.sh` (extra arguments go to `hearth-cli bench`).
#
# Runs `hearth-cli bench --device cuda --json` on the default model: transformers generate in bf16 (the
# baseline) against Hearth's fast path in bf16 with the decode step captured in a CUDA graph, interleaved
# in one process, and prints the same JSON as on CPU (plus cuda_peak_bytes per system). Nothing here
# downloads: the machine needs the repository set up (`make setup`) and a CUDA build of torch 2.13.0
# in .venv (the pinned wheel is the CPU build; see the message below when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    echo "bench/gpu.sh: no .venv here; run 'make setup' first." >&2
    exit 2
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: torch in .venv cannot see a CUDA device ($("$PY" -c 'import torch; print(torch.__version__)'))." >&2
    echo "  Install the CUDA build of the same version, e.g.:" >&2
    echo "  .venv/bin/pip install --force-reinstall --no-deps torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" >&2
    exit 2
fi
export HEARTH_DATA_DIR="${HEARTH_DATA_DIR:-$(mktemp -d -t hearth-gpu-bench-XXXX)}"
"$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"bench/gpu.sh: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")' >&2
# The CUDA graph test first: a failure there says more than a slow bench would.
QT_QPA_PLATFORM=offscreen "$PY" -m pytest -q -p no:cacheprovider tests/test_fastpath_graph.py >&2
exec "$PY" -m engine.cli bench --device cuda --modes exact --json "$@"
