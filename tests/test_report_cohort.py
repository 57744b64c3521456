"""Charts (PNG at print resolution, no metadata, same bytes) and the cohort and validation reports."""

from __future__ import annotations

import io as pyio
import json
import struct
import zlib

import polars as pl
from pypdf import PdfReader
from report_inputs import COHORT, VALIDATION, paths_at, selections
from test_report_dyad import write_results

from dyadflow.report import charts, cohort, render


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        out.setdefault(kind, b"")
        out[kind] += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    return out


def pdf_text(path) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pyio.BytesIO(path.read_bytes())).pages)


def test_chart_png_is_print_resolution_without_metadata_and_reproducible():
    pts = [{"session": s, "outcome": 30.0 - 2 * s} for s in range(6)]
    bands = [{"label": "minimal", "min": 0, "max": 13}, {"label": "severe", "min": 14, "max": 63}]
    gains = [
        {"kind": "gain", "pregain_session": 2, "postgain_session": 3, "pregain_score": 26.0, "postgain_score": 24.0}
    ]
    a = charts.png_bytes(charts.outcome_figure(pts, bands, gains, "BDI-II", (0, 63)))
    b = charts.png_bytes(charts.outcome_figure(pts, bands, gains, "BDI-II", (0, 63)))
    assert a == b
    chunks = png_chunks(a)
    x, y, unit = struct.unpack(">IIB", chunks[b"pHYs"])
    assert unit == 1 and round(x * 0.0254) == 200 == round(y * 0.0254)  # pixels per metre → 200 dpi
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    assert width == round(charts.WIDTH_IN * 200) and height == 500
    assert b"tEXt" not in chunks and b"tIME" not in chunks and b"iTXt" not in chunks
    assert zlib.decompress(chunks[b"IDAT"])  # a real image


def test_cohort_report_shows_cohort_json_and_dashes_for_missing(tmp_path):
    res = write_results(tmp_path)
    (res / "stats" / "cohort.json").write_text(
        json.dumps(
            {
                "outcome": "bdi_ii",
                "pooled_effect": {
                    "raw": {"b": -0.4321, "se": 0.1234, "t": -3.5, "p": 0.0004, "n_obs": 918, "n_dyads": 80},
                    "detrended": {"b": -0.2, "se": 0.1, "t": -2.0, "p": 0.046, "n_obs": 918, "n_dyads": 80},
                },
                "reliability": {"wai_sr": {"alpha": 0.912, "omega": None, "n": 900, "k": 12}},
                "completeness": [
                    {"instrument": "bdi_ii", "session": 0, "n_dyads": 2, "n_observed": 1, "fraction": 0.5}
                ],
                "change_categories": {"CBT": {"recovered": 1}, "IPT": {"unchanged": 1}},
                "flow": {"dyads_started": 2},
                "arms": {
                    "dyads": 2,
                    "sessions": 5,
                    "per_arm": [
                        {"arm": "CBT", "dyads": 1, "sessions": 4, "median_sessions": 4.0},
                        {"arm": "IPT", "dyads": 1, "sessions": 1, "median_sessions": 1.0},
                    ],
                },
            }
        )
    )
    (res / "selection" / "ekeblad_summary.json").write_text(json.dumps({"n_dyads_kept": 1, "n_sessions": 2}))
    out = tmp_path / "cohort.pdf"
    cohort.run_cohort(
        paths_at(res, COHORT),
        "Trial",
        selections(res, ["ekeblad", "fixed"], "_summary.json"),
        "f4b6f1d6" + "0" * 56,
        str(out),
    )
    text = pdf_text(out)
    for expected in (
        "CBT 1 4 4.0",
        "IPT 1 1 1.0",
        "All 2 5",
        "dyads started 2",
        "raw −0.432 0.123 −3.50 < .001 918 80",
        "detrended −0.200 0.100 −2.00 .046",
        "wai_sr 0.91 — 900 12",
        "0 50 % (1/2)",
        "recovered",
        "N dyads kept 1",
        "No summary file for this strategy",
        "config f4b6f1d6",
        "Page 1 of",
    ):
        assert expected in text, expected
    assert render.fmt_signed(-0.4321, 3) == "−0.432"


