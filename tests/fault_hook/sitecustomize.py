"""Test-only pause for tests/test_faults.py, kept out of the dyadflow package.

That test puts this folder on PYTHONPATH, so every Python process of the build (dyadflow
nightly, Snakemake, its job processes) imports this file at start-up. With
DYADFLOW_TEST_PAUSE=<stage>[:<n>] set, the stage ``<stage>`` sleeps just before renaming its
n-th output into place (default the 1st), after writing the temporary file's path to
$DYADFLOW_TEST_PAUSE_SIGNAL, so the test can SIGKILL the build with one output finished
and the next one only under its temporary name. Without the variable it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def install(want: str) -> None:
    from dyadflow import stages
    from dyadflow.core import atomic

    name, _, at = want.partition(":")
    state = {"stage": None, "renames": 0}
    run_stage, atomic_path = stages.run_stage, atomic.atomic_path

    def paused_run_stage(stage, **kwargs):
        state.update(stage=stage, renames=0)
        return run_stage(stage, **kwargs)

    @contextlib.contextmanager
    def paused_atomic_path(path):
        with atomic_path(path) as tmp:
            yield tmp
            # the output is written under its temporary name; atomic_path renames it next
            if state["stage"] == name:
                state["renames"] += 1
                if state["renames"] == int(at or 1):
                    signal = os.environ.get("DYADFLOW_TEST_PAUSE_SIGNAL")
                    if signal:
                        Path(signal).write_text(str(tmp), encoding="utf-8")
                    time.sleep(3600)

    stages.run_stage = paused_run_stage
    atomic.atomic_path = paused_atomic_path


if os.environ.get("DYADFLOW_TEST_PAUSE"):
    install(os.environ["DYADFLOW_TEST_PAUSE"])
