"""Dyad case reports from small hand-made stats/selection tables with the contract columns.

Key figures in the PDF text equal the statistics tables (formatted as the report
formats them), audiences and bundles keep patient text private, injected HTML is
text, nothing outside the assets is fetched, and re-rendering gives the same bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io as pyio
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader
from report_inputs import TABLES, paths_at, selections

from dyadflow.core.contract import conform
from dyadflow.report import render, shards
from dyadflow.report.render import fmt_number, fmt_signed
from dyadflow.report.tables import read_report_tables
from dyadflow.stats.alliance import subscale_profile
from dyadflow.stats.contract import DyadsModel
from dyadflow.validate.consent import CONSENT_TABLE

INJECTIONS = [
    '<img src="file:///etc/passwd">',
    "<script>alert(1)</script>",
    "http://example.invalid/x.png",
    "<style>body{display:none}</style>",
]
ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}


def pdf_text(path: Path) -> str:
    reader = PdfReader(pyio.BytesIO(path.read_bytes()))
    return " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def _dyads(full: bool = True) -> pl.DataFrame:
    rows = [
        {
            "dyad_id": "D1",
            "patient_id": "P1",
            "therapist_id": "T1",
            "arm": "CBT",
            "n_sessions": 4,
            "first_session": 1,
            "last_session": 5,
            "outcome_pre": 30.0,
            "outcome_post": 12.0,
            "outcome_change": -18.0,
            "rci": -3.456,
            "change_category": "recovered",
            "alliance_patient_mean": 3.8125,
            "alliance_therapist_mean": 5.25,
            "agreement_r": 0.634,
            "agreement_n": 4,
            "discrepancy_mean": -1.4375,
            "stats_note": None,
            "missed_sessions": "4",  # stats: session 4 has no data (see _sessions)
        },
        {
            "dyad_id": "D2",
            "patient_id": "P2",
            "therapist_id": "T2",
            "arm": "IPT",
            "n_sessions": 1,
            "first_session": 1,
            "last_session": 1,
            "outcome_pre": 20.0,
            "outcome_post": 21.0,
            "outcome_change": 1.0,
            "rci": None,
            "change_category": None,
            "alliance_patient_mean": 4.0,
            "alliance_therapist_mean": None,
            "agreement_r": None,
            "agreement_n": 0,
            "discrepancy_mean": None,
            "stats_note": "agreement needs at least 3 sessions rated by both",
        },
    ]
    frame = conform(pl.DataFrame(rows), DyadsModel)
    return (
        frame
        if full
        else frame.select(
            "dyad_id",
            "patient_id",
            "therapist_id",
            "arm",
            "n_sessions",
            "first_session",
            "last_session",
            "outcome_pre",
            "outcome_post",
            "outcome_change",
        )
    )


def _sessions() -> pl.DataFrame:
    d0 = dt.date(2024, 1, 1)
    rows = []
    for s, (out, ap, at) in enumerate(
        [
            (30.0, None, None),
            (28.0, 3.0, 5.0),
            (26.0, 3.5, 5.0),
            (14.0, 4.25, 5.5),
            (13.0, 4.5, 5.5),
            (12.0, None, None),
        ]
    ):
        if s == 4:
            continue  # a missed session
        rows.append(
            {
                "dyad_id": "D1",
                "session": s,
                "date": d0 + dt.timedelta(days=7 * s),
                "alliance_patient": ap,
                "alliance_therapist": at,
                "outcome": out,
            }
        )
    rows += [
        {
            "dyad_id": "D2",
            "session": 0,
            "date": dt.date(2024, 2, 1),
            "alliance_patient": None,
            "alliance_therapist": None,
            "outcome": 20.0,
        },
        {
            "dyad_id": "D2",
            "session": 1,
            "date": dt.date(2024, 2, 8),
            "alliance_patient": 4.0,
            "alliance_therapist": None,
            "outcome": 21.0,
        },
    ]
    return pl.DataFrame(rows).with_columns(
        pl.mean_horizontal("alliance_patient", "alliance_therapist").alias("alliance_composite")
    )


def _scores() -> pl.DataFrame:
    s = _sessions()
    out = s.filter(pl.col("outcome").is_not_null()).select(
        "dyad_id",
        "session",
        "date",
        pl.lit("patient").alias("rater"),
        pl.lit("bdi_ii").alias("instrument"),
        pl.col("outcome").alias("score"),
    )
    pat = s.filter(pl.col("alliance_patient").is_not_null()).select(
        "dyad_id",
        "session",
        "date",
        pl.lit("patient").alias("rater"),
        pl.lit("wai_sr").alias("instrument"),
        pl.col("alliance_patient").alias("score"),
    )
    ther = s.filter(pl.col("alliance_therapist").is_not_null()).select(
        "dyad_id",
        "session",
        "date",
        pl.lit("therapist").alias("rater"),
        pl.lit("wai_s").alias("instrument"),
        pl.col("alliance_therapist").alias("score"),
    )
    frame = pl.concat([out, pat, ther]).with_columns(
        pl.col("dyad_id").replace({"D1": "P1", "D2": "P2"}).alias("patient_id"),
        pl.col("dyad_id").replace({"D1": "T1", "D2": "T2"}).alias("therapist_id"),
        pl.when(pl.col("instrument") == "bdi_ii").then(pl.lit("severe")).alias("band"),
        # BDI-II item 9 endorsed in D1 session 3
        ((pl.col("dyad_id") == "D1") & (pl.col("session") == 3) & (pl.col("instrument") == "bdi_ii")).alias(
            "risk_flag"
        ),
        pl.when((pl.col("dyad_id") == "D1") & (pl.col("session") == 3) & (pl.col("instrument") == "bdi_ii"))
        .then(pl.lit("item 9 = 2"))
        .alias("risk_items"),
        pl.when(pl.col("instrument") != "bdi_ii").then(pl.col("score")).alias("sub_goal"),
        pl.when(pl.col("instrument") != "bdi_ii").then(pl.col("score") - 0.5).alias("sub_bond"),
        pl.lit(False).alias("prorated"),
        pl.lit(None, dtype=pl.String).alias("note"),
        (pl.col("dyad_id") == "D2").alias("consent_share_text"),
    )
    notes = {
        ("D1", 1, "wai_sr"): "PATIENTSECRET one " + " ".join(INJECTIONS),
        ("D1", 2, "wai_s"): "THERAPISTNOTE plan homework",
        ("D2", 1, "wai_sr"): "SHAREDNOTE call me at +47 912 34 567 or per@example.org",
    }
    key = pl.concat_str("dyad_id", pl.col("session").cast(pl.String), "instrument", separator="|")
    mapping = {"|".join(map(str, k)): v for k, v in notes.items()}
    return frame.with_columns(key.replace_strict(mapping, default=None).alias("note"))


def write_results(root: Path, full: bool = True) -> Path:
    res = root / "results"
    (res / "stats").mkdir(parents=True)
    (res / "scores").mkdir()
    (res / "selection").mkdir()
    (res / "validation").mkdir()
    _dyads(full).write_parquet(res / "stats" / "dyads.parquet")
    _sessions().write_parquet(res / "stats" / "sessions.parquet")
    _scores().write_parquet(res / "scores" / "questionnaires.parquet")
    if full:
        subscale_profile(_scores(), ALLIANCE).write_csv(res / "stats" / "subscales.csv")
        pl.DataFrame(
            {
                "dyad_id": ["D1"],
                "kind": ["gain"],
                "pregain_session": [2],
                "postgain_session": [3],
                "pregain_score": [26.0],
                "postgain_score": [14.0],
                "magnitude": [12.0],
                "reversed": [False],
            }
        ).write_csv(res / "stats" / "sudden_gains.csv")
        pl.DataFrame(
            {
                "dyad_id": ["D1"],
                "rater": ["patient"],
                "pre_session": [1],
                "rupture_session": [2],
                "repair_session": [3],
                "pre_alliance": [3.0],
                "rupture_alliance": [2.5],
                "drop": [0.5],
                "repaired": [True],
            }
        ).write_csv(res / "stats" / "ruptures.csv")
        pl.DataFrame(
            {
                "dyad_id": ["D1", "D1"],
                "session": [3, 1],
                "group": ["high", "low"],
                "rank": [1, 1],
                "reason": ["HIGHREASON highest composite", "LOWREASON lowest composite"],
            }
        ).write_csv(res / "selection" / "ekeblad.csv")
    (res / "validated").mkdir()
    # D2 shares text, both share their ratings: consent.parquet is the reports' only source of consent
    pl.DataFrame(
        {
            "dyad_id": ["D1", "D2", "D2"],
            "session": [0, 0, 0],
            "date": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 2, 1)],
            "rater": ["patient"] * 3,
            "consent": [True, True, True],
            "source_file": ["data/q.csv"] * 3,
            "source_line": [2, 3, 3],
            "kind": ["share_ratings", "share_ratings", "share_text"],
        },
        schema=CONSENT_TABLE,
    ).write_parquet(res / "validated" / "consent.parquet")
    pl.DataFrame(
        {
            "source_file": ["data/q.csv"],
            "source_line": [17],
            "column": ["item_04"],
            "value": ["9"],
            "rule": ["item_value"],
            "message": ["'9' is not an allowed answer"],
            "dyad_id": ["D1"],
            "session": ["2"],
            "instrument": ["wai_sr"],
        }
    ).write_csv(res / "validation" / "rejections.csv")
    return res


def build(res: Path, audience: str = "research", per_shard: int = 25, strategies=("ekeblad",)) -> dict:
    """What the report rules do: the plan, every shard, and the index that publishes the PDFs,
    from the run directory with relative paths (as Snakemake names them)."""
    with contextlib.chdir(res.parent):
        return _build(Path(res.name), audience, per_shard, strategies)


def _build(res: Path, audience: str, per_shard: int, strategies) -> dict:
    reports = res / "reports"
    plan = shards.plan(
        paths_at(res, TABLES),
        selections(res, strategies),
        per_shard,
        str(reports / "plan.json"),
        str(reports / "shards" / "tables"),
    )
    out = []
    for k in range(plan["n_shards"]):
        out += shards.render_shard(
            {t: str(reports / "shards" / "tables" / str(k) / f"{t}.parquet") for t in shards.SHARD_TABLES},
            str(reports / "shards" / f"{k}.json"),
            str(reports / "shards" / "pdf" / str(k)),
            study="Trial <B>",
            audience=audience,
            outcome="bdi_ii",
            alliance=ALLIANCE,
            config_sha256="f4b6f1d6" + "0" * 56,
            strategies=list(strategies),
        )
    shards.index(
        [str(reports / "shards" / f"{k}.json") for k in range(plan["n_shards"])],
        str(reports / "index.csv"),
        str(reports / "dyads"),
        str(reports / "by_therapist"),
    )
    return {r["dyad_id"]: r for r in out}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    res = write_results(root)
    return res, build(res)


def test_missing_contract_columns_are_added_as_null(tmp_path):
    res = write_results(tmp_path, full=False)
    t = read_report_tables(paths_at(res, TABLES), selections(res, ["nothere"]))
    assert t.dyads.get_column("rci").to_list() == [None, None]
    assert t.dyads.schema["agreement_r"] == pl.Float64 and t.sudden_gains.height == 0
    assert t.selection.columns == ["dyad_id", "session", "group", "rank", "reason", "strategy"]
    assert str(res / "selection" / "nothere.csv") in t.missing


def test_missed_sessions_and_the_subscale_profile_are_the_stats_tables(tmp_path, registry):
    """Issue 16.3: the report renders what stats computed (dyads.missed_sessions, stats/subscales.csv);
    planted values that the scores cannot give show it does not recompute them."""
    from dyadflow.report import dyad as dyad_report

    res = write_results(tmp_path)
    dyads = pl.read_parquet(res / "stats" / "dyads.parquet")
    dyads.with_columns(pl.Series("missed_sessions", ["2, 3", None])).write_parquet(res / "stats" / "dyads.parquet")
    pl.DataFrame({"dyad_id": ["D1"], "rater": ["patient"], "subscale": ["goal"], "value": [9.99]}).write_csv(
        res / "stats" / "subscales.csv"
    )
    t = read_report_tables(paths_at(res, TABLES))
    ctx = {
        c["dyad"]["dyad_id"]: c
        for c in dyad_report.shard_contexts(
            t,
            audience="research",
            study="Trial",
            outcome="bdi_ii",
            alliance=ALLIANCE,
            registry=registry,
            provenance={"version": "x", "config": None, "templates": None},
        )
    }
    assert (ctx["D1"]["missed"], ctx["D2"]["missed"]) == ("2, 3", None)
    assert (ctx["D1"]["profile"], ctx["D2"]["profile"]) == (
        [{"rater": "patient", "subscale": "goal", "value": 9.99}],
        [],
    )


def test_key_figures_equal_the_stats_tables(built):
    res, _ = built
    text = pdf_text(res / "reports" / "dyads" / "D1.pdf")
    d = pl.read_parquet(res / "stats" / "dyads.parquet").filter(pl.col("dyad_id") == "D1").row(0, named=True)
    for expected in (
        "Dyad D1",
        "Trial <B>",
        "P1",
        "T1",
        "CBT",
        "2024-01-01 to 2024-02-05",
        "4 (sessions 1–5)",
        f"{fmt_number(d['outcome_pre'])} → {fmt_number(d['outcome_post'])}",  # 30.0 → 12.0
        f"change {fmt_signed(d['outcome_change'])} points",  # −18.0
        "recovered",
        f"(RCI) {fmt_number(d['rci'], 2)}",  # −3.46
        fmt_number(d["alliance_patient_mean"], 2),
        fmt_number(d["alliance_therapist_mean"], 2),  # 3.81, 5.25
        f"r = {fmt_number(d['agreement_r'], 2)}",
        f"(patient − therapist, each scale rescaled to 0–1) {fmt_signed(d['discrepancy_mean'], 2)}",
        "Risk items endorsed",
        "Session 3 (2024-01-22), bdi_ii: item 9 = 2",
        "HIGHREASON highest composite",
        "LOWREASON lowest composite",
        "Missed sessions 4",
        "data/q.csv 17 item_04 item_value",
        "CONFIDENTIAL",
        "Page 1 of",
        "config f4b6f1d6",
        "results/manifest.json",
    ):
        assert expected in text, expected
    assert "−3.46" in text and "3.81" in text and "−18.0" in text  # true minus signs


def test_null_statistics_show_a_dash_with_the_reason(built):
    res, _ = built
    text = pdf_text(res / "reports" / "dyads" / "D2.pdf")
    assert "Change category —" in text and "r = —" in text
    assert "agreement needs at least 3 sessions rated by both" in text
    assert "No risk item was endorsed" in text
    assert "No session of this dyad was selected" in text


def test_report_renders_without_optional_tables(tmp_path):
    res = write_results(tmp_path, full=False)
    out = build(res, strategies=())
    text = pdf_text(res / "reports" / "dyads" / "D1.pdf")
    assert "Change category —" in text and "no selection strategy is configured" in text
    assert set(out) == {"D1", "D2"}


def test_injected_html_is_text_and_nothing_is_fetched(tmp_path, monkeypatch):
    requested = []
    real = render.make_fetcher

    def recording():
        fetcher = real()
        inner = fetcher.fetch

        def fetch(url, headers=None):
            requested.append(url)
            return inner(url, headers)

        fetcher.fetch = fetch
        return fetcher

    monkeypatch.setattr(render, "make_fetcher", recording)
    res = write_results(tmp_path)
    build(res)
    text = pdf_text(res / "reports" / "dyads" / "D1.pdf")
    flat = text.replace(" ", "")  # a long URL may wrap onto the next line
    for snippet in INJECTIONS:
        assert snippet.replace(" ", "") in flat, snippet
    assert requested, "the charts are fetched through the fetcher"
    assets = render.ASSETS.resolve().as_uri() + "/"
    assert all(u.startswith("data:") or u.startswith(assets) for u in requested), [u[:80] for u in requested]


def test_fetcher_refuses_files_outside_assets_and_remote_urls():
    fetcher = render.make_fetcher()
    html = '<p>x</p><img src="file:///etc/passwd"><img src="http://example.invalid/x.png"><img src="../templates/base.html.j2">'
    render.render_pdf(html, 0, fetcher)
    assert fetcher.refused == [
        "file:///etc/passwd",
        "http://example.invalid/x.png",
        (render.REPORTS_DIR / "templates" / "base.html.j2").as_uri(),
    ]


def test_clinician_bundle_has_only_consented_text_and_that_therapists_dyads(built):
    res, _ = built
    bundles = res / "reports" / "by_therapist"
    assert sorted(p.relative_to(bundles).as_posix() for p in bundles.rglob("*.pdf")) == ["T1/D1.pdf", "T2/D2.pdf"]
    d1 = pdf_text(bundles / "T1" / "D1.pdf")
    assert "PATIENTSECRET" not in d1  # D1 did not consent
    assert "THERAPISTNOTE plan homework" in d1  # the therapist's own note
    assert "HIGHREASON" not in d1 and "Selected sessions" not in d1 and "ekeblad" not in d1
    # the clinician copy is the feedback report: nothing for researchers
    assert "FEEDBACK REPORT FOR THE THERAPIST" in d1
    for research in ("Data quality", "Provenance", "Rejected rows", "item_value", "manifest.json", "config f4b6f1d6"):
        assert research not in d1, research
    d2 = pdf_text(bundles / "T2" / "D2.pdf")
    assert "SHAREDNOTE call me at [phone removed] or [e-mail removed]" in d2
    assert "912 34 567" not in d2 and "per@example.org" not in d2
    research = pdf_text(res / "reports" / "dyads" / "D1.pdf")
    assert "PATIENTSECRET" in research and "HIGHREASON" in research


def test_clinician_audience_for_the_main_reports(tmp_path):
    res = write_results(tmp_path)
    build(res, audience="clinician")
    main = res / "reports" / "dyads" / "D1.pdf"
    assert "PATIENTSECRET" not in pdf_text(main)
    assert main.read_bytes() == (res / "reports" / "by_therapist" / "T1" / "D1.pdf").read_bytes()


def test_rendering_twice_gives_identical_bytes(built, tmp_path):
    res, first = built
    again = write_results(tmp_path)
    second = build(again)
    for d in ("D1", "D2"):
        a = (res / "reports" / "dyads" / f"{d}.pdf").read_bytes()
        b = (again / "reports" / "dyads" / f"{d}.pdf").read_bytes()
        assert a == b and first[d]["sha256"] == second[d]["sha256"] == render.sha256_bytes(a)
    assert (res / "reports" / "index.csv").read_bytes() == (again / "reports" / "index.csv").read_bytes()


def test_a_changed_dyad_changes_only_its_shards_tables(tmp_path):
    """What keeps one changed dyad to one report_shard job: the plan rewrites every shard's
    tables, deterministically, so only the changed dyad's shard gets other bytes (Snakemake
    does not rerun a job whose newer input has the checksum recorded at its last run)."""
    res = write_results(tmp_path)
    build(res, per_shard=1)  # two shards
    tables = res / "reports" / "shards" / "tables"
    public = [res / "reports" / "dyads" / "D1.pdf", res / "reports" / "dyads" / "D2.pdf"]
    before = {p: p.read_bytes() for p in [*tables.rglob("*.parquet"), *public]}
    sessions = pl.read_parquet(res / "stats" / "sessions.parquet").with_columns(
        pl.when((pl.col("dyad_id") == "D2") & (pl.col("session") == 1))
        .then(3.0)
        .otherwise(pl.col("alliance_patient"))
        .alias("alliance_patient")
    )
    sessions.write_parquet(res / "stats" / "sessions.parquet")
    shutil.rmtree(tables)  # Snakemake empties a directory output before its job runs
    build(res, per_shard=1)
    after = {p: p.read_bytes() for p in [*tables.rglob("*.parquet"), *public]}
    assert after.keys() == before.keys() and len(before) == 2 * len(shards.SHARD_TABLES) + 2
    d2_shard = int(render.shard_of(pl.Series(["D2"]), 2)[0])
    assert {p.relative_to(res).as_posix() for p in after if after[p] != before[p]} == {
        f"reports/shards/tables/{d2_shard}/sessions.parquet",
        "reports/dyads/D2.pdf",
    }


def test_stale_reports_are_removed(tmp_path):
    res = write_results(tmp_path)
    build(res)
    pl.read_parquet(res / "stats" / "dyads.parquet").filter(pl.col("dyad_id") == "D2").write_parquet(
        res / "stats" / "dyads.parquet"
    )
    build(res)
    published = [*(res / "reports" / "dyads").rglob("*.pdf"), *(res / "reports" / "by_therapist").rglob("*.pdf")]
    assert sorted(p.relative_to(res / "reports").as_posix() for p in published) == [
        "by_therapist/T2/D2.pdf",
        "dyads/D2.pdf",
    ]
    assert not (res / "reports" / "by_therapist" / "T1").exists()
    index = pl.read_csv(res / "reports" / "index.csv")
    assert index.get_column("dyad_id").to_list() == ["D2"]
    assert json.loads((res / "reports" / "plan.json").read_text())["n_dyads"] == 1
    assert os.path.exists(res / "reports" / "shards" / "tables" / "0" / "dyads.parquet")


def test_long_session_table_repeats_its_header_on_every_page(tmp_path):
    res = write_results(tmp_path)
    d0 = dt.date(2023, 1, 2)
    long = pl.DataFrame(
        {
            "dyad_id": ["D1"] * 70,
            "session": list(range(70)),
            "date": [d0 + dt.timedelta(days=7 * s) for s in range(70)],
            "alliance_patient": [None] + [3.0 + (s % 5) / 4 for s in range(1, 70)],
            "alliance_therapist": [None] + [4.0 + (s % 3) / 3 for s in range(1, 70)],
            "outcome": [30.0 - s / 5 for s in range(70)],
        }
    ).with_columns(pl.mean_horizontal("alliance_patient", "alliance_therapist").alias("alliance_composite"))
    pl.concat(
        [long, pl.read_parquet(res / "stats" / "sessions.parquet").filter(pl.col("dyad_id") == "D2")],
        how="diagonal_relaxed",
    ).write_parquet(res / "stats" / "sessions.parquet")
    build(res)
    reader = PdfReader(pyio.BytesIO((res / "reports" / "dyads" / "D1.pdf").read_bytes()))
    pages = [" ".join(p.extract_text().split()) for p in reader.pages]
    header = "Session Date Outcome Band Alliance (patient) Alliance (therapist) Risk items"
    with_rows = [i for i, p in enumerate(pages) if "2024-03-" in p]  # sessions 61–69 are in March 2024
    table_pages = [i for i, p in enumerate(pages) if header in p]
    assert len(table_pages) >= 2 and with_rows and set(with_rows) <= set(table_pages)
    n = len(pages)
    assert all(f"Page {i + 1} of {n}" in p and "CONFIDENTIAL" in p for i, p in enumerate(pages))


def test_selected_session_labels_of_neighbouring_sessions_stack():
    from dyadflow.report.charts import _label_rows

    marks = [
        {"session": 3, "label": "sessions_3_5: troubled"},
        {"session": 5, "label": "sessions_3_5: troubled"},
        {"session": 5, "label": "rupture_repair: pre"},
        {"session": 6, "label": "rupture_repair: rupture"},
        {"session": 7, "label": "rupture_repair: repair"},
        {"session": 7, "label": "rupture_repair: repair"},  # the same label twice is shown once
    ]
    # 9 sessions over 6.03 in of axes: 0.0808 sessions per character of a 6.5 pt label
    assert _label_rows(marks, list(range(9))) == [
        (3, "sessions_3_5: troubled", 0),  # spans 2.11–3.89
        (5, "sessions_3_5: troubled; rupture_repair: pre", 1),  # 3.26–6.74 overlaps row 0
        (6, "rupture_repair: rupture", 0),  # 5.07–6.93 clears 3.89
        (7, "rupture_repair: repair", 2),  # 6.11–7.89 overlaps both rows
    ]
    assert _label_rows([{"session": 2, "label": "a"}, {"session": 12, "label": "b"}], list(range(15))) == [
        (2, "a", 0),
        (12, "b", 0),
    ]


# --- issue 14.10: long notes are shortened --------------------------------------------


def _note_scores(notes: list[str], consent: bool = True) -> pl.DataFrame:
    n = len(notes)
    return pl.DataFrame(
        {
            "dyad_id": ["D1"] * n,
            "session": list(range(1, n + 1)),
            "date": [dt.date(2024, 1, k) for k in range(1, n + 1)],
            "rater": ["patient"] * n,
            "instrument": ["wai_sr"] * n,
            "note": notes,
            "consent_share_text": [consent] * n,
            "source_file": ["data/q.csv"] * n,
            "source_line": list(range(2, n + 2)),
        }
    )


def _text_consent(dyad: str = "D1") -> pl.DataFrame:
    """consent.parquet rows: the patient consents to share text from session 0 on."""
    return pl.DataFrame(
        {
            "dyad_id": [dyad],
            "session": [0],
            "date": [dt.date(2024, 1, 1)],
            "rater": ["patient"],
            "consent": [True],
            "source_file": ["data/q.csv"],
            "source_line": [2],
            "kind": ["share_text"],
        },
        schema=CONSENT_TABLE,
    )


def test_a_note_is_shortened_only_beyond_max_note_chars():
    from dyadflow.report.dyad import visible_notes

    words = "word " * 400  # 2000 characters
    at = words[:-1] + "x"  # exactly 2000
    over = words + "y"  # 2001: the cut falls after the space that ends word 400
    below = words[:-1]  # 1999
    research = visible_notes(_note_scores([below, at, over]), "research").get_column("note").to_list()
    assert research[0] == below and research[1] == at
    assert research[2] == words.rstrip() + " … (shortened), full text: data/q.csv line 4"
    clinician = (
        visible_notes(_note_scores([below, at, over]), "clinician", _text_consent()).get_column("note").to_list()
    )
    assert clinician == [below, at, words.rstrip() + " … (shortened)"]

    # a word that runs over the limit is left out whole, unless that loses more than a fifth
    def short(note, n):
        return visible_notes(_note_scores([note]), "clinician", _text_consent(), max_chars=n).get_column("note").item()

    assert short("abcdefghi jklmn", 10) == "abcdefghi … (shortened)"
    assert short("ab cdefghijklmn", 10) == "ab cdefghi … (shortened)"
    assert short("abcdefghijklmn", 10) == "abcdefghij … (shortened)"
    # redacted before the cut: no part of an e-mail address is left
    assert short("call per@example.org now", 12) == "call [e-mail … (shortened)"


def test_a_million_character_note_renders_in_a_few_pages(tmp_path):
    res = write_results(tmp_path, full=False)
    scores = pl.read_parquet(res / "scores" / "questionnaires.parquet")
    long = "lorem ipsum " * 83334  # 1,000,008 characters
    scores = scores.with_columns(
        pl.when((pl.col("dyad_id") == "D1") & (pl.col("session") == 1) & (pl.col("instrument") == "wai_sr"))
        .then(pl.lit(long))
        .otherwise(pl.col("note"))
        .alias("note"),
        pl.lit("data/q.csv").alias("source_file"),
        pl.lit(7, dtype=pl.Int64).alias("source_line"),
    )
    scores.write_parquet(res / "scores" / "questionnaires.parquet")
    build(res, strategies=())
    pdf = res / "reports" / "dyads" / "D1.pdf"
    assert len(PdfReader(str(pdf)).pages) <= 6
    text = " ".join(pdf_text(pdf).split())
    assert "… (shortened), full text: data/q.csv line 7" in text


# --- issue 18: reused figures, the subscale profile as a table ---------------------------


def test_the_subscale_profile_is_a_table_of_the_stats_values(tmp_path):
    """Planted profile values appear as table rows with each rater's item scale; a rater
    without a value shows a dash (the chart it replaces showed the same numbers)."""
    res = write_results(tmp_path)
    pl.DataFrame(
        {
            "dyad_id": ["D1", "D1", "D1"],
            "rater": ["patient", "therapist", "patient"],
            "subscale": ["goal"] * 2 + ["bond"],
        }
        | {"value": [4.125, 6.5, 2.0]}
    ).write_csv(res / "stats" / "subscales.csv")
    build(res)
    text = pdf_text(res / "reports" / "dyads" / "D1.pdf")
    assert "Subscale Patient (1–5) Therapist (1–7) Bond 2.00 — Goal 4.12 6.50 Mean item score" in text
    assert "— No subscale scores on record." in pdf_text(res / "reports" / "dyads" / "D2.pdf")


def _chart_args() -> dict:
    """Two dyads' chart arguments: A has everything drawn per dyad (gains, ruptures,
    selected sessions, signals, alerts), B little of it."""
    bands = [{"label": "minimal", "min": 0, "max": 13}, {"label": "severe", "min": 14, "max": 63}]
    fb = {"expected_p10": 10.0, "expected_p25": 14.0, "expected_p50": 18.0, "expected_p75": 22.0, "expected_p90": 26.0}
    a = {
        "outcome": ([{"session": s, "outcome": 30.0 - 3 * s} for s in range(1, 13)], bands),
        "gains": [
            {"kind": "gain", "pregain_session": 2, "postgain_session": 3, "pregain_score": 24.0, "postgain_score": 21.0}
        ],
        "alliance": [{"session": s, "alliance_patient": 3.0, "alliance_therapist": 5.0} for s in range(1, 13)],
        "marks": [{"session": 4, "label": "ekeblad: high"}],
        "ruptures": [{"rater": "patient", "pre_session": 1, "rupture_session": 2, "repair_session": 3}],
        "feedback": [{"session": s, "outcome": 20.0, "signal": "red", **fb} for s in range(1, 13)],
        "points01": [{"session": s, "patient": 0.2, "therapist": 0.9, "alliance_alert": True} for s in range(1, 13)],
    }
    b = {
        "outcome": ([{"session": s, "outcome": 20.0 + s} for s in (1, 2, 4)], bands),
        "gains": [],
        "alliance": [{"session": s, "alliance_patient": 4.0, "alliance_therapist": None} for s in (1, 2, 4)],
        "marks": [{"session": 2, "label": "ekeblad: low"}],
        "ruptures": [],
        "feedback": [{"session": s, "outcome": 25.0, "signal": None, **fb} for s in (1, 2, 4)],
        "points01": [{"session": s, "patient": 0.5, "therapist": None, "alliance_alert": False} for s in (1, 2, 4)],
    }
    return {"A": a, "B": b}


def _figures(args: dict) -> list:
    from dyadflow.report import charts

    def _(text):
        return text

    return [
        charts.outcome_figure(*args["outcome"], args["gains"], "BDI-II", (0, 63)),
        charts.alliance_figure(args["alliance"], args["marks"], args["ruptures"], (0.8, 7.2), ("Patient", "Therapist")),
        charts.feedback_figure(args["feedback"], "BDI-II", (0, 63), True, _, "sv"),
        charts.alliance01_figure(args["points01"], _, "sv"),
    ]


def test_a_chart_reuses_its_figure_and_does_not_depend_on_the_dyad_before():
    """Each chart kind draws every dyad on one figure; B's PNGs are the same bytes drawn
    first (on new figures) and drawn after A (on A's figures)."""
    from dyadflow.report import charts

    args = _chart_args()
    charts.reset_canvases()
    alone = [charts.png_bytes(f) for f in _figures(args["B"])]
    charts.reset_canvases()
    figs_a = _figures(args["A"])
    after_a = [charts.png_bytes(f) for f in figs_a]
    figs_b = _figures(args["B"])
    assert all(fa is fb for fa, fb in zip(figs_a, figs_b, strict=True))  # the same figures, reused
    assert [charts.png_bytes(f) for f in figs_b] == alone
    assert after_a != alone


def test_a_legend_below_the_chart_clears_the_session_axis_label():
    """The legends under the alliance, feedback and 0–1 alliance charts lie wholly below the
    session axis's label and inside the picture (the 0–1 chart's legend used to print over
    "Session")."""
    from dyadflow.report import charts

    charts.reset_canvases()
    for fig in _figures(_chart_args()["A"])[1:]:
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent(renderer)
        label = ax.xaxis.label.get_window_extent(renderer)
        assert legend.y1 < label.y0, (ax.xaxis.label.get_text(), legend, label)
        assert legend.y0 > 0


def _pixels(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    return image.mode, np.asarray(image.convert("RGB"))


def test_a_chart_drawn_over_its_background_has_the_pixels_of_one_drawn_whole(monkeypatch):
    """The reused figures restore a background rendered once (bands, their labels, the y
    tick labels) and draw each dyad over it, and paste a legend drawn the same over the
    same pixels before; the pixels are those of the same charts drawn whole, for a dyad
    with everything drawn per dyad (A), one with little (B), and each again.
    The outcome chart, grey in every pixel, is a greyscale PNG; the others are RGB."""
    from dyadflow.report import charts

    args = _chart_args()
    charts.reset_canvases()
    # A, B, then B and A again: the second time, each legend is pasted from the chart before
    over = [[_pixels(charts.png_bytes(f)) for f in _figures(args[k])] for k in ("A", "B", "B", "A")]
    monkeypatch.setattr(charts, "_background", lambda ax: None)  # every chart drawn whole
    charts.reset_canvases()
    whole = [[_pixels(charts.png_bytes(f)) for f in _figures(args[k])] for k in ("A", "B")]
    charts.reset_canvases()
    assert [m for m, _ in over[0]] == ["L", "RGB", "RGB", "RGB"]
    for dyad_over, dyad_whole in zip(over, [*whole, whole[1], whole[0]], strict=True):
        for (_, a), (_, b) in zip(dyad_over, dyad_whole, strict=True):
            assert a.shape == b.shape and (a == b).all()
    assert not (over[0][0][1] == over[1][0][1]).all()  # A and B differ


def test_a_dyads_pdf_is_the_same_alone_and_after_another_dyad(tmp_path):
    """D2 rendered after D1 in one shard (D1's gains, rupture and selected sessions drawn
    first on the reused figures) and D2 rendered alone give identical PDFs."""
    from dyadflow.report import charts

    both = write_results(tmp_path / "both")
    charts.reset_canvases()
    build(both)
    alone = write_results(tmp_path / "alone")
    dyads = pl.read_parquet(alone / "stats" / "dyads.parquet")
    dyads.filter(pl.col("dyad_id") == "D2").write_parquet(alone / "stats" / "dyads.parquet")
    charts.reset_canvases()
    build(alone)
    assert not (alone / "reports" / "dyads" / "D1.pdf").exists()
    for path in ("dyads/D2.pdf", "by_therapist/T2/D2.pdf"):
        assert (both / "reports" / path).read_bytes() == (alone / "reports" / path).read_bytes(), path


def test_the_report_stylesheet_is_parsed_once_and_gives_the_same_pdf(monkeypatch):
    """WeasyPrint parses a linked stylesheet for every document; render_pdf parses
    report.css once per process, and the PDF is the same bytes as with the link."""
    import datetime as dt

    import weasyprint

    html = '<html><head><link rel="stylesheet" href="report.css"></head><body><h2>Key figures</h2>'
    html += '<table class="keyfigs"><tr><th>a</th><td class="fig">1.0</td><td class="expl">x</td></tr></table></body></html>'
    parsed = []
    real = weasyprint.CSS.__init__

    def counting(self, *a, **k):
        parsed.append(1)
        real(self, *a, **k)

    monkeypatch.setattr(weasyprint.CSS, "__init__", counting)
    monkeypatch.setattr(render, "_STYLESHEETS", {})
    first, second = render.render_pdf(html, 86400), render.render_pdf(html, 86400)
    assert len(parsed) == 1 and first == second
    with render.source_date_epoch(86400):  # the same document with the stylesheet linked, as WeasyPrint reads it
        doc = weasyprint.HTML(string=html, base_url=render.ASSETS.as_uri() + "/").render(
            font_config=render.font_config()
        )
        doc.metadata.created = doc.metadata.modified = dt.datetime(1970, 1, 2, tzinfo=dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert doc.write_pdf() == first
    assert len(parsed) == 2
