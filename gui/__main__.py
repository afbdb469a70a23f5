import multiprocessing
import sys

# In the packaged app, worker processes (data loaders) start this same program: let them run
# their task instead of a second window. A no-op when run from source.
multiprocessing.freeze_support()

from gui.app import main  # noqa: E402

sys.exit(main())
