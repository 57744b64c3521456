from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import polars as pl
import pytest

from dyadflow import ingest
from dyadflow.core.registry import load_registry
from dyadflow.validate import rules as validate

REPO = Path(__file__).resolve().parent.parent
HEADER = ["dyad_id", "patient_id", "therapist_id", "session", "date", "rater", "instrument"]


@pytest.fixture(scope="session")
def registry():
    return load_registry()


def row(
    dyad="D1",
    patient="P1",
    therapist="T1",
    session=1,
    date="2024-01-08",
    rater="patient",
    instrument="wai_sr",
    items=(),
    **extra,
):
    """One canonical row as a dict; items are given in order from item_01."""
    r = {
        "dyad_id": dyad,
        "patient_id": patient,
        "therapist_id": therapist,
        "session": str(session),
        "date": date,
        "rater": rater,
        "instrument": instrument,
    }
    for i, v in enumerate(items, start=1):
        r[f"item_{i:02d}"] = "" if v is None else str(v)
    r.update({k: str(v) for k, v in extra.items()})
    return r


def write_canonical(path: Path, rows: list[dict], n_items: int | None = None, extra_columns=()) -> Path:
    """Write rows as a canonical CSV with item columns up to the widest row (or n_items)."""
    width = n_items or max((sum(k.startswith("item_") for k in r) for r in rows), default=1)
    columns = HEADER + [f"item_{i:02d}" for i in range(1, width + 1)] + list(extra_columns)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in columns})
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def run_validation(path: Path, registry, **spec):
    frame, meta = ingest.read_input({"path": str(path), "format": "canonical_csv", **spec})
    return validate.validate_frames([frame], [meta], registry)


def rules_by_line(rejections: pl.DataFrame) -> set[tuple[int, str]]:
    return set(rejections.select("source_line", "rule").iter_rows())


WAI_SR_OK = (4, 4, 3, 4, 5, 3, 4, 4, 3, 4, 5, 4)
WAI_S_OK = (5, 6, 5, 2, 6, 5, 6, 5, 6, 3, 5, 6)
BDI_OK = (1, 0, 2, 1, 1, 0, 1, 2, 0, 1, 1, 0, 1, 2, 1, "1a", 1, "2b", 1, 0, 1)


DEMO_DIR = REPO / "data" / "demo"
DEMO_FILES = ("data/demo/redcap_export.csv", "data/demo/wai_s_qualtrics.csv", "data/demo/oq45_clinic.xlsx")


def demo_inputs(root: Path = REPO) -> list[dict]:
    """The demo study's input specs from config/config.yaml, with paths under ``root``."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    return [{**spec, "path": str(root / spec["path"])} for spec in cfg["inputs"]]


def copy_demo(tmp: Path) -> None:
    """The bundled demo study's data (all its export files) under ``tmp/data/demo``."""
    import shutil

    shutil.copytree(DEMO_DIR, tmp / "data" / "demo")


# A small study for end-to-end nightly and fault tests (issue 8): the demo model's
# canonical table, 12 dyads × 6 sessions, no planted bad rows; report rendering is left
# out (the targets below), so a whole build takes seconds.
SMALL_STUDY_CONFIG = """\
study: {name: "Small synthetic study"}
inputs:
  - path: data/questionnaires.csv
    format: canonical_csv
validation: quarantine
outcome: bdi_ii
alliance: {patient: wai_sr, therapist: wai_s}
selection: []
report: {audience: research, dyads_per_shard: 100000}
"""
SMALL_STUDY_TARGETS = ("results/stats/cohort.json", "results/selection/index.json")


def make_small_study(tmp: Path, config_text: str = SMALL_STUDY_CONFIG) -> Path:
    """Write the small study's export and config under ``tmp``; return the config path."""
    from dyadflow.tools import demo_study as demo

    demo.write_canonical(tmp / "data", n_dyads=12, n_sessions=6, bad_rows=False)
    cfg = tmp / "study.yaml"
    cfg.write_text(config_text, encoding="utf-8")
    return cfg


def results_bytes(results: Path) -> dict[str, bytes]:
    """Every file under ``results`` except runs/, with its bytes."""
    return {
        str(p.relative_to(results)): p.read_bytes()
        for p in sorted(results.rglob("*"))
        if p.is_file() and p.relative_to(results).parts[0] != "runs"
    }


