"""Session-level rupture–repair sequences in each rater's alliance series.

These are dyadflow's own defaults, not a published standard (session-level rupture
markers in the literature vary; see the README):

- a **rupture** at session s: the alliance dropped from the previous observed session by
  at least ``sd_multiplier`` (1.5) × the dyad's own SD of that rater's alliance
  (all its rated sessions, ddof 1);
- it is **repaired** at the first session within ``repair_window`` (3) sessions after s
  (s+1 … s+3, by session number) where the alliance is back to at least the pre-drop
  level.
"""

from __future__ import annotations

import polars as pl

DYAD = "dyad_id"
COLUMNS = ["dyad_id", "rater", "pre_session", "rupture_session", "repair_session", "pre_alliance", "rupture_alliance", "drop", "repaired"]


def long_alliance(sessions: pl.DataFrame) -> pl.DataFrame:
    """dyad_id, rater, session, value: the observed alliance scores of both raters."""
    parts = [
        sessions.select(DYAD, pl.lit(rater).alias("rater"), "session", pl.col(f"alliance_{rater}").cast(pl.Float64).alias("value"))
        for rater in ("patient", "therapist")
    ]
    return pl.concat(parts).drop_nulls("value").sort(DYAD, "rater", "session")


def ruptures(sessions: pl.DataFrame, sd_multiplier: float = 1.5, repair_window: int = 3) -> pl.DataFrame:
    """One row per rupture (both raters), with its repair if any."""
    series = long_alliance(sessions)
    key = [DYAD, "rater"]
    drops = (
        series.with_columns(
            pl.col("value").std().over(key).alias("_sd"),
            pl.col("session").shift(1).over(key).alias("pre_session"),
            pl.col("value").shift(1).over(key).alias("pre_alliance"),
        )
        .with_columns((pl.col("pre_alliance") - pl.col("value")).alias("drop"))
        .filter((pl.col("_sd") > 0) & (pl.col("drop") >= sd_multiplier * pl.col("_sd")))
        .select(*key, "pre_session", pl.col("session").alias("rupture_session"), "pre_alliance", pl.col("value").alias("rupture_alliance"), "drop")
    )
    repairs = (
        drops.join(series, on=key, how="inner")
        .filter(
            (pl.col("session") > pl.col("rupture_session"))
            & (pl.col("session") <= pl.col("rupture_session") + repair_window)
            & (pl.col("value") >= pl.col("pre_alliance"))
        )
        .group_by(*key, "rupture_session")
        .agg(pl.col("session").min().alias("repair_session"))
    )
    return (
        drops.join(repairs, on=[*key, "rupture_session"], how="left")
        .with_columns(pl.col("repair_session").is_not_null().alias("repaired"))
        .sort(DYAD, "rater", "rupture_session")
        .select(COLUMNS)
    )


def dyad_counts(dyads: pl.DataFrame, rup: pl.DataFrame) -> pl.DataFrame:
    counts = rup.group_by(DYAD).agg(
        pl.len().cast(pl.Int32).alias("n_ruptures"),
        pl.col("repaired").sum().cast(pl.Int32).alias("n_rupture_repairs"),
    )
    return dyads.select(DYAD).join(counts, on=DYAD, how="left").with_columns(pl.col("n_ruptures", "n_rupture_repairs").fill_null(0))