def test_validation_report_lists_accounting_rules_and_rows(tmp_path):
    res = write_results(tmp_path)
    pl.DataFrame(
        {
            "source_file": ["data/q.csv"],
            "rows_read": [20],
            "rows_accepted": [19],
            "rows_rejected": [1],
            "rows_duplicate": [0],
        }
    ).write_csv(res / "validation" / "accounting.csv")
    out = tmp_path / "validation.pdf"
    cohort.run_validation(paths_at(res, VALIDATION), "Trial", None, str(out))
    text = pdf_text(out)
    for expected in (
        "data/q.csv 20 19 1 0",
        "item_value 1 1",
        "data/q.csv 17 D1 item_04 9 item_value",
        "All 1 problems, by file and line",
    ):
        assert expected in text, expected
    first = out.read_bytes()
    cohort.run_validation(paths_at(res, VALIDATION), "Trial", None, str(out))
    assert out.read_bytes() == first


def test_validation_report_highlights_files_without_data(tmp_path):
    res = write_results(tmp_path)
    pl.DataFrame(
        {
            "source_file": ["data/all_bad.csv", "data/binary.csv", "data/one_good.csv", "data/q.csv"],
            "rows_read": [2, 0, 2, 20],
            "rows_accepted": [0, 0, 1, 19],
            "rows_rejected": [2, 0, 1, 1],
            "rows_duplicate": [0, 0, 0, 0],
            "file_error": [
                None,
                "data/binary.csv, line 1: is not a text export: it is binary (this is a PNG image)",
                None,
                None,
            ],
        }
    ).write_csv(res / "validation" / "accounting.csv")
    ctx = cohort.validation_context(paths_at(res, VALIDATION), "Trial", None)
    assert ctx["files_without_data"] == [
        "data/all_bad.csv: all 2 row(s) were rejected: no data from this file is used",
        "data/binary.csv: the whole file was quarantined, it cannot be read: "
        "data/binary.csv, line 1: is not a text export: it is binary (this is a PNG image)",
    ]
    assert [a["no_data"] for a in ctx["accounting"]] == [True, True, False, False]
    html = render.template_env().get_template("validation.html.j2").render(**ctx)
    assert '<div class="risk-title">No data used from 2 input file(s)</div>' in html
    assert '<tr class="no-data"><td>data/all_bad.csv</td>' in html
    assert '<tr class="no-data"><td>data/binary.csv (quarantined)</td>' in html
    assert "<tr><td>data/one_good.csv</td>" in html
    out = tmp_path / "validation.pdf"
    cohort.run_validation(paths_at(res, VALIDATION), "Trial", None, str(out))
    text = pdf_text(out)
    assert "No data used from 2 input file(s)" in text and "data/all_bad.csv 2 0 2 0" in text


def test_validation_report_names_the_input_of_a_file_read_twice(tmp_path):
    """Issue 14.7: one wide CSV wired as two inputs has an accounting row per input."""
    res = write_results(tmp_path)
    pl.DataFrame(
        {
            "source_file": ["data/wide.csv", "data/wide.csv", "data/q.csv"],
            "rows_read": [3, 3, 20],
            "rows_accepted": [2, 3, 19],
            "rows_rejected": [1, 0, 1],
            "rows_duplicate": [0, 0, 0],
            "input": ["wide_wai", "wide_bdi", "q"],
        }
    ).write_csv(res / "validation" / "accounting.csv")
    out = tmp_path / "validation.pdf"
    cohort.run_validation(paths_at(res, VALIDATION), "Trial", None, str(out))
    text = pdf_text(out)
    for expected in (
        "data/q.csv 20 19 1 0",
        "data/wide.csv (input wide_bdi) 3 3 0 0",
        "data/wide.csv (input wide_wai) 3 2 1 0",
    ):
        assert expected in text, expected
    assert "data/q.csv (input" not in text


