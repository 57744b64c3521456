from __future__ import annotations

import csv
import io
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


@pytest.fixture(scope="session")
def small_study_built(tmp_path_factory):
    """The small study after one uninterrupted nightly build (do not modify: copy it)."""
    tmp = tmp_path_factory.mktemp("small_study")
    make_small_study(tmp)
    proc = run_nightly(tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp
