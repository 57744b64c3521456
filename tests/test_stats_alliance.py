"""Alliance means, early alliance, slopes, agreement and discrepancy, by hand."""

from __future__ import annotations

import pytest
from stats_helpers import sessions

from dyadflow.stats.alliance import alliance_summary

RANGES = {"patient": (1, 5), "therapist": (1, 7)}


def test_every_statistic_by_hand():
    s = sessions(
        {"D1": {"session": [1, 2, 3, 4, 5], "alliance_patient": [1, 2, 3, 4, 5], "alliance_therapist": [7, 5, 6, 4, 3]}}
    )
    r = alliance_summary(s, RANGES).row(0, named=True)
    assert r["alliance_patient_mean"] == 3 and r["alliance_therapist_mean"] == 5
    assert r["alliance_patient_early"] == 4 and r["alliance_therapist_early"] == pytest.approx(13 / 3)
    assert r["alliance_patient_slope"] == pytest.approx(1.0)
    assert r["alliance_therapist_slope"] == pytest.approx(-0.9)  # sum xy -9 / sum xx 10
    assert r["agreement_r"] == pytest.approx(-0.9)  # -9 / sqrt(10 * 10)
    assert r["agreement_n"] == 5
    # patient on 0-1: 0, .25, .5, .75, 1 (mean .5); therapist: 1, 4/6, 5/6, 3/6, 2/6 (mean 2/3)
    assert r["discrepancy_mean"] == pytest.approx(0.5 - 2 / 3)
    assert r["_note_alliance"] is None


def test_missing_ratings_and_too_few_sessions_give_nulls_with_reasons():
    s = sessions(
        {
            "D1": {"session": [1, 2, 3], "alliance_patient": [4, None, 5], "alliance_therapist": [5, 6, None]},
            "D2": {"session": [1], "alliance_patient": [4], "alliance_therapist": [None]},
        }
    )
    out = {r["dyad_id"]: r for r in alliance_summary(s, RANGES).iter_rows(named=True)}
    d1, d2 = out["D1"], out["D2"]
    assert d1["agreement_n"] == 1 and d1["agreement_r"] is None
    assert d1["alliance_patient_slope"] == pytest.approx(0.5)  # (4, 5) at sessions 1 and 3
    assert d1["alliance_therapist_slope"] == pytest.approx(1.0)
    assert d1["discrepancy_mean"] == pytest.approx(0.75 - 4 / 6)  # session 1 only
    assert d1["_note_alliance"] == (
        "alliance therapist early: no rating in sessions 3-5; agreement: 1 session(s) rated by both, needs 3"
    )
    assert d2["alliance_patient_slope"] is None and d2["alliance_therapist_mean"] is None
    assert "alliance therapist: no rated session" in d2["_note_alliance"]
    assert "alliance patient slope: fewer than 2 rated sessions" in d2["_note_alliance"]


def test_subscale_profile_means_the_alliance_instruments_subscales_per_rater():
    import polars as pl

    from dyadflow.stats.alliance import subscale_profile

    scores = pl.DataFrame(
        {
            "dyad_id": ["D1", "D1", "D1", "D1"],
            "rater": ["patient", "patient", "therapist", "patient"],
            "instrument": ["wai_sr", "wai_sr", "wai_s", "oq_45"],  # oq_45 is no alliance instrument
            "sub_goal": [3.0, 4.0, 6.0, 1.0],
            "sub_bond": [2.0, None, 5.5, 1.0],
        }
    )
    got = subscale_profile(scores, {"patient": "wai_sr", "therapist": "wai_s"}).rows()
    assert got == [
        ("D1", "patient", "bond", 2.0),
        ("D1", "patient", "goal", 3.5),
        ("D1", "therapist", "bond", 5.5),
        ("D1", "therapist", "goal", 6.0),
    ]
