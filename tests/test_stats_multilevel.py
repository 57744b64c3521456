"""The multilevel lagged alliance → next-session outcome model (dyadflow.stats.multilevel)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from dyadflow.stats import multilevel

WITHIN, BETWEEN = -0.4, 0.3


def cohort(n_dyads=200, n_therapists=20, n_sessions=10, seed=7, trend=0.0):
    """A synthetic cohort: alliance(t) = person mean + noise (+ trend · session);
    outcome(t+1) = levels + WITHIN · (alliance(t) − person mean) + BETWEEN · person mean + noise
    (+ trend · session in both series, which a detrended model removes)."""
    rng = np.random.default_rng(seed)
    d = np.repeat(np.arange(n_dyads), n_sessions)
    s = np.tile(np.arange(1, n_sessions + 1), n_dyads)
    ther = np.arange(n_dyads) % n_therapists
    mu = rng.normal(0, 1.0, n_dyads)
    dev = rng.normal(0, 1, d.size)
    alliance = mu[d] + dev + trend * s
    level = 10 + rng.normal(0, 0.5, n_therapists)[ther][d] + rng.normal(0, 0.5, n_dyads)[d]
    nxt = (
        level
        + (WITHIN + rng.normal(0, 0.05, n_dyads)[d]) * dev
        + BETWEEN * mu[d]
        + rng.normal(0, 1, d.size)
        - 2 * trend * (s + 1)
    )
    outcome = np.where(s == 1, level + BETWEEN * mu[d] - 2 * trend + rng.normal(0, 1, d.size), np.r_[np.nan, nxt[:-1]])
    last = s == n_sessions
    ids = np.array([f"D{i:04d}" for i in range(n_dyads)])
    sessions = pl.DataFrame(
        {
            "dyad_id": ids[d],
            "session": s.astype(np.int32),
            "alliance_composite": alliance,
            "outcome": outcome,
            "outcome_next_session": np.where(last, -1, s + 1).astype(np.int32),
        }
    ).with_columns(
        pl.col("outcome").fill_nan(None),
        pl.when(pl.col("outcome_next_session") > 0).then(pl.col("outcome_next_session")).alias("outcome_next_session"),
    )
    dyads = pl.DataFrame(
        {
            "dyad_id": ids,
            "patient_id": [f"P{i:04d}" for i in range(n_dyads)],
            "therapist_id": [f"T{t:02d}" for t in ther],
        }
    )
    return sessions, dyads


def test_prepare_person_mean_centring_and_detrending_by_hand():
    sessions = pl.DataFrame(
        {
            "dyad_id": ["D1"] * 4,
            "session": [1, 2, 3, 4],
            "alliance_composite": [1.0, 2.0, 3.0, 5.0],
            "outcome": [10.0, 8.0, 8.0, 6.0],
            "outcome_next_session": [2, 3, 4, None],
        }
    )
    dyads = pl.DataFrame({"dyad_id": ["D1"], "patient_id": ["P1"], "therapist_id": ["T1"]})
    rows = multilevel.prepare(sessions, dyads)
    # person mean 11/4 = 2.75; the last session has no next outcome
    assert rows.get_column("alliance_between").to_list() == [2.75] * 3
    assert rows.get_column("alliance_within").to_list() == [-1.75, -0.75, 0.25]
    assert rows.get_column("outcome_next").to_list() == [8.0, 8.0, 6.0]
    assert rows.get_column("outcome_within").to_list() == [2.0, 0.0, 0.0]  # outcome mean 8
    dt = multilevel.prepare(sessions, dyads, detrend=True)
    # session centred −1.5, −0.5, 0.5, 1.5 (Sxx = 5); alliance deviations −1.75, −0.75, 0.25, 2.25:
    # Sxy = 2.625 + 0.375 + 0.125 + 3.375 = 6.5, slope 1.3; residuals 0.2, −0.1, −0.4 (, 0.3)
    assert dt.get_column("alliance_within").round(10).to_list() == [0.2, -0.1, -0.4]
    assert dt.get_column("alliance_between").to_list() == [2.75] * 3
    # outcome deviations 2, 0, 0, −2: Sxy = −3 − 3 = −6, slope −1.2; residuals 0.2, −0.6, 0.6, −0.2;
    # outcome_next on the outcome's scale = residual of the next session + mean 8
    assert dt.get_column("outcome_next").round(10).to_list() == [7.4, 8.6, 7.8]
    assert dt.get_column("outcome_within").round(10).to_list() == [0.2, -0.6, 0.6]


def test_recovers_known_within_effect_in_therapists():
    sessions, dyads = cohort()
    res = multilevel.run(sessions, dyads)
    assert res["therapist_level"] is True
    assert res["converged"] is True
    # statsmodels warns that the MLE may be on the boundary (the small slope variance): noted, not a failure
    assert res["message"] == "a variance component is estimated at or near zero (the boundary of the parameter space)"
    assert (res["n_dyads"], res["n_patients"], res["n_therapists"], res["n_observations"]) == (200, 200, 20, 1800)
    w = res["fixed_effects"]["alliance_within"]
    b = res["fixed_effects"]["alliance_between"]
    assert w["estimate"] < 0 and w["ci_low"] <= WITHIN <= w["ci_high"] and w["ci_high"] < 0
    assert b["ci_low"] <= BETWEEN <= b["ci_high"] and b["ci_low"] > 0
    # the two parts differ as constructed: the between CI excludes the within effect and vice versa
    assert not (b["ci_low"] <= WITHIN <= b["ci_high"]) and not (w["ci_low"] <= BETWEEN <= w["ci_high"])
    vc = res["variance_components"]
    assert set(vc) == {"residual", "therapist_intercept", "dyad_intercept", "dyad_slope"}
    assert vc["residual"] == pytest.approx(1.0, abs=0.15)
    assert res["terms"] == ["alliance_within", "alliance_between", "outcome_within"]
    assert res["options"]["covariate_outcome"] is True


def test_detrending_removes_a_shared_trend():
    # both series trend over sessions: without detrending the trend confounds the within effect
    sessions, dyads = cohort(n_dyads=120, n_therapists=12, trend=0.3, seed=3)
    plain = multilevel.run(sessions, dyads, {"covariate_outcome": False})
    dt = multilevel.run(sessions, dyads, {"covariate_outcome": False, "detrend": True})
    w_plain, w_dt = plain["fixed_effects"]["alliance_within"], dt["fixed_effects"]["alliance_within"]
    assert not (w_plain["ci_low"] <= WITHIN <= w_plain["ci_high"])
    assert w_dt["ci_low"] <= WITHIN <= w_dt["ci_high"]
    assert dt["options"]["detrend"] is True and dt["terms"] == ["alliance_within", "alliance_between"]


def test_one_therapist_fits_without_the_therapist_level():
    sessions, dyads = cohort(n_dyads=40, n_therapists=1)
    res = multilevel.run(sessions, dyads)
    assert res["therapist_level"] is False
    assert res["message"] == "fitted without the therapist level: 1 therapist(s), the therapist level needs at least 2"
    assert set(res["variance_components"]) == {"residual", "dyad_intercept", "dyad_slope", "dyad_intercept_slope_cov"}
    assert res["fixed_effects"]["alliance_within"]["estimate"] < 0


def test_more_dyads_than_max_nested_fits_dyads_as_groups():
    sessions, dyads = cohort(n_dyads=40, n_therapists=4)
    res = multilevel.run(sessions, dyads, {"max_nested_dyads": 39})
    assert res["therapist_level"] is False
    assert res["message"].startswith(
        "fitted without the therapist level: 40 dyads, more than stats.multilevel.max_nested_dyads (39)"
    )
    at = multilevel.run(sessions, dyads, {"max_nested_dyads": 40})
    assert at["therapist_level"] is True


def test_too_few_observations_is_not_fitted_with_a_message():
    sessions, dyads = cohort(n_dyads=2, n_therapists=2, n_sessions=11)  # 2 dyads × 10 pairs = 20
    at = multilevel.run(sessions, dyads, {"min_observations": 20})
    assert "not fitted" not in (at["message"] or "")
    below = multilevel.run(sessions, dyads, {"min_observations": 21})
    assert below["converged"] is False and below["fixed_effects"] == {}
    assert below["message"] == (
        "not fitted: 20 observation(s) in 2 dyad(s) with at least 2 session pairs; the model needs 21 observations and 2 such dyads"
    )


def test_no_within_variation_is_not_fitted():
    sessions, dyads = cohort(n_dyads=10, n_therapists=2)
    flat = sessions.with_columns(pl.lit(3.0).alias("alliance_composite"))
    res = multilevel.run(flat, dyads)
    assert res["converged"] is False
    assert res["message"] == "not fitted: alliance has no within-dyad variation"


def test_convergence_warning_gives_the_clear_message(monkeypatch):
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    original = MixedLM.fit

    def warn_then_fit(self, *args, **kwargs):
        warnings.warn("Gradient optimization failed, |grad| = 26.9", ConvergenceWarning, stacklevel=2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", warn_then_fit)
    sessions, dyads = cohort(n_dyads=40, n_therapists=4)
    res = multilevel.run(sessions, dyads)
    assert res["converged"] is False
    assert res["message"] == (
        "the model did not converge (Gradient optimization failed, |grad| = 26.9): the estimates are not reliable"
    )
    assert res["fixed_effects"]["alliance_within"]["estimate"] is not None  # reported, flagged
