"""Batched numpy over groups: sums, means, z-scores, detrending and shifts within dyads.

The rows must be sorted by group; ``g`` is the group index of every row (0, 0, 1, 1, 1,
2 …, from :func:`group_index`). Missing values are NaN. Each function is a handful of
``np.bincount`` passes over all rows, so all dyads are computed at once.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def group_index(df: pl.DataFrame, *by: str) -> tuple[np.ndarray, int]:
    """(index of each row's group, number of groups) for a frame sorted by ``by``."""
    if df.height == 0:
        return np.zeros(0, dtype=np.int64), 0
    g = (
        df.select(pl.struct(*by).rle_id() if len(by) > 1 else pl.col(by[0]).rle_id())
        .to_series()
        .to_numpy()
        .astype(np.int64)
    )
    return g, int(g[-1]) + 1


def values(df: pl.DataFrame, col: str) -> np.ndarray:
    """A column as float64 with NaN for null."""
    return df.get_column(col).cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64, copy=True)


def group_sum(x: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum of the non-NaN values per group."""
    return np.bincount(g, weights=np.where(np.isnan(x), 0.0, x), minlength=n_groups)


def group_count(x: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(g, weights=(~np.isnan(x)).astype(np.float64), minlength=n_groups)


def group_mean(x: np.ndarray, g: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the non-NaN values per group (NaN when none), count)."""
    n = group_count(x, g, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return group_sum(x, g, n_groups) / n, n


def zscore(x: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """Within-group z-score, group SD with ddof 1; NaN when the SD is 0 or undefined."""
    m, n = group_mean(x, g, n_groups)
    d = x - m[g]
    ss = group_sum(d * d, g, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(n >= 2, np.sqrt(ss / (n - 1)), np.nan)
        sd = np.where(sd > 0, sd, np.nan)
        return d / sd[g]


def detrend(y: np.ndarray, t: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """Residual of the within-group OLS regression of y on t (over rows where y is observed).

    Without variance in t the residual is the deviation from the group mean.
    """
    t = np.where(np.isnan(y), np.nan, t.astype(np.float64))
    tm, _ = group_mean(t, g, n_groups)
    ym, _ = group_mean(y, g, n_groups)
    tc, yc = t - tm[g], y - ym[g]
    sxx = group_sum(tc * tc, g, n_groups)
    sxy = group_sum(tc * yc, g, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, 0.0)
    return yc - slope[g] * tc


def group_shift(x: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """x shifted by k rows within its group (k > 0: the value k rows earlier); NaN across groups."""
    out = np.full(x.shape, np.nan)
    if k == 0:
        return x.copy()
    n = x.size
    if abs(k) >= n:
        return out
    if k > 0:
        same = g[k:] == g[:-k]
        out[k:] = np.where(same, x[:-k], np.nan)
    else:
        k = -k
        same = g[:-k] == g[k:]
        out[:-k] = np.where(same, x[k:], np.nan)
    return out


def column(name: str, x: np.ndarray) -> pl.Series:
    """A float column with null (not NaN) for missing."""
    return pl.Series(name, x, dtype=pl.Float64).fill_nan(None)


def sort_by(df: pl.DataFrame, *by: str) -> pl.DataFrame:
    """``df.sort(*by)``, skipping the sort when the rows are already in that order (the usual case)."""
    if df.height < 2:
        return df
    ordered = pl.lit(True)
    tie = pl.lit(True)
    for c in by:  # a handful of key columns
        ordered = ordered & (~tie | (pl.col(c) >= pl.col(c).shift(1)))
        tie = tie & (pl.col(c) == pl.col(c).shift(1))
    ok = df.select(ordered.slice(1).all()).item()
    return df if ok else df.sort(*by)
