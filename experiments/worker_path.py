"""A plugin of explore_demo.yaml: puts this directory on ``sys.path``.

The pool's workers import ``pool.worker`` with the parent's ``sys.path`` as it is when the pool
starts (plugins load before that), so ``worker: fragile_worker`` is found beside the experiment
whatever the current directory is -- and the files explore and shrink write, which keep this
plugin (its path made relative to where they are written), find it too.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)  # appended: never shadows an installed module
