"""Moment-to-moment (dial) ratings: hand-built series with known answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import REPO
from scipy import stats
from scipy.signal import lfilter

from dyadflow.core import atomic
from dyadflow.core.errors import DyadflowError
from dyadflow.microprocess import input_files, load, pipeline, segments, series, settings
from dyadflow.microprocess.congruence import effective_n
from dyadflow.microprocess.dial_checks import validate_frame
from dyadflow.tools import demo_dial as demo

NO_SMOOTHING = {"smoothing_s": 1, "min_separation_s": 3, "repair_rise": 10, "n_segments": 3}


def ratings(values, dyad="D1", session=1, rater="patient", seconds=None) -> pl.DataFrame:
    seconds = list(range(len(values))) if seconds is None else list(seconds)
    return pl.DataFrame(
        {"dyad_id": dyad, "session": session, "rater": rater, "second": seconds, "rating": [float(v) for v in values]},
        schema_overrides={"session": pl.Int32, "second": pl.Int32},
    )


def segment_rows(seg: pl.DataFrame) -> list[tuple]:
    return seg.select("kind", "rank", "start_s", "end_s", "clip", "extreme_rating").rows()


# --- segments --------------------------------------------------------------------


def test_segments_of_a_short_series_without_smoothing():
    #        0   1   2  3  4  5  6  7  8   9  10  11  12  13  14  15
    values = [10, 10, 10, 8, 5, 2, 2, 4, 9, 15, 20, 20, 18, 25, 30, 28]
    seg = pipeline.analyse(ratings(values), NO_SMOOTHING).segments
    assert segment_rows(seg) == [
        # the decline into the minimum at 5 begins at the end of the plateau (second 2)
        # rupture clips end 30 s after the minimum (cut at the last second, 15) and last
        # up to 120 s (cut at the first second, 0)
        ("rupture", 1, 2, 5, "00:00–00:15", 2.0),
        ("rupture", 2, 11, 12, "00:00–00:15", 18.0),
        # first second after the minimum at least 10 above it (2 + 10 ≤ 15), ending where the rise levels off;
        # its clip starts where the rise begins: the last of the lowest seconds 5-9 (2 at 5 and 6) is 6
        ("repair", 1, 9, 10, "00:06–00:15", 20.0),
        # lowest of seconds 12-14 (18, 25, 30): 12
        ("repair", 2, 14, 14, "00:12–00:15", 30.0),
        ("peak", 1, 12, 14, "00:12–00:15", 30.0),
        # the peak at 10 is within 3 s of peak 1's segment [12, 14]; the start plateau is next
        ("peak", 2, 0, 0, "00:00–00:15", 10.0),
    ]
    assert seg.columns == [
        "dyad_id",
        "session",
        "rater",
        "kind",
        "rank",
        "start_s",
        "end_s",
        "clip",
        "extreme_rating",
        "source",
    ]
    assert set(seg.get_column("source")) == {"algorithm"}


def test_ruptures_are_separated_and_ranked_lowest_first():
    base = np.full(1000, 20.0)
    base[100:110] = 0  # a dip
    base[150:160] = -10  # a deeper dip 40 s later: within 120 s of the first
    base[500:510] = 5  # a shallower dip far away
    base[800:810] = 10
    seg = pipeline.analyse(ratings(base), {"smoothing_s": 1, "min_separation_s": 120, "n_segments": 3}).segments
    ruptures = seg.filter(pl.col("kind") == "rupture")
    assert ruptures.select("rank", "start_s", "end_s", "extreme_rating").rows() == [
        (1, 149, 150, -10.0),
        (2, 499, 500, 5.0),
        (3, 799, 800, 10.0),
    ]
    repairs = seg.filter(pl.col("kind") == "repair")
    assert repairs.select("rank", "start_s", "end_s", "extreme_rating").rows() == [
        (1, 160, 160, 20.0),
        (2, 510, 510, 20.0),
        (3, 810, 810, 20.0),
    ]
    # minimum + 30 s, 120 s long: 150 + 30 = 180 (03:00) back to 60 (01:00), …
    assert ruptures.get_column("clip").to_list() == ["01:00–03:00", "06:50–08:50", "11:50–13:50"]
    # a repair clip starts where the rise begins: the last second of the -10 low (159), …
    assert repairs.get_column("clip").to_list() == ["02:39–04:39", "08:29–10:29", "13:29–15:29"]


def test_segments_with_the_default_30_second_smoothing():
    # 20 until 600, down by 1 a second to -20 at 640, held until 760, up to 20 at 800, held to 1199
    t = np.arange(1200)
    values = np.select([t <= 600, t <= 640, t <= 760, t <= 800], [20, 20 - (t - 600), -20, -20 + (t - 760)], 20)
    seg = pipeline.analyse(ratings(values), {}).segments
    assert segment_rows(seg) == [
        # window t-15 … t+14: it first reaches the decline (601) at t = 587, so the decline begins at 586;
        # it lies wholly in the -20 plateau from t = 655
        # clip: the minimum 655 + 30 = 685 (11:25), 120 s back to 565 (09:25)
        ("rupture", 1, 586, 655, "09:25–11:25", -20.0),
        # mean over 755 … 784 = (6·-20 + (-19 … 4)) / 30 = -300 / 30 = -10: risen by exactly 10 at t = 770;
        # the rise levels off where the window lies wholly in the top plateau (t - 15 = 800)
        # its clip starts where the rise begins: the last second of the -20 low, 746 (the window
        # first reaches 761 at t = 747)
        ("repair", 1, 770, 815, "12:26–14:26", 20.0),
        # peaks: the opening plateau (earliest of the ties at 20), then the recovered plateau,
        # whose rise begins at 746 (the window first reaches 761 at t = 747)
        ("peak", 1, 0, 0, "00:00–02:00", 20.0),
        ("peak", 2, 746, 815, "12:26–14:26", 20.0),
    ]


def test_a_blip_at_the_bottom_does_not_move_the_onset():
    # given as the smoothed series itself: 20 until 9, a decline, a 1-point blip at 16, the minimum at 18
    values = [20] * 10 + [16, 12, 8, 4, 0, -2, -1, -3, -5, -5, 0, 5, 10, 15] + [20] * 16
    smoothed = pl.DataFrame(
        {"series": 0, "second": list(range(len(values))), "smoothed": [float(v) for v in values]},
        schema_overrides={"series": pl.Int32, "second": pl.Int32},
    )
    keys = pl.DataFrame(
        {"series": [0], "dyad_id": ["D1"], "session": [1], "rater": ["patient"]},
        schema_overrides={"series": pl.Int32, "session": pl.Int32},
    )
    base = {**settings(None), "n_segments": 1}

    def found(smoothing_s):
        seg = segments.find(smoothed, keys, {**base, "smoothing_s": smoothing_s})
        return seg.filter(pl.col("kind") != "peak").select("kind", "start_s", "end_s", "extreme_rating").rows()

    # read strictly, the decline into the minimum starts after the blip (16) …
    assert found(1) == [("rupture", 16, 18, -5.0), ("repair", 21, 24, 20.0)]
    # … with smoothing 3 s, blips narrower than 2·3 − 1 = 5 s are passed over: the decline starts at 9
    assert found(3) == [("rupture", 9, 18, -5.0), ("repair", 21, 24, 20.0)]


def test_clip_is_cut_at_the_last_second():
    values = [0] * 50 + [-20] * 10 + [0] * 70  # 130 s
    seg = pipeline.analyse(ratings(values), NO_SMOOTHING).segments
    # minimum 50 + 30 = 80 (01:20), 120 s back is cut at the first second
    assert seg.filter(pl.col("kind") == "rupture").get_column("clip").to_list()[0] == "00:00–01:20"
    # the repair clip starts at the last second of the low (59) and is cut at the last second (129)
    assert seg.filter(pl.col("kind") == "repair").get_column("clip").to_list()[0] == "00:59–02:09"


def test_rupture_clip_contains_the_minimum_of_a_long_decline():
    """Trusty (2023) clips the low itself: a 200 s decline (20 at 100 down to -20 at 300,
    0.2 a second), held to 400, then up 1 a second. The clip used to start at the onset
    (100: 01:40–03:40) and end two minutes before the minimum."""
    values = (
        [20.0] * 101
        + [20 - 0.2 * k for k in range(1, 201)]
        + [-20.0] * 100
        + [-20.0 + k for k in range(1, 41)]
        + [20.0] * 100
    )
    seg = pipeline.analyse(ratings(values), NO_SMOOTHING).segments
    rows = seg.filter(pl.col("kind") != "peak").select("kind", "start_s", "end_s", "clip").rows()
    # rupture [100, 300]; its clip ends 30 s after the minimum: 330 (05:30), from 210 (03:30).
    # repair: first second at -20 + 10 = -10 is 410; the rise begins at 400 (the last second at -20)
    assert rows == [("rupture", 100, 300, "03:30–05:30"), ("repair", 410, 440, "06:40–08:40")]
    anchored = pipeline.analyse(ratings(values), {**NO_SMOOTHING, "clip_after_s": 0}).segments
    assert anchored.filter(pl.col("kind") == "rupture").get_column("clip").to_list() == ["03:00–05:00"]
    old = pipeline.analyse(ratings(values), {**NO_SMOOTHING, "clip_anchor": "start"}).segments
    assert old.filter(pl.col("kind") != "peak").get_column("clip").to_list() == ["01:40–03:40", "06:50–08:50"]


def test_smoothing_is_a_centred_mean_cut_at_the_ends_and_gaps():
    grid = pl.DataFrame(
        {
            "series": [0] * 6 + [1] * 3,
            "second": [0, 1, 2, 3, 4, 5, 0, 1, 2],
            "rating": [0.0, 3, 6, None, 9, 12, 1, 2, 3],
        }
    )
    out3 = series.smooth(grid, 3).get_column("smoothed").to_list()
    assert out3 == [1.5, 3.0, 4.5, None, 10.5, 10.5, 1.5, 2.0, 2.5]
    out4 = series.smooth(grid, 4).get_column("smoothed").to_list()  # 2 before, 1 after
    assert out4 == [1.5, 3.0, 3.0, None, 9.0, 10.5, 1.5, 2.0, 2.0]


# --- gaps ------------------------------------------------------------------------


def test_long_gap_is_reported_and_not_interpolated():
    seconds = [*range(0, 10), *range(20, 30), *range(33, 40)]  # 10 s missing, then 3 s
    values = [float(s) for s in seconds]
    result = pipeline.analyse(ratings(values, seconds=seconds), {"max_gap_s": 5, "smoothing_s": 1})
    assert result.gaps.rows() == [
        ("D1", 1, "patient", 10, 19, 10, False),
        ("D1", 1, "patient", 30, 32, 3, True),
    ]
    grid = result.series_table()
    assert grid.height == 40
    assert grid.filter(pl.col("second").is_between(10, 19)).get_column("rating").null_count() == 10
    assert grid.filter(pl.col("second").is_between(30, 32)).get_column("rating").to_list() == [30.0, 31.0, 32.0]
    assert grid.filter(~pl.col("observed")).height == 13
    sessions = result.sessions.row(0, named=True)
    assert (sessions["seconds_patient"], sessions["interpolated_patient"]) == (27, 3)


# --- congruence ------------------------------------------------------------------


def test_congruence_and_discrepancy_equal_numpy_on_random_series():
    rng = np.random.default_rng(7)
    frames, expected = [], {}
    for session, n in ((1, 400), (2, 250)):
        x = lfilter([1.0], [1.0, -0.6], rng.normal(0, 1, n))  # autocorrelated (AR(1)), as dial data are
        y = 0.5 * x + lfilter([1.0], [1.0, -0.5], rng.normal(0, 1, n))
        x, y = np.round(x, 3), np.round(y, 3)
        frames += [ratings(x, session=session, rater="patient"), ratings(y, session=session, rater="therapist")]
        expected[session] = (x, y)
    result = pipeline.analyse(pl.concat(frames), {"range": {"min": -1000, "max": 1000}}).sessions
    for row in result.iter_rows(named=True):
        x, y = expected[row["session"]]
        n = x.size
        r = np.corrcoef(x, y)[0, 1]
        assert row["seconds_aligned"] == row["seconds_patient"] == row["seconds_therapist"] == n
        assert row["congruence_r"] == pytest.approx(r, abs=1e-12)
        assert row["discrepancy_mean"] == pytest.approx(np.mean(x - y), abs=1e-12)
        assert row["discrepancy_sd"] == pytest.approx(np.std(x - y, ddof=1), abs=1e-12)
        assert row["congruence_p_naive"] == pytest.approx(stats.pearsonr(x, y).pvalue, rel=1e-9)
        rx, ry = np.corrcoef(x[1:], x[:-1])[0, 1], np.corrcoef(y[1:], y[:-1])[0, 1]
        assert row["autocorr_patient"] == pytest.approx(rx, abs=1e-12)
        ne = n * (1 - rx * ry) / (1 + rx * ry)
        assert row["n_effective"] == pytest.approx(ne, rel=1e-12)
        t = r * np.sqrt((ne - 2) / (1 - r * r))
        assert row["congruence_p"] == pytest.approx(2 * stats.t.sf(abs(t), ne - 2), rel=1e-9)
        assert row["congruence_p"] > row["congruence_p_naive"]
        assert row["note"] is None


def test_effective_n_is_bounded():
    assert effective_n(np.array([100.0]), np.array([0.0]), np.array([0.9])).tolist() == [100.0]
    assert effective_n(np.array([100.0]), np.array([0.5]), np.array([0.5])).tolist() == [60.0]
    assert effective_n(np.array([100.0]), np.array([0.9999]), np.array([0.9999])).tolist() == [3.0]


def test_only_aligned_seconds_count():
    x = ratings([1, 2, 3, 4, 5, 6], rater="patient")
    y = ratings([2, 1, 4, 3], rater="therapist", seconds=[2, 3, 4, 5])
    row = pipeline.analyse(pl.concat([x, y]), {}).sessions.row(0, named=True)
    assert (row["seconds_patient"], row["seconds_therapist"], row["seconds_aligned"]) == (6, 4, 4)
    assert row["congruence_r"] == pytest.approx(np.corrcoef([3, 4, 5, 6], [2, 1, 4, 3])[0, 1])
    assert row["discrepancy_mean"] == pytest.approx(2.0)


def test_single_rater_session_gets_segments_but_no_dyad_statistics():
    values = [20] * 200 + [-10] * 20 + [20] * 200
    both = pl.concat([ratings(values, session=1, rater="patient"), ratings(values, session=2, rater="therapist")])
    result = pipeline.analyse(both, {"smoothing_s": 1})
    rows = result.sessions.select(
        "session", "seconds_patient", "seconds_therapist", "seconds_aligned", "congruence_r", "discrepancy_mean", "note"
    ).rows()
    assert rows == [
        (1, 420, 0, 0, None, None, "only the patient rated this session: no dyad statistics"),
        (2, 0, 420, 0, None, None, "only the therapist rated this session: no dyad statistics"),
    ]
    ruptures = result.segments.filter(pl.col("kind") == "rupture", pl.col("rank") == 1)
    assert ruptures.select("session", "rater", "start_s", "end_s").rows() == [
        (1, "patient", 199, 200),
        (2, "therapist", 199, 200),
    ]


def test_constant_series_has_no_congruence_and_says_why():
    x = ratings([5] * 10, rater="patient")
    y = ratings(list(range(10)), rater="therapist")
    row = pipeline.analyse(pl.concat([x, y]), {}).sessions.row(0, named=True)
    assert row["congruence_r"] is None and row["note"] == "the patient's ratings are constant: congruence is undefined"
    assert row["discrepancy_mean"] == pytest.approx(0.5)


# --- validation ------------------------------------------------------------------

LONG = """dyad_id,session,rater,second,rating
D1,1,patient,0,10
D1,1,patient,1,12.5
D1,1,patient,2.5,10
D1,1,patient,-1,10
D1,1,patient,3,51
D1,1,patient,4,abc
D1,1,client,5,0
D1,1,patient,6,1
D1,1,patient,6,1
D1,1,therapist,7,3
D1,1,therapist,7,4
D1,1,observer,1,0
D 1,1,patient,8,0
D1,x,patient,9,0
D1,1,patient,10
D1,1,patient,11,
"""


def test_validation_rules_and_accounting(tmp_path):
    path = tmp_path / "dial.csv"
    path.write_text(LONG)
    raw, metas = load.read_inputs([{"path": str(path), "layout": "long"}])
    checked = validate_frame(raw, metas)
    assert checked.rejections.select("source_line", "column", "rule").rows() == [
        (4, "second", "second_format"),
        (5, "second", "second_negative"),
        (6, "rating", "rating_range"),
        (7, "rating", "rating_format"),
        (10, "second", "duplicate_exact"),
        (11, "second", "duplicate_second"),
        (12, "second", "duplicate_second"),
        (13, "rater", "rater_unknown"),
        (14, "dyad_id", "id_format"),
        (15, "session", "session_format"),
        (16, None, "field_count"),
        (17, "rating", "missing_value"),
    ]
    assert checked.rejections.columns == [
        "source_file",
        "source_line",
        "column",
        "value",
        "rule",
        "message",
        "dyad_id",
        "session",
        "instrument",
        "source_column",
        "rater",
        "input",
    ]
    assert checked.rejections.filter(pl.col("rule") == "rating_range").get_column("message").to_list() == [
        "'51' is outside the rating range -50 to 50"
    ]
    # 'client' is the patient; 12.5 is a valid rating; the kept copy of second 6
    assert checked.accepted.select("rater", "second", "rating").rows() == [
        ("patient", 0, 10.0),
        ("patient", 1, 12.5),
        ("patient", 5, 0.0),
        ("patient", 6, 1.0),
    ]
    acc = checked.accounting.row(0, named=True)
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"], acc["rows_duplicate"], acc["format"]) == (
        16,
        4,
        12,
        1,
        "dial_long",
    )
    assert acc["sha256"] == atomic.sha256_file(path)


def test_per_file_layout_reads_ids_from_the_file_name(tmp_path):
    (tmp_path / "A7_s02_therapist.csv").write_text("Time,Dial\n0,1\n1,2\n2,x\n")
    (tmp_path / "A7_s02_client.csv").write_text("Time,Dial\n0,3\n1,4\n")
    spec = {"path": str(tmp_path), "layout": "per_file", "time_column": "time", "rating_column": "dial"}
    raw, metas = load.read_inputs([spec])
    checked = validate_frame(raw, metas)
    assert checked.accepted.select("dyad_id", "session", "rater", "second", "rating").rows() == [
        ("A7", 2, "patient", 0, 3.0),
        ("A7", 2, "patient", 1, 4.0),
        ("A7", 2, "therapist", 0, 1.0),
        ("A7", 2, "therapist", 1, 2.0),
    ]
    assert checked.rejections.select("source_line", "rule", "rater").rows() == [(4, "rating_format", "therapist")]
    assert checked.accounting.select("rows_read", "rows_accepted", "rows_rejected").rows() == [(2, 2, 0), (3, 2, 1)]


def test_file_level_problems_name_the_file(tmp_path):
    (tmp_path / "notes.csv").write_text("Time,Dial\n0,1\n")
    with pytest.raises(DyadflowError, match="does not match the pattern"):
        load.read_inputs([{"path": str(tmp_path), "layout": "per_file"}])
    (tmp_path / "notes.csv").unlink()
    (tmp_path / "D1_s01_patient.csv").write_text("Time,Dial\n0,1\n")
    with pytest.raises(DyadflowError, match="required column 'second' missing") as err:
        load.read_inputs([{"path": str(tmp_path), "layout": "per_file"}])
    assert "D1_s01_patient.csv, line 1" in str(err.value)


# --- demo ------------------------------------------------------------------------


def test_bundled_demo_dial_files_equal_the_generator(tmp_path):
    paths = demo.write(tmp_path)
    assert sorted(p.name for p in paths) == sorted(p.name for p in (REPO / "data" / "demo" / "dial").glob("*.csv"))
    for p in paths:
        assert p.read_bytes() == (REPO / "data" / "demo" / "dial" / p.name).read_bytes(), p.name


def test_demo_study_end_to_end(tmp_path):
    out = {k: str(tmp_path / f"{k}.csv") for k in ("sessions", "segments", "gaps", "rejections", "accounting")}
    out["series"] = str(tmp_path / "series.parquet")
    spec = {
        "path": str(REPO / "data" / "demo" / "dial"),
        "layout": "per_file",
        "time_column": "Time (s)",
        "rating_column": "Rating",
    }
    result = pipeline.run([spec], {}, out)
    assert set(result.sessions.select("dyad_id", "session").rows()) == {
        ("D001", 3),
        ("D001", 9),
        ("D002", 5),
        ("D003", 4),
    }
    assert pl.read_csv(out["rejections"]).get_column("rule").to_list() == [
        "rating_range",
        "second_format",
        "duplicate_second",
        "duplicate_second",
    ]
    gaps = pl.read_csv(out["gaps"])
    assert gaps.filter(~pl.col("interpolated")).select("dyad_id", "session", "rater", "from_s", "to_s").rows() == [
        ("D001", 3, "therapist", 1800, 1819)
    ]
    # every planted rupture is found, its onset within 20 s of the planted one (less the
    # 15 s by which the 30 s window anticipates it), and repaired
    ruptures = result.segments.filter(pl.col("kind") == "rupture")
    repaired = result.segments.filter(pl.col("kind") == "repair").select("dyad_id", "session", "rater", "rank")
    raters = result.series_table().select("dyad_id", "session", "rater").unique()
    for dyad, session, onset, change, *_, delay in demo.EVENTS:
        if change > 0:
            continue
        for rater in raters.filter(pl.col("dyad_id") == dyad, pl.col("session") == session).get_column("rater"):
            expected = onset + (delay if rater == "therapist" else 0) - 15
            hit = ruptures.filter(
                pl.col("dyad_id") == dyad,
                pl.col("session") == session,
                pl.col("rater") == rater,
                (pl.col("start_s") - expected).abs() <= 20,
            )
            assert hit.height == 1, (dyad, session, rater, onset)
            assert (
                hit.select("dyad_id", "session", "rater", "rank")
                .join(repaired, on=["dyad_id", "session", "rater", "rank"])
                .height
                == 1
            )
    single = result.sessions.filter(pl.col("dyad_id") == "D003").row(0, named=True)
    assert single["note"] == "only the patient rated this session: no dyad statistics"
    assert result.segments.filter(pl.col("dyad_id") == "D003", pl.col("kind") == "rupture").height == 3


def test_a_dial_file_matched_by_a_folder_and_a_glob_is_read_once_with_a_warning(tmp_path, caplog):
    """Issue 14.7: the same file through two inputs was read twice (AssertionError: accounting does not balance)."""
    (tmp_path / "A7_s02_therapist.csv").write_text("Time,Dial\n0,1\n1,2\n2,x\n")
    (tmp_path / "A7_s02_client.csv").write_text("Time,Dial\n0,3\n1,4\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "B1_s01_patient.csv").write_text("Time,Dial\n0,5\n")
    common = {"layout": "per_file", "time_column": "time", "rating_column": "dial"}
    specs = [
        {"path": str(tmp_path), **common},
        {"path": str(tmp_path / "*_client.csv"), "name": "clients", **common},
        {"path": str(tmp_path / "extra" / "*.csv"), "name": "extra", **common},
    ]
    assert input_files(specs) == [
        str(tmp_path / n) for n in ("A7_s02_client.csv", "A7_s02_therapist.csv", "extra/B1_s01_patient.csv")
    ]
    with caplog.at_level("WARNING", logger="dyadflow"):
        raw, metas = load.read_inputs(specs)
    assert [r.getMessage() for r in caplog.records] == [
        f"dial file {tmp_path / 'A7_s02_client.csv'} is matched by the inputs '{tmp_path}' and 'clients': it is read once, for '{tmp_path}'"
    ]
    checked = validate_frame(raw, metas)
    assert checked.accounting.select("input", "source_file", "rows_read", "rows_accepted", "rows_rejected").rows() == [
        (str(tmp_path), str(tmp_path / "A7_s02_client.csv"), 2, 2, 0),
        (str(tmp_path), str(tmp_path / "A7_s02_therapist.csv"), 3, 2, 1),
        ("extra", str(tmp_path / "extra" / "B1_s01_patient.csv"), 1, 1, 0),
    ]
    assert checked.rejections.select("source_line", "rule", "input").rows() == [(4, "rating_format", str(tmp_path))]
    assert checked.accepted.height == 5


def test_seconds_after_the_session_length_are_rejected_and_the_grid_stays_small(tmp_path):
    """Issue 14.8: a stray second of 20,000,000 made a 1.8 GB grid; 3,000,000,000 a polars traceback."""
    path = tmp_path / "dial.csv"
    path.write_text(
        "dyad_id,session,rater,second,rating\n"
        "D1,1,patient,0,1\n"
        "D1,1,patient,14399,2\n"
        "D1,1,patient,14400,3\n"
        "D1,1,patient,14401,4\n"
        "D1,1,patient,20000000,5\n"
        "D1,1,patient,3000000000,6\n"
        "D1,2,therapist,0,1\n"
        "D1,2,therapist,3,4\n"
    )
    out = {k: str(tmp_path / f"{k}.csv") for k in ("sessions", "segments", "gaps", "rejections", "accounting")}
    out["series"] = str(tmp_path / "series.parquet")
    result = pipeline.run([{"path": str(path)}], {}, out)  # default max_session_s: 14400
    rej = pl.read_csv(out["rejections"])
    assert rej.select("source_line", "column", "value", "rule").rows() == [
        (5, "second", 14401, "second_range"),
        (6, "second", 20000000, "second_range"),
        (7, "second", 3000000000, "second_range"),
    ]
    assert (
        rej.get_column("message")[0]
        == "'14401' is after the end of the session: seconds run 0–14400 (config microprocess.max_session_s)"
    )
    acc = pl.read_csv(out["accounting"])
    assert acc.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (8, 5, 3)
    # the grid follows each series' own rated seconds: 0…14400 and 0…3
    series_rows = (
        pl.read_parquet(out["series"]).group_by("session").agg(pl.len(), pl.col("second").max()).sort("session")
    )
    assert series_rows.rows() == [(1, 14401, 14400), (2, 4, 3)]
    assert result.gaps.select("session", "from_s", "to_s").rows() == [(1, 1, 14398), (2, 1, 2)]


def test_max_session_s_is_configurable_at_its_boundary(tmp_path):
    path = tmp_path / "dial.csv"
    path.write_text("dyad_id,session,rater,second,rating\nD1,1,patient,99,1\nD1,1,patient,100,2\nD1,1,patient,101,3\n")
    raw, metas = load.read_inputs([{"path": str(path)}])
    checked = validate_frame(raw, metas, max_session_s=100)
    assert checked.accepted.get_column("second").to_list() == [99, 100]
    assert checked.rejections.select("source_line", "rule").rows() == [(4, "second_range")]
    assert settings(None)["max_session_s"] == 14400 and settings({"max_session_s": 100})["max_session_s"] == 100


# --- overrides (a researcher confirms or replaces the algorithm's segments) --------

SHORT = [10, 10, 10, 8, 5, 2, 2, 4, 9, 15, 20, 20, 18, 25, 30, 28]


def write_overrides(tmp_path, text):
    path = tmp_path / "overrides.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_overrides_replace_the_algorithms_segments_of_their_kind(tmp_path):
    """Trusty (2023) picked the lows visually; a researcher's marks replace the
    algorithm's segments of that kind for that rater and session, other kinds stay."""
    path = write_overrides(
        tmp_path, "dyad_id,session,rater,kind,start_s,end_s\nD1,1,client,rupture,10,12\nD1,1,patient,rupture,0,3\n"
    )
    both = pl.concat([ratings(SHORT), ratings(SHORT, rater="therapist")])
    seg = pipeline.analyse(both, {**NO_SMOOTHING, "overrides": path}).segments
    patient = (
        seg.filter(pl.col("rater") == "patient")
        .select("kind", "rank", "start_s", "end_s", "clip", "extreme_rating", "source")
        .rows()
    )
    assert patient == [
        # ranked by start; rating at end_s (3: 8, 12: 18); clips end 30 s after end_s, cut at 0 and 15
        ("rupture", 1, 0, 3, "00:00–00:15", 8.0, "manual"),
        ("rupture", 2, 10, 12, "00:00–00:15", 18.0, "manual"),
        ("repair", 1, 9, 10, "00:06–00:15", 20.0, "algorithm"),
        ("repair", 2, 14, 14, "00:12–00:15", 30.0, "algorithm"),
        ("peak", 1, 12, 14, "00:12–00:15", 30.0, "algorithm"),
        ("peak", 2, 0, 0, "00:00–00:15", 10.0, "algorithm"),
    ]
    therapist = seg.filter(pl.col("rater") == "therapist")
    assert set(therapist.get_column("source")) == {"algorithm"} and therapist.height == 6


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ("dyad_id,session,rater,kind,start_s\nD1,1,patient,rupture,1\n", 1, "end_s", "missing: end_s"),
        (
            "dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,rupture,1,3\nD1,1,patient,dip,1,3\n",
            3,
            "kind",
            "kind must be rupture, repair or peak (found 'dip')",
        ),
        ("dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,rupture,1.5,3\n", 2, "start_s", "whole number"),
        (
            "dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,rupture,5,3\n",
            2,
            "end_s",
            "end_s (3) is before start_s (5)",
        ),
        (
            "dyad_id,session,rater,kind,start_s,end_s\nD2,1,patient,rupture,1,3\n",
            2,
            "dyad_id",
            "no accepted dial ratings for dyad D2, session 1, patient",
        ),
        (
            "dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,peak,10,16\n",
            2,
            "end_s",
            "outside the rated seconds 0–15",
        ),
    ],
)
def test_bad_overrides_name_file_line_and_column(tmp_path, text, line, column, words):
    path = write_overrides(tmp_path, text)
    with pytest.raises(DyadflowError) as err:
        pipeline.analyse(ratings(SHORT), {**NO_SMOOTHING, "overrides": path})
    e = err.value
    assert (e.file, e.line, e.column) == (path, line, column) and words in str(e)
