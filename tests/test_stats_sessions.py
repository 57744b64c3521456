"""The session table: alliance per rater, composite, outcome_next, z-scores, detrending."""

from __future__ import annotations

import math

import polars as pl
import pytest
from stats_helpers import scores

from dyadflow.stats.sessions import SESSION_COLUMNS, session_table

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}


def table(**kw):
    rows = [("D1", s, "bdi_ii", "patient", y) for s, y in ((0, 10), (1, 20), (2, 30), (3, 20))]
    rows += [("D1", s, "wai_sr", "patient", a) for s, a in ((1, 3), (2, 4), (3, 5))]
    rows += [("D1", s, "wai_s", "therapist", a) for s, a in ((1, 5), (2, 5), (3, 8))]
    return session_table(scores(rows), "bdi_ii", ALLIANCE, **kw)


def test_columns_and_composite():
    t = table()
    assert t.columns == SESSION_COLUMNS
    assert t.get_column("session").to_list() == [0, 1, 2, 3]
    assert [str(d) for d in t.get_column("date")] == ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]
    assert t.get_column("alliance_composite").to_list() == [None, 4.0, 4.5, 6.5]
    assert t.get_column("outcome_next").to_list() == [20.0, 30.0, 20.0, None]


def test_within_dyad_z_scores_by_hand():
    t = table()
    sd = math.sqrt(200 / 3)  # outcome 10, 20, 30, 20: mean 20
    assert t.get_column("outcome_z").to_list() == pytest.approx([-10 / sd, 0, 10 / sd, 0])
    # outcome_next_z is the next session's outcome_z
    assert t.get_column("outcome_next_z").to_list()[:3] == pytest.approx([0, 10 / sd, 0])
    # patient 3, 4, 5: z -1, 0, 1
    assert t.get_column("alliance_patient_z").to_list()[1:] == pytest.approx([-1, 0, 1])
    assert t.get_column("alliance_patient_z").to_list()[0] is None


def test_detrended_residuals_by_hand():
    t = table()
    # outcome on session 0..3: slope 4, residuals -4, 2, 8, -6 (mean 0, SD sqrt(40))
    assert t.get_column("outcome_dt").to_list() == pytest.approx([r / math.sqrt(40) for r in (-4, 2, 8, -6)])
    # patient 3, 4, 5 on 1, 2, 3 is a perfect line: residuals 0, SD 0 -> null
    assert t.get_column("alliance_patient_dt").to_list() == [None] * 4


def test_outcome_next_respects_max_gap():
    rows = [("D1", s, "bdi_ii", "patient", y) for s, y in ((0, 10), (1, 20), (3, 25), (4, 15))]
    rows += [("D1", 2, "wai_sr", "patient", 4)]
    one = session_table(scores(rows), "bdi_ii", ALLIANCE)
    assert one.get_column("session").to_list() == [0, 1, 2, 3, 4]
    assert one.get_column("outcome_next").to_list() == [20.0, None, None, 15.0, None]
    two = session_table(scores(rows), "bdi_ii", ALLIANCE, max_gap=2)
    assert two.get_column("outcome_next").to_list() == [20.0, 25.0, None, 15.0, None]
    assert two.get_column("outcome_next_session").to_list() == [1, 3, None, 4, None]


def test_z_mean_composite_and_single_value_dyad():
    rows = [("D1", s, "wai_sr", "patient", a) for s, a in ((1, 3), (2, 4), (3, 5))]
    rows += [("D1", s, "wai_s", "therapist", a) for s, a in ((1, 6), (2, 4), (3, 2))]
    rows += [("D2", 1, "wai_sr", "patient", 4), ("D2", 1, "bdi_ii", "patient", 12)]
    t = session_table(scores(rows), "bdi_ii", ALLIANCE, composite="z_mean")
    d1 = t.filter(pl.col("dyad_id") == "D1")
    # patient z -1, 0, 1; therapist z 1, 0, -1: the composite is 0 everywhere (no variance)
    assert d1.get_column("alliance_composite").to_list() == pytest.approx([0, 0, 0])
    assert d1.get_column("alliance_composite_z").to_list() == [None] * 3
    d2 = t.filter(pl.col("dyad_id") == "D2").row(0, named=True)
    assert d2["outcome"] == 12 and d2["outcome_z"] is None and d2["outcome_dt"] is None


