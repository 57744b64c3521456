"""Warnings about IDs that may not be linked across sources (docs, "Linking IDs across sources").

Computed from the accepted questionnaire rows after validation; a warning never rejects
a row. Each is one row of ``results/validation/warnings.csv`` (``source_file, column,
warning``), naming the IDs concerned (the first :data:`MAX_LISTED`, then a count):

- ``dyad_id``: dyads whose accepted rows all come from one input, when the study has two
  or more questionnaire inputs (one row per input; dial files do not count);
- ``rater``: dyads with alliance ratings by only one of the configured raters (the
  ``alliance`` instruments: patient-rated ``alliance.patient``, therapist-rated
  ``alliance.therapist``), when the accepted data hold ratings of both kinds;
- ``therapist_id``: therapist IDs that are also dyad IDs, and therapist IDs with the form
  of the study's dyad IDs (the ID upper-cased with every digit shown as 9: ``D017`` has
  the form ``D999`` of ``D001``).
"""

from __future__ import annotations

import polars as pl

WARNING_SCHEMA = {"source_file": pl.String, "column": pl.String, "warning": pl.String}
MAX_LISTED = 20


def listed(ids: pl.Expr) -> pl.Expr:
    """A sorted list of IDs as text: the first MAX_LISTED, then how many more."""
    ids = ids.sort()
    more = ids.len().cast(pl.Int64) - MAX_LISTED
    head = ids.head(MAX_LISTED).str.join(", ")
    return pl.when(more > 0).then(pl.format("{} … and {} more", head, more)).otherwise(head)


def id_shape(ids: pl.Expr) -> pl.Expr:
    """The form of an ID: upper case, every digit shown as 9 (``d017`` → ``D999``)."""
    return ids.str.to_uppercase().str.replace_all(r"\d", "9")


def _rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(list(WARNING_SCHEMA)).cast(WARNING_SCHEMA)


def single_source(accepted: pl.DataFrame, n_inputs: int) -> pl.DataFrame:
    """One warning per input holding dyads that no other input has."""
    if n_inputs < 2 or accepted.height == 0:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    per_dyad = accepted.group_by("dyad_id").agg(
        pl.col("source_file").n_unique().alias("_n"), pl.col("source_file").first().alias("source_file")
    )
    found = (
        per_dyad.filter(pl.col("_n") == 1)
        .group_by("source_file")
        .agg(pl.len().alias("_k"), listed(pl.col("dyad_id")).alias("_ids"))
        .sort("source_file")
    )
    return _rows(
        found.with_columns(
            pl.lit("dyad_id").alias("column"),
            pl.format(
                "{} dyad(s) are only in this input, in none of the study's {} other questionnaire input(s): {}. "
                "If the other inputs name them differently, link the IDs with the inputs' ids rules",
                pl.col("_k"),
                pl.lit(n_inputs - 1),
                pl.col("_ids"),
            ).alias("warning"),
        )
    )


def one_rater(accepted: pl.DataFrame, alliance: dict | None) -> pl.DataFrame:
    """Dyads with patient-rated alliance only, and with therapist-rated alliance only."""
    if not alliance or not alliance.get("patient") or not alliance.get("therapist") or accepted.height == 0:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    pat, th = alliance["patient"], alliance["therapist"]
    per_dyad = accepted.group_by("dyad_id").agg(
        ((pl.col("instrument") == pat) & (pl.col("rater") == "patient")).any().alias("_p"),
        ((pl.col("instrument") == th) & (pl.col("rater") == "therapist")).any().alias("_t"),
    )
    if not (per_dyad.get_column("_p").any() and per_dyad.get_column("_t").any()):
        return pl.DataFrame(schema=WARNING_SCHEMA)
    out = []
    for has, lacks, who, other in (
        ("_p", "_t", f"the patient ({pat})", f"the therapist ({th})"),
        ("_t", "_p", f"the therapist ({th})", f"the patient ({pat})"),
    ):
        found = per_dyad.filter(pl.col(has) & ~pl.col(lacks)).select(
            pl.len().alias("_k"), listed(pl.col("dyad_id")).alias("_ids")
        )
        if found.item(0, "_k"):
            out.append(
                found.select(
                    pl.lit(None, dtype=pl.String).alias("source_file"),
                    pl.lit("rater").alias("column"),
                    pl.format(
                        "{} dyad(s) have alliance ratings by {} but none by {}: {}. "
                        "If the other rater's forms are in another input under another dyad ID, link the IDs with its ids rules",
                        pl.col("_k"),
                        pl.lit(who),
                        pl.lit(other),
                        pl.col("_ids"),
                    ).alias("warning"),
                )
            )
    return _rows(pl.concat(out)) if out else pl.DataFrame(schema=WARNING_SCHEMA)


def therapist_like_dyad(accepted: pl.DataFrame) -> pl.DataFrame:
    """Therapist IDs equal to a dyad ID, and therapist IDs with the form of the dyad IDs."""
    if accepted.height == 0:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    dyads = accepted.select(pl.col("dyad_id").unique())
    shapes = dyads.select(id_shape(pl.col("dyad_id")).unique().alias("_shape"))
    therapists = (
        accepted.select(pl.col("therapist_id").drop_nulls().unique())
        .with_columns(
            pl.col("therapist_id").is_in(dyads.get_column("dyad_id").implode()).alias("_equal"),
            id_shape(pl.col("therapist_id")).alias("_shape"),
        )
        .with_columns(pl.col("_shape").is_in(shapes.get_column("_shape").implode()).alias("_like"))
    )
    out = []
    equal = therapists.filter(pl.col("_equal"))
    if equal.height:
        out.append(
            equal.select(
                pl.format(
                    "{} therapist ID(s) are also dyad IDs: {}. Check that the therapist column is not the dyad column",
                    pl.len(),
                    listed(pl.col("therapist_id")),
                ).alias("warning")
            )
        )
    like = therapists.filter(~pl.col("_equal") & pl.col("_like"))
    if like.height:
        out.append(
            like.select(
                pl.format(
                    "{} therapist ID(s) have the form of the study's dyad IDs ({}; digits shown as 9): {}. "
                    "Check that the therapist column holds therapist IDs",
                    pl.len(),
                    pl.col("_shape").unique().sort().str.join(", "),
                    listed(pl.col("therapist_id")),
                ).alias("warning")
            )
        )
    if not out:
        return pl.DataFrame(schema=WARNING_SCHEMA)
    return _rows(
        pl.concat(out).with_columns(
            pl.lit(None, dtype=pl.String).alias("source_file"), pl.lit("therapist_id").alias("column")
        )
    )


def id_warnings(accepted: pl.DataFrame, n_inputs: int, alliance: dict | None = None) -> pl.DataFrame:
    """All ID warnings (see the module docstring), in a fixed order."""
    return pl.concat([single_source(accepted, n_inputs), one_rater(accepted, alliance), therapist_like_dyad(accepted)])
