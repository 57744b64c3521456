"""Benchmark: calibration of the cross-fitted expected recovery curves (issue 17).

    PYTHONPATH=. .venv/bin/python bench/feedback_calibration.py --dyads 2000

Generates a synthetic cohort from a known trajectory model (below), fits the curves as
the stats stage does (``dyadflow.stats.feedback.expected_curves``: 5 folds, each dyad's
curves from the other folds) and prints the share of the post-intake observations above
the 90th- and 75th-percentile curves (targets 7–13 % and 21–29 %), below the 10th and
25th, and the run time. ``tests/test_stats_feedback.py`` asserts the same on 600 dyads
with a wider tolerance.

The trajectory model (lower is better, a BDI-like scale): intake_i ~ N(24, 7); 3–15
sessions after intake (uniform, independent of the outcome); at t sessions after intake,
L = log(t + 1),

    y_it = intake_i + (−5 − 0.1·(intake_i − 24))·L + (2 + 2.5·L)·(ρ·u_i + √(1 − ρ²)·e_it)

with u_i, e_it ~ N(0, 1) and ρ = 0.5 (a dyad's observations are correlated). Given the
intake and t, y is normal with mean and SD linear in [1, intake, L, intake·L], so every
conditional quantile is linear in them too: the fitted model is correctly specified, and
a well-calibrated fit puts 10 % of the observations above its 90th-percentile curve.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dyadflow.stats import feedback


def synthetic_cohort(n_dyads: int, seed: int = 17, rho: float = 0.5) -> pl.DataFrame:
    """dyad_id, session, outcome from the trajectory model above (intake at session 1)."""
    rng = np.random.default_rng(seed)
    intake = rng.normal(24.0, 7.0, n_dyads)
    n_post = rng.integers(3, 16, n_dyads)  # 3..15 sessions after intake
    u = rng.normal(size=n_dyads)
    dyad = np.repeat(np.arange(n_dyads), n_post + 1)
    start = np.r_[0, np.cumsum(n_post + 1)[:-1]]
    t = np.arange(dyad.size) - np.repeat(start, n_post + 1)  # 0 at intake
    lt = np.log(t + 1.0)
    noise = rho * u[dyad] + np.sqrt(1 - rho**2) * rng.normal(size=dyad.size)
    y = intake[dyad] + (-5.0 - 0.1 * (intake[dyad] - 24.0)) * lt + (2.0 + 2.5 * lt) * noise
    y = np.where(t == 0, intake[dyad], y)
    return pl.DataFrame(
        {
            "dyad_id": pl.Series([f"S{i:05d}" for i in range(n_dyads)])[dyad],
            "session": (t + 1).astype(np.int64),
            "outcome": y,
        }
    )


def calibration(rows: pl.DataFrame, cfg: dict | None = None) -> dict:
    """Shares of the post-intake observations beyond each curve, with the fit's run time."""
    t0 = time.perf_counter()
    fitted = feedback.expected_curves(feedback.with_intake(rows), feedback.settings(cfg))
    seconds = time.perf_counter() - t0
    post = fitted.filter((pl.col("log_t") > 0) & pl.col("expected_p90").is_not_null())
    shares = post.select(
        (pl.col("outcome") > pl.col("expected_p90")).mean().alias("above_p90"),
        (pl.col("outcome") > pl.col("expected_p75")).mean().alias("above_p75"),
        (pl.col("outcome") < pl.col("expected_p25")).mean().alias("below_p25"),
        (pl.col("outcome") < pl.col("expected_p10")).mean().alias("below_p10"),
    ).row(0, named=True)
    return {**shares, "observations": post.height, "dyads": rows.get_column("dyad_id").n_unique(), "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dyads", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    res = calibration(synthetic_cohort(args.dyads, args.seed))
    print(f"dyads {res['dyads']}, post-intake observations {res['observations']}")
    print(f"above p90: {100 * res['above_p90']:.1f} % (target 7-13 %)")
    print(f"above p75: {100 * res['above_p75']:.1f} % (target 21-29 %)")
    print(f"below p25: {100 * res['below_p25']:.1f} %, below p10: {100 * res['below_p10']:.1f} %")
    print(f"curves (5 folds x 5 quantiles, statsmodels QuantReg, incl. its import): {res['seconds']:.1f} s")


if __name__ == "__main__":
    main()