def test_composite_needs_both_raters():
    rows = [("D1", 1, "wai_sr", "patient", 4), ("D1", 1, "wai_s", "therapist", 6), ("D1", 2, "wai_s", "therapist", 6)]
    t = session_table(scores(rows), "bdi_ii", ALLIANCE)
    assert t.get_column("alliance_composite").to_list() == [5.0, None]


def test_pomp_composite_puts_both_scales_on_0_to_1():
    """Issue 15 point 4: WAI-SR 1–5 and WAI-S 1–7 rescaled before averaging (the default)."""
    from dyadflow import stats
    from dyadflow.core.registry import load_registry

    rows = [("D1", 1, "wai_sr", "patient", 4), ("D1", 1, "wai_s", "therapist", 5.5)]
    rows += [("D1", 2, "wai_sr", "patient", 2.75), ("D1", 2, "wai_s", "therapist", 7)]
    rows += [("D1", s, "bdi_ii", "patient", y) for s, y in ((1, 20), (2, 18))]
    ranges = {"patient": (1, 5), "therapist": (1, 7)}
    pomp = session_table(scores(rows), "bdi_ii", ALLIANCE, composite="pomp", ranges=ranges)
    # session 1: (4-1)/4 = .75 and (5.5-1)/6 = .75 -> .75; session 2: 1.75/4 = .4375 and 1 -> .71875
    assert pomp.get_column("alliance_composite").to_list() == [0.75, 0.71875]
    # the raw mean ranks the sessions the other way round (4.75 < 4.875): the therapist's wider scale dominates
    assert session_table(scores(rows), "bdi_ii", ALLIANCE).get_column("alliance_composite").to_list() == [4.75, 4.875]
    # pomp is the pipeline's default, with the ranges from the registry
    assert stats.settings(None)["composite"] == "pomp"
    res = stats.compute(scores(rows), load_registry(), "bdi_ii", ALLIANCE)
    assert res.sessions.get_column("alliance_composite").to_list() == [0.75, 0.71875]
    assert res.cohort["settings"]["composite"] == "pomp"
    res = stats.compute(scores(rows), load_registry(), "bdi_ii", ALLIANCE, {"composite": "mean"})
    assert res.sessions.get_column("alliance_composite").to_list() == [4.75, 4.875]
    with pytest.raises(ValueError, match="ranges"):
        session_table(scores(rows), "bdi_ii", ALLIANCE, composite="pomp")


def test_missed_sessions_between_1_and_the_last_session():
    from dyadflow.stats.sessions import missed_sessions

    sessions = pl.DataFrame(
        {"dyad_id": ["D1"] * 4 + ["D2"] * 3 + ["D3"], "session": [0, 1, 3, 6, 0, 1, 2, 0]},
        schema={"dyad_id": pl.String, "session": pl.Int32},
    )
    # D1: 2, 4, 5 have no data (0 is intake, not a treatment session); D2 none; D3 only an intake
    assert missed_sessions(sessions).sort("dyad_id").rows() == [("D1", "2, 4, 5")]


def test_the_dyads_table_carries_the_missed_sessions():
    from dyadflow import stats
    from dyadflow.core.registry import load_registry

    rows = [("D1", s, "bdi_ii", "patient", 20.0 - s) for s in (0, 1, 3)] + [("D2", 1, "bdi_ii", "patient", 9.0)]
    res = stats.compute(scores(rows), load_registry(), "bdi_ii", ALLIANCE)
    assert res.dyads.select("dyad_id", "missed_sessions").rows() == [("D1", "2"), ("D2", None)]
