"""Unblinding: the comparison the selection was made for (``results/coding/comparison.csv``).

Only selections configured with ``unblind: true`` (``coding.selections``) are unblinded.
Their consensus scores (:mod:`.consensus`, the coders' mean per coded session) join the
frozen key: each coded session gets its dyad's group (high vs low alliance, settled vs
troubled, the repair case's roles) and its patient. For every numeric observer measure
and every pair of groups (in sorted order, ``difference`` = ``mean_a`` − ``mean_b``):

- the group means and their difference, from an ordinary least-squares regression of
  the consensus score on a group indicator (its slope is exactly the difference of the
  means);
- its 95 % confidence interval and p value from cluster-robust standard errors with the
  patient as the cluster (Liang & Zeger 1986; CR1 small-sample correction and a t
  distribution with G − 1 degrees of freedom, G the number of patients: Cameron & Miller
  2015), because a patient may give sessions to both groups (``high_low_alliance`` takes
  a high and a low session from each kept therapy): their sessions are not independent.

Categorical measures are not compared here (their majority codes are in consensus.csv).
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

COMPARISON_SCHEMA = {
    "selection": pl.String,
    "instrument": pl.String,
    "measure": pl.String,
    "group_a": pl.String,
    "group_b": pl.String,
    "n_a": pl.Int32,
    "n_b": pl.Int32,
    "mean_a": pl.Float64,
    "mean_b": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p": pl.Float64,
    "n_patients": pl.Int32,
    "n_patients_both": pl.Int32,
    "method": pl.String,
    "note": pl.String,
}
METHOD = "OLS on a group indicator, cluster-robust SE by patient (CR1, t with G-1 df)"


def cluster_difference(y: np.ndarray, in_a: np.ndarray, cluster: np.ndarray) -> dict:
    """Difference of means (a − b) with a patient-clustered 95 % CI and p (see the module docstring)."""
    import statsmodels.api as sm

    n_clusters = np.unique(cluster).size
    out = {"difference": float(y[in_a].mean() - y[~in_a].mean())}
    if n_clusters < 3 or in_a.all() or (~in_a).all():
        return {**out, "note": f"{n_clusters} patient(s): a confidence interval needs at least 3"}
    x = sm.add_constant(in_a.astype(float), has_constant="add")
    fit = sm.OLS(y, x).fit(
        cov_type="cluster", cov_kwds={"groups": np.unique(cluster, return_inverse=True)[1]}, use_t=True
    )
    lo, hi = fit.conf_int(alpha=0.05)[1]
    se = float(fit.bse[1])
    if not np.isfinite(se) or se == 0:
        return {**out, "note": "no variation within the groups: no confidence interval"}
    return {**out, "ci_low": float(lo), "ci_high": float(hi), "p": float(fit.pvalues[1])}


def compare(consensus: pl.DataFrame, keys: pl.DataFrame, dyads: pl.DataFrame, unblind: list[str]) -> pl.DataFrame:
    """The rows of ``comparison.csv`` for the selections in ``unblind`` (none while blinded)."""
    numeric = consensus.filter(
        (pl.col("kind") == "numeric") & pl.col("selection").is_in(unblind) & pl.col("mean").is_not_null()
    )
    joined = (
        numeric.join(keys.select("selection", "code", "dyad_id", "group"), on=["selection", "code"], how="inner")
        .join(dyads.select("dyad_id", "patient_id"), on="dyad_id", how="left")
        .with_columns(pl.coalesce("patient_id", "dyad_id").alias("_cluster"))
    )
    rows = []
    for (selection, instrument, measure), part in joined.sort("selection", "instrument", "measure").group_by(
        ["selection", "instrument", "measure"], maintain_order=True
    ):  # one model per measure and pair of groups, not per session
        groups = sorted(part.get_column("group").drop_nulls().unique().to_list())
        for a, b in itertools.combinations(groups, 2):
            pair = part.filter(pl.col("group").is_in([a, b]))
            y = pair.get_column("mean").to_numpy()
            in_a = (pair.get_column("group") == a).to_numpy()
            cluster = pair.get_column("_cluster").to_numpy()
            pa, pb = set(cluster[in_a]), set(cluster[~in_a])
            res = cluster_difference(y, in_a, cluster)
            rows.append(
                {
                    "selection": selection,
                    "instrument": instrument,
                    "measure": measure,
                    "group_a": a,
                    "group_b": b,
                    "n_a": int(in_a.sum()),
                    "n_b": int((~in_a).sum()),
                    "mean_a": float(y[in_a].mean()),
                    "mean_b": float(y[~in_a].mean()),
                    "difference": res["difference"],
                    "ci_low": res.get("ci_low"),
                    "ci_high": res.get("ci_high"),
                    "p": res.get("p"),
                    "n_patients": len(pa | pb),
                    "n_patients_both": len(pa & pb),
                    "method": METHOD,
                    "note": res.get("note"),
                }
            )
    frame = (
        pl.DataFrame(rows, schema=COMPARISON_SCHEMA, orient="row") if rows else pl.DataFrame(schema=COMPARISON_SCHEMA)
    )
    rank = (
        pl.when(pl.col("measure").str.starts_with("item_"))
        .then(pl.col("measure").str.extract(r"(\d+)$").cast(pl.Int64))
        .when(pl.col("measure") == "score")
        .then(pl.lit(1_000_000))
        .otherwise(pl.lit(100_000))
    )
    return frame.sort("selection", "instrument", rank, "measure", "group_a", "group_b")
