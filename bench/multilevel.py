"""Benchmark: the multilevel alliance → next-session outcome model (stats.multilevel).

    .venv/bin/python bench/multilevel.py --dyads 10000 --therapists 20 --sessions 12

Builds a synthetic session table with numpy (dyads spread evenly over therapists, a
known within-person effect of alliance on next-session outcome and a different
between-person effect), then times ``dyadflow.stats.multilevel.run`` (prepare + fit),
and prints the wall time, the peak RSS, the load average and the estimates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dyadflow.stats import multilevel


def synthetic(
    n_dyads: int, n_therapists: int, n_sessions: int, within: float = -0.4, between: float = 0.3, seed: int = 1
):
    """(sessions, dyads): alliance(t) = person mean + noise; outcome(t+1) from both parts."""
    rng = np.random.default_rng(seed)
    d = np.repeat(np.arange(n_dyads), n_sessions)
    s = np.tile(np.arange(1, n_sessions + 1), n_dyads)
    ther = np.arange(n_dyads) % n_therapists
    mu = rng.normal(0, 0.6, n_dyads)
    alliance = mu[d] + rng.normal(0, 1, d.size)
    u_t = rng.normal(0, 0.5, n_therapists)[ther]
    u_d = rng.normal(0, 1.0, n_dyads)
    slope = within + rng.normal(0, 0.1, n_dyads)
    nxt = 10 + u_t[d] + u_d[d] + slope[d] * (alliance - mu[d]) + between * mu[d] + rng.normal(0, 1, d.size)
    # outcome of session t+1 is nxt of session t; the first session's outcome is the dyad's level
    first = s == 1
    outcome = np.where(
        first, 10 + u_t[d] + u_d[d] + between * mu[d] + rng.normal(0, 1, d.size), np.r_[np.nan, nxt[:-1]]
    )
    last = s == n_sessions
    ids = np.char.add("D", np.char.zfill(np.arange(n_dyads).astype(str), 6))
    sessions = pl.DataFrame(
        {
            "dyad_id": ids[d],
            "session": s.astype(np.int32),
            "alliance_composite": alliance,
            "outcome": outcome,
            "outcome_next": np.where(last, np.nan, nxt),
            "outcome_next_session": np.where(last, -1, s + 1).astype(np.int32),
        }
    ).with_columns(
        pl.col("outcome_next").fill_nan(None),
        pl.col("outcome").fill_nan(None),
        pl.when(pl.col("outcome_next_session") > 0).then(pl.col("outcome_next_session")).alias("outcome_next_session"),
    )
    dyads = pl.DataFrame(
        {
            "dyad_id": ids,
            "patient_id": np.char.add("P", np.char.zfill(np.arange(n_dyads).astype(str), 6)),
            "therapist_id": np.char.add("T", np.char.zfill(ther.astype(str), 3)),
        }
    )
    return sessions, dyads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, default=10000)
    ap.add_argument("--therapists", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--detrend", action="store_true")
    a = ap.parse_args()
    sessions, dyads = synthetic(a.dyads, a.therapists, a.sessions)
    t0 = time.perf_counter()
    res = multilevel.run(sessions, dyads, {"detrend": a.detrend})
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                k: res[k]
                for k in (
                    "n_observations",
                    "n_dyads",
                    "n_therapists",
                    "converged",
                    "message",
                    "fixed_effects",
                    "variance_components",
                )
            },
            indent=1,
        )
    )
    print(
        f"dyads {a.dyads}, therapists {a.therapists}, sessions {a.sessions}: multilevel.run {wall:.1f} s, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
