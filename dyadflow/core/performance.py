"""The switch for the fast paths (issue 18).

The fast paths read and judge clean data typed and send only the rows that fail a
cheap screen through the text path; the outputs are the same with them on or off
(tests/test_fast_path.py). They are on unless the environment variable
``DYADFLOW_FAST_PATH`` is ``0``, ``false``, ``no`` or ``off``. An environment variable,
not a config key, because the stages' internals also run without a config (the bench
scripts, the Python API) and the switch must reach them all.
"""

from __future__ import annotations

import os

ENV = "DYADFLOW_FAST_PATH"


def fast_path_enabled() -> bool:
    """Whether the fast paths are on (``DYADFLOW_FAST_PATH`` not 0/false/no/off)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")
