"""``python -m jupyter_mlops.cli …``: the CLI without an installed script (tests and subprocesses use it)."""

import sys

from jupyter_mlops.cli import main

sys.exit(main())
