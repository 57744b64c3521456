"""End to end: the Snakemake workflow on the demo study, in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO_FILES, REPO, copy_built, make_demo_study, snakemake

pytestmark = pytest.mark.e2e
make_study = make_demo_study


@pytest.fixture(scope="module")
def demo_run(demo_built, tmp_path_factory):
    """A copy of the session's demo build (conftest.demo_built), with its config."""
    tmp = copy_built(demo_built, tmp_path_factory.mktemp("demo"))
    return tmp, tmp / "study.yaml"


def test_every_output_is_written(demo_run):
    tmp, _ = demo_run
    for rel in (
        "validated/questionnaires.parquet",
        "validated/consent.parquet",
        "validation/rejections.csv",
        "validation/accounting.csv",
        "scores/questionnaires.parquet",
        "scores/questionnaires.csv",
        "stats/sessions.parquet",
        "stats/dyads.parquet",
        "stats/dyads.csv",
        "selection/index.json",
        "reports/index.csv",
        "stats/sudden_gains.csv",
        "stats/ruptures.csv",
        "stats/cohort.json",
        "stats/multilevel.json",
        "reports/cohort.pdf",
        "reports/validation.pdf",
    ):
        assert (tmp / "results" / rel).is_file(), rel
    dyads = pl.read_csv(tmp / "results" / "stats" / "dyads.csv").get_column("dyad_id").to_list()
    pdfs = sorted(p.stem for p in (tmp / "results" / "reports" / "dyads").glob("*.pdf"))
    assert pdfs == sorted(dyads) and len(pdfs) == 80
    bundles = sorted(
        p.stem for p in (tmp / "results" / "reports" / "by_therapist").glob("*/*.pdf") if p.stem != "_caseload"
    )
    assert bundles == sorted(dyads)
    # every therapist's caseload page, listed in the index (issue 17)
    therapists = sorted(set(pl.read_csv(tmp / "results" / "stats" / "dyads.csv").get_column("therapist_id").to_list()))
    assert (
        sorted(p.parent.name for p in (tmp / "results" / "reports" / "by_therapist").glob("*/_caseload.pdf"))
        == therapists
    )
    index = pl.read_csv(tmp / "results" / "reports" / "index.csv")
    assert index.filter(pl.col("kind") == "caseload").get_column("therapist_id").to_list() == therapists
    # the demo has dyads in every signal colour
    assert set(pl.read_parquet(tmp / "results" / "stats" / "dyads.parquet").get_column("signal").drop_nulls()) == {
        "red",
        "yellow",
        "green",
        "recovered",
    }
    assert not list((tmp / "results").rglob("*.tmp"))