def test_selection_summary_reads_as_text_not_json():
    view = cohort.selection_view(
        "high_low",
        {
            "name": "high_low",
            "strategy": "high_low_alliance",
            "source": "Ekeblad et al. (2022)",
            "parameters": {
                "alpha": 0.05,
                "detrend": True,
                "threshold": {"patient": 3.5},
                "sessions": [3, 5],
                "rater": None,
            },
            "groups": {
                "high": {"sessions": 5, "outcome_pre_mean": 30.6},
                "low": {"sessions": 4, "outcome_pre_mean": 28.0},
            },
            "not_qualified": [["not significant", 66], ["wrong sign", 1]],
            "selected_sessions": 9,
        },
    )
    assert view == {
        "name": "high_low",
        "missing": False,
        "strategy": "high low alliance",
        "source": "Ekeblad et al. (2022)",
        "parameters": "alpha 0.05; detrend yes; threshold patient 3.5; sessions 3, 5; rater —",
        "facts": [("Not qualified", "not significant (66); wrong sign (1)"), ("Selected sessions", "9")],
        "groups_table": {
            "columns": ["high", "low"],
            "rows": [["Outcome pre mean", "30.6", "28"], ["Sessions", "5", "4"]],
        },
        "groups_text": None,
    }
    counts = cohort.selection_view("rr", {"strategy": "rupture_repair", "groups": {"pre": 69, "repair": 62}})
    assert counts["groups_text"] == "pre 69; repair 62" and counts["groups_table"] is None
    assert cohort.selection_view("none", {"strategy": "repair_case", "groups": {}})["groups_text"] == "none selected"
    assert cohort.selection_view("gone", None) == {"name": "gone", "missing": True}


def test_supervisor_table_counts_signals_per_therapist():
    from dyadflow.report.cohort import supervisor_table

    dyads = pl.DataFrame(
        {
            "dyad_id": ["A", "B", "C", "D", "E"],
            "therapist_id": ["T2", "T1", "T1", "T1", "T2"],
            "signal": ["red", "red", "green", None, "recovered"],
            "alliance_alert": [True, None, True, False, False],
            "risk_latest": [None, True, False, None, True],
        }
    )
    assert supervisor_table(dyads) == [
        {
            "therapist_id": "T1",
            "dyads": 3,
            "red": 1,
            "yellow": 0,
            "green": 1,
            "recovered": 0,
            "none": 1,
            "alliance_alerts": 1,
            "risk": 1,
        },
        {
            "therapist_id": "T2",
            "dyads": 2,
            "red": 1,
            "yellow": 0,
            "green": 0,
            "recovered": 1,
            "none": 0,
            "alliance_alerts": 1,
            "risk": 1,
        },
    ]


MULTILEVEL = {
    "model": "outcome(t+1) ~ alliance_within + alliance_between",
    "terms": ["alliance_within", "alliance_between"],
    "n_observations": 918,
    "n_dyads": 80,
    "n_patients": 79,
    "n_therapists": 12,
    "therapist_level": True,
    "method": "REML",
    "random_effects": "therapist random intercept (groups)",
    "converged": True,
    "message": None,
    "fixed_effects": {
        "alliance_between": {"estimate": -0.5, "se": 0.5, "ci_low": -1.48, "ci_high": 0.48, "p": 0.317},
        "alliance_within": {"estimate": -1.2345, "se": 0.2, "ci_low": -1.6265, "ci_high": -0.8425, "p": 0.0000012},
        "intercept": {"estimate": 20.5, "se": 1.0, "ci_low": 18.54, "ci_high": 22.46, "p": 0.0},
    },
    "variance_components": {"residual": 9.5, "therapist_intercept": 0.25},
}


