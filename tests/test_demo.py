"""The demo study: deterministic, realistic, and with exactly the planted bad rows."""

from __future__ import annotations

import polars as pl

from dyadflow import demo, io
from dyadflow.ingest import read_input
from dyadflow.validate import validate_frames

from conftest import REPO

DEMO = REPO / "data" / "demo" / "questionnaires.csv"


def test_bundled_demo_equals_the_generator_output():
    assert io.csv_bytes(demo.generate()) == DEMO.read_bytes()


def test_demo_shape():
    t = demo.generate(bad_rows=False)
    assert t.get_column("dyad_id").n_unique() == 80
    assert set(t.get_column("arm").unique()) == {"CBT", "IPT"}
    sessions = t.get_column("session").cast(pl.Int32)
    assert sessions.min() == 0 and sessions.max() == 14
    assert set(t.filter(pl.col("session") == "0").get_column("instrument")) == {"bdi_ii"}
    per_dyad = t.group_by("dyad_id").agg(pl.col("session").cast(pl.Int32).max().alias("last"))
    assert per_dyad.filter(pl.col("last") < 14).height >= 5  # dropouts
    notes = t.get_column("note").drop_nulls()
    assert notes.str.contains("[åäöø]").sum() > 100


def test_demo_bad_rows_are_rejected_by_their_rules(registry):
    frame, meta = read_input({"path": str(DEMO), "format": "canonical_csv"})
    res = validate_frames([frame], [meta], registry)
    by_rule = res.rejections.group_by("rule").len().sort("rule").rows()
    assert by_rule == [
        ("date_format", 1),
        ("duplicate_conflict", 2),
        ("duplicate_exact", 1),
        ("dyad_therapist_changed", 1),
        ("instrument_unknown", 1),
        ("item_value", 1),
    ]
    assert set(demo.BAD_ROWS.values()) == {r for r, _ in by_rule}
    assert res.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (
        meta["rows_read"], meta["rows_read"] - 7, 7
    )


def test_within_dyad_alliance_predicts_lower_next_symptoms(registry):
    """The planted effect is there: within dyads, alliance(t) and BDI(t+1) correlate negatively."""
    from dyadflow.score import score_frame
    from dyadflow.stats import session_table

    frame, meta = read_input({"path": str(DEMO), "format": "canonical_csv"})
    scores = score_frame(validate_frames([frame], [meta], registry).accepted, registry)
    s = session_table(scores, "bdi_ii", {"patient": "wai_sr", "therapist": "wai_s"}).drop_nulls(
        ["alliance_composite", "outcome_next"]
    )
    centred = s.with_columns(
        (pl.col(c) - pl.col(c).mean().over("dyad_id")).alias(c) for c in ("alliance_composite", "outcome_next", "session")
    )
    r = centred.select(pl.corr("alliance_composite", "outcome_next")).item()
    assert r < -0.1
