"""Cohort-level results for ``results/stats/cohort.json``.

- the pooled within-person effect of alliance(t) on outcome(t+1), a dyad fixed-effects
  (demeaned) regression with dyad-clustered SE, on the within-dyad z-scores ("raw") and
  on the detrended z-scores ("detrended") — Falkenström et al. 2013, 2017;
- internal consistency per instrument, as the score stage computed it
  (:mod:`dyadflow.score.reliability`: Cronbach's α on the keyed items; McDonald's ω null);
- completeness per instrument and session: dyads with a scored questionnaire / dyads;
- change categories per arm; flow counts from questionnaires to analysed dyads; dyads and
  sessions attended per arm (``arms``, the cohort report's flow table).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.score.reliability import OMEGA_NOTE
from dyadflow.stats import grouped
from dyadflow.stats.lagged import lag_columns, pooled_within


def reliability(table: pl.DataFrame, instruments: list[str]) -> dict:
    """{instrument: {alpha, omega, n, k, note}} of ``instruments``, from the score stage's
    reliability table (:mod:`dyadflow.score.reliability`); an instrument it lacks has no alpha."""
    rows = {r["instrument"]: r for r in table.to_dicts()}
    empty = {"alpha": None, "omega": None, "n": 0, "k": 0, "note": OMEGA_NOTE}
    return {key: {k: rows.get(key, empty)[k] for k in empty} for key in sorted(instruments)}


def completeness(scores: pl.DataFrame, instruments: list[str]) -> list[dict]:
    """Per instrument and session: dyads with a scored questionnaire out of all dyads."""
    n_dyads = scores.select(pl.col("dyad_id").n_unique()).item()
    sessions = scores.select(pl.col("session").unique().sort())
    grid = pl.DataFrame({"instrument": sorted(instruments)}).join(sessions, how="cross")
    # each dyad counts once per instrument and session (several raters may fill one in)
    rows = grouped.sort_by(
        scores.filter(pl.col("score").is_not_null() & pl.col("instrument").is_in(instruments)).select(
            "dyad_id", "session", "instrument"
        ),
        "dyad_id",
        "session",
        "instrument",
    )
    g, _ = grouped.group_index(rows, "dyad_id", "session", "instrument")
    first = np.r_[True, g[1:] != g[:-1]] if g.size else np.zeros(0, dtype=bool)
    observed = (
        rows.filter(pl.Series(first, dtype=pl.Boolean))
        .group_by("instrument", "session")
        .agg(pl.len().alias("n_observed"))
    )
    table = (
        grid.join(observed, on=["instrument", "session"], how="left")
        .with_columns(pl.col("n_observed").fill_null(0), pl.lit(n_dyads).alias("n_dyads"))
        .with_columns((pl.col("n_observed") / pl.col("n_dyads")).round(6).alias("fraction"))
        .sort("instrument", "session")
        .select("instrument", "session", "n_dyads", "n_observed", "fraction")
    )
    return table.to_dicts()


def categories_by_arm(dyads: pl.DataFrame) -> dict:
    counts = (
        dyads.with_columns(pl.col("arm").fill_null("(none)"), pl.col("change_category").fill_null("not computed"))
        .group_by("arm", "change_category")
        .len()
        .sort("arm", "change_category")
    )
    out: dict[str, dict[str, int]] = {}
    for arm, cat, n in counts.iter_rows():  # arms × categories: a few cells
        out.setdefault(arm, {})[cat] = int(n)
    return out


def arms(dyads: pl.DataFrame) -> dict:
    """The cohort report's flow table: dyads and sessions attended (``n_sessions``) per arm
    (an arm of null sorts last), and over all arms."""
    per_arm = (
        dyads.group_by("arm")
        .agg(
            pl.len().alias("dyads"),
            pl.col("n_sessions").sum().alias("sessions"),
            pl.col("n_sessions").median().alias("median_sessions"),
        )
        .sort("arm", nulls_last=True)
    )
    return {
        "dyads": dyads.height,
        "sessions": int(dyads.get_column("n_sessions").sum() or 0),
        "per_arm": per_arm.to_dicts(),
    }


def flow(scores: pl.DataFrame, dyads: pl.DataFrame, sessions: pl.DataFrame, lag_y: str, lag_xs: list[str]) -> dict:
    pairs = sessions.drop_nulls([lag_y, *lag_xs])
    return {
        "questionnaires": scores.height,
        "questionnaires_scored": scores.filter(pl.col("score").is_not_null()).height,
        "dyads": dyads.height,
        "dyad_sessions": sessions.height,
        "dyads_with_outcome_pre_post": dyads.filter(
            pl.col("outcome_post").is_not_null() & (pl.col("n_outcome") >= 2)
        ).height,
        "dyads_with_change_category": dyads.filter(pl.col("change_category").is_not_null()).height,
        "dyads_with_lag": dyads.filter(pl.col("lag_b").is_not_null()).height,
        "lag_session_pairs": pairs.height,
    }


def pooled(sessions: pl.DataFrame, covariate_outcome: bool, predictor: str) -> dict:
    out = {}
    for name, dt in (("raw", False), ("detrended", True)):
        y, xs = lag_columns(sessions, dt, covariate_outcome, predictor)
        out[name] = pooled_within(sessions, y, xs)
    return out
