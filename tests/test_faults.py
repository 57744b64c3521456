"""Faults (issue 8): a build killed with SIGKILL in the middle of a stage, then a nightly
rerun, ends with outputs byte-identical to an uninterrupted build.

The kill lands mid-stage deterministically through the test-only hook
tests/fault_hook/sitecustomize.py (on PYTHONPATH only here, never in the package):
DYADFLOW_TEST_PAUSE=<stage>:<n> makes that stage sleep just before renaming its n-th
output into place (the earlier outputs finished, the n-th written only under its
temporary name). The whole process group (dyadflow nightly, snakemake, the job) is killed.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from conftest import REPO, make_small_study, results_bytes, run_nightly

from dyadflow.core import atomic

HOOK = REPO / "tests" / "fault_hook"

pytestmark = pytest.mark.e2e

# stage → the rename to stop before: the 2nd where a stage writes several outputs, so
# one output looks finished while the job is killed
KILL_POINTS = [("ingest", 2), ("validate", 2), ("score", 2), ("stats", 3), ("select", 1)]


def _run_until_paused(work, stage: str, at: int):
    signal_file = work / f"paused_{stage}"
    path = os.pathsep.join(p for p in (str(HOOK), os.environ.get("PYTHONPATH")) if p)
    env = {"DYADFLOW_TEST_PAUSE": f"{stage}:{at}", "DYADFLOW_TEST_PAUSE_SIGNAL": str(signal_file), "PYTHONPATH": path}
    proc = run_nightly(work, env=env, popen=True)
    deadline = time.monotonic() + 300
    while not signal_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the build ended before {stage} paused:\n{proc.stdout.read()}\n{proc.stderr.read()}")
        assert time.monotonic() < deadline, f"{stage} never paused"
        time.sleep(0.1)
    return proc, signal_file.read_text()


def test_killed_in_every_stage_then_rerun_gives_identical_outputs(small_study_built, tmp_path):
    work = tmp_path / "killed"
    work.mkdir()
    make_small_study(work)
    for stage, at in KILL_POINTS:
        proc, tmp_name = _run_until_paused(work, stage, at)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        # killed mid-write: a temporary file under results/, Snakemake's lock left behind
        assert os.path.exists(tmp_name) and os.path.basename(tmp_name).startswith("."), stage
        assert any((work / ".snakemake" / "locks").iterdir()), stage
    proc = run_nightly(work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(sorted((work / "results" / "runs").glob("*.json"))[-1].read_text())
    assert "removed Snakemake's lock left by a run that was killed (snakemake --unlock)" in summary["cleanup"]
    assert summary["cleanup"][0].startswith("removed 1 temporary file(s) of a killed job: selection/.index.json.")
    assert not list((work / "results").rglob("*.tmp"))
    assert results_bytes(work / "results") == results_bytes(small_study_built / "results")


def test_the_pause_hook_is_inert_unless_armed_and_not_in_the_package(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.delenv("DYADFLOW_TEST_PAUSE", raising=False)
    before = atomic.atomic_path
    spec = importlib.util.spec_from_file_location("fault_hook_probe", HOOK / "sitecustomize.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert atomic.atomic_path is before
    atomic.write_text(tmp_path / "x.txt", "done")
    assert (tmp_path / "x.txt").read_text() == "done"
    assert [
        p for p in (REPO / "dyadflow").rglob("*.py") if "DYADFLOW_TEST_PAUSE" in p.read_text(encoding="utf-8")
    ] == []
