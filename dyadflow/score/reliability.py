"""Internal consistency per instrument: results/scores/reliability.csv.

Cronbach's alpha over complete questionnaires (all sessions pooled), on the keyed items of
the validated data, computed in the score stage where the keyed items exist (issue 16.3);
the stats stage copies it into ``cohort.json``. McDonald's omega is null: no maintained
library in dyadflow's pinned environment computes it, and dyadflow does not hand-roll a
factor analysis.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.contract import Contract, dtypes, nullable
from dyadflow.core.registry import Instrument, item_column
from dyadflow.score import keyed

OMEGA_NOTE = "McDonald's omega is not computed: no maintained library in the pinned environment provides it"


class ReliabilityModel(Contract):
    """results/scores/reliability.csv: one row per instrument of the registry."""

    instrument: pl.String = nullable()
    alpha: pl.Float64 = nullable()
    omega: pl.Float64 = nullable()
    n: pl.Int64 = nullable()
    k: pl.Int64 = nullable()
    note: pl.String = nullable()


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
    x = np.ascontiguousarray(complete.to_numpy(), dtype=np.float64)
    total_var = float(x.sum(axis=1).var(ddof=1))
    item_var = float(x.var(axis=0, ddof=1).sum())
    if not total_var:
        return None, n, k
    return float(k / (k - 1) * (1 - item_var / total_var)), n, k


def reliability(validated: pl.DataFrame, registry: dict[str, Instrument], instruments: list[str]) -> dict:
    """{instrument: {alpha, omega, n, k, note}} of ``instruments`` on the validated rows."""
    out = {}
    for key in sorted(instruments):  # a handful of instruments, not dyads
        inst = registry[key]
        present = [i for i in range(1, inst.n_items + 1) if item_column(i) in validated.columns]
        items = (  # the instrument's rows first, then its keyed items (not every row's)
            validated.filter(pl.col("instrument") == key).select(*[keyed(inst, i).alias(f"i{i}") for i in present])
            if present
            else pl.DataFrame()
        )
        alpha, n, k = cronbach_alpha(items)
        out[key] = {"alpha": alpha, "omega": None, "n": n, "k": k, "note": OMEGA_NOTE}
    return out


def table(validated: pl.DataFrame, registry: dict[str, Instrument]) -> pl.DataFrame:
    """The reliability of every instrument of the registry (a :class:`ReliabilityModel` table)."""
    rows = [{"instrument": key, **values} for key, values in reliability(validated, registry, list(registry)).items()]
    return pl.DataFrame(rows, schema=dtypes(ReliabilityModel))
