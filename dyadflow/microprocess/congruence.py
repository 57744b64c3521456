"""Per dyad-session agreement of the two raters, on aligned seconds only.

Aligned seconds are the seconds both the patient and the therapist have a rating for
(rated, or interpolated across a short gap; never across a long one).

* ``congruence_r``: Pearson r of patient and therapist ratings over the aligned seconds.
* ``congruence_p``: two-sided p of r with the sample size replaced by the effective
  sample size of two autocorrelated series (Bartlett 1935; the AR(1) form of
  Bretherton et al. 1999, eq. 31, as used for dial data):
  ``n_effective = n (1 − ρp ρt) / (1 + ρp ρt)``, where ρ is each rater's lag-1
  autocorrelation over consecutive aligned seconds; bounded to 3 … n. Then
  ``t = r √((n_eff − 2)/(1 − r²))`` on ``n_eff − 2`` degrees of freedom.
  ``congruence_p_naive`` is the usual test on n − 2 degrees of freedom, for
  comparison (Penix et al. 2021: with thousands of seconds it means little).
* ``discrepancy_mean`` and ``discrepancy_sd``: mean and SD (n − 1) of patient − therapist
  (positive: the patient rates the alliance stronger).
* ``note``: why a statistic is empty (only one rater, too few aligned seconds, a
  constant series).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.contract import Contract, dtypes, nullable


class MicroSessionsModel(Contract):
    """results/microprocess/sessions.csv: one row per dyad and session with any dial rating."""

    dyad_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    seconds_patient: pl.Int64 = nullable()
    seconds_therapist: pl.Int64 = nullable()
    interpolated_patient: pl.Int64 = nullable()
    interpolated_therapist: pl.Int64 = nullable()
    seconds_aligned: pl.Int64 = nullable()
    mean_patient: pl.Float64 = nullable()
    mean_therapist: pl.Float64 = nullable()
    congruence_r: pl.Float64 = nullable()
    congruence_p: pl.Float64 = nullable()
    congruence_p_naive: pl.Float64 = nullable()
    n_effective: pl.Float64 = nullable()
    autocorr_patient: pl.Float64 = nullable()
    autocorr_therapist: pl.Float64 = nullable()
    discrepancy_mean: pl.Float64 = nullable()
    discrepancy_sd: pl.Float64 = nullable()
    note: pl.String = nullable()


SESSION_COLUMNS = dtypes(MicroSessionsModel)
MIN_ALIGNED = 3


def effective_n(n: np.ndarray, rho_x: np.ndarray, rho_y: np.ndarray) -> np.ndarray:
    """Bartlett's effective sample size for the correlation of two AR(1) series."""
    prod = rho_x * rho_y
    with np.errstate(invalid="ignore", divide="ignore"):
        ne = n * (1 - prod) / (1 + prod)
    return np.clip(ne, 3.0, n)


