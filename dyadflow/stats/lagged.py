"""Within-dyad lagged regression: outcome(t+1) on alliance(t), every dyad at once.

Per dyad, ``y = a + b·x (+ c·outcome(t)) + e`` by ordinary least squares, in closed form:
the variables are centred within dyad (which absorbs the intercept), the cross-product
sums come from one polars ``group_by``, the small normal equations are solved for all
dyads together with batched numpy, and the residuals are computed row by row for the
exact residual sum of squares. p-values are two-sided from Student's t with
``n − k − 1`` degrees of freedom (k slopes plus the intercept), as in statsmodels' OLS.

The same machinery gives the pooled within-person (dyad fixed-effects) estimate with
dyad-clustered standard errors (:func:`pooled_within`).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from dyadflow.stats import grouped

DYAD = "dyad_id"


def _centred(df: pl.DataFrame, y: str, xs: list[str], by: str) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """The complete rows, centred within group: (group ids, group index per row, columns y, x1 … xk)."""
    cols = [y, *xs]
    rows = grouped.sort_by(
        df.select(by, *[pl.col(c).cast(pl.Float64) for c in cols])
        .drop_nulls(cols)
        .filter(pl.all_horizontal(pl.col(c).is_finite() for c in cols)),
        by,
    )
    g, n = grouped.group_index(rows, by)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if g.size else np.zeros(0, dtype=np.int64)
    data = np.empty((len(cols), rows.height))
    for i, c in enumerate(cols):  # the model's few variables
        v = grouped.values(rows, c)
        data[i] = v - grouped.group_mean(v, g, n)[0][g]
    return rows.get_column(by).gather(starts), g, data


def _moments(g: np.ndarray, data: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: (rows, X'X, X'y) of the centred variables (data[0] = y)."""
    k = data.shape[0] - 1
    a = np.empty((n_groups, k, k))
    for i in range(k):  # k(k+1)/2 cross-products, not dyads
        for j in range(i, k):
            a[:, i, j] = a[:, j, i] = grouped.group_sum(data[i + 1] * data[j + 1], g, n_groups)
    xy = (
        np.column_stack([grouped.group_sum(data[i + 1] * data[0], g, n_groups) for i in range(k)])
        if k
        else np.empty((n_groups, 0))
    )
    return np.bincount(g, minlength=n_groups), a, xy


