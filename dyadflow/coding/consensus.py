"""Agreement between coders, consensus scores and the sessions to discuss, by code only.

The accepted coded ratings (``results/coding/ratings.parquet``) are turned into one long
table, one row per coded session (selection, code) × instrument × measure × coder:

- numeric instruments: every item (``item_01`` …), every subscale (``sub_<name>``) and the
  instrument's score (``score``), scored by :func:`dyadflow.score.score_frame` exactly as
  patient and therapist questionnaires are;
- categorical instruments (``response.type: categorical``): every item, as its code.

From it: ``agreement.csv`` (:func:`dyadflow.coding.agreement.agreement_table`),
``consensus.csv`` (per session and measure the coders' mean, or the majority code with
ties stated) and ``to_discuss.csv`` (numeric: the coders' ratings span more than
``coding.discuss_distance``, max − min, strictly; categorical: the codes are not
unanimous). None of these tables has a dyad, a session number, a therapist or a group.
"""

from __future__ import annotations

import polars as pl

from dyadflow import score
from dyadflow.coding import agreement
from dyadflow.core.registry import Instrument

TARGET_COLUMNS = ("selection", "code")
LONG_SCHEMA = {
    "selection": pl.String,
    "code": pl.String,
    "instrument": pl.String,
    "measure": pl.String,
    "kind": pl.String,
    "coder_id": pl.String,
    "value": pl.Float64,
    "category": pl.String,
}
CONSENSUS_SCHEMA = {
    "selection": pl.String,
    "code": pl.String,
    "instrument": pl.String,
    "measure": pl.String,
    "kind": pl.String,
    "n_coders": pl.Int32,
    "mean": pl.Float64,
    "majority": pl.String,
    "n_majority": pl.Int32,
    "tie": pl.Boolean,
    "spread": pl.Float64,
    "ratings": pl.String,
}
DISCUSS_SCHEMA = {
    "selection": pl.String,
    "code": pl.String,
    "instrument": pl.String,
    "measure": pl.String,
    "kind": pl.String,
    "n_coders": pl.Int32,
    "spread": pl.Float64,
    "ratings": pl.String,
    "reason": pl.String,
}


def long_ratings(ratings: pl.DataFrame, registry: dict[str, Instrument]) -> pl.DataFrame:
    """One row per coded session × instrument × measure × coder (see the module docstring)."""
    parts = [pl.DataFrame(schema=LONG_SCHEMA)]
    ids = [*TARGET_COLUMNS, "instrument", "coder_id"]
    for key in sorted(ratings.get_column("instrument").unique().to_list()):
        inst = registry[key]
        rows = ratings.filter(pl.col("instrument") == key)
        items = [c for c in inst.items if c in rows.columns]
        if inst.categorical:
            long = rows.unpivot(index=ids, on=items, variable_name="measure", value_name="_v").with_columns(
                pl.lit("categorical").alias("kind"),
                pl.lit(None, dtype=pl.Float64).alias("value"),
                pl.col("_v")
                .replace_strict(list(range(1, len(inst.codes) + 1)), list(inst.codes), return_dtype=pl.String)
                .alias("category"),
            )
        else:
            # score_frame needs the questionnaire columns: the coded session stands in for the dyad
            as_questionnaire = rows.with_columns(
                pl.format("{}|{}", "selection", "code").alias("dyad_id"),
                pl.lit(None, dtype=pl.String).alias("patient_id"),
                pl.lit(None, dtype=pl.String).alias("therapist_id"),
                pl.lit(0, dtype=pl.Int32).alias("session"),
                pl.lit(None, dtype=pl.Date).alias("date"),
                pl.lit("observer").alias("rater"),
                pl.lit(None, dtype=pl.String).alias("arm"),
            )
            scored = score.score_frame(as_questionnaire, {key: inst}).select(
                "dyad_id", "coder_id", "score", *[f"sub_{n}" for n in inst.subscales]
            )
            wide = rows.with_columns(pl.format("{}|{}", "selection", "code").alias("dyad_id")).join(
                scored, on=["dyad_id", "coder_id"], how="left"
            )
            measures = [*items, *[f"sub_{n}" for n in inst.subscales], "score"]
            long = (
                wide.with_columns(pl.col(measures).cast(pl.Float64))
                .unpivot(index=ids, on=measures, variable_name="measure", value_name="value")
                .with_columns(pl.lit("numeric").alias("kind"), pl.lit(None, dtype=pl.String).alias("category"))
            )
        parts.append(long.select(list(LONG_SCHEMA)).cast(LONG_SCHEMA))
    return pl.concat(parts).filter(pl.col("value").is_not_null() | pl.col("category").is_not_null())