def p_value(r: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of a Pearson r on ``df`` degrees of freedom (vectorised).

    ``scipy.special.stdtr(df, -|t|)`` is what ``scipy.stats.t.sf(|t|, df)`` computes
    (the same bits), without importing scipy.stats (~1.5 s CPU per process)."""
    from scipy.special import stdtr

    with np.errstate(invalid="ignore", divide="ignore"):
        t = r * np.sqrt(df / np.clip(1 - r * r, 1e-300, None))
        p = 2 * stdtr(df, -np.abs(t))
    return np.where(np.isnan(r) | (df <= 0), np.nan, p)


def sessions(grid: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """sessions.csv: one row per dyad and session with any rating.

    ``grid`` has series, second, rating (empty in long gaps), observed."""
    # integer keys: the pair (dyad_id, session) and the rater of each series, by lookup
    pairs = keys.select("dyad_id", "session").unique(maintain_order=True).with_row_index("pair")
    lookup = keys.join(pairs, on=["dyad_id", "session"], how="left").sort("series")
    pair_of = lookup.get_column("pair").cast(pl.Int32)
    is_patient = lookup.get_column("rater") == "patient"
    rows = (
        grid.lazy()
        .filter(pl.col("rating").is_not_null())
        .with_columns(
            pl.lit(pair_of).gather(pl.col("series")).alias("pair"),
            pl.lit(is_patient).gather(pl.col("series")).alias("_p"),
        )
    )
    per_rater = rows.group_by("pair").agg(
        pl.col("observed").filter("_p").sum().cast(pl.Int64).alias("seconds_patient"),
        pl.col("observed").filter(~pl.col("_p")).sum().cast(pl.Int64).alias("seconds_therapist"),
        (~pl.col("observed")).filter("_p").sum().cast(pl.Int64).alias("interpolated_patient"),
        (~pl.col("observed")).filter(~pl.col("_p")).sum().cast(pl.Int64).alias("interpolated_therapist"),
    )
    x = rows.filter("_p").select("pair", "second", pl.col("rating").alias("x"))
    y = rows.filter(~pl.col("_p")).select("pair", "second", pl.col("rating").alias("y"))
    key = ["pair"]
    consecutive = (pl.col("second") - pl.col("second").shift(1) == 1) & (pl.col("pair") == pl.col("pair").shift(1))
    aligned = (
        x.join(y, on=["pair", "second"], how="inner")
        .sort("pair", "second")
        .with_columns(
            pl.when(consecutive).then(pl.col("x").shift(1)).alias("x1"),
            pl.when(consecutive).then(pl.col("y").shift(1)).alias("y1"),
            (pl.col("x") - pl.col("y")).alias("diff"),
        )
    )
    lagged = pl.col("x1").is_not_null()
    stats = aligned.group_by(key).agg(
        pl.len().cast(pl.Int64).alias("seconds_aligned"),
        pl.col("x").mean().alias("mean_patient"),
        pl.col("y").mean().alias("mean_therapist"),
        pl.corr("x", "y").alias("congruence_r"),
        pl.corr(pl.col("x").filter(lagged), pl.col("x1").filter(lagged)).alias("autocorr_patient"),
        pl.corr(pl.col("y").filter(lagged), pl.col("y1").filter(lagged)).alias("autocorr_therapist"),
        pl.col("diff").mean().alias("discrepancy_mean"),
        pl.col("diff").std().alias("discrepancy_sd"),
        pl.col("x").std().alias("_sx"),
        pl.col("y").std().alias("_sy"),
    )
    table = (
        per_rater.join(stats, on=key, how="left")
        # the in-memory engine: the streaming engine's group-by sums in an order that varies from run
        # to run at millions of rows, so discrepancy_sd changed in its last bit (same inputs, other bytes)
        .collect(engine="in-memory")
        .join(pairs.with_columns(pl.col("pair").cast(pl.Int32)), on="pair", how="left")
        .sort("dyad_id", "session")
    )
    table = table.with_columns(pl.col("seconds_aligned").fill_null(0))
    return _tests_and_notes(table)


def _tests_and_notes(table: pl.DataFrame) -> pl.DataFrame:
    n = table.get_column("seconds_aligned").to_numpy().astype(float)
    r = table.get_column("congruence_r").fill_nan(None).to_numpy().astype(float)
    rx = table.get_column("autocorr_patient").fill_nan(None).to_numpy().astype(float)
    ry = table.get_column("autocorr_therapist").fill_nan(None).to_numpy().astype(float)
    # a series without a lag-1 pair (or a constant one) is treated as independent
    ne = effective_n(n, np.nan_to_num(rx, nan=0.0), np.nan_to_num(ry, nan=0.0))
    enough = n >= MIN_ALIGNED
    table = table.with_columns(
        pl.Series("congruence_p", p_value(r, ne - 2)),
        pl.Series("congruence_p_naive", p_value(r, n - 2)),
        pl.Series("n_effective", np.where(enough & ~np.isnan(r), ne, np.nan)),
    ).with_columns(pl.col("congruence_p", "congruence_p_naive", "n_effective", "congruence_r").fill_nan(None))
    p_only = (pl.col("seconds_patient") + pl.col("interpolated_patient") > 0) & (
        pl.col("seconds_therapist") + pl.col("interpolated_therapist") == 0
    )
    t_only = (pl.col("seconds_therapist") + pl.col("interpolated_therapist") > 0) & (
        pl.col("seconds_patient") + pl.col("interpolated_patient") == 0
    )
    few = pl.col("seconds_aligned") < MIN_ALIGNED
    flat = (pl.col("_sx") == 0) | (pl.col("_sy") == 0)
    note = (
        pl.when(p_only)
        .then(pl.lit("only the patient rated this session: no dyad statistics"))
        .when(t_only)
        .then(pl.lit("only the therapist rated this session: no dyad statistics"))
        .when(pl.col("seconds_aligned") == 0)
        .then(pl.lit("the two raters share no second: no dyad statistics"))
        .when(few)
        .then(
            pl.format(
                "only {} aligned second(s): congruence needs at least {}",
                pl.col("seconds_aligned"),
                pl.lit(MIN_ALIGNED),
            )
        )
        .when(flat & (pl.col("_sx") == 0) & (pl.col("_sy") == 0))
        .then(pl.lit("both raters' ratings are constant: congruence is undefined"))
        .when(flat & (pl.col("_sx") == 0))
        .then(pl.lit("the patient's ratings are constant: congruence is undefined"))
        .when(flat)
        .then(pl.lit("the therapist's ratings are constant: congruence is undefined"))
    )
    null_all = pl.col("seconds_aligned") < MIN_ALIGNED
    stats_cols = ["congruence_r", "congruence_p", "congruence_p_naive", "n_effective"]
    return (
        table.with_columns(note.alias("note"))
        .with_columns(
            *[pl.when(null_all | flat.fill_null(False)).then(None).otherwise(pl.col(c)).alias(c) for c in stats_cols],
            *[
                pl.when(null_all).then(None).otherwise(pl.col(c)).alias(c)
                for c in ("discrepancy_mean", "discrepancy_sd", "autocorr_patient", "autocorr_therapist")
            ],
        )
        .select(list(SESSION_COLUMNS))
        .cast(SESSION_COLUMNS)
    )
