"""Session selection (dyadflow/select/): each rule on tiny hand-made dyads."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from dyadflow import select
from dyadflow.core.registry import load_registry
from dyadflow.select import blinding, fixed, high_low, repair_case, rupture
from dyadflow.select.common import with_defaults
from dyadflow.stats.sessions import session_table

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}
HL = with_defaults("high_low_alliance", {})  # the config schema's defaults


def step4_frame(rows):
    """Sessions for step 4: (dyad, session, z, outcome, outcome_next)."""
    return pl.DataFrame(
        rows,
        schema={
            "dyad_id": pl.String,
            "session": pl.Int32,
            "alliance_composite_z": pl.Float64,
            "outcome": pl.Float64,
            "outcome_next": pl.Float64,
        },
        orient="row",
    )


def scores_for(rows, patient="wai_sr", outcome="bdi_ii"):
    """Scores of (dyad, session, patient alliance, therapist alliance, outcome) rows."""
    out = []
    for d, s, p, t, o in rows:
        date = dt.date(2024, 1, 1) + dt.timedelta(days=7 * s)
        for inst, rater, v in ((patient, "patient", p), ("wai_s", "therapist", t), (outcome, "patient", o)):
            if v is not None:
                out.append((d, s, date, inst, rater, float(v)))
    return pl.DataFrame(
        out,
        schema={
            "dyad_id": pl.String,
            "session": pl.Int32,
            "date": pl.Date,
            "instrument": pl.String,
            "rater": pl.String,
            "score": pl.Float64,
        },
        orient="row",
    )


def sessions_for(rows):
    return session_table(scores_for(rows), "bdi_ii", ALLIANCE)


def test_highest_and_lowest_with_the_final_session_replaced():
    s = step4_frame(
        [
            ("D1", 1, 0.5, 20, 22),
            ("D1", 2, 1.5, 22, 18),
            ("D1", 3, -1.0, 18, 21),
            ("D1", 4, 0.2, 21, 19),
            ("D1", 5, 2.0, 19, None),
        ]
    )
    got = high_low.pick(s, pl.DataFrame({"dyad_id": ["D1"]}), HL, lower_is_better=True).sort("group")
    assert got.select("session", "group", "reason").rows() == [
        (2, "high", "replaced: final session (took the 2nd highest composite)"),
        (3, "low", "lowest composite"),
    ]


def test_no_decrease_and_no_increase_replacements():
    s = step4_frame(
        [
            # D2: the highest (1) is followed by a rise, the 2nd (4) is final: the 3rd (2) is taken
            ("D2", 1, 1.0, 20, 25),
            ("D2", 2, 0.2, 25, 15),
            ("D2", 3, -0.5, 15, 30),
            ("D2", 4, 0.3, 30, None),
            # D3: the lowest (1) and 2nd lowest (4) are followed by a fall: the 3rd lowest (2) is taken
            ("D3", 1, -2.0, 20, 18),
            ("D3", 2, -0.1, 18, 22),
            ("D3", 3, 1.0, 22, 24),
            ("D3", 4, -1.0, 24, 20),
            ("D3", 5, 0.5, 20, None),
        ]
    )
    got = high_low.pick(s, pl.DataFrame({"dyad_id": ["D2", "D3"]}), HL, lower_is_better=True).sort("dyad_id", "group")
    assert got.select("dyad_id", "session", "group", "reason").rows() == [
        ("D2", 2, "high", "replaced: final session, no decrease at next session (took the 3rd highest composite)"),
        ("D2", 3, "low", "lowest composite"),
        # D3's sessions above its mean (3, 5) are followed by a rise or final: no high row
        ("D3", 2, "low", "replaced: no increase at next session (took the 3rd lowest composite)"),
    ]


# Issue 15 point 1: H's sessions above its mean are all followed by a rise; the first one
# followed by a decrease (4) is exactly at the mean (z = 0): today's code took it as "high".
# J is H with session 4 just above the mean. L mirrors H for the low group: its one session
# followed by an increase (3) is above the mean (z = +0.5).
NEVER_ACROSS = [
    ("H", 1, 1.2, 20, 22),
    ("H", 2, 0.8, 22, 23),
    ("H", 3, 0.4, 23, 25),
    ("H", 4, 0.0, 25, 20),
    ("H", 5, -0.3, 20, 18),
    ("H", 6, -1.0, 18, 24),
    ("H", 7, -1.1, 24, 26),
    ("H", 8, 0.0, 26, None),
    ("J", 1, 1.2, 20, 22),
    ("J", 2, 0.8, 22, 23),
    ("J", 3, 0.4, 23, 25),
    ("J", 4, 0.001, 25, 20),
    ("J", 5, -0.3, 20, 18),
    ("J", 6, -1.0, 18, 24),
    ("J", 7, -1.1, 24, 26),
    ("J", 8, 0.0, 26, None),
    ("L", 1, -1.0, 20, 18),
    ("L", 2, -0.5, 18, 17),
    ("L", 3, 0.5, 17, 19),
    ("L", 4, 1.0, 19, 15),
    ("L", 5, 0.0, 15, None),
]


def kept_fits(dyads):
    return pl.DataFrame(
        {
            "dyad_id": dyads,
            "qualified": [True] * len(dyads),
            "tested": [True] * len(dyads),
            "why_not": [None] * len(dyads),
        },
        schema_overrides={"why_not": pl.String},
    )


def people(dyads):
    one = [1.0] * len(dyads)
    return pl.DataFrame(
        {
            "dyad_id": dyads,
            "patient_id": [f"P{d}" for d in dyads],
            "therapist_id": ["T"] * len(dyads),
            "outcome_pre": one,
            "outcome_post": one,
            "alliance_patient_mean": one,
            "alliance_therapist_mean": one,
        }
    )


def test_a_replacement_never_crosses_the_patients_mean(monkeypatch):
    monkeypatch.setattr(high_low, "therapies", lambda *a, **k: kept_fits(["H", "J", "L"]))
    sel, summary = high_low.select(step4_frame(NEVER_ACROSS), people(["H", "J", "L"]), {}, True, composite="pomp")
    assert sel.select("dyad_id", "session", "group", "reason").rows() == [
        ("L", 4, "high", "highest composite"),  # z 1.0: rank 1 of the high group
        ("J", 4, "high", "replaced: no decrease at next session (took the 4th highest composite)"),  # z .001
        ("H", 7, "low", "lowest composite"),
        ("J", 7, "low", "lowest composite"),
    ]
    assert summary["no_eligible_session"] == {
        "high": {
            "therapies": 1,
            "reasons": [
                {
                    "dyad_id": "H",
                    "reason": (
                        "no eligible session: 3 session(s) above the patient's mean composite (z > 0), none followed by a decrease "
                        "at the next session (final session: 0; no outcome at next session: 0; no decrease: 3)"
                    ),
                }
            ],
        },
        "low": {
            "therapies": 1,
            "reasons": [
                {
                    "dyad_id": "L",
                    "reason": (
                        "no eligible session: 2 session(s) below the patient's mean composite (z < 0), none followed by an increase "
                        "at the next session (final session: 0; no outcome at next session: 0; no increase: 2)"
                    ),
                }
            ],
        },
    }
    assert summary["composite"] == "pomp"
    assert summary["groups"]["high"]["sessions"] == 2 and summary["groups"]["low"]["sessions"] == 2


def test_therapy_kept_only_when_p_is_below_alpha(monkeypatch):
    """Step 3 at the boundary: 'significantly predicts' is p < alpha, so p == alpha is not kept."""
    alpha = 0.05
    fit = pl.DataFrame(
        {
            "dyad_id": ["AT", "BELOW", "ABOVE"],
            "lag_b": [-0.5] * 3,
            "lag_se": [0.1] * 3,
            "lag_t": [-5.0] * 3,
            "lag_p": [alpha, alpha - 1e-12, alpha + 1e-12],
            "lag_n": [8] * 3,
            "_note_lag": [None] * 3,
        },
        schema_overrides={"_note_lag": pl.String, "lag_n": pl.Int32},
    )
    monkeypatch.setattr(high_low.lagged_model, "lagged", lambda *a, **k: fit)
    got = high_low.therapies(pl.DataFrame(), {**HL, "alpha": alpha}, lower_is_better=True)
    assert got.select("dyad_id", "qualified", "why_not").rows() == [
        ("AT", False, "not significant (p = 0.05)"),
        ("BELOW", True, None),
        ("ABOVE", False, "not significant (p = 0.05)"),
    ]


def test_higher_is_better_outcome_swaps_the_direction_words():
    s = step4_frame([("D4", 1, 1.0, 20, 15), ("D4", 2, 0.5, 15, 25), ("D4", 3, -1.0, 25, 20), ("D4", 4, 0.0, 20, None)])
    got = high_low.pick(s, pl.DataFrame({"dyad_id": ["D4"]}), HL, lower_is_better=False).sort("group")
    assert got.select("session", "group", "reason").rows() == [
        (2, "high", "replaced: no increase at next session (took the 2nd highest composite)"),
        (3, "low", "lowest composite"),
    ]


def test_only_significant_therapies_with_the_expected_sign_are_kept():
    c = [3.0, 4.0, 2.5, 4.5, 3.5, 2.0, 4.2]
    rows = []
    for dyad, outcome_of in (
        ("SIG", lambda prev: 40 - 5 * prev),  # better alliance, lower next BDI: kept
        ("WRONG", lambda prev: 10 + 5 * prev),  # better alliance, higher next BDI: wrong sign
    ):
        for i, a in enumerate(c, start=1):
            rows.append((dyad, i, a, a, 25.0 if i == 1 else outcome_of(c[i - 2])))
    flat = [20, 26, 21, 25, 22, 24, 23]  # unrelated to the alliance
    rows += [("NS", i, a, a, flat[i - 1]) for i, a in enumerate(c, start=1)]
    rows += [("SHORT", i, a, a, 30 - i) for i, a in enumerate(c[:3], start=1)]
    fits = high_low.therapies(sessions_for(rows), HL, lower_is_better=True).sort("dyad_id")
    assert fits.select("dyad_id", "tested", "qualified").rows() == [
        ("NS", True, False),
        ("SHORT", False, False),
        ("SIG", True, True),
        ("WRONG", True, False),
    ]
    why = dict(fits.select("dyad_id", "why_not").rows())
    assert why["WRONG"] == "wrong sign" and why["NS"].startswith("not significant (p = ")
    assert why["SHORT"] == "lag: 2 complete session pair(s), needs 3"
    assert fits.filter(pl.col("dyad_id") == "SIG").get_column("lag_b").item() < 0


def test_detrending_moves_the_high_session_away_from_the_end():
    trend = [0.5 * t for t in range(1, 11)]
    wiggle = [0, 1, 0, -1, 0, 1.2, 0, -1, 0, 0.2]
    c = [a + w for a, w in zip(trend, wiggle, strict=False)]
    rows = [("T", t, v, v, 40 - 2 * t) for t, v in enumerate(c, start=1)]  # BDI falls every week
    s = sessions_for(rows)
    kept = pl.DataFrame({"dyad_id": ["T"]})
    raw = high_low.pick(s, kept, {**HL, "detrend": False}, True).filter(pl.col("group") == "high")
    det = high_low.pick(s, kept, {**HL, "detrend": True}, True).filter(pl.col("group") == "high")
    # raw: the trend wins (session 10 is final, so 9); detrended: the real peak, session 6
    assert raw.select("session", "reason").row(0) == (9, "replaced: final session (took the 2nd highest composite)")
    assert det.select("session", "reason").row(0) == (6, "highest composite")


def test_summary_equals_a_hand_calculation():
    picked = pl.DataFrame(
        {
            "dyad_id": ["A", "B", "A", "C"],
            "session": [4, 7, 2, 3],
            "group": ["high", "high", "low", "low"],
        }
    )
    dyads = pl.DataFrame(
        {
            "dyad_id": ["A", "B", "C"],
            "patient_id": ["PA", "PB", "PC"],
            "therapist_id": ["T1", "T1", "T2"],
            "outcome_pre": [30.0, 20.0, 25.0],
            "outcome_post": [10.0, 14.0, 20.0],
            "alliance_patient_mean": [4.0, 3.0, 3.5],
            "alliance_therapist_mean": [5.0, 6.0, 5.5],
        }
    )
    fits = pl.DataFrame(
        {
            "dyad_id": ["A", "B", "C", "D"],
            "tested": [True, True, True, True],
            "qualified": [True, True, True, False],
            "why_not": [None, None, None, "wrong sign"],
        }
    )
    got = high_low.summary(picked, None, dyads, fits, HL)
    assert got["therapies_tested"] == 4 and got["therapies_qualified"] == 3
    assert got["patients_in_both_groups"] == 1  # PA
    assert got["groups"]["high"] == {
        "sessions": 2,
        "patients": 2,
        "therapists": 1,
        "session_min": 4,
        "session_max": 7,
        "outcome_pre_mean": 25.0,
        "outcome_last_mean": 12.0,
        "alliance_patient_mean": 3.5,
        "alliance_therapist_mean": 5.5,
    }
    assert got["groups"]["low"] == {
        "sessions": 2,
        "patients": 2,
        "therapists": 2,
        "session_min": 2,
        "session_max": 3,
        "outcome_pre_mean": 27.5,
        "outcome_last_mean": 15.0,
        "alliance_patient_mean": 3.75,
        "alliance_therapist_mean": 5.25,
    }
    assert got["not_qualified"] == [("wrong sign", 1)]


def test_max_per_group_ranks_by_signed_z(monkeypatch):
    """The highest z first among high sessions, the lowest z first among low ones."""
    s = step4_frame(
        [
            ("A", 1, 1.0, 20, 15),
            ("A", 2, -1.0, 15, 20),
            ("A", 3, 0.0, 20, None),
            ("B", 1, 2.0, 20, 15),
            ("B", 2, -0.5, 15, 20),
            ("B", 3, 0.0, 20, None),
        ]
    )
    kept = pl.DataFrame(
        {"dyad_id": ["A", "B"], "qualified": [True, True], "tested": [True, True], "why_not": [None, None]},
        schema_overrides={"why_not": pl.String},
    )
    monkeypatch.setattr(high_low, "therapies", lambda *a, **k: kept)
    dyads = pl.DataFrame(
        {
            "dyad_id": ["A", "B"],
            "patient_id": ["PA", "PB"],
            "therapist_id": ["T", "T"],
            "outcome_pre": [1.0, 1.0],
            "outcome_post": [1.0, 1.0],
            "alliance_patient_mean": [1.0, 1.0],
            "alliance_therapist_mean": [1.0, 1.0],
        }
    )
    sel, _ = high_low.select(s, dyads, {"max_per_group": 1}, True)
    assert sel.rows() == [("B", 1, "high", 1, "highest composite"), ("A", 2, "low", 1, "lowest composite")]


def test_fixed_sessions_settled_troubled_missing():
    rows = [
        ("S", 3, 4.0, 5.5, 20),
        ("S", 5, 4.0, 6.0, 18),  # settled
        ("F", 3, 4.5, 6.0, 20),
        ("F", 5, 4.0, 6.0, 18),  # patient falls .125 on 0-1: troubled
        ("L", 3, 3.0, 6.0, 20),
        ("L", 5, 4.0, 6.0, 18),  # patient .5 < .625 at 3: troubled
        ("M", 3, 4.0, 6.0, 20),
        ("M", 5, 4.0, None, 18),  # no therapist rating at 5: missing
    ]
    sel, summary = fixed.select(sessions_for(rows), {})
    got = {(d, s): (g, r) for d, s, g, r in sel.select("dyad_id", "session", "group", "reason").rows()}
    assert got[("S", 3)] == (
        "settled",
        "both raters at or above their thresholds at sessions 3 and 5, no fall beyond the tolerance",
    )
    assert got[("F", 5)] == ("troubled", "patient fell 4.5 → 4.0 (more than 0.05 on 0-1)")
    assert got[("L", 3)] == ("troubled", "patient 3.0 (0.5 on 0-1) < 0.625 at session 3")
    assert got[("M", 5)] == ("missing", "no therapist rating at session 5")
    assert summary["dyads"] == {"missing": 1, "settled": 1, "troubled": 2}
    assert summary["parameters"] == {
        "sessions": [3, 5],
        "scale": "pomp",
        "threshold": {"patient": 0.625, "therapist": 2 / 3},
        "fall_tolerance": 0.05,
    }
    assert sel.height == 8


def test_fixed_sessions_thresholds_and_fall_tolerance_at_their_boundaries():
    """Issue 15 point 6: 3.5 on 1-5 is .625, 5.0 on 1-7 is 2/3; a fall of exactly .05 on 0-1 is tolerated."""
    rows = [
        ("AT", 3, 3.5, 5.0, 20),
        ("AT", 5, 3.5, 5.0, 18),  # exactly at both thresholds: settled
        ("PB", 3, 3.48, 5.0, 20),
        ("PB", 5, 3.5, 5.0, 18),  # patient .62 just below .625
        ("TB", 3, 3.5, 5.0, 20),
        ("TB", 5, 3.5, 4.94, 18),  # therapist .657 just below 2/3 (and a .01 fall)
        ("FE", 3, 4.0, 6.0, 20),
        ("FE", 5, 3.8, 6.0, 18),  # patient falls exactly .05: settled
        ("FA", 3, 4.0, 6.0, 20),
        ("FA", 5, 3.79, 6.0, 18),  # falls .0525: troubled
        ("FB", 3, 4.0, 6.0, 20),
        ("FB", 5, 3.81, 6.0, 18),  # falls .0475: settled
    ]
    sel, summary = fixed.select(sessions_for(rows), {}, {"patient": (1, 5), "therapist": (1, 7)})
    got = dict(sel.filter(pl.col("rank") == 2).select("dyad_id", "reason").rows())
    group = dict(sel.filter(pl.col("rank") == 2).select("dyad_id", "group").rows())
    assert group == {
        "AT": "settled",
        "PB": "troubled",
        "TB": "troubled",
        "FE": "settled",
        "FA": "troubled",
        "FB": "settled",
    }
    assert got["PB"] == "patient 3.48 (0.62 on 0-1) < 0.625 at session 3"
    assert got["TB"] == "therapist 4.94 (0.657 on 0-1) < 0.667 at session 5"
    assert got["FA"] == "patient fell 4.0 → 3.79 (more than 0.05 on 0-1)"
    # scale: own keeps the thresholds on each instrument's scale (defaults 3.5 and 5.0)
    own, own_summary = fixed.select(sessions_for(rows), {"scale": "own", "fall_tolerance": 0})
    assert dict(own.filter(pl.col("rank") == 2).select("dyad_id", "group").rows()) == {
        "AT": "settled",
        "PB": "troubled",
        "TB": "troubled",
        "FE": "troubled",
        "FA": "troubled",
        "FB": "troubled",
    }
    assert own_summary["parameters"]["threshold"] == {"patient": 3.5, "therapist": 5.0}
    assert (
        own.filter(pl.col("dyad_id") == "PB", pl.col("rank") == 1).get_column("reason").item()
        == "patient 3.48 < 3.5 at session 3"
    )


def test_thresholds_above_1_under_pomp_stop_with_the_key_named():
    from dyadflow.core.errors import DyadflowError

    s = sessions_for([("A", 3, 4.0, 6.0, 20), ("A", 5, 4.0, 6.0, 18)])
    dyads = pl.DataFrame(
        {
            "dyad_id": ["A"],
            "arm": ["CBT"],
            "change_category": ["improved"],
            "outcome_pre": [20.0],
            "outcome_post": [18.0],
        }
    )
    spec = {"name": "f", "strategy": "fixed_sessions", "threshold": {"patient": 3.5}}
    with pytest.raises(DyadflowError, match="threshold.patient is 3.5, outside 0-1: with scale: pomp") as err:
        select.choose(spec, s, dyads, None, load_registry(), "bdi_ii", ALLIANCE)
    assert err.value.key == "selection.f.threshold.patient"
    spec = {"name": "r", "strategy": "repair_case", "low": {"therapist": 4.0}}
    with pytest.raises(DyadflowError, match="low.therapist is 4, outside 0-1") as err:
        select.choose(spec, s, dyads, None, load_registry(), "bdi_ii", ALLIANCE)
    assert err.value.key == "selection.r.low.therapist"
    # on their own scale they are fine
    sel, _ = select.choose({**spec, "scale": "own"}, s, dyads, None, load_registry(), "bdi_ii", ALLIANCE)
    assert sel.height == 0


def test_repair_case_with_a_sparse_schedule():
    sessions = [3, 6, 12, 20, 40]
    case = list(zip(sessions, [2.5, 2.8, 3.5, 4.2, 4.5], [3.5, 3.8, 5.0, 6.0, 6.5], strict=False))
    steady = list(zip(sessions, [4.5] * 5, [6.5] * 5, strict=False))
    rows = [("CASE", s, p, t, 40 - s / 2) for s, p, t in case] + [("STEADY", s, p, t, 20) for s, p, t in steady]
    dyads = pl.DataFrame(
        {
            "dyad_id": ["CASE", "STEADY"],
            "change_category": ["improved", "recovered"],
            "outcome_pre": [38.5, 20.0],
            "outcome_post": [20.0, 20.0],
        }
    )
    sel, summary = repair_case.select(
        sessions_for(rows), dyads, {"first_k": 2}, {"patient": (1, 5), "therapist": (1, 7)}
    )
    assert sel.select("dyad_id", "session", "group", "rank").rows() == [
        ("CASE", 3, "first+lowest", 1),
        *[("CASE", s, "between", s - 2) for s in range(4, 12)],
        ("CASE", 12, "onset", 10),
        ("CASE", 40, "highest+last", 11),
    ]
    assert summary["dyads_qualified"] == 1 and summary["dyads_tested"] == 2


OSLO_SCHEDULE = [3, 6, 12, 20, 40]


def oslo_rows(patient_6=3.9):
    """An Oslo-like dyad on seven-point scales: patient 3.2-3.9 early, 6.2-6.5 late; OQ-45 at 1, the rated sessions and 43."""
    patient = dict(zip(OSLO_SCHEDULE, [3.2, patient_6, 5.5, 6.2, 6.5], strict=False))
    therapist = dict(zip(OSLO_SCHEDULE, [3.5, 3.8, 5.0, 5.8, 6.2], strict=False))
    oq = {1: 89, 3: 88, 6: 85, 12: 75, 20: 64, 40: 55, 43: 53}
    return [("OSLO", s, patient.get(s), therapist.get(s), oq[s]) for s in sorted(oq)]


OSLO_DYADS = pl.DataFrame(
    {"dyad_id": ["OSLO"], "change_category": ["recovered"], "outcome_pre": [89.0], "outcome_post": [53.0]}
)
SEVEN = {"patient": (1, 7), "therapist": (1, 7)}


def test_repair_case_names_the_unrated_sessions_of_an_oslo_like_dyad():
    """Issue 15 points 6 and 7: qualifies on 7-point data with the defaults; the actual first and last
    sessions and every session between the lowest and the onset are selected, unrated ones said so."""
    s = session_table(
        scores_for(oslo_rows(), patient="wai_sr_7", outcome="oq_45"),
        "oq_45",
        {"patient": "wai_sr_7", "therapist": "wai_s"},
    )
    sel, summary = repair_case.select(s, OSLO_DYADS, {"first_k": 2}, SEVEN)
    # 0-1 levels: 3 .392 (lowest), 6 .475, 12 .708 (first >= .392 + .1: onset), 20 .833, 40 .892 (highest)
    between = "between the lowest and the onset: unrated, included as a session where the alliance was repaired (after the lowest, session 3, before the onset, session 12)"
    unrated = ": unrated (no alliance rating by both raters), included as the actual treatment session"
    assert sel.select("session", "group", "rank", "reason").rows() == [
        (1, "first", 1, "first treatment session" + unrated),
        (3, "lowest", 2, "lowest alliance (patient 3.2, therapist 3.5)"),
        (4, "between", 3, between),
        (5, "between", 4, between),
        (6, "between", 5, "between the lowest and the onset (patient 3.9, therapist 3.8)"),
        *[(k, "between", k - 1, between) for k in range(7, 12)],
        (12, "onset", 11, "onset of improvement (patient 5.5, therapist 5.0)"),
        (40, "highest", 12, "highest alliance (patient 6.5, therapist 6.2)"),
        (43, "last", 13, "last treatment session" + unrated),
    ]
    assert summary["dyads_qualified"] == 1 and summary["unrated_sessions"] == 9 and summary["sessions"] == 13
    # on each instrument's own scale (today's thresholds: patient low 3.0 meant for 1-5) it does not qualify
    own, own_summary = repair_case.select(s, OSLO_DYADS, {"first_k": 2, "scale": "own"}, SEVEN)
    assert own.height == 0 and own_summary["dyads_qualified"] == 0


@pytest.mark.parametrize("patient_6, qualifies", [(3.9, True), (4.0, True), (4.03, False)])
def test_repair_case_low_threshold_boundary(patient_6, qualifies):
    """Low is at or below .5 on 0-1: 4.0 on 1-7 is exactly .5, 4.03 is .505."""
    s = session_table(
        scores_for(oslo_rows(patient_6), patient="wai_sr_7", outcome="oq_45"),
        "oq_45",
        {"patient": "wai_sr_7", "therapist": "wai_s"},
    )
    _, summary = repair_case.select(s, OSLO_DYADS, {"first_k": 2}, SEVEN)
    assert summary["dyads_qualified"] == int(qualifies)


def test_rupture_repair_sessions():
    ruptures = pl.DataFrame(
        {
            "dyad_id": ["D1", "D1", "D2"],
            "rater": ["patient", "therapist", "patient"],
            "pre_session": [2, 5, 3],
            "rupture_session": [3, 6, 4],
            "repair_session": [5, None, 6],
            "drop": [1.25, 0.5, 0.8],
        }
    )
    sel, summary = rupture.select(ruptures, {})
    assert sel.sort("dyad_id", "session").select("dyad_id", "session", "group", "rank").rows() == [
        ("D1", 2, "pre", 1),
        ("D1", 3, "rupture", 1),
        ("D1", 5, "repair", 1),
        ("D2", 3, "pre", 1),
        ("D2", 4, "rupture", 1),
        ("D2", 6, "repair", 1),
    ]
    assert summary["sequences"] == 2
    assert sel.filter(pl.col("session") == 3, pl.col("dyad_id") == "D1").get_column("reason").item() == (
        "sequence 1: the rupture (patient-rated drop of 1.25 from session 2 to 3)"
    )


def test_codes_go_a_to_z_then_aa():
    assert blinding.letter_codes(28)[-3:] == ["Z", "AA", "AB"]
    assert blinding.letter_codes(703)[-2:] == ["ZZ", "AAA"]


def test_blinded_list_and_key_are_consistent_and_stable(tmp_path):
    sel = pl.DataFrame(
        {
            "dyad_id": [f"D{i:02d}" for i in range(30)],
            "session": [i % 14 + 1 for i in range(30)],
            "group": ["high", "low"] * 15,
            "rank": list(range(1, 31)),
            "reason": ["r"] * 30,
        }
    )
    blinded, key = blinding.blind(sel, "hl", seed=7)
    assert blinded.get_column("code").to_list() == blinding.letter_codes(30)
    assert "group" not in blinded.columns and "dyad_id" not in blinded.columns
    assert key.join(sel, on=["dyad_id", "session"]).filter(pl.col("group") != pl.col("group_right")).height == 0
    assert sorted(key.get_column("dyad_id").to_list()) == sorted(sel.get_column("dyad_id").to_list())
    # codes do not follow the groups: the first ten codes are not all one group
    assert key.head(10).get_column("group").n_unique() == 2
    again, key2 = blinding.blind(sel.reverse(), "hl", seed=7)
    assert key2.equals(key) and again.equals(blinded)
    other, _ = blinding.blind(sel, "hl", seed=8)
    assert not blinding.blind(sel, "hl", seed=8)[1].equals(key)


def test_run_writes_identical_files_twice(tmp_path):
    rows = [
        ("SIG", i, a, a, 25.0 if i == 1 else 40 - 5 * prev)
        for i, (a, prev) in enumerate(
            zip([3.0, 4.0, 2.5, 4.5, 3.5, 2.0, 4.2], [None, 3.0, 4.0, 2.5, 4.5, 3.5, 2.0], strict=False), start=1
        )
    ]
    s = sessions_for(rows)
    s.write_parquet(tmp_path / "sessions.parquet")
    pl.DataFrame(
        {
            "dyad_id": ["SIG"],
            "patient_id": ["P"],
            "therapist_id": ["T"],
            "outcome_pre": [25.0],
            "outcome_post": [19.0],
            "alliance_patient_mean": [3.4],
            "alliance_therapist_mean": [3.4],
        }
    ).write_parquet(tmp_path / "dyads.parquet")
    spec = {"name": "hl", "strategy": "high_low_alliance"}
    outs = []
    for run in ("a", "b"):
        out = {
            k: str(tmp_path / run / f"hl{suf}")
            for k, suf in (
                ("selection", ".csv"),
                ("summary", "_summary.json"),
                ("blinded", "_blinded.csv"),
                ("key", "_key.csv"),
            )
        }
        select.run(
            spec,
            str(tmp_path / "sessions.parquet"),
            str(tmp_path / "dyads.parquet"),
            None,
            load_registry(),
            "bdi_ii",
            ALLIANCE,
            out,
            composite="pomp",
        )
        outs.append({k: open(v, "rb").read() for k, v in out.items()})
    assert outs[0] == outs[1]
    assert outs[0]["selection"].decode().splitlines() == [
        "dyad_id,session,group,rank,reason",
        "SIG,4,high,1,highest composite",
        "SIG,6,low,1,lowest composite",
    ]
    summary = json.loads(outs[0]["summary"])
    assert summary["therapies_qualified"] == 1
    assert summary["composite"] == "pomp" and summary["arm_filter"] == "all arms (1 dyad(s))"


def test_arm_filter_keeps_only_those_dyads_for_every_strategy():
    """Issue 15 point 3: the paper selected from the CBT arm only."""
    from dyadflow.core.errors import DyadflowError

    rows = [(d, s, 4.0, 6.0, 20 - s) for d in ("C1", "C2", "I1") for s in (3, 5)]
    s = sessions_for(rows)
    dyads = pl.DataFrame(
        {
            "dyad_id": ["C1", "C2", "I1"],
            "arm": ["CBT", "CBT", "IPT"],
            "change_category": ["improved"] * 3,
            "outcome_pre": [17.0] * 3,
            "outcome_post": [15.0] * 3,
        }
    )
    ruptures = pl.DataFrame(
        {
            "dyad_id": ["C1", "I1"],
            "rater": ["patient", "patient"],
            "pre_session": [2, 2],
            "rupture_session": [3, 3],
            "repair_session": [5, 5],
            "drop": [1.0, 1.0],
        }
    )
    reg = load_registry()
    sel, summary = select.choose(
        {"name": "f", "strategy": "fixed_sessions", "arms": ["CBT"]}, s, dyads, ruptures, reg, "bdi_ii", ALLIANCE
    )
    assert sorted(set(sel.get_column("dyad_id"))) == ["C1", "C2"]
    assert summary["arms"] == ["CBT"] and summary["arm_filter"] == "arms CBT only (2 of 3 dyad(s))"
    assert summary["dyads"] == {"settled": 2}
    sel, summary = select.choose(
        {"name": "r", "strategy": "rupture_repair", "arms": ["IPT"]}, s, dyads, ruptures, reg, "bdi_ii", ALLIANCE
    )
    assert set(sel.get_column("dyad_id")) == {"I1"} and summary["arm_filter"] == "arms IPT only (1 of 3 dyad(s))"
    sel, summary = select.choose(
        {"name": "f", "strategy": "fixed_sessions"}, s, dyads, ruptures, reg, "bdi_ii", ALLIANCE
    )
    assert (
        sel.get_column("dyad_id").n_unique() == 3
        and summary["arms"] is None
        and summary["arm_filter"] == "all arms (3 dyad(s))"
    )
    with pytest.raises(DyadflowError, match="arm 'CBX' is not in the data \\(arms: CBT, IPT\\)") as err:
        select.choose(
            {"name": "h", "strategy": "high_low_alliance", "arms": ["CBX"]}, s, dyads, ruptures, reg, "bdi_ii", ALLIANCE
        )
    assert err.value.key == "selection.h.arms"


def test_unknown_strategy_and_parameter_are_the_start_up_checks_lines():
    # the config schema checks a selection entry once, at start-up (select has no second check)
    from conftest import REPO

    from dyadflow.core.config import check
    from dyadflow.core.registry import CONFIG_SCHEMA

    base = {"study": {"name": "x"}, "inputs": [{"path": "q.csv", "format": "canonical_csv"}]}
    assert check({**base, "selection": [{"name": "x", "strategy": "best_sessions"}]}, CONFIG_SCHEMA, REPO) == [
        "selection[0].strategy: 'best_sessions' is not one of: high_low_alliance, fixed_sessions, repair_case, rupture_repair; "
        "did you mean 'fixed_sessions'?"
    ]
    assert check(
        {**base, "selection": [{"name": "x", "strategy": "high_low_alliance", "alpah": 0.1}]}, CONFIG_SCHEMA, REPO
    ) == ["selection[0].alpah: unknown key; did you mean 'alpha'?"]
    assert not hasattr(select, "check")
