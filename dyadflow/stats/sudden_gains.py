"""Sudden gains and losses (Tang & DeRubeis 1999), as the R package suddengains does it.

Between sessions n (pregain) and n+1 (postgain), both observed:

1. the change in the better direction is at least ``cutoff`` points (the instrument's
   reliable-change value by default; a fixed value such as 7 BDI-II points from config);
2. it is at least ``pct`` (25 %) of the pregain score;
3. mean(n−2..n) − mean(n+1..n+3) (signed in the better direction) exceeds
   ``t_crit · pooled SD``, where t_crit is the two-tailed t critical value at α .05
   with df = n_pre + n_post − 2 (2.776 for 3 + 3 values), over the observed values
   among up to three sessions each side. With fewer than two values on a side there
   is no decision (the candidate is counted as undecided, not as a gain).

Sessions are consecutive session numbers: a missing session is not bridged (no gain
between 4 and 6 when 5 is missing, and 5 is simply absent from a window).

A gain is ``reversed`` when any later score is worse than the postgain score by more
than half the gain. Sudden losses are the mirror image (change in the worse direction;
reversed when a later score is better than the postloss score by more than half the
loss). ``magnitude`` is always positive: the size of the change.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from dyadflow.stats import grouped

DYAD = "dyad_id"
COLUMNS = [
    "dyad_id",
    "kind",
    "pregain_session",
    "postgain_session",
    "pregain_score",
    "postgain_score",
    "magnitude",
    "reversed",
]


def empty(session_dtype=pl.Int32) -> tuple[pl.DataFrame, pl.DataFrame]:
    """No gains table and no counts (when there is no cut-off)."""
    gains = pl.DataFrame(
        schema={
            "dyad_id": pl.String,
            "kind": pl.String,
            "pregain_session": session_dtype,
            "postgain_session": session_dtype,
            "pregain_score": pl.Float64,
            "postgain_score": pl.Float64,
            "magnitude": pl.Float64,
            "reversed": pl.Boolean,
        }
    )
    counts = pl.DataFrame(
        schema={"dyad_id": pl.String, "n_sudden_gains": pl.Int32, "n_sudden_losses": pl.Int32, "_undecided": pl.Int32}
    )
    return gains, counts


def t_critical(df: int, alpha: float = 0.05) -> float:
    """Two-tailed critical t value."""
    return float(sps.t.ppf(1 - alpha / 2, df))


def dense_series(
    sessions: pl.DataFrame, value: str = "outcome"
) -> tuple[pl.Series, np.ndarray, np.ndarray, np.ndarray]:
    """Every session number from each dyad's first to last observed value, missing ones NaN.

    Returns (dyad ids, group index of each grid row, session of each grid row, values),
    built with numpy from the observed rows (sorted by dyad and session).
    """
    obs = grouped.sort_by(sessions.filter(pl.col(value).is_not_null()).select(DYAD, "session", value), DYAD, "session")
    g, n = grouped.group_index(obs, DYAD)
    sess = obs.get_column("session").to_numpy().astype(np.int64)
    if not n:
        return obs.get_column(DYAD), g, sess, sess.astype(np.float64)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size] - 1
    lo, length = sess[starts], sess[ends] - sess[starts] + 1
    offset = np.r_[0, np.cumsum(length)[:-1]]
    gd = np.repeat(np.arange(n), length)
    sd = lo[gd] + np.arange(gd.size) - offset[gd]
    y = np.full(gd.size, np.nan)
    y[offset[g] + sess - lo[g]] = obs.get_column(value).cast(pl.Float64).to_numpy()
    return obs.get_column(DYAD).gather(starts), gd, sd, y


def _window(y: np.ndarray, g: np.ndarray, shifts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, sum of squared deviations) of the observed values at these row shifts."""
    vals = np.vstack([grouped.group_shift(y, g, k) for k in shifts])
    ok = ~np.isnan(vals)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, vals, 0.0).sum(axis=0) / n
    ss = np.where(ok, (vals - mean) ** 2, 0.0).sum(axis=0)
    return n, mean, ss


