"""Clinician feedback statistics (issue 17): curves, signals, fallback, alliance alerts, calibration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dyadflow.core.errors import DyadflowError
from dyadflow.stats import feedback
from dyadflow.stats.change import ChangeRule

# reliable at |change| >= 5 points; recovered below 10 (lower is better)
RULE = ChangeRule(
    s_diff=5 / 1.96, fixed_points=5.0, cutoff=10.0, criterion="fixed", lower_is_better=True, sd_source="test"
)
RANGES = {"patient": (1.0, 7.0), "therapist": (1.0, 7.0)}

# the benchmark's known trajectory model (bench/ is not a package on the test path)
_spec = importlib.util.spec_from_file_location(
    "feedback_calibration", Path(__file__).resolve().parent.parent / "bench" / "feedback_calibration.py"
)
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
calibration, synthetic_cohort = _bench.calibration, _bench.synthetic_cohort


def _signals(rows: list[tuple], lower_is_better: bool = True) -> list[tuple]:
    """(outcome, change_category, session) with the curves p10 4, p25 8, p50 12, p75 20, p90 24."""
    df = pl.DataFrame(
        {
            "outcome": [float(r[0]) for r in rows],
            "change_category": [r[1] for r in rows],
            "session": [r[2] if len(r) > 2 else 3 for r in rows],
            "intake_session": [1] * len(rows),
        },
        schema_overrides={"change_category": pl.String},
    ).with_columns(
        pl.lit(4.0).alias("expected_p10"),
        pl.lit(8.0).alias("expected_p25"),
        pl.lit(12.0).alias("expected_p50"),
        pl.lit(20.0).alias("expected_p75"),
        pl.lit(24.0).alias("expected_p90"),
    )
    return df.select(feedback.signal_columns(lower_is_better)).rows()


def test_signal_boundaries_lower_is_better():
    # strictly above p90 is red; exactly on p90 is yellow; exactly on p75 is green
    assert _signals(
        [
            (24.01, "unchanged"),
            (24.0, "unchanged"),
            (23.99, "unchanged"),
            (20.01, "unchanged"),
            (20.0, "unchanged"),
            (19.99, "unchanged"),
        ]
    ) == [
        ("red", "above_p90"),
        ("yellow", "p75_to_p90"),
        ("yellow", "p75_to_p90"),
        ("yellow", "p75_to_p90"),
        ("green", "within_expected"),
        ("green", "within_expected"),
    ]


def test_signal_boundaries_higher_is_better_are_mirrored():
    assert _signals(
        [
            (3.99, "unchanged"),
            (4.0, "unchanged"),
            (4.01, "unchanged"),
            (7.99, "unchanged"),
            (8.0, "unchanged"),
            (8.01, "unchanged"),
        ],
        lower_is_better=False,
    ) == [
        ("red", "below_p10"),
        ("yellow", "p10_to_p25"),
        ("yellow", "p10_to_p25"),
        ("yellow", "p10_to_p25"),
        ("green", "within_expected"),
        ("green", "within_expected"),
    ]


def test_signal_precedence():
    assert _signals(
        [
            (15.0, "deteriorated"),  # reliable deterioration, yet below p75: red
            (30.0, "deteriorated"),  # both red rules: deterioration names it
            (30.0, "recovered"),  # recovered outranks the curves
            (22.0, "improved"),  # reliable improvement, but slower than 75 % of similar patients: yellow
            (30.0, "unchanged", 1),  # the intake row: no signal
        ]
    ) == [
        ("red", "reliable_deterioration"),
        ("red", "reliable_deterioration"),
        ("recovered", "recovered"),
        ("yellow", "p75_to_p90"),
        (None, "intake"),
    ]


def _cohort_sessions(rows: list[tuple]) -> pl.DataFrame:
    """A session table from (dyad_id, session, outcome, alliance_patient, alliance_therapist)."""
    return pl.DataFrame(
        {
            "dyad_id": [r[0] for r in rows],
            "session": [r[1] for r in rows],
            "outcome": [r[2] for r in rows],
            "alliance_patient": [r[3] if len(r) > 3 else None for r in rows],
            "alliance_therapist": [r[4] if len(r) > 4 else None for r in rows],
        },
        schema={
            "dyad_id": pl.String,
            "session": pl.Int64,
            "outcome": pl.Float64,
            "alliance_patient": pl.Float64,
            "alliance_therapist": pl.Float64,
        },
    )


EMPTY_RUPTURES = pl.DataFrame(
    schema={
        "dyad_id": pl.String,
        "rater": pl.String,
        "rupture_session": pl.Int64,
        "repair_session": pl.Int64,
        "pre_alliance": pl.Float64,
        "rupture_alliance": pl.Float64,
    }
)


def test_fallback_reliable_change_rule_when_the_fold_is_too_small():
    # four dyads: every training fold has far fewer than 50 dyads, so no curves
    sessions = _cohort_sessions(
        [
            ("A", 1, 20.0),
            ("A", 2, 25.0),
            ("A", 3, 24.9),  # +5 reliable deterioration; +4.9 not reliable
            ("B", 1, 20.0),
            ("B", 2, 9.0),  # −11 reliable, 9 < 10: recovered
            ("C", 1, 20.0),
            ("C", 2, 14.0),  # −6 reliable, 14 >= 10: improved
            ("D", 0, 20.0),
            ("D", 1, 16.0),  # −4: unchanged (intake at session 0)
        ]
    )
    fb = feedback.feedback_table(sessions, sessions, RULE, EMPTY_RUPTURES, RANGES)
    assert fb.columns == feedback.COLUMNS
    assert fb.select("dyad_id", "session", "signal", "signal_rule").rows() == [
        ("A", 1, None, "intake"),
        ("A", 2, "red", "fallback_rci_deterioration"),
        ("A", 3, "green", "fallback_rci_unchanged"),
        ("B", 1, None, "intake"),
        ("B", 2, "recovered", "fallback_rci_recovered"),
        ("C", 1, None, "intake"),
        ("C", 2, "green", "fallback_rci_improved"),
        ("D", 0, None, "intake"),
        ("D", 1, "green", "fallback_rci_unchanged"),
    ]
    assert fb.select(feedback.EXPECTED).null_count().row(0) == (9, 9, 9, 9, 9)
    assert fb.get_column("intake").to_list() == [20.0] * 9
    # no reliable-change rule either (no reliability, no RC value): null with the reason
    no_rci = ChangeRule(None, None, None, "a", True, "none")
    fb = feedback.feedback_table(sessions, sessions, no_rci, EMPTY_RUPTURES, RANGES)
    assert fb.filter(pl.col("dyad_id") == "A").select("signal", "signal_rule").rows()[1] == (
        None,
        "no_curves_no_reliable_change_rule",
    )


def test_folds_are_stable_and_independent_of_the_other_dyads():
    ids = pl.Series(["D001", "D002", "D003", "D004", "D005", "D006"])
    assert feedback.fold_of(ids, 5).tolist() == [4, 0, 3, 2, 0, 3]
    assert feedback.fold_of(ids.reverse(), 5).tolist() == [3, 0, 2, 3, 0, 4]
    assert feedback.fold_of(ids[:1], 5).tolist() == [4]


def test_sample_cap_takes_the_smallest_stable_hashes():
    cands = pl.DataFrame({"dyad_id": ["D001", "D002", "D003", "D004", "D005", "D006"], "log_t": [0.7] * 6})
    assert feedback.training_dyads(cands, 3).to_list() == ["D001", "D006", "D002"]
    assert feedback.training_dyads(cands.reverse(), 3).to_list() == ["D001", "D006", "D002"]
    # a dyad with only its intake does not train the model
    assert sorted(feedback.training_dyads(cands.with_columns(pl.Series("log_t", [0.0] + [0.7] * 5)), 10).to_list()) == [
        "D002",
        "D003",
        "D004",
        "D005",
        "D006",
    ]


def _curves(rows: pl.DataFrame, **cfg) -> pl.DataFrame:
    return feedback.expected_curves(feedback.with_intake(rows), feedback.settings(cfg))


def test_a_dyads_own_data_never_shape_its_curves():
    rows = synthetic_cohort(150, seed=3)
    base = _curves(rows, folds=2)
    target = "S00007"
    fold = base.filter(pl.col("dyad_id") == target).get_column("fold")[0]
    # the target's scores after intake change a lot; its intake (the predictor) stays
    changed = rows.with_columns(
        pl.when((pl.col("dyad_id") == target) & (pl.col("session") > 1))
        .then(pl.col("outcome") + 40)
        .otherwise(pl.col("outcome"))
        .alias("outcome")
    )
    after = _curves(changed, folds=2)
    mine = pl.col("dyad_id") == target
    assert base.filter(mine).select(feedback.EXPECTED).rows() == after.filter(mine).select(feedback.EXPECTED).rows()
    assert base.filter(mine).get_column("expected_p90").null_count() == 0
    # the other fold's dyads, whose model it trains, do change
    other = pl.col("fold") != fold
    assert base.filter(other).select(feedback.EXPECTED).rows() != after.filter(other).select(feedback.EXPECTED).rows()


def test_min_reference_dyads_boundary():
    rows = synthetic_cohort(120, seed=5)
    with_fold = feedback.with_intake(rows).with_columns(
        pl.Series("fold", feedback.fold_of(feedback.with_intake(rows).get_column("dyad_id"), 2))
    )
    # fold 0's curves come from the dyads of fold 1 (all have sessions after intake)
    n_train = with_fold.filter(pl.col("fold") == 1).get_column("dyad_id").n_unique()
    at = _curves(rows, folds=2, min_reference_dyads=n_train)
    assert at.filter(pl.col("fold") == 0).get_column("expected_p50").null_count() == 0
    above = _curves(rows, folds=2, min_reference_dyads=n_train + 1)
    assert (
        above.filter(pl.col("fold") == 0).get_column("expected_p50").null_count()
        == above.filter(pl.col("fold") == 0).height
    )
    # the intake row: every curve is the intake itself
    intake_rows = at.filter((pl.col("fold") == 0) & (pl.col("log_t") == 0))
    assert intake_rows.select(
        (pl.col("expected_p10") == pl.col("intake")).all(), (pl.col("expected_p90") == pl.col("intake")).all()
    ).row(0) == (True, True)
    # curves never cross
    post = at.filter(pl.col("log_t") > 0)
    assert post.select(
        (pl.col("expected_p10") <= pl.col("expected_p25")).all()
        & (pl.col("expected_p75") <= pl.col("expected_p90")).all()
    ).item()


def test_reference_cohort_gives_every_dyad_curves(tmp_path):
    ref = synthetic_cohort(80, seed=11)
    study = synthetic_cohort(3, seed=12)
    scores = ref.select("dyad_id", "session", pl.lit("bdi_ii").alias("instrument"), pl.col("outcome").alias("score"))
    scores.write_csv(tmp_path / "questionnaires.csv")
    reference = feedback.read_reference(str(tmp_path / "questionnaires.csv"), "bdi_ii")
    assert reference.height == ref.height
    out = feedback.expected_curves(feedback.with_intake(study), feedback.settings({}), reference)
    assert out.get_column("fold").null_count() == out.height
    assert out.get_column("expected_p90").null_count() == 0
    # too small a reference: no curves
    small = feedback.expected_curves(
        feedback.with_intake(study), feedback.settings({"min_reference_dyads": 81}), reference
    )
    assert small.get_column("expected_p90").null_count() == small.height
    scores.drop("score").write_csv(tmp_path / "bad.csv")
    with pytest.raises(DyadflowError) as err:
        feedback.read_reference(str(tmp_path / "bad.csv"), "bdi_ii")
    assert str(err.value) == (
        f"{tmp_path / 'bad.csv'}, column 'score': the feedback reference scores table has no such column "
        "(it must be an earlier run's results/scores/questionnaires.parquet or .csv)"
    )


def _alerts(sessions: pl.DataFrame, rup: pl.DataFrame = EMPTY_RUPTURES, ranges=RANGES, sd: float = 1.0) -> list[tuple]:
    rows = sessions.select("dyad_id", "session")
    return (
        feedback.alliance_alerts(rows, sessions, rup, ranges, sd, 3)
        .sort("dyad_id", "session")
        .select("dyad_id", "session", "alliance_alert", "alliance_alert_reason")
        .rows()
    )


def test_alliance_drop_below_own_mean_boundary():
    # earlier ratings 3, 5, 7: mean 5, SD 2; 1 SD below is 3
    sessions = _cohort_sessions(
        [
            *[(d, s, 10.0, v, 6.5) for d in ("AT", "JA", "JB") for s, v in ((1, 3.0), (2, 5.0), (3, 7.0))],
            ("AT", 4, 10.0, 3.0, 6.5),  # exactly 1 SD below: no alert
            ("JA", 4, 10.0, 2.99, 6.5),  # just more: alert
            ("JB", 4, 10.0, 3.01, 6.5),  # just less: no alert
        ]
    )
    out = {(d, s): (a, r) for d, s, a, r in _alerts(sessions)}
    assert out[("AT", 4)] == (False, None)
    assert out[("JB", 4)] == (False, None)
    assert out[("JA", 4)] == (
        True,
        "patient: latest rating 2.99 more than 1 SD below the earlier mean 5.0 (SD 2.0, 3 earlier ratings)",
    )
    # with only one earlier rating there is no SD: no alert however large the drop
    assert out[("JA", 2)] == (False, None)
    # two earlier ratings are not enough either (their SD is no person's SD); three are (JA, 4 above)
    two = _cohort_sessions(
        [
            ("K", 1, 10.0, 4.0, 6.5),
            ("K", 2, 10.0, 4.02, 6.5),
            ("K", 3, 10.0, 1.0, 6.5),
            ("K", 4, 10.0, 4.0, 6.5),
            ("K", 5, 10.0, 1.5, 6.5),
        ]
    )
    alerts = {(d, s): (a, r) for d, s, a, r in _alerts(two)}
    assert alerts[("K", 3)] == (False, None)
    assert alerts[("K", 5)][0] is True and alerts[("K", 5)][1].endswith("(SD 1.5, 4 earlier ratings)")
    # alliance_sd 0.5: 3.0 is now more than 0.5 SD below
    assert {(d, s): a for d, s, a, _ in _alerts(sessions, sd=0.5)}[("AT", 4)] is True


def test_alliance_both_raters_in_the_lower_half():
    ranges = {"patient": (1.0, 5.0), "therapist": (1.0, 7.0)}
    sessions = _cohort_sessions(
        [
            ("A", 1, 10.0, 3.0, 3.98),  # patient exactly 0.5: not the lower half
            ("B", 1, 10.0, 2.96, 3.98),  # 0.49 and 0.4967: both in the lower half
            ("C", 1, 10.0, 2.96, None),  # one rater only
            ("D", 1, 10.0, None, None),
            ("E", 1, 10.0, 3.04, 3.98),  # 0.51
        ]
    )
    assert _alerts(sessions, ranges=ranges) == [
        ("A", 1, False, None),
        ("B", 1, True, "both raters in the lower half of the 0-1 scale (patient 0.49, therapist 0.5)"),
        ("C", 1, False, None),
        ("D", 1, None, "no alliance rating up to this session"),
        ("E", 1, False, None),
    ]


def test_alliance_unrepaired_rupture_within_its_window():
    therapist = {
        "R": [6.0, 3.5, 3.5, 6.0, 6.0, 6.0, 6.0],
        "U": [6.0, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5],
        # P: a peak at 6, then back to about the usual level (5.4 against an earlier mean of 5.25)
        "P": [5.0, 5.0, 5.0, 6.0, 5.4, 5.4, 5.4],
    }
    sessions = _cohort_sessions([(d, s, 10.0, None, v[s - 3]) for d, v in therapist.items() for s in range(3, 10)])
    rup = pl.DataFrame(
        {
            "dyad_id": ["R", "U", "P"],
            "rater": ["therapist"] * 3,
            "rupture_session": [4, 4, 7],
            "repair_session": [6, None, None],
            "pre_alliance": [6.0, 6.0, 6.0],
            "rupture_alliance": [3.5, 3.5, 5.4],
        },
        schema_overrides={"repair_session": pl.Int64},
    )
    out = {(d, s): a for d, s, a, _ in _alerts(sessions, rup)}
    # a fall from a one-off peak back to the usual level: no alert
    assert [out[("P", s)] for s in range(3, 10)] == [False] * 7
    # repaired at 6: alert at 4 and 5 only
    assert [out[("R", s)] for s in range(3, 10)] == [False, True, True, False, False, False, False]
    # never repaired: alert from 4 to the end of the repair window, 4 + 3
    assert [out[("U", s)] for s in range(3, 10)] == [False, True, True, True, True, False, False]
    reasons = {(d, s): r for d, s, _, r in _alerts(sessions, rup)}
    assert reasons[("U", 7)] == "therapist: unrepaired rupture at session 4 (6.0 → 3.5)"


def test_dyads_table_carries_the_latest_signal_alert_and_risk():
    fb = pl.DataFrame(
        {
            "dyad_id": ["A", "A", "B"],
            "session": [1, 2, 1],
            "signal": [None, "green", None],
            "signal_rule": ["intake", "within_expected", "intake"],
            "alliance_alert": [True, False, None],
        },
        schema_overrides={"signal": pl.String, "alliance_alert": pl.Boolean},
    )
    scores = pl.DataFrame(
        {"dyad_id": ["A", "A", "A", "B"], "session": [1, 2, 3, 1], "risk_flag": [False, None, True, None]},
        schema_overrides={"risk_flag": pl.Boolean},
    )
    dyads = pl.DataFrame({"dyad_id": ["A", "B"]})
    # A: a green latest signal, and a risk item at its latest session (3, after the last outcome) for the report's override
    assert feedback.dyad_latest(dyads, fb, scores).rows() == [
        ("A", "green", "within_expected", False, True, 3),
        ("B", None, "intake", None, None, None),
    ]


def test_calibration_on_a_synthetic_cohort():
    res = calibration(synthetic_cohort(600, seed=2))
    assert res["observations"] > 4000
    assert 0.05 <= res["above_p90"] <= 0.15
    assert 0.18 <= res["above_p75"] <= 0.32


def test_the_stats_stage_writes_the_feedback_table_and_the_dyads_columns(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_stats_cohort import ALLIANCE, _tiny_study

    from dyadflow import stats
    from dyadflow.core.registry import load_registry

    names = ("sessions", "dyads", "dyads_csv", "sudden_gains", "ruptures", "cohort", "feedback", "feedback_csv")
    out = {k: str(tmp_path / f"{k}.x") for k in names}
    src = tmp_path / "scores.parquet"
    _tiny_study().write_parquet(src)
    res = stats.run(str(src), load_registry(), "bdi_ii", ALLIANCE, {}, out)
    # three dyads: too few for curves, so the reliable-change fallback. BDI-II r = 0.93 with the
    # sample's pre SD (30, 25, 22): reliable from 2.96 points, recovered below the cut-off 13.5
    fb = pl.read_parquet(out["feedback"])
    assert fb.columns == feedback.COLUMNS and pl.read_csv(out["feedback_csv"]).columns == feedback.COLUMNS
    assert fb.select("dyad_id", "session", "outcome", "signal", "signal_rule", "alliance_alert").rows() == [
        ("D1", 0, 30.0, None, "intake", None),
        ("D1", 1, 28.0, "green", "fallback_rci_unchanged", False),  # −2
        ("D1", 2, 27.0, "green", "fallback_rci_improved", False),  # −3
        ("D1", 3, 20.0, "green", "fallback_rci_improved", True),
        ("D1", 4, 18.0, "green", "fallback_rci_improved", False),
        ("D1", 5, 15.0, "green", "fallback_rci_improved", False),
        ("D1", 6, 12.0, "recovered", "fallback_rci_recovered", False),  # 12 < 13.5
        ("D2", 0, 25.0, None, "intake", None),
        ("D3", 2, 22.0, None, "intake", False),
    ]
    # therapist 5, 6 then 4: only 2 earlier ratings, so no drop alert (their SD is no person's SD); a rupture
    # (6 → 4 is at least 1.5 of the series' SD 0.98), repaired at session 4 (6 again), so unrepaired at
    # session 3, where 4 is below the earlier mean 5.5
    assert fb.row(3, named=True)["alliance_alert_reason"] == "therapist: unrepaired rupture at session 3 (6.0 → 4.0)"
    assert fb.get_column("alliance_alert_reason")[0] == "no alliance rating up to this session"
    assert res.dyads.columns == stats.DYAD_COLUMNS
    assert res.dyads.select("dyad_id", "signal", "signal_rule", "alliance_alert").rows() == [
        ("D1", "recovered", "fallback_rci_recovered", False),
        ("D2", None, "intake", None),
        ("D3", None, "intake", False),
    ]
    first = {k: Path(v).read_bytes() for k, v in out.items()}
    stats.run(str(src), load_registry(), "bdi_ii", ALLIANCE, {}, out)
    assert {k: Path(v).read_bytes() for k, v in out.items()} == first


def test_config_schema_declares_the_feedback_defaults_and_rejects_typos():
    import jsonschema
    import yaml

    schema = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "dyadflow" / "schemas" / "config.schema.yaml").read_text(
            encoding="utf-8"
        )
    )
    props = schema["properties"]["feedback"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == feedback.settings(None)
    assert all(v.get("description") for v in props.values())
    part = {"type": "object", "properties": {"feedback": schema["properties"]["feedback"]}}
    jsonschema.validate({"feedback": {"folds": 5, "reference": "old/questionnaires.parquet"}}, part)
    with pytest.raises(jsonschema.ValidationError, match="'fold' was unexpected"):
        jsonschema.validate({"feedback": {"fold": 5}}, part)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"feedback": {"folds": 1}}, part)


@pytest.mark.e2e
def test_workflow_writes_feedback_and_declares_the_reference(tmp_path, demo_built):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_workflow import make_study, snakemake

    from dyadflow import stats

    # the first run is the shared demo build (the demo study and config/config.yaml, read only)
    first, second = demo_built, tmp_path / "second"
    second.mkdir()
    cfg = first / "study.yaml"
    out = first / "results" / "stats"
    assert pl.read_csv(out / "feedback.csv", infer_schema=False).columns == feedback.COLUMNS
    assert pl.read_csv(out / "dyads.csv", infer_schema=False).columns == stats.DYAD_COLUMNS
    fb = pl.read_parquet(out / "feedback.parquet")
    # the demo's 80 dyads: every training fold has at least 50, so cross-fitted curves for all
    assert fb.get_column("fold").null_count() == 0 and fb.get_column("expected_p90").null_count() == 0
    # an earlier run's scores table as the reference: a declared input, one model for all
    reference = first / "results" / "scores" / "questionnaires.parquet"
    cfg2 = make_study(second, cfg.read_text() + f"\nfeedback:\n  reference: {reference}\n")
    proc = snakemake(second, "results/stats/feedback.csv", "--cores", "2", "--configfile", str(cfg2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    fb2 = pl.read_parquet(second / "results" / "stats" / "feedback.parquet")
    assert fb2.get_column("fold").null_count() == fb2.height and fb2.get_column("expected_p90").null_count() == 0
    dry = snakemake(second, "results/stats/feedback.csv", "-n", "-f", "--cores", "1", "--configfile", str(cfg2))
    stats_job = dry.stdout.split("rule stats:")[1].split("output:")[0]
    assert str(reference) in stats_job


def test_training_rows_cap_boundary_takes_a_stable_hash_sample():
    train = pl.DataFrame({"dyad_id": ["D001"] * 3 + ["D002"] * 3, "session": [1, 2, 3] * 2, "log_t": [0.7] * 6})
    # at the cap and above it: every row, unchanged
    assert feedback.training_rows(train, 6).equals(train)
    assert feedback.training_rows(train, 7).equals(train)
    # one below: the 5 rows with the smallest salted hashes, in their original order, whatever the row order
    five = feedback.training_rows(train, 5).select("dyad_id", "session").rows()
    assert len(five) == 5 and len(set(five)) == 5
    assert five == sorted(five)
    assert sorted(feedback.training_rows(train.reverse(), 5).select("dyad_id", "session").rows()) == five
    # a smaller cap keeps a subset of the larger cap's rows (the smallest hashes)
    two = feedback.training_rows(train, 2).select("dyad_id", "session").rows()
    assert len(two) == 2 and set(two) <= set(five)


def test_max_training_rows_caps_the_rows_each_model_is_fitted_on():
    rows = synthetic_cohort(150, seed=3)
    full = _curves(rows, folds=2)
    capped = _curves(rows, folds=2, max_training_rows=200)
    assert full.select(feedback.EXPECTED).rows() != capped.select(feedback.EXPECTED).rows()
    # fold 0's model is the one fitted on the 200 sampled rows of fold 1's training dyads
    wi = feedback.with_intake(rows)
    wi = wi.with_columns(pl.Series("fold", feedback.fold_of(wi.get_column("dyad_id"), 2)))
    train = wi.filter((pl.col("fold") == 1) & (pl.col("log_t") > 0))
    params = feedback.fit_quantiles(feedback.training_rows(train, 200))
    fold0 = capped.filter((pl.col("fold") == 0) & (pl.col("log_t") > 0))
    want = np.sort(feedback.design(fold0) @ params.T, axis=1)
    assert np.allclose(fold0.select(feedback.EXPECTED).to_numpy(), want)
    # a cap at or above the training rows changes nothing
    n_rows = max(wi.filter((pl.col("fold") == k) & (pl.col("log_t") > 0)).height for k in (0, 1))
    assert _curves(rows, folds=2, max_training_rows=n_rows).equals(full)
