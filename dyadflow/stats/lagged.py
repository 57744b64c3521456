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

DYAD = "dyad_id"


def _centred(df: pl.DataFrame, y: str, xs: list[str], by: str) -> pl.DataFrame:
    cols = [y, *xs]
    return (
        df.select(by, *[pl.col(c).cast(pl.Float64) for c in cols])
        .drop_nulls(cols)
        .filter(pl.all_horizontal(pl.col(c).is_finite() for c in cols))
        .sort(by)
        .with_columns((pl.col(c) - pl.col(c).mean().over(by)).alias(f"_c{i}") for i, c in enumerate(cols))
    )


def _moments(c: pl.DataFrame, k: int, by: str) -> pl.DataFrame:
    """Per group: n, X'X (upper triangle) and X'y of the centred variables (_c0 = y)."""
    aggs = [pl.len().alias("n")]
    for i in range(1, k + 1):
        aggs.append((pl.col(f"_c{i}") * pl.col("_c0")).sum().alias(f"xy{i}"))
        for j in range(i, k + 1):
            aggs.append((pl.col(f"_c{i}") * pl.col(f"_c{j}")).sum().alias(f"xx{i}{j}"))
    return c.group_by(by).agg(aggs).sort(by)


def _matrices(m: pl.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    g = m.height
    a = np.empty((g, k, k))
    for i in range(1, k + 1):
        for j in range(i, k + 1):
            v = m.get_column(f"xx{i}{j}").to_numpy()
            a[:, i - 1, j - 1] = v
            a[:, j - 1, i - 1] = v
    xy = np.column_stack([m.get_column(f"xy{i}").to_numpy() for i in range(1, k + 1)]) if g else np.empty((0, k))
    return a, xy


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
    c = _centred(df, y, xs, by)
    m = _moments(c, k, by)
    a, xy = _matrices(m, k)
    b, inv, ok = _solve(a, xy)
    coef = pl.DataFrame({by: m.get_column(by), **{f"_b{i}": b[:, i - 1] for i in range(1, k + 1)}})
    fitted = sum(pl.col(f"_b{i}") * pl.col(f"_c{i}") for i in range(1, k + 1))
    rss = (
        c.join(coef, on=by, how="left")
        .group_by(by)
        .agg(((pl.col("_c0") - fitted) ** 2).sum().alias("rss"))
        .sort(by)
        .get_column("rss")
        .to_numpy()
    )
    n = m.get_column("n").to_numpy()
    df_resid = n - k - 1
    good = ok & (df_resid >= 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = np.where(good, rss / np.where(df_resid > 0, df_resid, 1), np.nan)
        se = np.sqrt(sigma2 * inv[:, 0, 0])
        b0 = np.where(good, b[:, 0], np.nan)
        t = b0 / se
        p = 2 * sps.t.sf(np.abs(t), np.where(df_resid > 0, df_resid, 1))
    return pl.DataFrame(
        {by: m.get_column(by), "n": n.astype(np.int32), "b": b0, "se": se, "t": t, "p": p}
    ).with_columns(pl.col("b", "se", "t", "p").fill_nan(None))


def lag_columns(sessions: pl.DataFrame, detrend: bool = False, covariate_outcome: bool = False, predictor: str = "composite") -> tuple[str, list[str]]:
    """The (y, xs) column names of the lagged model for these options."""
    suffix = "_dt" if detrend else "_z"
    xs = [f"alliance_{predictor}{suffix}"]
    if covariate_outcome:
        xs.append(f"outcome{suffix}")
    return f"outcome_next{suffix}", xs


def lagged(sessions: pl.DataFrame, detrend: bool = False, covariate_outcome: bool = False, predictor: str = "composite", min_pairs: int = 3) -> pl.DataFrame:
    """Per dyad: ``lag_b, lag_se, lag_t, lag_p, lag_n`` and ``_note_lag`` (why it is null)."""
    y, xs = lag_columns(sessions, detrend, covariate_outcome, predictor)
    k = len(xs)
    need = max(min_pairs, k + 2)
    est = within_ols(sessions, y, xs)
    out = (
        sessions.select(DYAD).unique()
        .join(est, on=DYAD, how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns(
            pl.when(pl.col("n") >= need).then(pl.col(c)).alias(f"lag_{c}") for c in ("b", "se", "t", "p")
        )
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
    c = _centred(sessions, y, xs, by)
    # Dyads with a single complete row carry no within-dyad information.
    c = c.filter(pl.len().over(by) >= 2)
    n_obs, groups = c.height, c.get_column(by).n_unique()
    empty = {"b": None, "se": None, "t": None, "p": None, "n_obs": n_obs, "n_dyads": groups, "y": y, "x": xs}
    if n_obs <= k or groups < 2:
        return empty
    x = c.select(f"_c{i}" for i in range(1, k + 1)).to_numpy()
    yy = c.get_column("_c0").to_numpy()
    a = x.T @ x
    if np.linalg.cond(a) > 1e12:
        return empty
    inv = np.linalg.inv(a)
    b = inv @ (x.T @ yy)
    u = yy - x @ b
    scores = c.select(by, *[(pl.col(f"_c{i}") * pl.Series(u)).alias(f"s{i}") for i in range(1, k + 1)])
    s = scores.group_by(by).agg(pl.col(f"s{i}").sum() for i in range(1, k + 1)).select(f"s{i}" for i in range(1, k + 1)).to_numpy()
    meat = s.T @ s
    cov = inv @ meat @ inv * (groups / (groups - 1)) * ((n_obs - 1) / (n_obs - k))
    se = float(np.sqrt(cov[0, 0]))
    t = float(b[0] / se) if se > 0 else None
    p = float(2 * sps.t.sf(abs(t), groups - 1)) if t is not None else None
    return {**empty, "b": float(b[0]), "se": se, "t": t, "p": p}
