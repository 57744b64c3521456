"""Session-level rupture-repair sequences (dyadflow defaults: 1.5 SD drop, repair within 3)."""

from __future__ import annotations

import math

import polars as pl
import pytest
from stats_helpers import sessions

from dyadflow.stats.ruptures import COLUMNS, dyad_counts, ruptures


def test_rupture_and_repair_by_hand():
    # patient 4 4 4 2 4: SD sqrt(0.8) = 0.894, 1.5 SD = 1.34; the drop of 2 at session 4 is a rupture,
    # back to 4 (the pre-drop level) at session 5: repaired
    s = sessions(
        {"D1": {"session": [1, 2, 3, 4, 5], "alliance_patient": [4, 4, 4, 2, 4], "alliance_therapist": [5, 5, 5, 5, 5]}}
    )
    r = ruptures(s)
    assert r.columns == COLUMNS
    assert r.to_dicts() == [
        {
            "dyad_id": "D1",
            "rater": "patient",
            "pre_session": 3,
            "rupture_session": 4,
            "repair_session": 5,
            "pre_alliance": 4.0,
            "rupture_alliance": 2.0,
            "drop": 2.0,
            "repaired": True,
        }
    ]


def test_not_repaired_within_the_window_and_missing_sessions():
    # therapist 4 4 (5 missing) 2 3 3 3 4 at sessions 1 2 4 5 6 7 8: the rupture at 4 is measured
    # from session 2 (the previous observed one); back to 4 only at session 8, outside 5-7
    s = sessions(
        {
            "D1": {
                "session": [1, 2, 4, 5, 6, 7, 8],
                "alliance_therapist": [4, 4, 2, 3, 3, 3, 4],
                "alliance_patient": [None] * 7,
            }
        }
    )
    r = ruptures(s).row(0, named=True)
    assert (r["rater"], r["pre_session"], r["rupture_session"], r["repair_session"], r["repaired"]) == (
        "therapist",
        2,
        4,
        None,
        False,
    )
    # a wider window finds the repair
    assert ruptures(s, repair_window=4).row(0, named=True)["repair_session"] == 8


def test_threshold_is_configurable_and_flat_series_have_none():
    s = sessions(
        {
            "D1": {"session": [1, 2, 3, 4, 5], "alliance_patient": [4, 4, 4, 2, 4]},
            "D2": {"session": [1, 2, 3], "alliance_patient": [5, 5, 5]},
            "D3": {"session": [1], "alliance_patient": [3]},
        }
    )
    # SD sqrt(0.8) = 0.894: 2.2 SD = 1.97 <= 2 (a rupture), 2.3 SD = 2.06 > 2 (none)
    assert math.sqrt(0.8) * 2.2 < 2 < math.sqrt(0.8) * 2.3
    assert ruptures(s, sd_multiplier=2.2).height == 1
    assert ruptures(s, sd_multiplier=2.3).height == 0
    counts = dyad_counts(pl.DataFrame({"dyad_id": ["D1", "D2", "D3"]}), ruptures(s))
    assert counts.sort("dyad_id").rows() == [("D1", 1, 1), ("D2", 0, 0), ("D3", 0, 0)]
    assert ruptures(s).get_column("drop").to_list() == pytest.approx([2.0])
