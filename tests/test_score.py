"""Scoring per the registry, against hand-computed values."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from dyadflow.core.registry import item_column
from dyadflow.score import score_frame


def validated(instrument: str, items: list, n_cols: int = 45, rater: str = "patient", session: int = 1) -> dict:
    r = {
        "dyad_id": "D1",
        "patient_id": "P1",
        "therapist_id": "T1",
        "arm": None,
        "session": session,
        "date": dt.date(2024, 1, 1),
        "rater": rater,
        "instrument": instrument,
        "note": None,
        "consent_share_text": None,
        "source_file": "x.csv",
        "source_line": 2,
    }
    for i in range(1, n_cols + 1):
        r[item_column(i)] = items[i - 1] if i <= len(items) else None
    return r


def score(registry, *rows) -> pl.DataFrame:
    frame = pl.DataFrame(
        list(rows), schema_overrides={item_column(i): pl.Int16 for i in range(1, 46)} | {"session": pl.Int32}
    )
    return score_frame(frame, registry)


def test_wai_s_reverse_keys_items_4_and_10(registry):
    items = [5, 6, 5, 2, 6, 5, 6, 5, 6, 3, 5, 6]
    out = score(registry, validated("wai_s", items, rater="therapist")).row(0, named=True)
    # items 4 and 10 become 8-2=6 and 8-3=5: keyed sum 5+6+5+6+6+5+6+5+6+5+5+6 = 66
    assert out["total"] == 66.0
    assert out["mean"] == pytest.approx(5.5)
    assert out["score"] == pytest.approx(5.5)
    # task 1,2,10,12 -> (5+6+5+6)/4; bond 3,5,7,9 -> (5+6+6+6)/4; goal 4,6,8,11 -> (6+5+5+5)/4
    assert (out["sub_task"], out["sub_bond"], out["sub_goal"]) == (5.5, 5.75, 5.25)
    assert out["band"] is None and out["prorated"] is False and out["n_answered"] == 12


def test_wai_sr_has_no_reverse_keying(registry):
    items = [4, 4, 3, 4, 5, 3, 4, 4, 3, 4, 5, 4]
    out = score(registry, validated("wai_sr", items)).row(0, named=True)
    assert out["total"] == 47.0 and out["mean"] == pytest.approx(47 / 12)


def test_bdi_sum_band_and_risk(registry):
    items = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1, 1, 0, 1, 2, 1, 1, 1, 2, 1, 0, 1]  # item 9 = 1
    out = score(registry, validated("bdi_ii", items)).row(0, named=True)
    assert out["total"] == 21.0 and out["score"] == 21.0
    assert out["band"] == "moderate"
    assert out["risk_flag"] is True and out["risk_items"] == "item 9 = 1"


@pytest.mark.parametrize(
    "total, band",
    [
        (0, "minimal"),
        (13, "minimal"),
        (14, "mild"),
        (19, "mild"),
        (20, "moderate"),
        (28, "moderate"),
        (29, "severe"),
        (63, "severe"),
    ],
)
def test_bdi_band_boundaries(registry, total, band):
    items = [3] * (total // 3) + [total % 3] + [0] * 21
    items = items[:21]
    assert sum(items) == total
    out = score(registry, validated("bdi_ii", items)).row(0, named=True)
    assert out["total"] == total and out["band"] == band


def test_bdi_prorates_up_to_four_missing_items(registry):
    items = [2] * 21
    items[0] = items[5] = items[10] = items[20] = None  # 4 of 21 missing: allowed
    out = score(registry, validated("bdi_ii", items)).row(0, named=True)
    assert out["n_answered"] == 17 and out["prorated"] is True
    assert out["total"] == pytest.approx(34 / 17 * 21)  # = 42.0
    assert out["band"] == "severe" and out["score_missing_reason"] is None


def test_bdi_with_five_missing_items_is_not_scored(registry):
    items = [2] * 21
    for i in (0, 1, 2, 3, 4):
        items[i] = None
    out = score(registry, validated("bdi_ii", items)).row(0, named=True)
    assert out["total"] is None and out["mean"] is None and out["band"] is None
    assert out["prorated"] is False and out["n_answered"] == 16
    assert out["score_missing_reason"] == "5 of 21 items missing; at most 4 may be missing"


def test_missing_risk_item_leaves_the_flag_unknown(registry):
    items = [1] * 21
    items[8] = None
    out = score(registry, validated("bdi_ii", items)).row(0, named=True)
    assert out["risk_flag"] is None and out["risk_items"] is None
    items[8] = 0
    assert score(registry, validated("bdi_ii", items)).row(0, named=True)["risk_flag"] is False


def test_phq9_one_missing_item_prorated_two_not(registry):
    one = [2, 2, 2, 2, 2, 2, 2, 2, None]
    out = score(registry, validated("phq_9", one)).row(0, named=True)
    assert out["total"] == 18.0 and out["band"] == "moderately severe" and out["prorated"] is True
    assert out["risk_flag"] is None  # item 9 unanswered
    two = [2, 2, 2, 2, 2, 2, 2, None, None]
    assert score(registry, validated("phq_9", two)).row(0, named=True)["total"] is None


def test_oq45_reverse_keying_and_subscales(registry):
    items = [1] * 45  # every answer "Rarely" (1): reverse-keyed items score 4 - 1 = 3
    out = score(registry, validated("oq_45", items)).row(0, named=True)
    # 9 reverse-keyed items x 3 + 36 others x 1 = 63
    assert out["total"] == 63.0 and out["band"] == "non-clinical"
    # subscales are sums (scoring.subscales: sum; the published cut-offs are on sums)
    # symptom distress has reverse items 13, 24, 31: 22*1 + 3*3
    assert out["sub_symptom_distress"] == 31.0
    # interpersonal relations: reverse 1, 20, 37, 43 -> 7*1 + 4*3
    assert out["sub_interpersonal_relations"] == 19.0
    # social role: reverse 12, 21 -> 7*1 + 2*3
    assert out["sub_social_role"] == 13.0
    items[7] = 2  # item 8, suicidal thoughts
    flagged = score(registry, validated("oq_45", items)).row(0, named=True)
    assert flagged["total"] == 64.0 and flagged["band"] == "clinical"
    # every OQ-45 critical item answered above "Never" is listed
    assert flagged["risk_items"] == "item 8 = 2; item 11 = 1; item 26 = 1; item 32 = 1; item 44 = 1"


def test_subscale_missing_rule(registry):
    items = [4, 4, 3, 4, 5, 3, 4, 4, 3, 4, 5, 4]
    items[2] = None  # item 3 is in the 4-item bond subscale: 20 % of 4 allows none missing
    out = score(registry, validated("wai_sr", items)).row(0, named=True)
    assert out["sub_bond"] is None
    assert out["sub_task"] == pytest.approx((4 + 4 + 4 + 4) / 4)
    assert out["mean"] == pytest.approx((47 - 3) / 11) and out["prorated"] is True


def test_instruments_scored_together_keep_their_own_columns(registry):
    out = score(
        registry,
        validated("bdi_ii", [1] * 21, session=1),
        validated("wai_sr", [3] * 12, session=1),
    )
    assert out.get_column("instrument").to_list() == ["bdi_ii", "wai_sr"]
    assert out.get_column("total").to_list() == [21.0, 36.0]
    assert out.get_column("sub_task").to_list() == [None, 3.0]
    assert out.columns[:13] == [
        "dyad_id",
        "patient_id",
        "therapist_id",
        "session",
        "date",
        "rater",
        "instrument",
        "total",
        "mean",
        "n_answered",
        "prorated",
        "band",
        "risk_flag",
    ]


def oq(answers: dict[int, int | None]) -> list:
    """OQ-45 answers: 1 ("Rarely") unless given."""
    return [answers.get(i, 1) for i in range(1, 46)]


def test_oq45_missing_item_takes_its_subscale_rounded_mean(registry):
    """The OQ-45 scoring sheet: a missing item takes the mean of the other items of its
    own subscale, rounded to a whole number (.5 up), on the scored (keyed) scale."""
    sd_zero = {i: 0 for i in (27, 29, 33, 34, 35, 36, 40, 41, 42, 45)}
    # A: item 13 (symptom distress, reverse-keyed) and item 7 (interpersonal) missing.
    # SD's other 24 scored items: 24 and 31 answered 4 (reverse, score 0), twelve items 1,
    # ten items 0: 12 / 24 = 0.5 -> 1 (.5 rounds up), so SD = 12 + 1 = 13.
    # IR's other 10: reverse 1, 20, 37, 43 score 3 (12), six items 1 (6): 18 / 10 = 1.8 -> 2, IR = 20.
    # SR: reverse 12, 21 score 3 (6), seven items 1: 13. Total 13 + 20 + 13 = 46
    # (generic proration would give 43 / 43 * 45 = 45).
    a = oq({13: None, 24: 4, 31: 4, 7: None, **sd_zero})
    # B: item 12 (social role, reverse-keyed) missing; SR's other 8: item 21 scores 3,
    # 4, 14, 28, 32, 38 answer 2, 39 answers 3, 44 answers 4: 20 / 8 = 2.5 -> 3 (banker's
    # rounding would give 2). SR = 23, SD 31, IR 19, total 73.
    b = oq({12: None, 4: 2, 14: 2, 28: 2, 32: 2, 38: 2, 39: 3, 44: 4})
    # C: items 4 and 14 missing (social role): 2 of 9 is beyond the subscale's 20 % (1),
    # so sub_social_role is empty; the total still imputes: SR's other 7 score
    # 6 + 5 = 11, 11 / 7 = 1.571 -> 2; total 31 + 19 + 11 + 2 + 2 = 65.
    c = oq({4: None, 14: None})
    # D: items 2-11 missing, ten, beyond 20 % of 45 (9): no total. Subscales keep their own
    # limit: SD misses 8 of 25 (empty); IR misses item 7 only: 18 / 10 = 1.8 -> 2, IR 20;
    # SR misses item 4 only: (6 + 6) / 8 = 1.5 -> 2, SR 14.
    d = oq({i: None for i in range(2, 12)})
    out = score(registry, *(validated("oq_45", x, session=s) for s, x in enumerate((a, b, c, d), 1)))
    got = out.select(
        "total", "sub_symptom_distress", "sub_interpersonal_relations", "sub_social_role", "n_answered", "prorated"
    ).rows()
    assert got == [
        (46.0, 13.0, 20.0, 13.0, 43, True),
        (73.0, 31.0, 19.0, 23.0, 44, True),
        (65.0, 31.0, 19.0, None, 43, True),
        (None, None, 20.0, 14.0, 35, False),
    ]
    assert out.get_column("mean").to_list()[:3] == pytest.approx([46 / 45, 73 / 45, 65 / 45])
    assert out.get_column("score_missing_reason").to_list() == [
        None,
        None,
        None,
        "10 of 45 items missing; at most 9 may be missing",
    ]


def test_missing_and_subscales_are_read_from_the_instrument_file(registry):
    oq45 = registry["oq_45"]
    assert (oq45.missing_rule, oq45.subscale_score) == ("subscale_mean", "sum")
    assert (registry["wai_sr"].missing_rule, registry["wai_sr"].subscale_score) == ("prorate", "mean")


def test_the_score_stage_carries_notes_text_consent_and_reliability(tmp_path, registry):
    """Issue 16.3: the reports read the note and the governing text consent from the scores,
    and the stats stage reads Cronbach's alpha from results/scores/reliability.csv."""
    from dyadflow import score
    from dyadflow.validate.consent import CONSENT_TABLE

    rows = [
        {**validated("wai_sr", [3] * 12, session=0), "note": "N0", "consent_share_text": True},
        {**validated("wai_sr", [4] * 12, session=1), "note": "N1"},
        {**validated("wai_s", [5] * 12, rater="therapist", session=2), "note": "T2"},
        validated("wai_sr", [5] * 12, session=3),
    ]
    frame = pl.DataFrame(
        rows, schema_overrides={item_column(i): pl.Int16 for i in range(1, 46)} | {"session": pl.Int32}
    )
    frame.write_parquet(tmp_path / "validated.parquet")
    # text consent at intake, withdrawn at session 2; a ratings decision does not govern notes
    pl.DataFrame(
        {
            "dyad_id": ["D1"] * 3,
            "session": [0, 2, 3],
            "date": [None] * 3,
            "rater": ["patient"] * 3,
            "consent": [True, False, True],
            "source_file": ["x.csv"] * 3,
            "source_line": [2, 4, 5],
            "kind": ["share_text", "share_text", "share_ratings"],
        },
        schema=CONSENT_TABLE,
    ).write_parquet(tmp_path / "consent.parquet")
    out = {k: str(tmp_path / f"{k}") for k in ("q.parquet", "q.csv", "reliability.csv")}
    score.run(
        str(tmp_path / "validated.parquet"),
        registry,
        out["q.parquet"],
        out["q.csv"],
        str(tmp_path / "consent.parquet"),
        out["reliability.csv"],
    )
    got = pl.read_parquet(out["q.parquet"]).select("session", "rater", "note", "consent_share_text").rows()
    assert got == [
        (0, "patient", "N0", True),
        (1, "patient", "N1", True),
        (2, "therapist", "T2", False),
        (3, "patient", None, False),
    ]
    rel = pl.read_csv(out["reliability.csv"])
    assert rel.columns == ["instrument", "alpha", "omega", "n", "k", "note"]
    by = {r["instrument"]: r for r in rel.iter_rows(named=True)}
    assert set(by) == set(registry)
    # every item of a row equal (3, 4, 5): item variances 1 each, total variance 144, alpha = 12/11 * (1 - 12/144) = 1
    assert by["wai_sr"]["alpha"] == pytest.approx(1.0) and (by["wai_sr"]["n"], by["wai_sr"]["k"]) == (3, 12)
    assert (by["wai_s"]["alpha"], by["wai_s"]["n"], by["wai_s"]["k"]) == (None, 1, 12)  # one questionnaire
    assert (by["bdi_ii"]["alpha"], by["bdi_ii"]["n"], by["bdi_ii"]["k"]) == (None, 0, 21)