def test_outputs_command_lists_every_output_and_none_missing(demo_run):
    tmp, _ = demo_run
    proc = subprocess.run(
        [sys.executable, "-m", "dyadflow", "outputs", "--results", str(tmp / "results")],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = [line.strip() for line in proc.stdout.splitlines() if line.startswith("    ")]
    assert not [line for line in listed if "(missing)" in line]
    names = {Path(line.split("  (")[0]).relative_to(tmp / "results").as_posix() for line in listed}
    for strategy in ("high_low", "sessions_3_5", "repair_cases", "rupture_repair"):
        for suffix in (".csv", "_summary.json", "_blinded.csv", "_key.csv"):
            assert f"selection/{strategy}{suffix}" in names
    assert "charts/cohort_completeness.png" in names and "reports/dyads" in names
    assert "reports/dyads  (80 PDF reports)" in proc.stdout.replace(str(tmp / "results") + "/", "")
    assert "Rows: 3008 read, 2994 accepted, 14 rejected" in proc.stdout


def test_microprocess_outputs_are_written(demo_run):
    tmp, _ = demo_run
    mp = tmp / "results" / "microprocess"
    sessions = pl.read_csv(mp / "sessions.csv")
    assert sessions.select("dyad_id", "session").rows() == [("D001", 3), ("D001", 9), ("D002", 5), ("D003", 4)]
    segments = pl.read_csv(mp / "segments.csv")
    assert segments.columns == [
        "dyad_id",
        "session",
        "rater",
        "kind",
        "rank",
        "start_s",
        "end_s",
        "clip",
        "extreme_rating",
        "source",
    ]
    acc = pl.read_csv(mp / "accounting.csv")
    assert acc.height == 7 and acc.get_column("rows_rejected").sum() == 4
    assert (tmp / "logs" / "microprocess.log").is_file()


def test_accounting_balances_and_rejections_are_the_planted_ones(demo_run):
    tmp, _ = demo_run
    acc = pl.read_csv(tmp / "results" / "validation" / "accounting.csv")
    assert acc.columns[:5] == ["source_file", "sha256", "rows_read", "rows_accepted", "rows_rejected"]
    assert acc.filter(pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_rejected")).height == 0
    # REDCap: rows are questionnaires (a record holds BDI-II and WAI-SR side by side)
    assert acc.select(
        "source_file", "format", "rows_read", "rows_accepted", "rows_rejected", "records_read"
    ).rows() == [
        ("data/demo/redcap_export.csv", "redcap", 2011, 2005, 6, 1047),
        ("data/demo/wai_s_qualtrics.csv", "qualtrics", 941, 934, 7, 941),
        ("data/demo/oq45_clinic.xlsx", "xlsx", 56, 55, 1, 56),
    ]
    rej = pl.read_csv(tmp / "results" / "validation" / "rejections.csv")
    assert rej.columns[:6] == ["source_file", "source_line", "column", "value", "rule", "message"]
    by_rule = dict(rej.group_by("rule").len().rows())
    assert by_rule == {
        "date_format": 1,
        "duplicate_conflict": 2,
        "duplicate_exact": 1,
        "dyad_therapist_changed": 1,
        "instrument_unknown": 1,
        "item_value": 1,
        "redcap_incomplete": 2,
        "qualtrics_test_response": 3,
        "qualtrics_incomplete": 2,
    }
    assert set(rej.get_column("source_file")) == set(DEMO_FILES)
    # the line numbers point at the rows a person sees in an editor (the spreadsheet row in Excel)
    import openpyxl

    sheet = openpyxl.load_workbook(tmp / "data/demo/oq45_clinic.xlsx", read_only=True)["OQ-45"]
    texts = {f: (tmp / f).read_text(encoding="utf-8-sig").split("\n") for f in DEMO_FILES[:2]}
    for r in rej.iter_rows(named=True):
        if r["source_file"].endswith(".xlsx"):
            assert (
                next(sheet.iter_rows(min_row=r["source_line"], max_row=r["source_line"], values_only=True))[0]
                == r["dyad_id"]
            )
        else:
            assert r["dyad_id"] + "," in texts[r["source_file"]][r["source_line"] - 1]
    scores = pl.read_parquet(tmp / "results" / "scores" / "questionnaires.parquet")
    assert scores.height == acc.get_column("rows_accepted").sum()
    assert set(scores.get_column("instrument")) == {"bdi_ii", "wai_sr", "wai_s", "oq_45"}
    warnings = pl.read_csv(tmp / "results" / "validation" / "warnings.csv")
    assert warnings.columns == ["source_file", "column", "warning"]
    assert warnings.get_column("column").to_list() == [
        "IPAddress",
        "RecipientLastName",
        "RecipientFirstName",
        "RecipientEmail",
        "LocationLatitude",
        "LocationLongitude",
    ]


def test_the_demo_coding_study_is_accounted_agreed_and_compared(demo_run):
    """Issue 19: three coders' ratings of the high_low selection's blinded sessions."""
    tmp, _ = demo_run
    coding = tmp / "results" / "coding"
    acc = pl.read_csv(coding / "accounting.csv")
    assert acc.select("source_file", "rows_read", "rows_accepted", "rows_rejected").rows() == [
        ("data/demo/coded_high_low.csv", 61, 60, 1)
    ]
    assert pl.read_csv(coding / "rejections.csv").select("source_line", "rule", "code").rows() == [
        (62, "code_unknown", "ZZ")
    ]
    # the frozen key the demo generator computed in-process is the key the build wrote
    assert (tmp / "data/demo/high_low_key_frozen.csv").read_bytes() == (
        tmp / "results/selection/high_low_key.csv"
    ).read_bytes()
    assert pl.read_csv(coding / "warnings.csv").height == 0
    agreement = pl.read_csv(coding / "agreement.csv")
    assert agreement.filter(pl.col("measure") == "score").select("statistic", "n_targets", "n_coders").rows() == [
        ("icc2_1", 10, 3),
        ("icc2_k", 10, 3),
    ]
    assert agreement.filter(pl.col("instrument") == "rupture_type").get_column("statistic").to_list() == [
        "fleiss_kappa"
    ]
    assert pl.read_csv(coding / "consensus.csv").height == 10 * (3 + 3 + 1 + 1)  # items, subscales, score; the type
    score = pl.read_csv(coding / "comparison.csv").filter(pl.col("measure") == "score").row(0, named=True)
    # constructed with more unresolved rupture markers in the low-alliance sessions
    assert (score["group_a"], score["group_b"], score["n_a"], score["n_b"]) == ("high", "low", 5, 5)
    assert score["difference"] < 0 and score["ci_high"] < 0


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
    assert "validation failed (validation: strict): 14 row(s) rejected in 3 file(s)" in err
    assert (
        "data/demo/oq45_clinic.xlsx, line 21, column 'instrument' ('Formulär' in the export): instrument_unknown" in err
    )
    assert "Traceback" not in err
    assert not (tmp_path / "results" / "scores" / "questionnaires.csv").exists()
    full = pl.read_csv(tmp_path / "logs" / "validate.rejections.csv")
    assert full.height == 14 and "All 14 rejections: logs/validate.rejections.csv" in err


def test_a_mapping_naming_a_missing_column_is_one_clear_message(tmp_path):
    text = (REPO / "config" / "config.yaml").read_text().replace("session: Session,", "session: Sesion,")
    cfg = make_study(tmp_path, text)
    proc = snakemake(tmp_path, "results/validated/questionnaires.parquet", "--cores", "1", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert (
        "dyadflow ingest: data/demo/oq45_clinic.xlsx, line 3, column 'Sesion', key 'columns.session': "
        "the mapping 'columns.session' names column 'Sesion', which is not in the file"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_config_is_reported(tmp_path):
    cfg = make_study(tmp_path, "study: {name: x}\ninputs: [{path: a.csv, format: excel97}]\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg))
    assert proc.returncode != 0
    # the start-up config check: one line per mistake, no schema dump (issue 14)
    assert (
        "dyadflow config: inputs[0].format: 'excel97' is not one of: canonical_csv, redcap, qualtrics, xlsx, sav\n"
        in proc.stderr
    )
    assert "Failed validating" not in proc.stdout + proc.stderr


def test_stats_outputs_follow_the_contract(demo_run):
    import json

    from dyadflow.stats import DYAD_COLUMNS
    from dyadflow.stats.sessions import SESSION_COLUMNS

    tmp, _ = demo_run
    out = tmp / "results" / "stats"
    assert pl.read_csv(out / "dyads.csv", infer_schema=False).columns == DYAD_COLUMNS
    assert pl.read_parquet(out / "sessions.parquet").columns == SESSION_COLUMNS
    assert pl.read_csv(out / "sudden_gains.csv").columns[:8] == [
        "dyad_id",
        "kind",
        "pregain_session",
        "postgain_session",
        "pregain_score",
        "postgain_score",
        "magnitude",
        "reversed",
    ]
    cohort = json.loads((out / "cohort.json").read_text())
    assert {"outcome", "pooled_effect", "reliability", "completeness", "change_categories", "flow"} <= set(cohort)
    raw = cohort["pooled_effect"]["raw"]
    assert raw["n_dyads"] > 70 and raw["b"] < 0 and raw["p"] < 0.001  # the demo's planted effect
    assert set(cohort["reliability"]) == {"bdi_ii", "oq_45", "wai_s", "wai_sr"}
    # the multilevel model beside the per-dyad and pooled results (80 demo dyads in therapists)
    ml = json.loads((out / "multilevel.json").read_text())
    assert ml["n_dyads"] > 70 and ml["n_therapists"] >= 2 and ml["therapist_level"] is True
    assert ml["fixed_effects"]["alliance_within"]["estimate"] is not None
    assert set(ml["variance_components"]) == {"residual", "therapist_intercept", "dyad_intercept", "dyad_slope"}


# --- issue 14: outcome-only and alliance-only studies; braces in the study name ---------

ONE_SIDED_CONFIG = """\
study: {name: "Pilot {2024} study"}
inputs:
  - path: data/questionnaires.csv
    format: canonical_csv
selection:
  - {name: high_low, strategy: high_low_alliance}
  - {name: sessions_3_5, strategy: fixed_sessions, sessions: [3, 4]}
  - {name: repair_cases, strategy: repair_case}
  - {name: rupture_repair, strategy: rupture_repair}
"""
EVERY_OUTPUT = (
    "validated/questionnaires.parquet",
    "validation/rejections.csv",
    "validation/accounting.csv",
    "validation/warnings.csv",
    "scores/questionnaires.parquet",
    "scores/questionnaires.csv",
    "stats/sessions.parquet",
    "stats/dyads.parquet",
    "stats/dyads.csv",
    "stats/sudden_gains.csv",
    "stats/ruptures.csv",
    "stats/cohort.json",
    "selection/index.json",
    "reports/index.csv",
    "reports/cohort.pdf",
    "reports/validation.pdf",
    "manifest.json",
    "charts/validation_summary.png",
    "charts/cohort_change_by_arm.png",
    "charts/cohort_completeness.png",
    "charts/cohort_alliance_outcome.png",
) + tuple(
    f"selection/{n}{s}"
    for n in ("high_low", "sessions_3_5", "repair_cases", "rupture_repair")
    for s in (".csv", "_summary.json", "_blinded.csv", "_key.csv")
)


def one_sided_study(tmp: Path, instruments: list[str]) -> Path:
    """6 dyads × 4 sessions of the demo model, keeping only ``instruments``."""
    from dyadflow.tools import demo_study as demo

    path = demo.write_canonical(tmp / "data", n_dyads=6, n_sessions=4, bad_rows=False)
    rows = pl.read_csv(path, infer_schema=False)
    rows.filter(pl.col("instrument").is_in(instruments)).write_csv(path)
    cfg = tmp / "study.yaml"
    cfg.write_text(ONE_SIDED_CONFIG, encoding="utf-8")
    return cfg


def check_one_sided_run(tmp: Path, cfg: Path) -> dict:
    import json

    from pypdf import PdfReader

    proc = snakemake(tmp, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp / "results"
    for rel in EVERY_OUTPUT:
        assert (res / rel).is_file(), rel
    assert sorted(p.stem for p in (res / "reports" / "dyads").glob("*.pdf")) == [f"D{k:03d}" for k in range(1, 7)]
    for pdf in ("cohort.pdf", "validation.pdf", "dyads/D001.pdf"):
        text = "".join(page.extract_text() for page in PdfReader(str(res / "reports" / pdf)).pages)
        assert "Pilot {2024} study" in text, pdf  # the title, braces and all
    acc = pl.read_csv(res / "validation" / "accounting.csv")
    assert acc.select("input", "rows_rejected").rows() == [("questionnaires", 0)]
    return {
        n: json.loads((res / "selection" / f"{n}_summary.json").read_text())
        for n in ("high_low", "repair_cases", "rupture_repair")
    }


def test_an_outcome_only_study_runs_every_stage(tmp_path):
    """Issue 14.9: no alliance data crashed rupture_repair (ruptures.csv read back as strings)."""
    summaries = check_one_sided_run(tmp_path, one_sided_study(tmp_path, ["bdi_ii"]))
    assert pl.read_csv(tmp_path / "results" / "stats" / "ruptures.csv").height == 0
    assert pl.read_csv(tmp_path / "results" / "selection" / "rupture_repair.csv").height == 0
    assert {n: s["note"] for n, s in summaries.items()} == {
        "high_low": "no alliance (wai_sr, wai_s) scores in this study: high_low_alliance needs alliance and outcome scores, so nothing is selected",
        "repair_cases": "no alliance (wai_sr, wai_s) scores in this study: repair_case needs alliance and outcome scores, so nothing is selected",
        "rupture_repair": "no alliance (wai_sr, wai_s) scores in this study: rupture_repair needs alliance scores, so nothing is selected",
    }
    assert all(s["selected_sessions"] == 0 for s in summaries.values())


def test_an_alliance_only_study_runs_every_stage(tmp_path):
    summaries = check_one_sided_run(tmp_path, one_sided_study(tmp_path, ["wai_sr", "wai_s"]))
    assert pl.read_csv(tmp_path / "results" / "scores" / "questionnaires.csv").get_column(
        "instrument"
    ).unique().sort().to_list() == ["wai_s", "wai_sr"]
    assert {n: s.get("note") for n, s in summaries.items()} == {
        "high_low": "no outcome (bdi_ii) scores in this study: high_low_alliance needs alliance and outcome scores, so nothing is selected",
        "repair_cases": "no outcome (bdi_ii) scores in this study: repair_case needs alliance and outcome scores, so nothing is selected",
        "rupture_repair": None,
    }
    assert summaries["high_low"]["selected_sessions"] == summaries["repair_cases"]["selected_sessions"] == 0


def test_braces_in_a_file_path_stop_at_start_up_naming_the_config_key(tmp_path):
    """Issue 14.12: the study name may have braces (tested above); an input path cannot, and says so."""
    from dyadflow.core.naming import unsafe_paths

    cfg = tmp_path / "study.yaml"
    cfg.write_text('study: {name: "Pilot {2024} study"}\ninputs: [{path: "data/q{2024}.csv", format: canonical_csv}]\n')
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert (
        "config key 'inputs[0].path': 'data/q{2024}.csv': a file path cannot contain '{' or '}', which Snakemake "
        "reads as a wildcard; rename the file or folder (or use a symbolic link without them)"
    ) in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert unsafe_paths({"inputs": [{"path": "data/q.csv"}], "instruments_dir": None}) is None
    bad = {
        "inputs": [{"path": "q.csv", "dictionary": "d{x}.csv"}],
        "instruments_dir": "inst}",
        "microprocess": {"inputs": [{"path": "dial/{x}/*.csv"}]},
    }
    assert unsafe_paths(bad).startswith(
        "config key 'inputs[0].dictionary': 'd{x}.csv'; config key 'instruments_dir': 'inst}'; "
        "config key 'microprocess.inputs[0].path': 'dial/{x}/*.csv': a file path"
    )
