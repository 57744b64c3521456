"""The coding stage's three steps, as the rules in ``workflow/rules/coding.smk`` call them."""

from __future__ import annotations

import polars as pl

from dyadflow.coding import comparison, consensus, keys, ratings
from dyadflow.core import atomic
from dyadflow.core.registry import Instrument

RATINGS_FILE_COLUMNS = ("selection", "code", "instrument", "coder_id")


def run_ratings(
    coding: dict, registry: dict[str, Instrument], policy: str, current_keys: dict[str, str] | None, out: dict
) -> ratings.CodedRatings:
    """Read, resolve and judge the coded files; write ratings.parquet, accounting.csv,
    rejections.csv and warnings.csv (``out``). ``current_keys``: selection name → its current key file."""
    selections = coding.get("selections") or []
    frozen, key_warnings = keys.frozen_keys(selections, current_keys)
    read = [ratings.read_coded(spec, policy) for spec in coding.get("inputs") or []]
    result = ratings.judge(
        [f for f, _ in read], [m for _, m in read], frozen, registry, [s["name"] for s in selections], key_warnings
    )
    atomic.write_parquet(out["ratings"], result.ratings)
    atomic.write_csv(out["accounting"], result.accounting)
    atomic.write_csv(out["rejections"], result.rejections)
    atomic.write_csv(out["warnings"], result.warnings)
    return result


def run_agreement(ratings_path: str, registry: dict[str, Instrument], distance: float, out: dict) -> pl.DataFrame:
    """agreement.csv, consensus.csv and to_discuss.csv from the accepted ratings (by code only)."""
    long = consensus.long_ratings(pl.read_parquet(ratings_path), registry)
    table = consensus.consensus(long)
    atomic.write_csv(out["agreement"], consensus.agreement_table(long))
    atomic.write_csv(out["consensus"], table)
    atomic.write_csv(out["to_discuss"], consensus.to_discuss(table, distance))
    return table


def run_comparison(consensus_path: str, selections: list[dict], dyads_path: str, out_comparison: str) -> pl.DataFrame:
    """comparison.csv: the unblinded selections' groups compared (no rows while all are blinded)."""
    unblind = [s["name"] for s in selections if s.get("unblind")]
    table = pl.read_csv(consensus_path, schema=consensus.CONSENSUS_SCHEMA)
    frozen = pl.concat(
        [keys.empty_key(), *[keys.read_key(s["key"], s["name"]) for s in selections if s.get("unblind")]]
    )
    dyads = (
        pl.read_parquet(dyads_path) if unblind else pl.DataFrame(schema={"dyad_id": pl.String, "patient_id": pl.String})
    )
    result = comparison.compare(table, frozen, dyads, unblind)
    atomic.write_csv(out_comparison, result)
    return result