def test_cohort_report_shows_the_multilevel_model_and_says_when_it_did_not_converge(tmp_path):
    res = write_results(tmp_path)
    (res / "stats" / "multilevel.json").write_text(json.dumps(MULTILEVEL))
    out = tmp_path / "cohort.pdf"
    cohort.run_cohort(paths_at(res, COHORT), "Trial", {}, None, str(out))
    text = pdf_text(out)
    for expected in (
        "Multilevel alliance–outcome model",
        "Observations (session pairs) 918",
        "Patients 79",
        "Dyads 80",
        "Therapists 12",
        "Alliance, within patient (lagged) −1.234 0.200 −1.627 to −0.843 < .001 Alliance, between",
        "residual 9.500",
        "therapist intercept 0.250",
    ):
        assert expected in text, expected
    assert "Did not converge" not in text
    failed = {
        **MULTILEVEL,
        "converged": False,
        "message": "the model did not converge (singular): the estimates are not reliable",
    }
    (res / "stats" / "multilevel.json").write_text(json.dumps(failed))
    cohort.run_cohort(paths_at(res, COHORT), "Trial", {}, None, str(out))
    assert "Did not converge: the model did not converge (singular): the estimates are not reliable" in pdf_text(out)
    unfitted = {
        **MULTILEVEL,
        "fixed_effects": {},
        "variance_components": {},
        "converged": False,
        "message": "not fitted: 12 observation(s) in 1 dyad(s) with at least 2 session pairs",
    }
    (res / "stats" / "multilevel.json").write_text(json.dumps(unfitted))
    cohort.run_cohort(paths_at(res, COHORT), "Trial", {}, None, str(out))
    assert "Not fitted: not fitted: 12 observation(s)" in pdf_text(out)


def test_cohort_report_shows_coder_agreement_and_the_comparison_only_when_unblinded(tmp_path):
    from dyadflow.coding.agreement import AGREEMENT_SCHEMA
    from dyadflow.coding.comparison import COMPARISON_SCHEMA

    res = write_results(tmp_path)
    (res / "coding").mkdir()
    pl.DataFrame(
        [
            ("rupture_markers", "score", "icc2_1", "interval", 0.8436, 0.5616, 0.9565, 10, 3, None),
            ("rupture_type", "item_01", "fleiss_kappa", "nominal", 0.8421, None, None, 10, 3, "no CI"),
        ],
        schema=AGREEMENT_SCHEMA,
        orient="row",
    ).write_csv(res / "coding" / "agreement.csv")
    pl.DataFrame(schema=COMPARISON_SCHEMA).write_csv(res / "coding" / "comparison.csv")  # blinded: no rows
    out = tmp_path / "cohort.pdf"
    cohort.run_cohort(paths_at(res, COHORT), "Trial", {}, None, str(out))
    text = pdf_text(out)
    assert "Agreement between coders" in text
    assert "rupture_markers score ICC(2,1) 0.84 0.56 to 0.96 10 3" in text
    assert "rupture_type item_01 Fleiss' κ 0.84 — 10 3 no CI" in text
    assert "Unblinded comparison" not in text
    pl.DataFrame(
        [
            (
                "high_low",
                "rupture_markers",
                "score",
                "high",
                "low",
                5,
                5,
                1.2,
                2.9,
                -1.7,
                -2.5,
                -0.9,
                0.002,
                9,
                1,
                "OLS on a group indicator, cluster-robust SE by patient (CR1, t with G-1 df)",
                None,
            )
        ],
        schema=COMPARISON_SCHEMA,
        orient="row",
    ).write_csv(res / "coding" / "comparison.csv")
    cohort.run_cohort(paths_at(res, COHORT), "Trial", {}, None, str(out))
    text = pdf_text(out)
    assert "Unblinded comparison of the selected groups" in text
    assert "high_low rupture_markers score high − low 5 / 5 1.20 / 2.90 −1.70 −2.50 to −0.90 .002 9 (1)" in text
