"""The session table: one row per dyad × session, with within-dyad z-scores and detrending.

Every expression runs over all dyads at once (``over("dyad_id")``); nothing loops over
dyads in Python.
"""

from __future__ import annotations

import polars as pl

DYAD = "dyad_id"
SERIES = ["alliance_patient", "alliance_therapist", "alliance_composite", "outcome"]
SESSION_COLUMNS = [
    "dyad_id", "session", "date",
    "alliance_patient", "alliance_therapist", "alliance_composite", "outcome", "outcome_next",
    "alliance_patient_z", "alliance_therapist_z", "alliance_composite_z", "outcome_z", "outcome_next_z",
    "alliance_patient_dt", "alliance_therapist_dt", "alliance_composite_dt", "outcome_dt", "outcome_next_dt",
    "outcome_next_session",
]


def zscore(expr: pl.Expr, by: str = DYAD) -> pl.Expr:
    """Within-group z-score (group mean, group SD with ddof 1); null when the SD is 0 or undefined."""
    sd = expr.std().over(by)
    return pl.when(sd > 0).then((expr - expr.mean().over(by)) / sd)


def detrend(expr: pl.Expr, x: str = "session", by: str = DYAD) -> pl.Expr:
    """Residual of a within-group OLS regression of ``expr`` on ``x`` (null where ``expr`` is null).

    With fewer than two distinct ``x`` values the slope is undefined and the residual is
    the deviation from the group mean.
    """
    s = pl.when(expr.is_not_null()).then(pl.col(x).cast(pl.Float64))
    s_c = s - s.mean().over(by)
    y_c = expr - expr.mean().over(by)
    sxx = (s_c * s_c).sum().over(by)
    slope = pl.when(sxx > 0).then((s_c * y_c).sum().over(by) / sxx).otherwise(0.0)
    return y_c - slope * s_c


def session_table(
    scores: pl.DataFrame,
    outcome: str,
    alliance: dict[str, str],
    max_gap: int = 1,
    composite: str = "mean",
) -> pl.DataFrame:
    """One row per dyad × session in the scores.

    ``alliance_composite`` is the mean of the two raters' scores (Ekeblad et al. 2022) or,
    with ``composite="z_mean"``, the mean of their within-dyad z-scores; it is null when
    either rater's score is missing. ``outcome_next``
    is the outcome of the next session with an observed outcome, when it is at most
    ``max_gap`` sessions later. ``_z`` columns are within-dyad z-scores; ``_dt`` columns are
    the residuals of a within-dyad regression on session number, z-scored within dyad.
    The ``outcome_next_*`` columns are the next session's ``outcome``, ``outcome_z`` and
    ``outcome_dt``.
    """
    scored = scores.filter(pl.col("score").is_not_null())
    base = scores.group_by(DYAD, "session").agg(pl.col("date").min())
    wanted = {
        "alliance_patient": (alliance["patient"], "patient"),
        "alliance_therapist": (alliance["therapist"], "therapist"),
        "outcome": (outcome, None),
    }
    for name, (instrument, rater) in wanted.items():
        sel = scored.filter(pl.col("instrument") == instrument)
        if rater:
            sel = sel.filter(pl.col("rater") == rater)
        part = sel.group_by(DYAD, "session").agg(pl.col("score").cast(pl.Float64).mean().alias(name))
        base = base.join(part, on=[DYAD, "session"], how="left")
    t = base.sort(DYAD, "session").with_columns(
        zscore(pl.col(c)).alias(f"{c}_z") for c in ("alliance_patient", "alliance_therapist", "outcome")
    )
    # Both raters are needed: one rater's score alone is on another scale (1-5 vs 1-7).
    pair = ("alliance_patient_z", "alliance_therapist_z") if composite == "z_mean" else ("alliance_patient", "alliance_therapist")
    comp = (pl.col(pair[0]) + pl.col(pair[1])) / 2
    t = t.with_columns(comp.alias("alliance_composite")).with_columns(
        zscore(pl.col("alliance_composite")).alias("alliance_composite_z"),
        *[detrend(pl.col(c)).alias(f"_{c}_res") for c in SERIES],
    ).with_columns(zscore(pl.col(f"_{c}_res")).alias(f"{c}_dt") for c in SERIES)
    nxt = (
        t.filter(pl.col("outcome").is_not_null())
        .select(
            DYAD,
            "session",
            pl.col("session").shift(-1).over(DYAD).alias("outcome_next_session"),
            *[pl.col(c).shift(-1).over(DYAD).alias(c.replace("outcome", "outcome_next")) for c in ("outcome", "outcome_z", "outcome_dt")],
        )
        .filter(pl.col("outcome_next_session") - pl.col("session") <= max_gap)
    )
    return t.join(nxt, on=[DYAD, "session"], how="left").sort(DYAD, "session").select(SESSION_COLUMNS)
