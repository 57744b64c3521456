"""Stats: per-session and per-dyad alliance and outcome tables.

Every computation runs over all dyads at once with polars expressions (``over`` and
``group_by``); nothing loops over dyads in Python.
"""

from __future__ import annotations

import polars as pl

from dyadflow import io


def session_table(scores: pl.DataFrame, outcome: str, alliance: dict[str, str]) -> pl.DataFrame:
    """One row per dyad × session: alliance per rater, their composite, outcome and next outcome."""
    base = scores.group_by("dyad_id", "session").agg(pl.col("date").min())
    wanted = {
        "alliance_patient": (alliance["patient"], "patient"),
        "alliance_therapist": (alliance["therapist"], "therapist"),
        "outcome": (outcome, None),
    }
    for name, (instrument, rater) in wanted.items():
        sel = scores.filter(pl.col("instrument") == instrument)
        if rater:
            sel = sel.filter(pl.col("rater") == rater)
        part = sel.group_by("dyad_id", "session").agg(pl.col("score").mean().alias(name))
        base = base.join(part, on=["dyad_id", "session"], how="left")
    return (
        base.sort("dyad_id", "session")
        .with_columns(pl.mean_horizontal("alliance_patient", "alliance_therapist").alias("alliance_composite"))
        .with_columns(
            pl.when(pl.col("session").shift(-1).over("dyad_id") == pl.col("session") + 1)
            .then(pl.col("outcome").shift(-1).over("dyad_id"))
            .alias("outcome_next")
        )
        .select("dyad_id", "session", "date", "alliance_patient", "alliance_therapist", "alliance_composite", "outcome", "outcome_next")
    )


def dyad_table(scores: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    """One row per dyad: identity, attendance and outcome change."""
    ident = scores.sort("session", "source_file", "source_line").group_by("dyad_id").agg(
        pl.col("patient_id").first(),
        pl.col("therapist_id").first(),
        pl.col("arm").drop_nulls().first(),
    )
    treated = sessions.filter(pl.col("session") >= 1).group_by("dyad_id").agg(
        pl.col("session").n_unique().cast(pl.Int32).alias("n_sessions"),
        pl.col("session").min().alias("first_session"),
        pl.col("session").max().alias("last_session"),
    )
    outcome = (
        sessions.filter(pl.col("outcome").is_not_null())
        .group_by("dyad_id")
        .agg(
            pl.col("outcome").sort_by("session").first().alias("outcome_pre"),
            pl.col("outcome").sort_by("session").last().alias("outcome_post"),
        )
        .with_columns((pl.col("outcome_post") - pl.col("outcome_pre")).alias("outcome_change"))
    )
    return (
        ident.join(treated, on="dyad_id", how="left")
        .join(outcome, on="dyad_id", how="left")
        .with_columns(pl.col("n_sessions").fill_null(0))
        .sort("dyad_id")
        .select(
            "dyad_id", "patient_id", "therapist_id", "arm", "n_sessions", "first_session", "last_session",
            "outcome_pre", "outcome_post", "outcome_change",
        )
    )


def run(scores_path: str, outcome: str, alliance: dict[str, str], out_sessions: str, out_dyads: str, out_dyads_csv: str) -> None:
    scores = pl.read_parquet(scores_path)
    sessions = session_table(scores, outcome, alliance)
    dyads = dyad_table(scores, sessions)
    io.write_parquet(out_sessions, sessions)
    io.write_parquet(out_dyads, dyads)
    io.write_csv(out_dyads_csv, dyads)
