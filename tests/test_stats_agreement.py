"""Agreement between coders, checked against published worked examples and hand arithmetic."""

from __future__ import annotations

import polars as pl
import pytest

from dyadflow.coding import agreement
from dyadflow.core.errors import DyadflowError

# Shrout & Fleiss (1979), Psychological Bulletin 86:420-428, Table 2: 6 targets x 4 judges.
SF = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]

# Fleiss (1971), Psychological Bulletin 76:378-382: 30 patients, 6 psychiatrists, 5 diagnoses
# (1 depression, 2 personality disorder, 3 schizophrenia, 4 neurosis, 5 other). The raw
# ratings are the R irr package's `diagnoses` data set (also statsmodels'
# stats/tests/test_inter_rater.py); kappam.fleiss(diagnoses) = 0.430.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4],
    [2, 2, 2, 5, 5, 5],
    [2, 3, 3, 3, 3, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5],
    [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4],
    [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4],
    [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3],
    [1, 4, 4, 4, 4, 4],
    [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5],
    [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 4, 4, 4, 4, 4],
    [2, 2, 4, 5, 5, 5],
    [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4],
    [1, 1, 1, 1, 5, 5],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3],
    [5, 5, 5, 5, 5, 5],
]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers
# x 12 units, nominal values with missing ratings (None); alpha_nominal = 0.743.
KRIPP = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def long(matrix, instrument="obs", measure="total", coders=None) -> pl.DataFrame:
    """Rows = targets, columns = coders → the long table (missing cells left out)."""
    coders = coders or [f"C{j + 1}" for j in range(len(matrix[0]))]
    rows = [
        (instrument, measure, f"S{i + 1:02d}", coders[j], v)
        for i, r in enumerate(matrix)
        for j, v in enumerate(r)
        if v is not None
    ]
    return pl.DataFrame(rows, schema=["instrument", "measure", "target", "coder", "value"], orient="row")


def test_icc_shrout_fleiss_table2():
    res = agreement.icc(long(SF))
    # Shrout & Fleiss report two decimals
    assert round(res["icc1_1"]["value"], 2) == 0.17
    assert round(res["icc2_1"]["value"], 2) == 0.29
    assert round(res["icc3_1"]["value"], 2) == 0.71
    assert round(res["icc2_k"]["value"], 2) == 0.62
    # By hand: grand mean 127/24; target sums 24, 12, 26, 16, 30, 19; judge sums 46, 15, 26, 40.
    # SS_targets = (24²+12²+26²+16²+30²+19²)/4 − 127²/24 = 728.25 − 672.041667 = 56.208333
    # SS_judges  = (46²+15²+26²+40²)/6 − 127²/24 = 769.5 − 672.041667 = 97.458333
    # SS_total   = 841 − 672.041667 = 168.958333; SS_error = 168.958333 − 56.208333 − 97.458333 = 15.291667
    n, k = 6, 4
    bms = 56.208333333 / 5  # 11.241667 (S&F: 11.24)
    wms = (97.458333333 + 15.291666667) / 18  # 6.263889 (S&F: 6.26)
    jms = 97.458333333 / 3  # 32.486111 (S&F: 32.49)
    ems = 15.291666667 / 15  # 1.019444 (S&F: 1.02)
    assert res["icc1_1"]["value"] == pytest.approx((bms - wms) / (bms + (k - 1) * wms), abs=1e-8)  # 0.165742
    assert res["icc2_1"]["value"] == pytest.approx((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n), abs=1e-8)
    assert res["icc3_1"]["value"] == pytest.approx((bms - ems) / (bms + (k - 1) * ems), abs=1e-8)
    assert res["icc2_k"]["value"] == pytest.approx((bms - ems) / (bms + (jms - ems) / n), abs=1e-8)
    assert res["icc1_1"]["value"] == pytest.approx(0.165742, abs=1e-6)
    assert res["icc2_1"]["value"] == pytest.approx(0.289764, abs=1e-6)
    assert res["icc3_1"]["value"] == pytest.approx(0.714841, abs=1e-6)
    assert res["icc2_k"]["value"] == pytest.approx(0.620051, abs=1e-6)
    # F for ICC(3,1) = BMS/EMS = 11.027; CIs at full precision (pingouin rounds them unless told not to)
    assert res["icc3_1"]["F"] == pytest.approx(bms / ems, abs=1e-6)
    lo, hi = res["icc2_1"]["ci_low"], res["icc2_1"]["ci_high"]
    assert lo < 0.289764 < hi and round(lo, 2) == 0.02 and round(hi, 2) == 0.76 and lo != round(lo, 2)
    assert res["n_targets"] == 6 and res["n_coders"] == 4


def test_cohen_kappa_by_hand():
    # 50 sessions, codes yes/no: both yes 20, A yes B no 5, A no B yes 10, both no 15.
    # p_o = (20 + 15)/50 = 0.70; A yes 25/50, B yes 30/50: p_e = 0.5·0.6 + 0.5·0.4 = 0.50
    # kappa = (0.70 − 0.50)/(1 − 0.50) = 0.40
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    res = agreement.cohen_kappa(long([list(p) for p in pairs]))
    assert res["value"] == pytest.approx(0.40, abs=1e-12)
    assert res["n_targets"] == 50
    assert res["ci_low"] < 0.40 < res["ci_high"]
    # the categories are sorted: no, yes
    assert res["table"].tolist() == [[15.0, 10.0], [5.0, 20.0]]


