"""The within-dyad lagged regression equals statsmodels OLS; the pooled FE model too."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from stats_helpers import sessions

from dyadflow.stats.lagged import lagged, pooled_within, within_ols


def random_sessions(seed=7, n_dyads=40, n_sessions=12):
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(n_dyads):  # building the fixture only
        n = int(rng.integers(4, n_sessions + 1))
        keep = rng.random(n) > 0.2  # missing sessions
        s = np.arange(1, n + 1)[keep]
        x = rng.normal(size=s.size)
        y = 0.5 * x + rng.normal(size=s.size)
        cov = rng.normal(size=s.size)
        y[rng.random(s.size) < 0.1] = np.nan  # missing outcome next
        frames.append(
            pl.DataFrame(
                {"dyad_id": f"D{d:03d}", "session": s, "alliance_composite_z": x, "outcome_next_z": y, "outcome_z": cov}
            )
        )
    return pl.concat(frames).with_columns(pl.col("outcome_next_z").fill_nan(None))


@pytest.mark.parametrize("covariate", [False, True])
def test_equals_statsmodels_per_dyad(covariate):
    s = random_sessions()
    xs = ["alliance_composite_z"] + (["outcome_z"] if covariate else [])
    got = {r["dyad_id"]: r for r in lagged(s, covariate_outcome=covariate).iter_rows(named=True)}
    checked = 0
    for (dyad,), g in s.drop_nulls().partition_by("dyad_id", as_dict=True).items():  # reference loop (test only)
        r = got[dyad]
        assert r["lag_n"] == g.height
        if g.height < len(xs) + 2:
            assert r["lag_b"] is None and r["_note_lag"].startswith("lag:")
            continue
        fit = sm.OLS(g.get_column("outcome_next_z").to_numpy(), sm.add_constant(g.select(xs).to_numpy())).fit()
        assert r["lag_b"] == pytest.approx(fit.params[1], abs=1e-8)
        assert r["lag_se"] == pytest.approx(fit.bse[1], abs=1e-8)
        assert r["lag_t"] == pytest.approx(fit.tvalues[1], abs=1e-8)
        assert r["lag_p"] == pytest.approx(fit.pvalues[1], abs=1e-8)
        checked += 1
    assert checked > 30


def test_hand_computed_simple_regression():
    s = sessions(
        {"D1": {"session": [1, 2, 3, 4], "alliance_composite_z": [0, 1, 2, 3], "outcome_next_z": [1, 3, 2, 5]}}
    )
    r = lagged(s).row(0, named=True)
    # Sxx = 5, Sxy = (-1.5)(-1.75) + (-.5)(.25) + (.5)(-.75) + (1.5)(2.25) = 5.5 -> b = 1.1
    # fitted: 1.1 + 1.1 x -> residuals -.1, .8, -1.3, .6 -> RSS 2.7, sigma2 1.35, se sqrt(1.35/5)
    assert r["lag_b"] == pytest.approx(1.1)
    assert r["lag_se"] == pytest.approx(np.sqrt(1.35 / 5))
    assert r["lag_t"] == pytest.approx(1.1 / np.sqrt(0.27))
    assert r["lag_n"] == 4 and r["_note_lag"] is None


def test_too_few_pairs_and_no_variance_give_reasons():
    s = sessions(
        {
            "D1": {"session": [1, 2], "alliance_composite_z": [0, 1], "outcome_next_z": [1, 2]},
            "D2": {"session": [1, 2, 3], "alliance_composite_z": [1, 1, 1], "outcome_next_z": [1, 2, 4]},
            "D3": {"session": [1], "alliance_composite_z": [None], "outcome_next_z": [None]},
        }
    )
    out = {r["dyad_id"]: r for r in lagged(s).iter_rows(named=True)}
    assert out["D1"]["lag_b"] is None and out["D1"]["_note_lag"] == "lag: 2 complete session pair(s), needs 3"
    assert (
        out["D2"]["lag_b"] is None and out["D2"]["_note_lag"] == "lag: no within-dyad variance in alliance or outcome"
    )
    assert out["D3"]["lag_n"] == 0 and out["D3"]["lag_p"] is None


def test_detrended_option_uses_dt_columns():
    s = sessions(
        {"D1": {"session": [1, 2, 3, 4], "alliance_composite_dt": [0, 1, 2, 3], "outcome_next_dt": [1, 3, 2, 5]}}
    )
    assert lagged(s, detrend=True).row(0, named=True)["lag_b"] == pytest.approx(1.1)
    assert lagged(s).row(0, named=True)["lag_b"] is None


def test_pooled_fixed_effects_equals_statsmodels_cluster():
    s = random_sessions(seed=3).drop_nulls()
    got = pooled_within(s, "outcome_next_z", ["alliance_composite_z", "outcome_z"])
    dm = s.with_columns(
        (pl.col(c) - pl.col(c).mean().over("dyad_id")) for c in ("outcome_next_z", "alliance_composite_z", "outcome_z")
    )
    dm = dm.filter(pl.len().over("dyad_id") >= 2)
    groups = dm.get_column("dyad_id").rank("dense").to_numpy()
    fit = sm.OLS(
        dm.get_column("outcome_next_z").to_numpy(), dm.select("alliance_composite_z", "outcome_z").to_numpy()
    ).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    assert got["b"] == pytest.approx(fit.params[0], abs=1e-10)
    assert got["se"] == pytest.approx(fit.bse[0], abs=1e-10)
    assert got["t"] == pytest.approx(fit.tvalues[0], abs=1e-10)
    assert got["p"] == pytest.approx(fit.pvalues[0], abs=1e-10)
    assert got["n_obs"] == dm.height and got["n_dyads"] == dm.get_column("dyad_id").n_unique()


def test_within_ols_is_independent_of_row_order():
    s = random_sessions(seed=11)
    a = within_ols(s, "outcome_next_z", ["alliance_composite_z"]).sort("dyad_id")
    b = within_ols(s.sample(fraction=1.0, shuffle=True, seed=1), "outcome_next_z", ["alliance_composite_z"]).sort(
        "dyad_id"
    )
    assert np.allclose(a.get_column("b").fill_null(0).to_numpy(), b.get_column("b").fill_null(0).to_numpy(), atol=1e-12)
    assert a.get_column("n").to_list() == b.get_column("n").to_list()
