"""What every selection strategy shares: the output table and its checks."""

from __future__ import annotations

import polars as pl

from dyadflow.core.config import selection_spec
from dyadflow.core.contract import Contract, dtypes, nullable
from dyadflow.core.errors import DyadflowError

DYAD = "dyad_id"
# the keys every selection entry has; the rest are its strategy's parameters
COMMON = ("name", "strategy", "seed", "arms")


class SelectionModel(Contract):
    """results/selection/<name>.csv (a contract: add columns, never rename). ``session`` and
    ``rank`` are Int32, as ``session`` is in every other table."""

    dyad_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    group: pl.String = nullable()
    rank: pl.Int32 = nullable()
    reason: pl.String = nullable()


SELECTION_SCHEMA = dtypes(SelectionModel)


def finish(selection: pl.DataFrame, order: tuple[str, ...] = ("group", "rank", "dyad_id", "session")) -> pl.DataFrame:
    """The selection in its contract columns and types, in a stable order."""
    return selection.select(list(SELECTION_SCHEMA)).cast(SELECTION_SCHEMA).sort(*order)


def with_defaults(strategy: str, params: dict) -> dict:
    """A strategy's parameters with the defaults of the config schema (their one home) filled in."""
    spec = selection_spec({"name": strategy, "strategy": strategy, **params})
    return {k: v for k, v in spec.items() if k not in COMMON}


def ordinal(n: pl.Expr) -> pl.Expr:
    """1 → '', 2 → '2nd ', 3 → '3rd ', 4 → '4th ' (for 'highest' / '2nd highest')."""
    suffix = (
        pl.when((n % 100).is_between(11, 13))
        .then(pl.lit("th"))
        .when(n % 10 == 1)
        .then(pl.lit("st"))
        .when(n % 10 == 2)
        .then(pl.lit("nd"))
        .when(n % 10 == 3)
        .then(pl.lit("rd"))
        .otherwise(pl.lit("th"))
    )
    return pl.when(n == 1).then(pl.lit("")).otherwise(pl.format("{}{} ", n, suffix))


def scaled_thresholds(
    scale: str, defaults: dict[str, dict[str, float]], given: dict | None, key: str
) -> dict[str, float]:
    """Per rater, the thresholds ``given`` under ``key`` over the defaults of their ``scale`` (``own`` or ``pomp``).

    Under ``pomp`` the thresholds are on 0-1 ((x - min)/(max - min) of the instrument's
    response range); one outside 0-1 stops with the key named.
    """
    cut = {**defaults[scale], **(given or {})}
    if scale == "pomp":
        for rater, value in cut.items():
            if not 0 <= value <= 1:
                raise DyadflowError(
                    f"{key}.{rater} is {value:g}, outside 0-1: with scale: pomp thresholds are on the 0-1 scale "
                    "((x - min)/(max - min) of the instrument's range); give it on 0-1 or set scale: own",
                    key=f"{key}.{rater}",
                )
    return cut
