"""End to end: the Snakemake workflow on the demo study, in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, timeout=900
    )


def make_study(tmp: Path, config_text: str | None = None) -> Path:
    (tmp / "data" / "demo").mkdir(parents=True)
    shutil.copy(REPO / "data" / "demo" / "questionnaires.csv", tmp / "data" / "demo")
    cfg = tmp / "study.yaml"
    cfg.write_text(config_text or (REPO / "config" / "config.yaml").read_text())
    return cfg


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    cfg = make_study(tmp)
    proc = snakemake(tmp, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, cfg


def test_every_output_is_written(demo_run):
    tmp, _ = demo_run
    for rel in (
        "validated/questionnaires.parquet", "validation/rejections.csv", "validation/accounting.csv",
        "scores/questionnaires.parquet", "scores/questionnaires.csv", "stats/sessions.parquet",
        "stats/dyads.parquet", "stats/dyads.csv", "selection/index.json", "reports/index.csv",
        "reports/cohort.pdf", "reports/validation.pdf",
    ):
        assert (tmp / "results" / rel).is_file(), rel
    dyads = pl.read_csv(tmp / "results" / "stats" / "dyads.csv").get_column("dyad_id").to_list()
    pdfs = sorted(p.stem for p in (tmp / "results" / "reports" / "dyads").glob("*.pdf"))
    assert pdfs == sorted(dyads) and len(pdfs) == 80
    bundles = sorted(p.stem for p in (tmp / "results" / "reports" / "by_therapist").glob("*/*.pdf"))
    assert bundles == sorted(dyads)
    assert not list((tmp / "results").rglob("*.tmp"))


def test_accounting_balances_and_rejections_are_the_planted_ones(demo_run):
    tmp, _ = demo_run
    acc = pl.read_csv(tmp / "results" / "validation" / "accounting.csv")
    assert acc.columns[:5] == ["source_file", "sha256", "rows_read", "rows_accepted", "rows_rejected"]
    assert acc.filter(pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_rejected")).height == 0
    assert acc.get_column("source_file").to_list() == ["data/demo/questionnaires.csv"]
    rej = pl.read_csv(tmp / "results" / "validation" / "rejections.csv")
    assert rej.columns[:6] == ["source_file", "source_line", "column", "value", "rule", "message"]
    assert sorted(set(rej.get_column("rule"))) == [
        "date_format", "duplicate_conflict", "duplicate_exact", "dyad_therapist_changed", "instrument_unknown", "item_value",
    ]
    # the line numbers point at the rows a person sees in an editor
    lines = (tmp / "data" / "demo" / "questionnaires.csv").read_text(encoding="utf-8").split("\n")
    for r in rej.iter_rows(named=True):
        assert lines[r["source_line"] - 1].startswith(r["dyad_id"] + ",")
    scores = pl.read_parquet(tmp / "results" / "scores" / "questionnaires.parquet")
    assert scores.height == acc.get_column("rows_accepted").sum()


def test_rerun_has_nothing_to_do(demo_run):
    tmp, cfg = demo_run
    proc = snakemake(tmp, "-n", "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_is_clean(demo_run):
    tmp, cfg = demo_run
    proc = snakemake(tmp, "--lint", "--configfile", str(cfg))
    assert proc.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_strict_mode_stops_with_file_line_and_rule(tmp_path):
    text = (REPO / "config" / "config.yaml").read_text().replace("validation: quarantine", "validation: strict")
    cfg = make_study(tmp_path, text)
    proc = snakemake(tmp_path, "results/scores/questionnaires.csv", "--cores", "1", "--configfile", str(cfg))
    assert proc.returncode != 0
    err = proc.stderr
    assert "validation failed (validation: strict): 7 row(s) rejected in 1 file(s)" in err
    assert "data/demo/questionnaires.csv, line " in err and "item_value" in err
    assert "Traceback" not in err
    assert not (tmp_path / "results" / "scores" / "questionnaires.csv").exists()
    full = pl.read_csv(tmp_path / "logs" / "validate.rejections.csv")
    assert full.height == 7 and "All 7 rejections: logs/validate.rejections.csv" in err


def test_missing_column_is_one_clear_message(tmp_path):
    cfg = make_study(tmp_path)
    csv = tmp_path / "data" / "demo" / "questionnaires.csv"
    lines = csv.read_text(encoding="utf-8").split("\n")
    lines[0] = lines[0].replace("session,", "sesion,")
    csv.write_text("\n".join(lines), encoding="utf-8")
    proc = snakemake(tmp_path, "results/validated/questionnaires.parquet", "--cores", "1", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert "dyadflow ingest: data/demo/questionnaires.csv, line 1, column 'session': required column missing: session" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_config_is_reported(tmp_path):
    cfg = make_study(tmp_path, "study: {name: x}\ninputs: [{path: a.csv, format: excel97}]\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert "'excel97' is not one of ['canonical_csv']" in proc.stdout + proc.stderr