def _order(frame: pl.DataFrame) -> pl.DataFrame:
    """Sessions in code order (A … Z, AA …), measures as listed by the instrument."""
    return frame.sort("selection", pl.col("code").str.len_chars(), "code", "instrument", "_m", "measure")


def _measure_rank() -> pl.Expr:
    m = pl.col("measure")
    return (
        pl.when(m.str.starts_with("item_"))
        .then(m.str.extract(r"(\d+)$").cast(pl.Int64))
        .when(m == "score")
        .then(pl.lit(1_000_000, dtype=pl.Int64))
        .otherwise(pl.lit(100_000, dtype=pl.Int64))
    ).alias("_m")


def consensus(long: pl.DataFrame) -> pl.DataFrame:
    """Per coded session and measure: the coders' mean (numeric) or majority code (categorical,
    ``tie`` true when two or more codes share the highest count: the majority then lists them
    all, joined by ``|``, for the consensus meeting to settle)."""
    keys = [*TARGET_COLUMNS, "instrument", "measure", "kind"]
    shown = (
        pl.when(pl.col("kind") == "numeric")
        .then(pl.format("{}={}", "coder_id", pl.col("value").round(4)))
        .otherwise(pl.format("{}={}", "coder_id", "category"))
    )
    base = (
        long.sort("coder_id")
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int32).alias("n_coders"),
            pl.col("value").mean().alias("mean"),
            (pl.col("value").max() - pl.col("value").min()).alias("spread"),
            shown.str.join("; ").alias("ratings"),
        )
    )
    counts = (
        long.filter(pl.col("kind") == "categorical")
        .group_by([*keys, "category"])
        .len()
        .with_columns((pl.col("len") == pl.col("len").max().over(keys)).alias("_top"))
        .filter(pl.col("_top"))
        .sort("category")
        .group_by(keys)
        .agg(
            pl.col("category").str.join("|").alias("majority"),
            pl.col("len").first().alias("n_majority"),
            (pl.len() > 1).alias("tie"),
        )
    )
    out = base.join(counts, on=keys, how="left").with_columns(_measure_rank())
    return _order(out).select(list(CONSENSUS_SCHEMA)).cast(CONSENSUS_SCHEMA)


def to_discuss(table: pl.DataFrame, distance: float) -> pl.DataFrame:
    """The sessions and measures for a consensus meeting: numeric ratings spreading more than
    ``distance`` (max − min > distance; exactly ``distance`` is not listed); codes that are not unanimous."""
    numeric = (pl.col("kind") == "numeric") & (pl.col("spread") > distance)
    categorical = (pl.col("kind") == "categorical") & (pl.col("n_majority") < pl.col("n_coders"))
    reason = (
        pl.when(numeric)
        .then(
            pl.format(
                "the ratings span {} points, more than coding.discuss_distance {}",
                pl.col("spread").round(4),
                pl.lit(distance),
            )
        )
        .otherwise(
            pl.when(pl.col("tie"))
            .then(pl.lit("the coders' codes differ, with no majority (a tie)"))
            .otherwise(pl.lit("the coders' codes differ"))
        )
    )
    return (
        table.filter(numeric | categorical)
        .with_columns(reason.alias("reason"))
        .select(list(DISCUSS_SCHEMA))
        .cast(DISCUSS_SCHEMA)
    )


def agreement_table(long: pl.DataFrame) -> pl.DataFrame:
    """``agreement.csv``: the statistics of :mod:`dyadflow.coding.agreement` per instrument × measure."""
    target = pl.format("{}|{}", "selection", "code").alias("target")
    numeric = long.filter(pl.col("kind") == "numeric").select(
        "instrument", "measure", target, pl.col("coder_id").alias("coder"), "value"
    )
    categorical = long.filter(pl.col("kind") == "categorical").select(
        "instrument", "measure", target, pl.col("coder_id").alias("coder"), pl.col("category").alias("value")
    )
    parts = [
        agreement.agreement_table(numeric),
        agreement.agreement_table(categorical, categorical=categorical.get_column("instrument").unique().to_list()),
    ]
    return pl.concat(parts).with_columns(_measure_rank()).sort("instrument", "_m", "measure", "statistic").drop("_m")
