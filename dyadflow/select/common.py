"""What every selection strategy shares: the output table and its checks."""

from __future__ import annotations

import polars as pl

DYAD = "dyad_id"
# results/selection/<name>.csv (a contract: add columns, never rename)
SELECTION_SCHEMA = {"dyad_id": pl.String, "session": pl.Int32, "group": pl.String, "rank": pl.Int32, "reason": pl.String}


def empty_selection() -> pl.DataFrame:
    return pl.DataFrame(schema=SELECTION_SCHEMA)


def finish(selection: pl.DataFrame, order: tuple[str, ...] = ("group", "rank", "dyad_id", "session")) -> pl.DataFrame:
    """The selection in its contract columns and types, in a stable order."""
    return selection.select(list(SELECTION_SCHEMA)).cast(SELECTION_SCHEMA).sort(*order)


def ordinal(n: pl.Expr) -> pl.Expr:
    """1 → '', 2 → '2nd ', 3 → '3rd ', 4 → '4th ' (for 'highest' / '2nd highest')."""
    suffix = (
        pl.when((n % 100).is_between(11, 13)).then(pl.lit("th"))
        .when(n % 10 == 1).then(pl.lit("st"))
        .when(n % 10 == 2).then(pl.lit("nd"))
        .when(n % 10 == 3).then(pl.lit("rd"))
        .otherwise(pl.lit("th"))
    )
    return pl.when(n == 1).then(pl.lit("")).otherwise(pl.format("{}{} ", n, suffix))
