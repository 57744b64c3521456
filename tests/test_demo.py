"""The demo study: deterministic, realistic, and with exactly the planted bad rows."""

from __future__ import annotations

import polars as pl
from conftest import DEMO_DIR, demo_inputs

from dyadflow.ingest import read_input
from dyadflow.tools import demo_study as demo
from dyadflow.validate.rules import validate_frames


def test_bundled_demo_equals_the_generator_output(tmp_path):
    demo.write(tmp_path)
    for name in demo.FILES:
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name
    # the workbook's bytes do not depend on when it was written
    again = demo.oq45_workbook_bytes(demo.generate_oq45(demo.generate()))
    assert again == (DEMO_DIR / "oq45_clinic.xlsx").read_bytes()
    # the questionnaire exports; data/demo/dial/ is the microprocess demo (tests/test_microprocess.py)
    assert sorted(p.name for p in DEMO_DIR.iterdir() if p.is_file()) == sorted(demo.FILES)


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


def _validated(registry):
    frames, metas = zip(*(read_input(spec) for spec in demo_inputs()), strict=False)
    return frames, metas, validate_frames(list(frames), list(metas), registry)


def test_demo_bad_rows_are_rejected_by_their_rules(registry):
    frames, metas, res = _validated(registry)
    by_rule = res.rejections.group_by("source_file", "rule").len().sort("source_file", "rule").rows()
    redcap, qualtrics, xlsx = (
        str(DEMO_DIR / name) for name in ("redcap_export.csv", "wai_s_qualtrics.csv", "oq45_clinic.xlsx")
    )
    assert by_rule == [
        (str(DEMO_DIR / "oq45_clinic.xlsx"), "instrument_unknown", 1),
        (redcap, "date_format", 1),
        (redcap, "duplicate_conflict", 2),
        (redcap, "item_value", 1),
        (redcap, "redcap_incomplete", 2),
        (qualtrics, "duplicate_exact", 1),
        (qualtrics, "dyad_therapist_changed", 1),
        (qualtrics, "qualtrics_incomplete", 2),
        (qualtrics, "qualtrics_test_response", 3),
    ]
    assert set(demo.BAD_ROWS.values()) <= {r for _, r, _ in by_rule}
    # rejections name the export's own column too
    bad_item = res.rejections.filter(pl.col("rule") == "item_value")
    assert bad_item.select("column", "value", "source_column").row(0) == ("item_04", "6", "wai_sr_04")
    acc = res.accounting.select("rows_read", "rows_accepted", "rows_rejected").rows()
    assert acc == [(2011, 2005, 6), (941, 934, 7), (56, 55, 1)]
    assert [m["rows_read"] for m in metas] == [2011, 941, 56]
    # Swedish and Norwegian notes survive the REDCap export
    notes = res.accepted.get_column("note").drop_nulls()
    assert notes.str.contains("[åäöø]").sum() > 100
    # every date format of the clinic's spreadsheet is read: no OQ-45 date is rejected
    oq = res.accepted.filter(pl.col("instrument") == "oq_45")
    assert oq.height == 55 and oq.get_column("date").null_count() == 0
    assert xlsx in set(res.accepted.get_column("source_file"))


def test_the_exports_hold_the_generated_study(registry):
    """Apart from the planted problems, the three exports give back the generated table."""
    _, _, res = _validated(registry)
    key = ["dyad_id", "session", "instrument"]
    table = demo.generate().filter(
        (pl.len().over("dyad_id", "session", "instrument") == 1) & (pl.col("instrument") != "bdi_2")
    )
    got = res.accepted.filter(pl.col("instrument") != "oq_45").select(*key, "item_01", "item_12", "note")
    want = table.select(
        "dyad_id",
        pl.col("session").cast(pl.Int32),
        "instrument",
        *[pl.col(c).str.slice(0, 1).cast(pl.Int16, strict=False) for c in ("item_01", "item_12")],
        "note",
    )
    missing = want.join(got, on=key, how="anti").sort(key)
    # rejected: the out-of-range item, the bad date, the changed therapist, two forms not
    # marked complete in REDCap; nothing else is lost
    assert missing.select("dyad_id", "session", "instrument").rows() == [
        ("D003", 4, "wai_sr"),
        ("D007", 2, "wai_sr"),
        ("D019", 3, "bdi_ii"),
        ("D027", 6, "bdi_ii"),
        ("D033", 3, "wai_s"),
    ]
    both = want.join(got, on=key, how="inner")
    assert both.height == want.height - 5
    for c in ("item_01", "item_12", "note"):
        assert both.filter(pl.col(c).ne_missing(pl.col(f"{c}_right"))).height == 0, c


def test_within_dyad_alliance_predicts_lower_next_symptoms(registry):
    """The planted effect is there: within dyads, alliance(t) and BDI(t+1) correlate negatively."""
    from dyadflow.score import score_frame
    from dyadflow.stats import session_table

    _, _, res = _validated(registry)
    scores = score_frame(res.accepted, registry)
    s = session_table(scores, "bdi_ii", {"patient": "wai_sr", "therapist": "wai_s"}).drop_nulls(
        ["alliance_composite", "outcome_next"]
    )
    centred = s.with_columns(
        (pl.col(c) - pl.col(c).mean().over("dyad_id")).alias(c)
        for c in ("alliance_composite", "outcome_next", "session")
    )
    r = centred.select(pl.corr("alliance_composite", "outcome_next")).item()
    assert r < -0.1
