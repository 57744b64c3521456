"""Issue 16, point 2: each stage opens only what its rule declares.

The small study is built by Snakemake with the test-only hook tests/declared_io_hook/
sitecustomize.py on PYTHONPATH: inside ``dyadflow.stages.run_stage`` it records every path
the stage opens (Python's "open" and "os.rename" audit events, and the paths given to
polars' readers and writers) with the rule's declared input, output and log. A path under
the working directory that a stage reads must be a declared input (or under a declared
directory input, or one of its own outputs); a path it writes must be a declared output or
log (or inside a declared directory output, or core/atomic.py's temporary file
``.<name>.<random>.tmp`` next to a declared output). Package data and Snakemake's own
files (.snakemake/) are outside the check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SMALL_STUDY_TARGETS, make_small_study

HOOK = REPO / "tests" / "declared_io_hook"

pytestmark = pytest.mark.e2e

# every stage up to the selection (the nightly small study's targets)
STAGES_UP_TO_SELECT = {"ingest", "validate", "score", "stats", "select"}
REPORT_TARGETS = ("results/reports/index.csv", "results/reports/cohort.pdf")


def _atomic_temp_of(path: str, declared: list[str]) -> bool:
    folder, base = os.path.split(path)
    return base.endswith(".tmp") and any(
        os.path.dirname(o) == folder and base.startswith(f".{os.path.basename(o)}.") for o in declared
    )


def undeclared(line: dict) -> list[tuple[str, str]]:
    """The (read|write, path relative to the working directory) a stage opened undeclared."""
    cwd = line["cwd"]
    inputs, outputs = line["input"], line["output"] + line["log"]
    bad = []
    for kind, path in line["events"]:
        if not path.startswith(cwd + os.sep) or os.sep + ".snakemake" + os.sep in path:
            continue
        if _atomic_temp_of(path, outputs):
            continue
        if os.path.basename(path).startswith("__editable__."):  # setuptools' editable-install import hook, not a file
            continue
        inside = [*inputs, *outputs] if kind == "read" else outputs
        if path in inside or any(path.startswith(d + os.sep) for d in inside):
            continue
        bad.append((kind, os.path.relpath(path, cwd)))
    return bad


def build_audited(work: Path, *targets: str, inject: str = "", study: bool = True) -> list[dict]:
    """Build ``targets`` of the small study in ``work`` with the audit hook; one dict per stage
    run. ``study=False``: go on building in ``work``, which already holds the study."""
    if study:
        make_small_study(work)
    audit = work / "audit.jsonl"
    audit.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(HOOK), str(REPO), os.environ.get("PYTHONPATH")) if p),
        "DYADFLOW_IO_AUDIT": str(audit),
        "DYADFLOW_IO_INJECT": inject,
    }
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "study.yaml"]
    cmd += ["--cores", "2", *targets]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()] if audit.exists() else []


@pytest.fixture(scope="module")
def up_to_selection(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The small study built up to the selection with the audit hook (copy it to build on)."""
    work = tmp_path_factory.mktemp("audited")
    return work, build_audited(work, *SMALL_STUDY_TARGETS)


def test_stages_up_to_selection_open_only_declared_paths(up_to_selection):
    work, runs = up_to_selection
    assert {r["stage"] for r in runs} == STAGES_UP_TO_SELECT
    # the hook saw the stages' reads and writes (so an empty result below means something)
    ingest = next(r for r in runs if r["stage"] == "ingest")
    assert ("read", str(work / "data" / "questionnaires.csv")) in [tuple(e) for e in ingest["events"]]
    assert any(kind == "write" and p.endswith("questionnaires.parquet") for kind, p in ingest["events"])
    assert {r["stage"]: undeclared(r) for r in runs} == {s: [] for s in STAGES_UP_TO_SELECT}


def test_an_undeclared_read_fails_the_check(tmp_path):
    """A stage that reads a file its rule does not declare (planted by the hook) is caught."""
    planted = tmp_path / "data" / "not_declared.csv"
    planted.parent.mkdir(parents=True)
    planted.write_text("dyad_id\nD001\n", encoding="utf-8")
    runs = build_audited(tmp_path, "results/selection/index.json", inject=f"select:{planted}")
    found = {r["stage"]: undeclared(r) for r in runs}
    assert found["select"] == [("read", "data/not_declared.csv")]
    assert {s: v for s, v in found.items() if s != "select"} == {s: [] for s in STAGES_UP_TO_SELECT - {"select"}}


def test_report_stages_open_only_declared_paths(up_to_selection, tmp_path):
    """The report stages too: the plan writes the shard tables into its directory output, each
    shard its PDFs into its own, and report_index publishes them (hard links) in its own. Built
    on a copy of the audited build up to the selection (whose stages the test above checks):
    only the stages the reports still need run here."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(up_to_selection[0], work, symlinks=True)
    runs = build_audited(work, *SMALL_STUDY_TARGETS, *REPORT_TARGETS, study=False)
    assert {r["stage"] for r in runs} >= {"report_plan", "report_shard", "report_index"} and not STAGES_UP_TO_SELECT & {
        r["stage"] for r in runs
    }
    index = next(r for r in runs if r["stage"] == "report_index")
    linked = {os.path.relpath(p, work) for kind, p in index["events"] if kind == "write" and p.endswith(".pdf")}
    assert "results/reports/dyads/D001.pdf" in linked  # the hook sees the publishing links
    assert {r["stage"]: undeclared(r) for r in runs if undeclared(r)} == {}


SHORT = [10, 10, 10, 8, 5, 2, 2, 4, 9, 15, 20, 20, 18, 25, 30, 28]


def test_a_changed_dial_file_reruns_the_case_reports_through_series_parquet(tmp_path):
    """series.parquet (the microprocess rule's output, read for the dial charts) is a declared
    input of the dyad reports: changing the dial export reruns report_shard because of it."""
    from conftest import SMALL_STUDY_CONFIG

    dial = tmp_path / "dial.csv"
    rows = [f"D001,1,{r},{t},{v}" for r in ("patient", "therapist") for t, v in enumerate(SHORT)]
    dial.write_text("dyad_id,session,rater,second,rating\n" + "\n".join(rows) + "\n", encoding="utf-8")
    from dyadflow.tools import demo_study as demo

    # the small study's config with its export cut to 2 dyads × 4 sessions: one shard of two
    # case reports (the test is about the DAG, not about the number of reports)
    demo.write_canonical(tmp_path / "data", n_dyads=2, n_sessions=4, bad_rows=False)
    config = SMALL_STUDY_CONFIG + "microprocess:\n  inputs:\n    - {path: dial.csv}\n  smoothing_s: 1\n"
    (tmp_path / "study.yaml").write_text(config, encoding="utf-8")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "study.yaml"]
    cmd += ["--cores", "2", "results/reports/index.csv"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dial.write_text(dial.read_text(encoding="utf-8").replace("D001,1,patient,0,10", "D001,1,patient,0,12"))
    dry = subprocess.run(
        [*cmd, "-n", "--rerun-triggers", "mtime", "input"], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.count("rule report_shard:") == 1, dry.stdout
    shard = dry.stdout.split("rule report_shard:", 1)[1].split("\nrule ", 1)[0]
    reason = next(line for line in shard.splitlines() if "reason:" in line)
    assert "results/microprocess/series.parquet" in reason, shard
