"""Cohort results: Cronbach's alpha, completeness, categories, flow; the whole stats stage."""

from __future__ import annotations

import json

import polars as pl
import pytest
from stats_helpers import scores

from dyadflow import stats
from dyadflow.core.registry import Instrument, load_registry
from dyadflow.score.reliability import OMEGA_NOTE, cronbach_alpha, reliability
from dyadflow.stats.cohort import categories_by_arm, completeness

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}


def test_cronbach_alpha_by_hand():
    items = pl.DataFrame({"a": [1, 2, 3, 4], "b": [2, 2, 3, 3], "c": [1, 3, 3, 5]})
    # item variances 5/3, 1/3, 8/3 (sum 14/3); totals 4 7 9 12, variance 34/3
    alpha, n, k = cronbach_alpha(items)
    assert alpha == pytest.approx(1.5 * (1 - 14 / 34)) and (n, k) == (4, 3)
    # incomplete rows are left out; too few rows give null
    assert cronbach_alpha(items.with_columns(pl.Series("c", [1, None, 3, 5])))[1:] == (3, 3)
    assert cronbach_alpha(items.head(1)) == (None, 1, 3)


def test_reliability_uses_the_keyed_items():
    inst = Instrument(
        key="toy",
        name="toy",
        raters=("patient",),
        n_items=3,
        min_value=1,
        max_value=5,
        method="mean",
        direction="higher_is_better",
        reverse_keyed=(2,),
    )
    # item 2 is reverse keyed: raw 6 - (2, 2, 3, 3) gives the table above
    validated = pl.DataFrame(
        {"instrument": ["toy"] * 4, "item_01": [1, 2, 3, 4], "item_02": [4, 4, 3, 3], "item_03": [1, 3, 3, 5]}
    )
    out = reliability(validated, {"toy": inst}, ["toy"])
    assert out["toy"]["alpha"] == pytest.approx(30 / 34) and out["toy"]["omega"] is None
    assert (out["toy"]["n"], out["toy"]["k"]) == (4, 3)


def test_completeness_per_instrument_and_session():
    sc = scores(
        [
            ("D1", 1, "bdi_ii", "patient", 10),
            ("D2", 1, "bdi_ii", "patient", None),
            ("D2", 2, "bdi_ii", "patient", 8),
            ("D1", 2, "wai_sr", "patient", 4),
        ]
    )
    rows = completeness(sc, ["bdi_ii", "wai_sr"])
    assert rows == [
        {"instrument": "bdi_ii", "session": 1, "n_dyads": 2, "n_observed": 1, "fraction": 0.5},
        {"instrument": "bdi_ii", "session": 2, "n_dyads": 2, "n_observed": 1, "fraction": 0.5},
        {"instrument": "wai_sr", "session": 1, "n_dyads": 2, "n_observed": 0, "fraction": 0.0},
        {"instrument": "wai_sr", "session": 2, "n_dyads": 2, "n_observed": 1, "fraction": 0.5},
    ]


def test_categories_by_arm():
    d = pl.DataFrame(
        {"arm": ["CBT", "CBT", "IPT", None], "change_category": ["recovered", None, "recovered", "improved"]}
    )
    assert categories_by_arm(d) == {
        "(none)": {"improved": 1},
        "CBT": {"not computed": 1, "recovered": 1},
        "IPT": {"recovered": 1},
    }


def _tiny_study():
    rows = []
    for s, (y, p, t) in enumerate(
        [(30, None, None), (28, 3, 5), (27, 4, 6), (20, 3, 4), (18, 5, 6), (15, 4, 5), (12, 5, 7)]
    ):
        rows.append(("D1", s, "bdi_ii", "patient", y))
        if p is not None:
            rows += [("D1", s, "wai_sr", "patient", p), ("D1", s, "wai_s", "therapist", t)]
    rows += [("D2", 0, "bdi_ii", "patient", 25)]  # intake only
    rows += [("D3", 1, "wai_sr", "patient", 4), ("D3", 1, "wai_s", "therapist", 5), ("D3", 2, "bdi_ii", "patient", 22)]
    return scores(rows)


