"""Reliable change (Jacobson & Truax 1991) and change categories, in both directions."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import polars as pl
import pytest
from stats_helpers import scores

from dyadflow import stats
from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import Instrument, load_registry
from dyadflow.stats.change import change_columns, change_rule

DATA = Path(__file__).parent / "data"


def inst(direction="lower_is_better", reliability=None, **norms):
    return Instrument(
        key="x",
        name="x",
        raters=("patient",),
        n_items=10,
        min_value=0,
        max_value=3,
        method="sum",
        direction=direction,
        reliability=reliability,
        norms=norms,
    )


def categorise(instrument, pre, post, criterion="auto", cutoff=None):
    d = pl.DataFrame(
        {"outcome_pre": pre, "outcome_post": post}, schema={"outcome_pre": pl.Float64, "outcome_post": pl.Float64}
    )
    rule = change_rule(instrument, d.get_column("outcome_pre"), criterion, cutoff)
    return rule, d.with_columns(change_columns(rule))


def test_lower_is_better_with_norm_sd_and_fixed_cutoff():
    rule, d = categorise(inst(reliability=0.9, sd=10, cutoff=13.5), [30, 30, 30, 10, 30], [10, 20, 25, 25, None])
    s_diff = 10 * math.sqrt(2) * math.sqrt(0.1)  # 4.4721
    assert rule.s_diff == pytest.approx(s_diff) and rule.criterion == "fixed" and rule.cutoff == 13.5
    assert rule.reliable_points == pytest.approx(1.96 * s_diff)
    assert d.get_column("rci").to_list()[:4] == pytest.approx([-20 / s_diff, -10 / s_diff, -5 / s_diff, 15 / s_diff])
    assert d.get_column("change_category").to_list() == ["recovered", "improved", "unchanged", "deteriorated", None]


def test_higher_is_better_criteria_a_b_c():
    norms = {"sd": 12, "clinical": {"mean": 70, "sd": 10}, "functional": {"mean": 110, "sd": 15}}
    i = inst("higher_is_better", 0.8, **norms)
    pre, post = [70, 70, 90, 80], [95, 85, 75, 88]
    s_diff = 12 * math.sqrt(2) * math.sqrt(0.2)  # 7.5895; 15 points is RCI 1.976
    rule, d = categorise(i, pre, post)
    assert rule.criterion == "c" and rule.cutoff == pytest.approx((10 * 110 + 15 * 70) / 25)  # 86
    assert d.get_column("rci").to_list() == pytest.approx([25 / s_diff, 15 / s_diff, -15 / s_diff, 8 / s_diff])
    assert d.get_column("change_category").to_list() == ["recovered", "improved", "deteriorated", "unchanged"]
    rule_a, d_a = categorise(i, pre, post, "a")
    assert rule_a.cutoff == 90  # 70 + 2 * 10
    assert d_a.get_column("change_category").to_list() == ["recovered", "improved", "deteriorated", "unchanged"]
    rule_b, d_b = categorise(i, pre, post, "b")
    assert rule_b.cutoff == 80  # 110 - 2 * 15
    assert d_b.get_column("change_category").to_list() == ["recovered", "recovered", "deteriorated", "unchanged"]


def test_lower_is_better_criterion_a_from_the_sample():
    # no clinical norms: M_pre - 2 SD_pre; pre 20, 30, 40: mean 30, SD 10 -> cut-off 10
    rule, d = categorise(inst(reliability=0.75), [20, 30, 40], [8, 12, 40], "a")
    s_diff = 10 * math.sqrt(2) * math.sqrt(0.25)  # 7.0711, reliable beyond 13.86 points
    assert rule.cutoff == pytest.approx(10) and rule.s_diff == pytest.approx(s_diff)
    assert d.get_column("change_category").to_list() == ["unchanged", "improved", "unchanged"]
    assert d.get_column("rci").to_list() == pytest.approx([-12 / s_diff, -18 / s_diff, 0])


def test_fixed_reliable_change_points_phq9_style():
    rule, d = categorise(inst(reliable_change_points=6, cutoff=9.5), [15, 15, 8], [9, 10, 14])
    assert rule.s_diff == pytest.approx(6 / 1.96) and rule.reliable_points == 6
    assert d.get_column("rci").to_list() == pytest.approx([-1.96, -5 * 1.96 / 6, 1.96])
    assert d.get_column("change_category").to_list() == ["recovered", "unchanged", "deteriorated"]


def test_criterion_c_without_norms_is_a_clear_error():
    with pytest.raises(DyadflowError, match="criterion c needs norms.clinical and norms.functional"):
        categorise(inst(reliability=0.9, sd=5), [1.0], [2.0], "c")


def test_builtin_instruments_carry_the_published_values():
    reg = load_registry()
    assert reg["bdi_ii"].reliability == 0.93 and reg["bdi_ii"].lower_is_better
    assert reg["phq_9"].norms["reliable_change_points"] == 6 and reg["phq_9"].norms["cutoff"] == 9.5
    assert reg["oq_45"].norms["reliable_change_points"] == 14 and reg["oq_45"].norms["cutoff"] == 63.5


def test_jacobson_truax_das_end_to_end():
    """Table 2 of Jacobson & Truax (1991): r .84, criterion a from the pre distribution, higher is better."""
    with open(DATA / "jacobson_truax_1991_table2_das.csv", newline="") as fh:
        table = [(f"C{int(r['ppid']):02d}", float(r["pre"]), float(r["post"])) for r in csv.DictReader(fh)]
    rows = [(c, 0, "das", "patient", pre) for c, pre, _ in table] + [
        (c, 1, "das", "patient", post) for c, _, post in table
    ]
    reg = load_registry(DATA / "instruments")
    res = stats.compute(
        scores(rows), reg, "das", {"patient": "wai_sr", "therapist": "wai_s"}, {"change": {"criterion": "a"}}
    )
    # by hand: pre mean 81.5833, SD 11.8257; S_diff = SD * sqrt(2) * sqrt(.16) = 6.6896; cut-off 105.2347
    pre = [p for _, p, _ in table]
    m = sum(pre) / 30
    sd = math.sqrt(sum((p - m) ** 2 for p in pre) / 29)
    s_diff = sd * math.sqrt(2) * math.sqrt(1 - 0.84)
    assert (m, sd, s_diff) == pytest.approx((81.583333, 11.825661, 6.689604), abs=1e-6)
    rule = res.cohort["change_rule"]
    assert rule["cutoff"] == pytest.approx(m + 2 * sd) and rule["s_diff"] == pytest.approx(s_diff)
    d = res.dyads.sort("dyad_id")
    expected_rci = [(post - pre) / s_diff for _, pre, post in table]
    assert d.get_column("rci").to_list() == pytest.approx(expected_rci)
    cats = dict(zip(d.get_column("dyad_id"), d.get_column("change_category"), strict=False))
    assert cats["C02"] == "recovered"  # 74 -> 124: RCI 7.47, post above 105.23
    assert cats["C05"] == "improved"  # 61 -> 96.5: RCI 5.31, post below the cut-off
    assert cats["C18"] == "unchanged"  # 88 -> 100.5: RCI 1.87
    assert cats["C29"] == "deteriorated"  # 80 -> 60.5: RCI -2.91
    counts = d.group_by("change_category").len().sort("change_category").rows()
    assert counts == [("deteriorated", 1), ("improved", 8), ("recovered", 10), ("unchanged", 11)]
    assert res.cohort["change_categories"] == {
        "CBT": {"deteriorated": 1, "improved": 8, "recovered": 10, "unchanged": 11}
    }
    # no alliance data: nulls with reasons, never a crash
    assert d.get_column("lag_b").null_count() == 30
    assert "lag: 0 complete session pair(s), needs 3" in d.get_column("stats_note")[0]


def test_recovered_needs_a_clinical_start_oq45_and_bdi_ii():
    """Jacobson & Truax (1991): recovered = reliable improvement from the dysfunctional to
    the functional side. OQ-45 50 -> 30 and BDI-II 12 -> 2 start on the functional side."""
    reg = load_registry()
    # OQ-45: RC 14 points, cut-off 63.5. 50 -> 30: -20, reliable, but 50 is already non-clinical
    rule, d = categorise(reg["oq_45"], [50, 80], [30, 40])
    assert rule.cutoff == 63.5 and rule.fixed_points == 14
    assert d.get_column("change_category").to_list() == ["improved", "recovered"]
    assert d.get_column("clinical_at_pre").to_list() == [False, True]
    # BDI-II: r .93, SD of the sample's pre scores (12, 30): 12.7279; S_diff = 12.7279·√2·√.07 = 4.7624
    rule, d = categorise(reg["bdi_ii"], [12, 30], [2, 5])
    s_diff = math.sqrt(162) * math.sqrt(2) * math.sqrt(0.07)
    assert rule.s_diff == pytest.approx(s_diff) and rule.cutoff == 13.5
    assert d.get_column("rci").to_list() == pytest.approx([-10 / s_diff, -25 / s_diff])  # -2.0998, -5.2494
    assert d.get_column("change_category").to_list() == ["improved", "recovered"]
    assert d.get_column("clinical_at_pre").to_list() == [False, True]


def test_cutoff_boundary_lower_is_better():
    """Cut-off 20 (lower is better), RC 6 points: a score equal to the cut-off is on the
    clinical side, so a post score of 20 or 20.5 is improved and 19.5 recovered; a pre
    score of 20 or 20.5 is a clinical start, 19.5 is not."""
    i = inst(reliable_change_points=6)
    pre = [30, 30, 30, 20, 20.5, 19.5, None]
    post = [20, 20.5, 19.5, 10, 10, 10, 10]
    rule, d = categorise(i, pre, post, "fixed", 20)
    assert d.get_column("change_category").to_list() == [
        "improved",
        "improved",
        "recovered",
        "recovered",
        "recovered",
        "improved",
        None,
    ]
    assert d.get_column("clinical_at_pre").to_list() == [True, True, True, True, True, False, None]


def test_cutoff_boundary_higher_is_better():
    """Cut-off 80 (higher is better), RC 6 points: 80 and 79.5 after treatment are
    improved, 80.5 recovered; a pre score of 80 is clinical, 80.5 is not."""
    i = inst("higher_is_better", reliable_change_points=6)
    pre = [60, 60, 60, 80, 79.5, 80.5]
    post = [80, 79.5, 80.5, 90, 90, 90]
    rule, d = categorise(i, pre, post, "fixed", 80)
    assert d.get_column("change_category").to_list() == [
        "improved",
        "improved",
        "recovered",
        "recovered",
        "recovered",
        "improved",
    ]
    assert d.get_column("clinical_at_pre").to_list() == [True, True, True, True, True, False]


def test_cutoff_boundary_oq45_63_64():
    """OQ-45 cut-off 63/64 (registry 63.5): 63 is non-clinical, 64 clinical. 80 -> 64
    (-16, reliable) is improved, 80 -> 63 recovered; 64 -> 40 recovered, 63 -> 40 improved."""
    rule, d = categorise(load_registry()["oq_45"], [80, 80, 64, 63], [64, 63, 40, 40])
    assert d.get_column("change_category").to_list() == ["improved", "recovered", "recovered", "improved"]
    assert d.get_column("clinical_at_pre").to_list() == [True, True, True, False]