def run_nightly(workdir: Path, *extra: str, env: dict | None = None, popen: bool = False):
    """``dyadflow nightly`` on the small study in ``workdir`` (a subprocess, as cron runs it)."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "dyadflow", "nightly", "--configfile", "study.yaml", "--cores", "2", *extra]
    cmd += list(SMALL_STUDY_TARGETS)
    full_env = {**os.environ, **(env or {})}
    if popen:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            env=full_env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    return subprocess.run(cmd, cwd=workdir, env=full_env, capture_output=True, text=True, timeout=600)


# --- builds shared by the whole test session (docs/contributing.md, "Tests") -----------
# A build that several test files read is made once per session, even with two pytest-xdist
# workers: the first worker to ask builds it under an exclusive lock in the folder the
# workers share; the other waits on the lock and reuses it. (fcntl.flock, not the filelock
# package: the standard library does this on the Linux machines the project runs on.)


def _session_root(tmp_path_factory) -> Path:
    """The folder every xdist worker of this session shares (the session's own without xdist)."""
    import os

    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_build(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once per session into ``<session root>/name``; it returns
    ``(ok, message)``. Every caller gets the same folder, or fails with the build's message."""
    import fcntl
    import json
    import shutil

    root = _session_root(tmp_path_factory)
    folder, status = root / name, root / f"{name}.status.json"
    with open(root / f"{name}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not status.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted attempt left
            folder.mkdir()
            ok, message = build(folder)
            status.write_text(json.dumps({"ok": ok, "message": message}), encoding="utf-8")
    result = json.loads(status.read_text(encoding="utf-8"))
    assert result["ok"], result["message"]
    return folder


def copy_built(src: Path, dst: Path) -> Path:
    """A private copy of a shared build that a test may run Snakemake in or edit.

    ``results/`` and ``data/`` are hard links (cheap): dyadflow writes outputs by atomic
    rename and Snakemake deletes a job's outputs before rerunning it, so neither writes
    through a link. A test that edits one of those files in place must first replace the
    link with a copy. Everything else is copied: the config, ``logs/`` (a stage's log is
    rewritten in place) and ``.snakemake/`` (its metadata, for the "Nothing to be done"
    checks; mtimes are kept)."""
    import os
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir():
            linked = entry.name in ("results", "data")
            shutil.copytree(entry, target, symlinks=True, copy_function=os.link if linked else shutil.copy2)
        else:
            shutil.copy2(entry, target)
    return dst


SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(workdir: Path, *args: str, timeout: int = 900):
    """Snakemake on the repository's Snakefile in ``workdir`` (a subprocess)."""
    import subprocess

    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, timeout=timeout
    )


def make_demo_study(tmp: Path, config_text: str | None = None) -> Path:
    """The demo study's data and config (config/config.yaml unless ``config_text``) under ``tmp``."""
    copy_demo(tmp)
    cfg = tmp / "study.yaml"
    cfg.write_text(config_text or (REPO / "config" / "config.yaml").read_text())
    return cfg


def _build_demo(folder: Path) -> tuple[bool, str]:
    cfg = make_demo_study(folder)
    proc = snakemake(folder, "--cores", "2", "--configfile", str(cfg))
    return proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session")
def demo_built(tmp_path_factory) -> Path:
    """The whole demo build (`make demo`'s Snakemake run, reports included) in a folder
    holding ``study.yaml``, ``data/``, ``results/``, ``logs/`` and ``.snakemake/``; made once
    per session. Read it, or work on a :func:`copy_built` of it: never modify it."""
    return shared_build(tmp_path_factory, "demo", _build_demo)


def _build_small_study(folder: Path) -> tuple[bool, str]:
    make_small_study(folder)
    proc = run_nightly(folder)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def small_study_built(tmp_path_factory) -> Path:
    """The small study after one uninterrupted nightly build (do not modify: copy it)."""
    return shared_build(tmp_path_factory, "small_study", _build_small_study)


# --- the two workers' shares (Makefile: `pytest -n 2 --dist loadfile --no-loadscope-reorder`) ---
# Each worker takes whole files (so module fixtures are made once), in collection order:
# the slowest files first (longest first keeps both workers busy to the end), and the
# light files that read the shared demo build last, when it is built (a worker that asks
# for it earlier waits on its lock). Measured figures in docs/contributing.md.
# (Not --dist loadgroup: with pytest 9.2 its xdist_group marks are silently ignored, as
# pytest-xdist 3.8 renames the test IDs through an attribute pytest 9 no longer reads.)
SLOWEST_FILES = (
    "test_workflow",  # builds the demo (demo_built), then two small whole studies
    "test_declared_io",
    "test_nightly",
    "test_faults",
    "test_report_workflow",
    "test_das_workflow",
    "test_charts",
    "test_ids",
    "test_microprocess_overrides_workflow",
)
READ_THE_DEMO_LAST = ("test_stats_feedback", "test_manifest", "test_coding")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    rank.update({name: len(SLOWEST_FILES) + 1 + i for i, name in enumerate(READ_THE_DEMO_LAST)})
    items.sort(key=lambda item: rank.get(item.path.stem, len(SLOWEST_FILES)))