def test_whole_stage_on_a_tiny_study_never_crashes_and_explains_nulls(tmp_path):
    out = {
        k: str(tmp_path / f"{k}.x") for k in ("sessions", "dyads", "dyads_csv", "sudden_gains", "ruptures", "cohort")
    }
    src = tmp_path / "scores.parquet"
    _tiny_study().write_parquet(src)
    res = stats.run(str(src), load_registry(), "bdi_ii", ALLIANCE, {}, out)
    d = {r["dyad_id"]: r for r in res.dyads.iter_rows(named=True)}
    assert res.dyads.columns[:30] == stats.DYAD_COLUMNS[:30]
    d1, d2, d3 = d["D1"], d["D2"], d["D3"]
    assert (d1["n_sessions"], d1["first_session"], d1["last_session"]) == (6, 1, 6)
    assert (d1["outcome_pre"], d1["outcome_post"], d1["outcome_change"]) == (30, 12, -18)
    assert d1["lag_n"] == 5 and d1["lag_b"] is not None
    assert d1["alliance_patient_early"] == pytest.approx(4.0)  # sessions 3-5: 3, 5, 4
    assert d2["outcome_post"] is None and d2["rci"] is None and d2["change_category"] is None
    assert d2["stats_note"].startswith("outcome: only one scored outcome questionnaire")
    assert d3["lag_n"] == 0 and "lag: 0 complete session pair(s), needs 3" in d3["stats_note"]
    cohort = json.loads((tmp_path / "cohort.x").read_text())
    assert cohort["outcome"] == "bdi_ii" and set(cohort["pooled_effect"]) == {"raw", "detrended"}
    assert set(cohort["pooled_effect"]["raw"]) >= {"b", "se", "t", "p", "n_obs", "n_dyads"}
    assert cohort["flow"]["dyads"] == 3 and cohort["flow"]["dyads_with_lag"] == 1
    assert pl.read_csv(tmp_path / "sudden_gains.x").columns == [
        "dyad_id",
        "kind",
        "pregain_session",
        "postgain_session",
        "pregain_score",
        "postgain_score",
        "magnitude",
        "reversed",
    ]
    assert pl.read_csv(tmp_path / "ruptures.x").columns == [
        "dyad_id",
        "rater",
        "pre_session",
        "rupture_session",
        "repair_session",
        "pre_alliance",
        "rupture_alliance",
        "drop",
        "repaired",
    ]
    # deterministic: the same inputs give the same bytes
    first = {k: open(v, "rb").read() for k, v in out.items()}
    stats.run(str(src), load_registry(), "bdi_ii", ALLIANCE, {}, out)
    assert {k: open(v, "rb").read() for k, v in out.items()} == first


def test_cohort_reliability_is_the_score_stages_table(tmp_path):
    """stats copies results/scores/reliability.csv into cohort.json; it does not recompute alpha."""
    out = {
        k: str(tmp_path / f"{k}.x") for k in ("sessions", "dyads", "dyads_csv", "sudden_gains", "ruptures", "cohort")
    }
    src = tmp_path / "scores.parquet"
    _tiny_study().write_parquet(src)
    rel = tmp_path / "reliability.csv"
    rel.write_text("instrument,alpha,omega,n,k,note\nwai_sr,0.5,,7,12,from score\nphq_9,0.9,,9,9,not used\n")
    stats.run(str(src), load_registry(), "bdi_ii", ALLIANCE, {}, out, reliability_path=str(rel))
    got = json.loads((tmp_path / "cohort.x").read_text())["reliability"]
    assert list(got) == ["bdi_ii", "wai_s", "wai_sr"]  # the study's instruments only
    assert got["wai_sr"] == {"alpha": 0.5, "omega": None, "n": 7, "k": 12, "note": "from score"}
    assert got["bdi_ii"] == {"alpha": None, "omega": None, "n": 0, "k": 0, "note": OMEGA_NOTE}


def test_empty_scores_do_not_crash():
    sc = scores([("D1", 0, "bdi_ii", "patient", None)])
    res = stats.compute(sc, load_registry(), "bdi_ii", ALLIANCE)
    r = res.dyads.row(0, named=True)
    assert r["outcome_pre"] is None and r["stats_note"].startswith("outcome: no scored outcome questionnaire")
    assert res.gains.height == 0 and res.ruptures.height == 0


def test_no_rows_at_all():
    sc = scores([("D1", 0, "bdi_ii", "patient", 1)]).head(0)
    res = stats.compute(sc, load_registry(), "bdi_ii", ALLIANCE)
    assert (res.dyads.height, res.sessions.height, res.gains.height, res.ruptures.height) == (0, 0, 0, 0)
    assert res.dyads.columns == stats.DYAD_COLUMNS and res.cohort["flow"]["dyads"] == 0


def test_alpha_has_the_same_bits_however_the_frame_is_chunked():
    # polars' var() over a frame of 10 chunks differs in the last bit from the same frame in
    # one chunk for this seed; a SLURM and a local run once differed that way in cohort.json
    import numpy as np

    from dyadflow.score.reliability import cronbach_alpha

    x = np.random.default_rng(1).normal(size=(955, 21))
    whole = pl.DataFrame(x, schema=[f"i{i}" for i in range(21)])
    chunked = pl.concat([whole.slice(i, 97) for i in range(0, 955, 97)], rechunk=False)
    assert chunked.n_chunks() == 10
    a, n, k = cronbach_alpha(chunked)
    assert (a, n, k) == cronbach_alpha(whole) and (n, k) == (955, 21)
    expected = 21 / 20 * (1 - x.var(axis=0, ddof=1).sum() / x.sum(axis=1).var(ddof=1))
    assert a == pytest.approx(expected, rel=1e-12)


def test_arms_counts_dyads_and_sessions_per_arm():
    from dyadflow.stats.cohort import arms

    dyads = pl.DataFrame(
        {"arm": ["CBT", None, "CBT", "IPT"], "n_sessions": [4, 2, 7, 1]},
        schema={"arm": pl.String, "n_sessions": pl.Int32},
    )
    assert arms(dyads) == {
        "dyads": 4,
        "sessions": 14,
        "per_arm": [
            {"arm": "CBT", "dyads": 2, "sessions": 11, "median_sessions": 5.5},
            {"arm": "IPT", "dyads": 1, "sessions": 1, "median_sessions": 1.0},
            {"arm": None, "dyads": 1, "sessions": 2, "median_sessions": 2.0},  # no arm: last
        ],
    }
