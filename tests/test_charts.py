"""Charts and Snakemake's HTML report (issue 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

from dyadflow.report import workflow_charts as charts

REJ = "source_file,source_line,column,value,rule,message\n"


def test_rejections_per_rule_are_counted_and_png_bytes_repeat(tmp_path):
    (tmp_path / "r.csv").write_text(REJ + "a,2,x,1,item_value,m\na,3,x,1,date_format,m\na,4,x,1,item_value,m\n")
    counts = charts.validation_summary(tmp_path / "r.csv", tmp_path / "a.png")
    assert counts == {"item_value": 2, "date_format": 1}
    charts.validation_summary(tmp_path / "r.csv", tmp_path / "b.png")
    a = (tmp_path / "a.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in a and b"Creation Time" not in a


def test_no_rejections_still_gives_a_chart(tmp_path):
    (tmp_path / "r.csv").write_text(REJ)
    assert charts.validation_summary(tmp_path / "r.csv", tmp_path / "a.png") == {}
    assert (tmp_path / "a.png").stat().st_size > 0


def test_change_by_arm_and_completeness_from_cohort(tmp_path):
    cohort = {
        "outcome": "bdi_ii",
        "change_categories": {"CBT": {"improved": 2, "unchanged": 1}, "IPT": {"recovered": 1}},
        "completeness": [
            {"instrument": "bdi_ii", "session": s, "n_dyads": 3, "n_observed": 3 - s, "fraction": (3 - s) / 3}
            for s in range(3)
        ],
    }
    charts.change_by_arm(cohort, tmp_path / "c.png")
    charts.completeness(cohort, tmp_path / "k.png")
    charts.change_by_arm({}, tmp_path / "empty.png")
    assert all((tmp_path / n).read_bytes()[:4] == b"\x89PNG" for n in ("c.png", "k.png", "empty.png"))


@pytest.mark.e2e
def test_snakemake_report_holds_the_validation_tables_and_charts(small_study_built, tmp_path):
    work = tmp_path / "study"
    shutil.copytree(small_study_built, work, symlinks=True)
    targets = [
        "results/charts/validation_summary.png",
        "results/charts/cohort_alliance_outcome.png",
        "results/charts/cohort_change_by_arm.png",
        "results/charts/cohort_completeness.png",
        "results/validation/accounting.csv",
    ]
    base = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(work / "study.yaml"),
    ]
    proc = subprocess.run([*base, "--cores", "2", *targets], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [*base, "--report", str(work / "results" / "report.html"), *targets],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (work / "results" / "report.html").read_text(encoding="utf-8")
    for caption in (
        "Validation summary: rejected rows per rule",
        "Row accounting per input file",
        "Rejected rows: one line per problem",
        "Change categories by arm",
        "Completeness by session",
        "Alliance and the next session",
    ):
        assert caption in html, caption
    for name in ("validation_summary.png", "cohort_alliance_outcome.png", "accounting.csv", "rejections.csv"):
        assert name in html, name