def candidates(
    sessions: pl.DataFrame,
    cutoff: float,
    lower_is_better: bool,
    pct: float = 0.25,
    alpha: float = 0.05,
    criterion3: bool = True,
) -> pl.DataFrame:
    """Every session pair meeting criteria 1 and 2, with the criterion-3 decision (null = none)."""
    sign = 1.0 if lower_is_better else -1.0
    ids, g, grid_session, y = dense_series(sessions)
    stype = sessions.schema["session"]
    post = grouped.group_shift(y, g, -1)
    n_pre, m_pre, ss_pre = _window(y, g, [2, 1, 0])
    n_post, m_post, ss_post = _window(y, g, [-1, -2, -3])
    dfree = n_pre + n_post - 2
    crit = np.full(y.size, np.nan)
    for df in (2, 3, 4):  # the three possible degrees of freedom, not dyads
        crit[dfree == df] = t_critical(df, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.sqrt((ss_pre + ss_post) / dfree)
    decidable = (n_pre >= 2) & (n_post >= 2)
    better = sign * (y - post)  # > 0: improvement
    mean_better = sign * (m_pre - m_post)
    out = []
    for kind, s in (("gain", 1.0), ("loss", -1.0)):
        mag = s * better
        with np.errstate(invalid="ignore"):
            hit = (mag >= cutoff) & (mag >= pct * np.abs(y))  # False where y or post is NaN
            c3 = s * mean_better > crit * pooled
        decision = np.where(decidable, c3, False) if criterion3 else np.ones(y.size, dtype=bool)
        idx = np.flatnonzero(hit)
        out.append(
            pl.DataFrame(
                {
                    DYAD: ids.gather(g[idx]),
                    "kind": pl.Series([kind] * idx.size, dtype=pl.String),
                    "pregain_session": pl.Series(grid_session[idx]).cast(stype),
                    "postgain_session": pl.Series(grid_session[idx] + 1).cast(stype),
                    "pregain_score": pl.Series(y[idx], dtype=pl.Float64),
                    "postgain_score": pl.Series(post[idx], dtype=pl.Float64),
                    "magnitude": pl.Series(mag[idx], dtype=pl.Float64),
                    "decision": pl.Series(decision[idx], dtype=pl.Boolean),
                    "n_pre": n_pre[idx].astype(np.int32),
                    "n_post": n_post[idx].astype(np.int32),
                }
            ).with_columns(
                pl.when(pl.lit(not criterion3) | pl.Series(decidable[idx], dtype=pl.Boolean))
                .then(pl.col("decision"))
                .alias("decision")
            )
        )
    return pl.concat(out).select(
        DYAD,
        "kind",
        "pregain_session",
        "postgain_session",
        "pregain_score",
        "postgain_score",
        "magnitude",
        "decision",
        "n_pre",
        "n_post",
    )


def sudden_gains(
    sessions: pl.DataFrame,
    cutoff: float,
    lower_is_better: bool,
    pct: float = 0.25,
    alpha: float = 0.05,
    criterion3: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(gains table, per-dyad counts). Gains and losses where all three criteria hold."""
    sign = 1.0 if lower_is_better else -1.0
    cand = candidates(sessions, cutoff, lower_is_better, pct, alpha, criterion3)
    found = cand.filter(pl.col("decision").fill_null(False)).with_row_index("_gid")
    later = sessions.filter(pl.col("outcome").is_not_null()).select(
        DYAD, pl.col("session").alias("_s"), pl.col("outcome").cast(pl.Float64).alias("_y")
    )
    s = pl.when(pl.col("kind") == "gain").then(sign).otherwise(-sign)
    worse_by = s * (pl.col("_y") - pl.col("postgain_score"))  # > 0: back towards the pregain side
    rev = (
        found.join(later, on=DYAD, how="inner")
        .filter((pl.col("_s") > pl.col("postgain_session")) & (worse_by > 0.5 * pl.col("magnitude")))
        .select("_gid")
        .unique()
    )
    gains = (
        found.with_columns(pl.col("_gid").is_in(rev.get_column("_gid").implode()).alias("reversed"))
        .sort(DYAD, "pregain_session", "kind")
        .select(COLUMNS)
    )
    counts = cand.group_by(DYAD).agg(
        ((pl.col("kind") == "gain") & pl.col("decision").fill_null(False)).sum().cast(pl.Int32).alias("n_sudden_gains"),
        ((pl.col("kind") == "loss") & pl.col("decision").fill_null(False))
        .sum()
        .cast(pl.Int32)
        .alias("n_sudden_losses"),
        pl.col("decision").is_null().sum().cast(pl.Int32).alias("_undecided"),
    )
    return gains, counts


def dyad_counts(dyads: pl.DataFrame, counts: pl.DataFrame, has_cutoff: bool) -> pl.DataFrame:
    """Per dyad: counts (0 when none) and a note about undecided candidates or a missing cut-off."""
    out = (
        dyads.select(DYAD)
        .join(counts, on=DYAD, how="left")
        .with_columns(pl.col("n_sudden_gains", "n_sudden_losses", "_undecided").fill_null(0))
    )
    if not has_cutoff:
        return out.with_columns(
            pl.lit(None, dtype=pl.Int32).alias("n_sudden_gains"),
            pl.lit(None, dtype=pl.Int32).alias("n_sudden_losses"),
            pl.lit(
                "sudden gains: no cut-off (no reliable-change value in the instrument file and too few pre scores for a sample SD; set stats.sudden_gains.cutoff)"
            ).alias("_note_sg"),
        ).drop("_undecided")
    return out.with_columns(
        pl.when(pl.col("_undecided") > 0)
        .then(
            pl.format(
                "sudden gains: {} candidate(s) without a decision (fewer than 2 values on a side)", pl.col("_undecided")
            )
        )
        .alias("_note_sg")
    ).drop("_undecided")
