"""Sudden gains and losses (Tang & DeRubeis 1999, suddengains conventions), by hand."""

from __future__ import annotations

import math

import polars as pl
import pytest
from stats_helpers import sessions

from dyadflow.stats.sudden_gains import candidates, dyad_counts, sudden_gains, t_critical


def series(values, start=1, dyad="D1"):
    s = [start + i for i, v in enumerate(values) if v is not None]
    y = [v for v in values if v is not None]
    return sessions({dyad: {"session": s, "outcome": y}})


def gains_of(values, cutoff=5.0, lower=True, **kw):
    g, counts = sudden_gains(series(values), cutoff, lower, **kw)
    return g.to_dicts(), counts.to_dicts()


def test_critical_values_are_the_suddengains_ones():
    assert t_critical(4) == pytest.approx(2.776, abs=5e-4)  # 3 + 3 values
    assert t_critical(3) == pytest.approx(3.182, abs=5e-4)  # 3 + 2 values
    assert t_critical(2) == pytest.approx(4.303, abs=5e-4)  # 2 + 2 values


def test_a_clear_gain_by_hand():
    # 20 21 20 | 10 9 10 9: drop 10 >= 5 and >= 25 % of 20; means 20.33 vs 9.67,
    # pooled SD sqrt((0.667 + 0.667) / 4) = 0.577, 2.776 * 0.577 = 1.60 < 10.67
    g, counts = gains_of([20, 21, 20, 10, 9, 10, 9])
    assert g == [
        {
            "dyad_id": "D1",
            "kind": "gain",
            "pregain_session": 3,
            "postgain_session": 4,
            "pregain_score": 20.0,
            "postgain_score": 10.0,
            "magnitude": 10.0,
            "reversed": False,
        }
    ]
    assert counts == [{"dyad_id": "D1", "n_sudden_gains": 1, "n_sudden_losses": 0, "_undecided": 0}]


def test_criterion_2_and_criterion_3_can_reject():
    # drop 6 from 30 is only 20 %: criterion 2 fails
    assert gains_of([30, 30, 30, 24, 24, 24])[0] == []
    # noisy windows: 20 12 20 | 14 6 14, drop 6 passes 1 and 2; means 17.33 vs 11.33,
    # pooled SD sqrt((42.67 + 42.67) / 4) = 4.62, 2.776 * 4.62 = 12.8 > 6: criterion 3 fails
    g, counts = gains_of([20, 12, 20, 14, 6, 14])
    assert [x for x in g if x["pregain_session"] == 3] == []
    cand = (
        candidates(series([20, 12, 20, 14, 6, 14]), 5.0, True).filter(pl.col("pregain_session") == 3).row(0, named=True)
    )
    assert cand["decision"] is False and (cand["n_pre"], cand["n_post"]) == (3, 3)


def test_missing_session_after_the_gain_shrinks_the_window():
    # session 5 missing: post window 10, 10 (n 2), df 3, t 3.182; pooled SD sqrt(0.667 / 3)
    g, _ = gains_of([20, 21, 20, 10, None, 10, 9])
    assert [(x["pregain_session"], x["postgain_session"]) for x in g] == [(3, 4)]
    cand = (
        candidates(series([20, 21, 20, 10, None, 10, 9]), 5.0, True)
        .filter(pl.col("pregain_session") == 3)
        .row(0, named=True)
    )
    assert (cand["n_pre"], cand["n_post"]) == (3, 2)


def test_missing_session_before_the_gain_shrinks_the_window():
    g, _ = gains_of([20, None, 20, 10, 9, 10])
    assert [(x["pregain_session"], x["postgain_session"]) for x in g] == [(3, 4)]
    cand = (
        candidates(series([20, None, 20, 10, 9, 10]), 5.0, True)
        .filter(pl.col("pregain_session") == 3)
        .row(0, named=True)
    )
    assert (cand["n_pre"], cand["n_post"]) == (2, 3)


def test_a_missing_session_is_not_bridged():
    # 20 at session 3, nothing at 4, 10 at 5: no gain between 3 and 5
    g, counts = gains_of([20, 21, 20, None, 10, 9, 10])
    assert g == [] and counts == []  # not even a candidate


def test_too_few_values_on_a_side_gives_no_decision():
    # gain between sessions 1 and 2: one value before it
    g, counts = gains_of([20, 10, 9, 10])
    assert g == [] and counts == [{"dyad_id": "D1", "n_sudden_gains": 0, "n_sudden_losses": 0, "_undecided": 1}]
    note = dyad_counts(pl.DataFrame({"dyad_id": ["D1"]}), pl.DataFrame(counts), True).row(0, named=True)
    assert note["_note_sg"] == "sudden gains: 1 candidate(s) without a decision (fewer than 2 values on a side)"


