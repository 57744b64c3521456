"""Cohort-level results for ``results/stats/cohort.json``.

- the pooled within-person effect of alliance(t) on outcome(t+1), a dyad fixed-effects
  (demeaned) regression with dyad-clustered SE, on the within-dyad z-scores ("raw") and
  on the detrended z-scores ("detrended") — Falkenström et al. 2013, 2017;
- internal consistency per instrument: Cronbach's α over complete questionnaires (all
  sessions pooled), on the keyed items of the validated data. McDonald's ω is ``null``:
  no maintained library in dyadflow's pinned environment computes it, and dyadflow does
  not hand-roll a factor analysis;
- completeness per instrument and session: dyads with a scored questionnaire / dyads;
- change categories per arm; flow counts from questionnaires to analysed dyads.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.registry import Instrument
from dyadflow.score import keyed
from dyadflow.stats import grouped
from dyadflow.stats.lagged import lag_columns, pooled_within

OMEGA_NOTE = "McDonald's omega is not computed: no maintained library in the pinned environment provides it"


def cronbach_alpha(items: pl.DataFrame) -> tuple[float | None, int, int]:
    """(alpha, n complete rows, k items) of a frame whose columns are the keyed items."""
    k = items.width
    complete = items.drop_nulls()
    n = complete.height
    if k < 2 or n < 2:
        return None, n, k
    # numpy on one contiguous array: polars' var() combines per-chunk partial sums, so the
    # last bit of the result could depend on how the frame happened to be chunked (it did:
    # a SLURM and a local run of the same data differed in alpha's 16th digit)
    x = np.ascontiguousarray(complete.to_numpy().astype(np.float64))
    total_var = float(x.sum(axis=1).var(ddof=1))
    item_var = float(x.var(axis=0, ddof=1).sum())
    if not total_var:
        return None, n, k
    return float(k / (k - 1) * (1 - item_var / total_var)), n, k


def reliability(validated: pl.DataFrame, registry: dict[str, Instrument], instruments: list[str]) -> dict:
    out = {}
    for key in sorted(instruments):  # a handful of instruments, not dyads
        inst = registry[key]
        present = [i for i in range(1, inst.n_items + 1) if f"item_{i:02d}" in validated.columns]
        items = (
            validated.select(pl.col("instrument"), *[keyed(inst, i).alias(f"i{i}") for i in present])
            .filter(pl.col("instrument") == key)
            .drop("instrument")
            if present
            else pl.DataFrame()
        )
        alpha, n, k = cronbach_alpha(items)
        out[key] = {"alpha": alpha, "omega": None, "n": n, "k": k, "note": OMEGA_NOTE}
    return out


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
