"""Jacobson & Truax (1991), Table 2 (the DAS), through the whole Snakemake workflow as
a total-only canonical CSV, through every stage the case and cohort reports need.

The expected counts come from a hand calculation written here with plain Python (not
dyadflow code): r = .84 and criterion a from the sample's pre-treatment distribution.
The study has no alliance questionnaire (an outcome-only study): every stage still runs.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO

pytestmark = pytest.mark.e2e
DATA = Path(__file__).parent / "data"
# what the test reads, and what those need (not the charts, manifest or validation report)
TARGETS = (
    "results/validation/accounting.csv",
    "results/scores/questionnaires.csv",
    "results/stats/dyads.csv",
    "results/reports/index.csv",
    "results/reports/cohort.pdf",
)


def table() -> list[tuple[str, float, float]]:
    with open(DATA / "jacobson_truax_1991_table2_das.csv", newline="") as fh:
        return [(f"C{int(r['ppid']):02d}", float(r["pre"]), float(r["post"])) for r in csv.DictReader(fh)]


def by_hand(rows: list[tuple[str, float, float]]) -> dict[str, str]:
    """Categories per Jacobson & Truax (1991), higher is better (DAS)."""
    pre = [p for _, p, _ in rows]
    m = sum(pre) / len(pre)
    sd = math.sqrt(sum((p - m) ** 2 for p in pre) / (len(pre) - 1))
    s_diff = sd * math.sqrt(2) * math.sqrt(1 - 0.84)
    cutoff = m + 2 * sd  # criterion a: two SDs above the dysfunctional (pre) mean
    out = {}
    for dyad, a, b in rows:
        rc = (b - a) / s_diff
        if rc > 1.96 and a <= cutoff < b:
            out[dyad] = "recovered"
        elif rc > 1.96:
            out[dyad] = "improved"
        elif rc < -1.96:
            out[dyad] = "deteriorated"
        else:
            out[dyad] = "unchanged"
    return out


def test_jacobson_truax_table_2_through_the_workflow(tmp_path):
    rows = table()
    expected = by_hand(rows)
    counts = {c: list(expected.values()).count(c) for c in ("recovered", "improved", "unchanged", "deteriorated")}
    assert counts == {"recovered": 10, "improved": 8, "unchanged": 11, "deteriorated": 1}
    assert max(p for _, p, _ in rows) < 105.23  # every pre score is clinical: point 8 changes none

    lines = ["dyad_id,patient_id,therapist_id,session,date,rater,instrument,total"]
    for dyad, pre, post in rows:
        pid = "P" + dyad[1:]
        lines.append(f"{dyad},{pid},T1,1,2024-01-08,patient,das,{pre:g}")
        lines.append(f"{dyad},{pid},T1,12,2024-04-01,patient,das,{post:g}")
    (tmp_path / "das.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "study.yaml").write_text(
        "study: {name: Jacobson & Truax 1991 Table 2}\n"
        "inputs:\n  - {path: das.csv, format: canonical_csv}\n"
        f"instruments_dir: {DATA / 'instruments'}\n"
        "validation: strict\n"
        "outcome: das\n"
        "stats: {change: {criterion: a}}\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            *TARGETS,
            "--cores",
            "2",
            "--configfile",
            str(tmp_path / "study.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc = pl.read_csv(tmp_path / "results" / "validation" / "accounting.csv")
    assert acc.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (60, 60, 0)
    scores = pl.read_csv(tmp_path / "results" / "scores" / "questionnaires.csv")
    assert scores.filter(pl.col("dyad_id") == "C02").select(
        "session", "score", "n_answered", "score_missing_reason"
    ).rows() == [
        (1, 74.0, None, "total only"),
        (12, 124.0, None, "total only"),
    ]
    dyads = pl.read_csv(tmp_path / "results" / "stats" / "dyads.csv").sort("dyad_id")
    assert dict(zip(dyads.get_column("dyad_id"), dyads.get_column("change_category"), strict=False)) == expected
    assert dyads.get_column("clinical_at_pre").to_list() == [True] * 30
    assert dict(dyads.group_by("change_category").len().iter_rows()) == counts
    # the reports of an outcome-only, total-only study: one case report per couple, and the cohort report
    reports = tmp_path / "results" / "reports"
    assert sorted(p.stem for p in (reports / "dyads").glob("*.pdf")) == sorted(expected)
    assert (reports / "cohort.pdf").stat().st_size > 0