def _solve(a: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched solve; groups whose X'X is (near) singular get NaN. Returns (b, inverse, ok)."""
    g, k, _ = a.shape
    diag = np.einsum("gii->gi", a)
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    corr = a / scale[:, :, None] / scale[:, None, :]
    ok = np.all(diag > 1e-12, axis=1)
    ok &= np.abs(np.linalg.det(np.where(ok[:, None, None], corr, np.eye(k)))) > 1e-10
    safe = np.where(ok[:, None, None], a, np.eye(k))
    inv = np.linalg.inv(safe)
    b = np.einsum("gij,gj->gi", inv, xy)
    b[~ok] = np.nan
    inv[~ok] = np.nan
    return b, inv, ok


def within_ols(df: pl.DataFrame, y: str, xs: list[str], by: str = DYAD) -> pl.DataFrame:
    """OLS of ``y`` on ``xs`` with an intercept, separately in every group of ``by``.

    Returns one row per group with complete rows: ``n``, and for the first predictor
    ``b, se, t, p`` (null when the model cannot be estimated: too few rows or no variance).
    """
    k = len(xs)
    ids, g, data = _centred(df, y, xs, by)
    n_groups = ids.len()
    n, a, xy = _moments(g, data, n_groups)
    b, inv, ok = _solve(a, xy)
    resid = data[0] - np.einsum("ir,ri->r", data[1:], b[g]) if g.size else data[0]
    rss = grouped.group_sum(resid * resid, g, n_groups)
    df_resid = n - k - 1
    good = ok & (df_resid >= 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = np.where(good, rss / np.where(df_resid > 0, df_resid, 1), np.nan)
        se = np.sqrt(sigma2 * inv[:, 0, 0])
        b0 = np.where(good, b[:, 0], np.nan)
        t = b0 / se
        p = 2 * sps.t.sf(np.abs(t), np.where(df_resid > 0, df_resid, 1))
    return pl.DataFrame({by: ids, "n": n.astype(np.int32), "b": b0, "se": se, "t": t, "p": p}).with_columns(
        pl.col("b", "se", "t", "p").fill_nan(None)
    )


def lag_columns(
    sessions: pl.DataFrame, detrend: bool = False, covariate_outcome: bool = False, predictor: str = "composite"
) -> tuple[str, list[str]]:
    """The (y, xs) column names of the lagged model for these options."""
    suffix = "_dt" if detrend else "_z"
    xs = [f"alliance_{predictor}{suffix}"]
    if covariate_outcome:
        xs.append(f"outcome{suffix}")
    return f"outcome_next{suffix}", xs


def lagged(
    sessions: pl.DataFrame,
    detrend: bool = False,
    covariate_outcome: bool = False,
    predictor: str = "composite",
    min_pairs: int = 3,
) -> pl.DataFrame:
    """Per dyad: ``lag_b, lag_se, lag_t, lag_p, lag_n`` and ``_note_lag`` (why it is null)."""
    y, xs = lag_columns(sessions, detrend, covariate_outcome, predictor)
    k = len(xs)
    need = max(min_pairs, k + 2)
    est = within_ols(sessions, y, xs)
    out = (
        sessions.select(DYAD)
        .unique()
        .join(est, on=DYAD, how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns(pl.when(pl.col("n") >= need).then(pl.col(c)).alias(f"lag_{c}") for c in ("b", "se", "t", "p"))
        .with_columns(
            pl.when(pl.col("n") < need)
            .then(pl.format("lag: {} complete session pair(s), needs {}", pl.col("n"), pl.lit(need)))
            .when(pl.col("lag_b").is_null())
            .then(pl.lit("lag: no within-dyad variance in alliance or outcome"))
            .alias("_note_lag")
        )
        .rename({"n": "lag_n"})
    )
    return out.select(DYAD, "lag_b", "lag_se", "lag_t", "lag_p", pl.col("lag_n").cast(pl.Int32), "_note_lag").sort(DYAD)


def pooled_within(sessions: pl.DataFrame, y: str, xs: list[str], by: str = DYAD) -> dict:
    """Dyad fixed-effects (within, demeaned) OLS pooled over dyads, dyad-clustered SE.

    The cluster-robust covariance is the sandwich with statsmodels' small-sample factor
    ``G/(G−1) · (N−1)/(N−K)`` (K = number of slopes of the demeaned model); the p-value
    uses Student's t with ``G − 1`` degrees of freedom.
    """
    k = len(xs)
    ids, g, data = _centred(sessions, y, xs, by)
    # Dyads with a single complete row carry no within-dyad information.
    size = np.bincount(g, minlength=ids.len())
    keep = size[g] >= 2
    g, data = g[keep], data[:, keep]
    n_obs, groups = int(keep.sum()), int((size >= 2).sum())
    empty = {"b": None, "se": None, "t": None, "p": None, "n_obs": n_obs, "n_dyads": groups, "y": y, "x": xs}
    if n_obs <= k or groups < 2:
        return empty
    x = data[1:].T
    yy = data[0]
    a = x.T @ x
    if np.linalg.cond(a) > 1e12:
        return empty
    inv = np.linalg.inv(a)
    b = inv @ (x.T @ yy)
    u = yy - x @ b
    s = np.column_stack([np.bincount(g, weights=x[:, i] * u) for i in range(k)])
    meat = s.T @ s
    cov = inv @ meat @ inv * (groups / (groups - 1)) * ((n_obs - 1) / (n_obs - k))
    se = float(np.sqrt(cov[0, 0]))
    t = float(b[0] / se) if se > 0 else None
    p = float(2 * sps.t.sf(abs(t), groups - 1)) if t is not None else None
    return {**empty, "b": float(b[0]), "se": se, "t": t, "p": p}