def test_reversal_when_a_later_score_loses_more_than_half_the_gain():
    # post-gain 10, half the gain 5: a later 16 is worse than 15
    # post window 10 9 16: mean 11.67, pooled SD sqrt((0.667 + 28.67) / 4) = 2.708; 2.776 * 2.708 = 7.52 < 8.67
    g, counts = gains_of([20, 21, 20, 10, 9, 16])
    gain = [x for x in g if x["kind"] == "gain"]
    assert len(gain) == 1 and gain[0]["reversed"] is True
    # 9 -> 16 is a loss candidate with one value after it: undecided
    assert counts[0]["_undecided"] == 1 and counts[0]["n_sudden_losses"] == 0
    # exactly half the gain back is not a reversal
    g2, _ = gains_of([20, 21, 20, 10, 9, 10, 15])
    assert [x["reversed"] for x in g2 if x["kind"] == "gain"] == [False]


def test_sudden_loss_is_the_mirror_image():
    g, counts = gains_of([10, 9, 10, 20, 21, 20])
    assert g == [
        {
            "dyad_id": "D1",
            "kind": "loss",
            "pregain_session": 3,
            "postgain_session": 4,
            "pregain_score": 10.0,
            "postgain_score": 20.0,
            "magnitude": 10.0,
            "reversed": False,
        }
    ]
    assert counts[0]["n_sudden_losses"] == 1 and counts[0]["n_sudden_gains"] == 0
    # a loss reverses when a later score improves by more than half of it
    g2, _ = gains_of([10, 9, 10, 20, 21, 20, 14])
    assert [x["reversed"] for x in g2] == [True]


def test_higher_is_better_scales_gain_upwards():
    g, _ = gains_of([10, 9, 10, 20, 21, 20], lower=False)
    assert [(x["kind"], x["magnitude"]) for x in g] == [("gain", 10.0)]


def test_several_dyads_at_once_and_fixed_cutoff():
    s = pl.concat([series([20, 21, 20, 10, 9, 10], dyad="A"), series([20, 21, 20, 14, 13, 14], dyad="B")])
    g5, _ = sudden_gains(s, 5.0, True)
    g7, _ = sudden_gains(s, 7.0, True)  # the original 7-point BDI criterion
    assert g5.get_column("dyad_id").to_list() == ["A", "B"]
    assert g7.get_column("dyad_id").to_list() == ["A"]
    assert math.isclose(g5.get_column("magnitude")[1], 6.0)


def test_criterion_3_between_neighbouring_critical_values_for_each_window():
    """Each window's statistic (mean difference / pooled SD) lies between its own critical
    value and a neighbour's, so a window given the wrong degrees of freedom fails here.

    3 + 3 (df 4, 2.776): pre 90 100 110 (mean 100, SS 200); pooled SD sqrt((200 + 200) / 4) = 10.
      A: post 63 73 83, (100 - 73) / 10 = 2.70 (above df 5's 2.571): no gain.
      B: post 60 70 80, (100 - 70) / 10 = 3.00 (below df 3's 3.182): gain.
    3 + 2 (df 3, 3.182): post q+5 q-5 (SS 50); pooled SD sqrt(250 / 3) = 9.1287.
      C: post 77 67, 28 / 9.1287 = 3.067 (above df 4's 2.776): no gain.
      D: post 70 60, 35 / 9.1287 = 3.834 (below df 2's 4.303): gain.
    2 + 2 (df 2, 4.303): pre 95 105 (mean 100, SS 50); pooled SD sqrt(100 / 2) = 7.0711.
      E: post 77 67, 28 / 7.0711 = 3.960 (above df 3's 3.182): no gain.
      F: post 70 60, 35 / 7.0711 = 4.950 (below df 1's 12.706): gain.
    Every drop at the gain passes criteria 1 (5 points) and 2 (25 %: 27.5 of 110, 26.25 of 105).
    """
    pooled = {"3+3": math.sqrt(400 / 4), "3+2": math.sqrt(250 / 3), "2+2": math.sqrt(100 / 2)}
    assert 2.571 < 27 / pooled["3+3"] < 2.776 < 30 / pooled["3+3"] < 3.182
    assert 2.776 < 28 / pooled["3+2"] < 3.182 < 35 / pooled["3+2"] < 4.303
    assert 3.182 < 28 / pooled["2+2"] < 4.303 < 35 / pooled["2+2"] < 12.706
    s = pl.concat(
        [
            series([90, 100, 110, 63, 73, 83], dyad="A"),
            series([90, 100, 110, 60, 70, 80], dyad="B"),
            series([90, 100, 110, 77, 67], dyad="C"),
            series([90, 100, 110, 70, 60], dyad="D"),
            series([95, 105, 77, 67], dyad="E"),
            series([95, 105, 70, 60], dyad="F"),
        ]
    )
    cand = candidates(s, 5.0, True).filter(pl.col("kind") == "gain").sort("dyad_id")
    assert cand.select("dyad_id", "pregain_session", "n_pre", "n_post", "decision").rows() == [
        ("A", 3, 3, 3, False),
        ("B", 3, 3, 3, True),
        ("C", 3, 3, 2, False),
        ("D", 3, 3, 2, True),
        ("E", 2, 2, 2, False),
        ("F", 2, 2, 2, True),
    ]
    g, counts = sudden_gains(s, 5.0, True)
    assert g.select("dyad_id", "pregain_score", "postgain_score").rows() == [
        ("B", 110.0, 60.0),
        ("D", 110.0, 70.0),
        ("F", 105.0, 70.0),
    ]
    assert counts.filter(pl.col("_undecided") > 0).height == 0