def test_fleiss_kappa_fleiss_1971():
    res = agreement.fleiss_kappa(long(DIAGNOSES))
    assert round(res["value"], 3) == 0.430
    assert res["value"] == pytest.approx(0.4302445, abs=1e-7)  # irr::kappam.fleiss
    assert res["n_targets"] == 30 and res["n_coders"] == 6
    # subject 2 of Fleiss' Table 1: three psychiatrists said personality disorder, three "other"
    assert res["counts"][1].tolist() == [0, 3, 0, 0, 3]


def test_krippendorff_alpha_2011_nominal_with_missing():
    # observers are KRIPP's rows: transpose to targets x coders
    matrix = [list(col) for col in zip(*KRIPP, strict=False)]
    res = agreement.krippendorff_alpha(long(matrix), "nominal")
    assert round(res["value"], 3) == 0.743
    assert res["value"] == pytest.approx(0.743421, abs=1e-6)
    assert res["n_targets"] == 11  # unit 12 has a single rating: not pairable
    # the same data on an interval scale (Krippendorff 2011: 0.849)
    assert round(agreement.krippendorff_alpha(long(matrix), "interval")["value"], 3) == 0.849


def test_agreement_table_numeric_complete_gives_iccs_only():
    out = agreement.agreement_table(long(SF, measure="item_01"))
    assert out.columns == agreement.AGREEMENT_COLUMNS
    assert out.get_column("statistic").to_list() == ["icc2_1", "icc2_k"]
    assert out.get_column("value").round(6).to_list() == [0.289764, 0.620051]
    assert out.get_column("n_targets").to_list() == [6, 6]
    assert out.get_column("n_coders").to_list() == [4, 4]
    assert out.get_column("note").to_list() == [None, None]


def test_agreement_table_missing_by_design_adds_krippendorff():
    matrix = [list(col) for col in zip(*KRIPP, strict=False)]
    numeric = long(matrix, instrument="num")
    codes = long(matrix, instrument="codes").with_columns(pl.col("value").cast(pl.String))
    out = agreement.agreement_table(
        pl.concat([numeric.with_columns(pl.col("value").cast(pl.String)), codes]), categorical={"codes"}
    )
    rows = {(r["instrument"], r["statistic"]): r for r in out.iter_rows(named=True)}
    assert list(rows) == [
        ("codes", "fleiss_kappa"),
        ("codes", "krippendorff_alpha"),
        ("num", "icc2_1"),
        ("num", "icc2_k"),
        ("num", "krippendorff_alpha"),
    ]
    assert rows[("codes", "krippendorff_alpha")]["value"] == pytest.approx(0.743421, abs=1e-6)
    assert rows[("codes", "krippendorff_alpha")]["level"] == "nominal"
    assert rows[("num", "krippendorff_alpha")]["value"] == pytest.approx(0.849107, abs=1e-6)
    assert rows[("num", "krippendorff_alpha")]["level"] == "interval"
    # units 2-9 are rated by all four observers: ICC and kappa on those 8 only
    assert rows[("num", "icc2_1")]["n_targets"] == 8
    assert rows[("num", "icc2_1")]["note"] == "8 of 12 targets rated by all 4 coders; see krippendorff_alpha"
    assert rows[("codes", "fleiss_kappa")]["n_targets"] == 8


def test_agreement_table_two_coders_categorical_is_cohen():
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    out = agreement.agreement_table(long([list(p) for p in pairs], instrument="marker"), categorical=["marker"])
    assert out.select("statistic", "value", "n_targets", "n_coders").rows() == [
        ("cohen_kappa", pytest.approx(0.4), 50, 2)
    ]


def test_agreement_table_not_computable_says_why():
    one_coder = long([[3], [4], [5]])
    out = agreement.agreement_table(one_coder)
    assert out.get_column("value").to_list() == [None, None]
    assert out.get_column("note").to_list() == ["1 coder(s): agreement needs at least 2"] * 2
    two_targets = long([[3, 4], [1, 1]])
    out = agreement.agreement_table(two_targets)
    assert out.get_column("note").to_list() == ["2 target(s) rated by all 2 coders, needs 3"] * 2
    # three targets (the minimum) give a value; a fourth target rated by one coder only
    # leaves three complete ones
    three = long([[3, 4], [1, 1], [5, 5], [2, None]])
    out = agreement.agreement_table(three)
    assert out.get_column("statistic").to_list() == ["icc2_1", "icc2_k", "krippendorff_alpha"]
    assert out.get_column("value").null_count() == 0
    assert out.get_column("n_targets").to_list() == [3, 3, 3]
    # no variation at all
    flat = agreement.agreement_table(long([[2, 2], [2, 2], [2, 2]]))
    assert flat.get_column("note").to_list() == ["not computable: no variation in the ratings"] * 2


def test_duplicate_rating_is_a_clear_error():
    dup = pl.concat([long(SF), long(SF).head(1)])
    with pytest.raises(DyadflowError, match="obs total: target 'S01' has 2 ratings by coder 'C1'"):
        agreement.agreement_table(dup)


def test_empty_table_has_the_columns():
    empty = pl.DataFrame(
        schema={
            "instrument": pl.String,
            "measure": pl.String,
            "target": pl.String,
            "coder": pl.String,
            "value": pl.Float64,
        }
    )
    out = agreement.agreement_table(empty)
    assert out.height == 0 and out.columns == agreement.AGREEMENT_COLUMNS
