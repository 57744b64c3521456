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
    assert g == [{
        "dyad_id": "D1", "kind": "gain", "pregain_session": 3, "postgain_session": 4,
        "pregain_score": 20.0, "postgain_score": 10.0, "magnitude": 10.0, "reversed": False,
    }]
    assert counts == [{"dyad_id": "D1", "n_sudden_gains": 1, "n_sudden_losses": 0, "_undecided": 0}]


def test_criterion_2_and_criterion_3_can_reject():
    # drop 6 from 30 is only 20 %: criterion 2 fails
    assert gains_of([30, 30, 30, 24, 24, 24])[0] == []
    # noisy windows: 20 12 20 | 14 6 14, drop 6 passes 1 and 2; means 17.33 vs 11.33,
    # pooled SD sqrt((42.67 + 42.67) / 4) = 4.62, 2.776 * 4.62 = 12.8 > 6: criterion 3 fails
    g, counts = gains_of([20, 12, 20, 14, 6, 14])
    assert [x for x in g if x["pregain_session"] == 3] == []
    cand = candidates(series([20, 12, 20, 14, 6, 14]), 5.0, True).filter(pl.col("pregain_session") == 3).row(0, named=True)
    assert cand["decision"] is False and (cand["n_pre"], cand["n_post"]) == (3, 3)


def test_missing_session_after_the_gain_shrinks_the_window():
    # session 5 missing: post window 10, 10 (n 2), df 3, t 3.182; pooled SD sqrt(0.667 / 3)
    g, _ = gains_of([20, 21, 20, 10, None, 10, 9])
    assert [(x["pregain_session"], x["postgain_session"]) for x in g] == [(3, 4)]
    cand = candidates(series([20, 21, 20, 10, None, 10, 9]), 5.0, True).filter(pl.col("pregain_session") == 3).row(0, named=True)
    assert (cand["n_pre"], cand["n_post"]) == (3, 2)


def test_missing_session_before_the_gain_shrinks_the_window():
    g, _ = gains_of([20, None, 20, 10, 9, 10])
    assert [(x["pregain_session"], x["postgain_session"]) for x in g] == [(3, 4)]
    cand = candidates(series([20, None, 20, 10, 9, 10]), 5.0, True).filter(pl.col("pregain_session") == 3).row(0, named=True)
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
    assert g == [{
        "dyad_id": "D1", "kind": "loss", "pregain_session": 3, "postgain_session": 4,
        "pregain_score": 10.0, "postgain_score": 20.0, "magnitude": 10.0, "reversed": False,
    }]
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
