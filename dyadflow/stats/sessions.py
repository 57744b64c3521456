"""The session table: one row per dyad × session, with within-dyad z-scores and detrending.

Every computation runs over all dyads at once (polars joins, batched numpy in
:mod:`dyadflow.stats.grouped`); nothing loops over dyads in Python.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.stats import grouped

DYAD = "dyad_id"
SERIES = ["alliance_patient", "alliance_therapist", "alliance_composite", "outcome"]
SESSION_COLUMNS = [
    "dyad_id",
    "session",
    "date",
    "alliance_patient",
    "alliance_therapist",
    "alliance_composite",
    "outcome",
    "outcome_next",
    "alliance_patient_z",
    "alliance_therapist_z",
    "alliance_composite_z",
    "outcome_z",
    "outcome_next_z",
    "alliance_patient_dt",
    "alliance_therapist_dt",
    "alliance_composite_dt",
    "outcome_dt",
    "outcome_next_dt",
    "outcome_next_session",
]


def session_table(
    scores: pl.DataFrame,
    outcome: str,
    alliance: dict[str, str],
    max_gap: int = 1,
    composite: str = "mean",
    ranges: dict[str, tuple[float, float]] | None = None,
) -> pl.DataFrame:
    """One row per dyad × session in the scores.

    ``alliance_composite`` is the mean of the two raters' scores (Ekeblad et al. 2022);
    with ``composite="pomp"`` (the pipeline's default) the mean after putting each score on
    0–1 with its instrument's response range, ``ranges[rater] = (min, max)`` from the
    registry ((x − min)/(max − min), "percent of maximum possible"), so that 1–5 and 1–7
    scales weigh alike; with ``composite="z_mean"`` the mean of their within-dyad z-scores.
    It is null when either rater's score is missing. ``outcome_next``
    is the outcome of the next session with an observed outcome, when it is at most
    ``max_gap`` sessions later. ``_z`` columns are within-dyad z-scores; ``_dt`` columns are
    the residuals of a within-dyad regression on session number, z-scored within dyad.
    The ``outcome_next_*`` columns are the next session's ``outcome``, ``outcome_z`` and
    ``outcome_dt``.
    """
    wanted = {
        "alliance_patient": (pl.col("instrument") == alliance["patient"]) & (pl.col("rater") == "patient"),
        "alliance_therapist": (pl.col("instrument") == alliance["therapist"]) & (pl.col("rater") == "therapist"),
        "outcome": pl.col("instrument") == outcome,
    }
    # Sorting is cheap when the scores come sorted from the score stage; then every
    # dyad × session is a run of rows, aggregated with bincount / reduceat.
    rows = scores.select(
        DYAD,
        "session",
        pl.col("date").cast(pl.Int32).alias("_day"),
        pl.col("score").cast(pl.Float64),
        *[c.alias(n) for n, c in wanted.items()],
    )
    rows = grouped.sort_by(rows, DYAD, "session")
    k, n_keys = grouped.group_index(rows, DYAD, "session")
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if k.size else np.zeros(0, dtype=np.int64)
    day = rows.get_column("_day").fill_null(np.iinfo(np.int32).max).to_numpy()
    first_day = np.minimum.reduceat(day, starts) if starts.size else day[:0]
    score = grouped.values(rows, "score")
    t = rows[starts].select(
        DYAD,
        "session",
        pl.Series("date", first_day).replace(np.iinfo(np.int32).max, None).cast(pl.Date),
        *[
            grouped.column(
                name,
                grouped.group_mean(
                    np.where(rows.get_column(name).fill_null(False).to_numpy(), score, np.nan), k, n_keys
                )[0],
            )
            for name in wanted
        ],
    )
    g, n_groups = grouped.group_index(t, DYAD)
    session = grouped.values(t, "session")
    raw = {c: grouped.values(t, c) for c in ("alliance_patient", "alliance_therapist", "outcome")}
    z = {c: grouped.zscore(v, g, n_groups) for c, v in raw.items()}
    # Both raters are needed: one rater's score alone is on another scale (1-5 vs 1-7).
    if composite == "pomp":
        if ranges is None:
            raise ValueError("composite='pomp' needs the raters' instrument ranges")
        src = {
            r: (raw[r] - ranges[k][0]) / (ranges[k][1] - ranges[k][0])
            for k, r in (("patient", "alliance_patient"), ("therapist", "alliance_therapist"))
        }
    else:
        src = z if composite == "z_mean" else raw
    raw["alliance_composite"] = (src["alliance_patient"] + src["alliance_therapist"]) / 2
    z["alliance_composite"] = grouped.zscore(raw["alliance_composite"], g, n_groups)
    dt = {c: grouped.zscore(grouped.detrend(raw[c], session, g, n_groups), g, n_groups) for c in SERIES}
    t = t.with_columns(
        grouped.column("alliance_composite", raw["alliance_composite"]),
        *[grouped.column(f"{c}_z", z[c]) for c in SERIES],
        *[grouped.column(f"{c}_dt", dt[c]) for c in SERIES],
    )
    # the next observed outcome of the same dyad, when at most max_gap sessions later
    has = np.flatnonzero(~np.isnan(raw["outcome"]))
    go = g[has]
    this = session[has]
    following = grouped.group_shift(this, go, -1)
    with np.errstate(invalid="ignore"):
        close = following - this <= max_gap

    def spread(v: np.ndarray) -> np.ndarray:
        full = np.full(t.height, np.nan)
        full[has] = np.where(close, v, np.nan)
        return full

    t = t.with_columns(
        pl.Series("outcome_next_session", spread(following)).fill_nan(None).cast(t.schema["session"]),
        *[
            grouped.column(c.replace("outcome", "outcome_next"), spread(grouped.group_shift(v[has], go, -1)))
            for c, v in (("outcome", raw["outcome"]), ("outcome_z", z["outcome"]), ("outcome_dt", dt["outcome"]))
        ],
    )
    return t.select(SESSION_COLUMNS)


def missed_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """dyad_id, missed_sessions: per dyad, the treatment sessions between 1 and its last
    session with no data at all, as text ("2, 4"); dyads without a gap have no row."""
    seen = sessions.filter(pl.col("session") >= 1).select(DYAD, pl.col("session").cast(pl.Int64))
    last = seen.group_by(DYAD).agg(pl.col("session").max().alias("last"))
    expected = last.with_columns(pl.int_ranges(1, pl.col("last") + 1).alias("session")).explode("session").drop("last")
    return (
        expected.join(seen, on=[DYAD, "session"], how="anti")
        .group_by(DYAD)
        .agg(pl.col("session").sort().cast(pl.String).str.join(", ").alias("missed_sessions"))
    )
