"""Session-level rupture–repair sequences in each rater's alliance series.

These are dyadflow's own defaults, not a published standard (session-level rupture
markers in the literature vary; see the docs):

- a **rupture** at session s: the alliance dropped from the previous observed session by
  at least ``sd_multiplier`` (1.5) × the dyad's own SD of that rater's alliance
  (all its rated sessions, ddof 1);
- it is **repaired** at the first session within ``repair_window`` (3) sessions after s
  (s+1 … s+3, by session number) where the alliance is back to at least the pre-drop
  level.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.contract import columns
from dyadflow.stats import grouped
from dyadflow.stats.contract import RupturesModel

DYAD = "dyad_id"
# ruptures.csv: the columns and types are the contract dyadflow.stats.contract.RupturesModel
COLUMNS = columns(RupturesModel)


def ruptures(sessions: pl.DataFrame, sd_multiplier: float = 1.5, repair_window: int = 3) -> pl.DataFrame:
    """One row per rupture (both raters), with its repair if any."""
    ordered = grouped.sort_by(sessions, DYAD, "session")
    parts = [_rater_ruptures(ordered, rater, sd_multiplier, repair_window) for rater in ("patient", "therapist")]
    return pl.concat(parts).sort(DYAD, "rater", "rupture_session").select(COLUMNS)


def _rater_ruptures(sessions: pl.DataFrame, rater: str, sd_multiplier: float, repair_window: int) -> pl.DataFrame:
    series = sessions.select(
        DYAD, pl.lit(rater).alias("rater"), "session", pl.col(f"alliance_{rater}").cast(pl.Float64).alias("value")
    ).drop_nulls("value")
    g, n_groups = grouped.group_index(series, DYAD)
    value = grouped.values(series, "value")
    session = grouped.values(series, "session")
    m, n = grouped.group_mean(value, g, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(grouped.group_sum((value - m[g]) ** 2, g, n_groups) / (n - 1))[g]
    pre_value = grouped.group_shift(value, g, 1)
    pre_session = grouped.group_shift(session, g, 1)
    drop = pre_value - value
    with np.errstate(invalid="ignore"):
        is_rupture = (sd > 0) & (drop >= sd_multiplier * sd)
    # the first later observed session within the window back at the pre-drop level:
    # at most repair_window rows ahead, since sessions are distinct and increasing
    repair = np.full(value.size, np.nan)
    for k in range(repair_window, 0, -1):  # the window's sessions (3 by default), not dyads
        later_value = grouped.group_shift(value, g, -k)
        later_session = grouped.group_shift(session, g, -k)
        with np.errstate(invalid="ignore"):
            ok = (later_session <= session + repair_window) & (later_value >= pre_value)
        repair = np.where(ok, later_session, repair)
    idx = np.flatnonzero(is_rupture)
    stype = series.schema["session"]
    return (
        series[idx]
        .select(DYAD, "rater", pl.col("session").alias("rupture_session"), pl.col("value").alias("rupture_alliance"))
        .with_columns(
            pl.Series("pre_session", pre_session[idx]).cast(stype),
            pl.Series("repair_session", repair[idx]).fill_nan(None).cast(stype),
            pl.Series("pre_alliance", pre_value[idx]),
            pl.Series("drop", drop[idx]),
        )
        .with_columns(pl.col("repair_session").is_not_null().alias("repaired"))
        .select(COLUMNS)
    )


def dyad_counts(dyads: pl.DataFrame, rup: pl.DataFrame) -> pl.DataFrame:
    counts = rup.group_by(DYAD).agg(
        pl.len().cast(pl.Int32).alias("n_ruptures"),
        pl.col("repaired").sum().cast(pl.Int32).alias("n_rupture_repairs"),
    )
    return (
        dyads.select(DYAD)
        .join(counts, on=DYAD, how="left")
        .with_columns(pl.col("n_ruptures", "n_rupture_repairs").fill_null(0))
    )
