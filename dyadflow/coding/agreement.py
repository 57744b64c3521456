"""Agreement between coders: intraclass correlations, Cohen's and Fleiss' kappa, Krippendorff's alpha.

The functions take a long table, one row per target (a coded session) × coder, and
hand the wide target × coder matrix to maintained libraries:

- ICC: :func:`pingouin.intraclass_corr` (Shrout & Fleiss 1979; McGraw & Wong 1996);
  pingouin's ``ICC(A,1)``/``ICC(A,k)`` are Shrout & Fleiss' ICC(2,1)/ICC(2,k) (two-way
  random, absolute agreement), ``ICC(C,1)`` is ICC(3,1) and ``ICC(1,1)`` the one-way model;
- Cohen's kappa (Cohen 1960): :func:`statsmodels.stats.inter_rater.cohens_kappa` on the
  coders' contingency table, with its asymptotic 95 % CI;
- Fleiss' kappa (Fleiss 1971): :func:`statsmodels.stats.inter_rater.fleiss_kappa` on the
  subject × category counts;
- Krippendorff's alpha (Krippendorff 2004, 2011): :func:`krippendorff.alpha`, which uses
  every pairable rating, so it is the statistic for ratings missing by design.

:func:`agreement_table` applies the choice rules per instrument × measure (see the
docs, "Agreement between coders") and returns the rows of ``agreement.csv``.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import polars as pl

from dyadflow.core.errors import DyadflowError

TARGET, CODER, VALUE = "target", "coder", "value"
MIN_TARGETS = 3  # targets rated by every coder a kappa or ICC needs (pingouin's ANOVA needs 5 ratings)
AGREEMENT_COLUMNS = [
    "instrument",
    "measure",
    "statistic",
    "level",
    "value",
    "ci_low",
    "ci_high",
    "n_targets",
    "n_coders",
    "note",
]
AGREEMENT_SCHEMA = {
    "instrument": pl.String,
    "measure": pl.String,
    "statistic": pl.String,
    "level": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_targets": pl.Int32,
    "n_coders": pl.Int32,
    "note": pl.String,
}


def _check_unique(ratings: pl.DataFrame, target: str, coder: str, what: str = "") -> None:
    dup = ratings.group_by(target, coder).len().filter(pl.col("len") > 1).sort(target, coder)
    if dup.height:
        t, c, n = dup.row(0)
        raise DyadflowError(
            f"{what}target '{t}' has {n} ratings by coder '{c}'; agreement needs one rating per target and coder"
        )


def wide(
    ratings: pl.DataFrame, target: str = TARGET, coder: str = CODER, value: str = VALUE
) -> tuple[list, list, pl.DataFrame]:
    """The target × coder matrix (targets and coders sorted; null where a coder did not rate)."""
    _check_unique(ratings, target, coder)
    coders = sorted(ratings.get_column(coder).unique().drop_nulls().to_list())
    w = (
        ratings.select(target, pl.col(coder).cast(pl.String), value)
        .pivot(on=coder, index=target, values=value)
        .sort(target)
    )
    names = [str(c) for c in coders]
    return w.get_column(target).to_list(), names, w.select(names)


def icc(ratings: pl.DataFrame, target: str = TARGET, coder: str = CODER, value: str = VALUE) -> dict:
    """ICC(1,1), ICC(2,1), ICC(3,1), ICC(2,k) (and ICC(1,k), ICC(3,k)) with 95 % CIs.

    Only targets rated by every coder enter (pingouin's listwise deletion). Returns
    ``{"icc2_1": {"value", "ci_low", "ci_high", "F", "df1", "df2", "p"}, …, "n_targets", "n_coders"}``.
    """
    import pingouin as pg
    from pingouin.config import _no_rounding

    _, _, m = wide(ratings, target, coder, value)
    x = m.cast(pl.Float64).to_numpy()
    complete = ~np.isnan(x).any(axis=1)
    x = x[complete]
    n, k = x.shape
    out: dict = {"n_targets": int(n), "n_coders": int(k)}
    if n < MIN_TARGETS or k < 2 or np.ptp(x) == 0:
        return out  # too few ratings, or no variation at all
    import warnings

    import pandas as pd  # pingouin's input (built from numpy: polars' to_pandas needs pyarrow)

    long = pd.DataFrame({"t": np.repeat(np.arange(n), k), "r": np.tile(np.arange(k), n), "v": x.ravel()})
    with _no_rounding(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pingouin's pandas deprecation notices
        res = pg.intraclass_corr(data=long, targets="t", raters="r", ratings="v")
    names = {
        "ICC(1,1)": "icc1_1",
        "ICC(A,1)": "icc2_1",
        "ICC(C,1)": "icc3_1",
        "ICC(1,k)": "icc1_k",
        "ICC(A,k)": "icc2_k",
        "ICC(C,k)": "icc3_k",
    }
    for row in res.itertuples(index=False):
        ci = np.asarray(row.CI95, dtype=float)
        if not np.isfinite(row.ICC):
            continue  # no variance at all: not computable
        out[names[row.Type]] = {
            "value": float(row.ICC),
            "ci_low": float(ci[0]),
            "ci_high": float(ci[1]),
            "F": float(row.F),
            "df1": int(row.df1),
            "df2": int(row.df2),
            "p": float(row.pval),
        }
    return out


def _codes(m: pl.DataFrame) -> tuple[np.ndarray, list]:
    """Categorical matrix → integer codes 0..c-1 (NaN where missing) and the sorted categories."""
    cats = sorted({v for c in m.columns for v in m.get_column(c).cast(pl.String).drop_nulls().unique().to_list()})
    lookup = {v: float(i) for i, v in enumerate(cats)}
    x = (
        np.column_stack(
            [
                m.get_column(c).cast(pl.String).replace_strict(lookup, default=None, return_dtype=pl.Float64).to_numpy()
                for c in m.columns
            ]
        )
        if m.width
        else np.empty((m.height, 0))
    )
    return x, cats


def cohen_kappa(ratings: pl.DataFrame, target: str = TARGET, coder: str = CODER, value: str = VALUE) -> dict:
    """Cohen's kappa of exactly two coders on the targets both rated, with the asymptotic 95 % CI."""
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    _, coders, m = wide(ratings, target, coder, value)
    if len(coders) != 2:
        raise ValueError(f"Cohen's kappa needs exactly 2 coders, got {len(coders)}")
    x, cats = _codes(m)
    x = x[~np.isnan(x).any(axis=1)].astype(int)
    out = {"n_targets": int(x.shape[0]), "n_coders": 2, "categories": cats}
    if x.shape[0] < MIN_TARGETS or len(cats) < 2:
        return out
    table = np.zeros((len(cats), len(cats)))
    np.add.at(table, (x[:, 0], x[:, 1]), 1)
    if np.isclose((table.sum(axis=0) * table.sum(axis=1)).sum() / table.sum() ** 2, 1.0):
        return out  # both coders used one and the same code throughout: chance agreement is 1
    res = sm_kappa(table)
    return {
        **out,
        "value": float(res.kappa),
        "ci_low": float(res.kappa_low),
        "ci_high": float(res.kappa_upp),
        "table": table,
    }


def fleiss_kappa(ratings: pl.DataFrame, target: str = TARGET, coder: str = CODER, value: str = VALUE) -> dict:
    """Fleiss' kappa on the targets rated by every coder (subject × category counts)."""
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    _, coders, m = wide(ratings, target, coder, value)
    x, cats = _codes(m)
    x = x[~np.isnan(x).any(axis=1)].astype(int)
    out = {"n_targets": int(x.shape[0]), "n_coders": len(coders), "categories": cats}
    if x.shape[0] < MIN_TARGETS or len(coders) < 2 or len(cats) < 2:
        return out
    counts = np.stack([(x == c).sum(axis=1) for c in range(len(cats))], axis=1)
    return {**out, "value": float(sm_fleiss(counts, method="fleiss")), "counts": counts}


def krippendorff_alpha(
    ratings: pl.DataFrame, level: str, target: str = TARGET, coder: str = CODER, value: str = VALUE
) -> dict:
    """Krippendorff's alpha over all pairable ratings (missing ratings allowed); level nominal or interval."""
    import krippendorff

    _, coders, m = wide(ratings, target, coder, value)
    if level == "nominal":
        x, _ = _codes(m)
    else:
        x = m.cast(pl.Float64).to_numpy() if m.width else np.empty((m.height, 0))
    pairable = (~np.isnan(x)).sum(axis=1) >= 2
    out = {"n_targets": int(pairable.sum()), "n_coders": len(coders)}
    if pairable.sum() < 1 or len(coders) < 2:
        return out
    x = x[pairable]
    if np.unique(x[~np.isnan(x)]).size < 2:
        return out  # one value throughout: no variation to agree on
    return {**out, "value": float(krippendorff.alpha(reliability_data=x.T, level_of_measurement=level))}


def _row(
    instrument: str,
    measure: str,
    statistic: str,
    level: str | None,
    res: dict,
    note: str | None,
    est: dict | None = None,
) -> dict:
    est = est if est is not None else res
    value = est.get("value")
    if value is None and note is None:
        note = "not computable: no variation in the ratings"
    return {
        "instrument": instrument,
        "measure": measure,
        "statistic": statistic,
        "level": level,
        "value": value,
        "ci_low": est.get("ci_low"),
        "ci_high": est.get("ci_high"),
        "n_targets": res.get("n_targets"),
        "n_coders": res.get("n_coders"),
        "note": note,
    }


def agreement_table(ratings: pl.DataFrame, categorical: Collection[str] = ()) -> pl.DataFrame:
    """Rows of ``agreement.csv``: per instrument × measure, the statistics the choice rules pick.

    ``ratings`` has the columns instrument, measure (item_01 / a subscale / total),
    target, coder and value. Instruments named in ``categorical`` hold codes; all others
    numeric ratings. Choice rules (the docs' "Agreement between coders"):

    - numeric: ICC(2,1) and ICC(2,k) (two-way random, absolute agreement) with 95 % CI
      on the targets rated by every coder;
    - categorical: Cohen's kappa with 95 % CI for 2 coders, Fleiss' kappa for more,
      on the targets rated by every coder;
    - ratings missing by design (some target not rated by every coder): in addition
      Krippendorff's alpha (interval for numeric, nominal for codes) over all ratings.

    A statistic that cannot be computed has a null value and a note saying why.
    """
    rows: list[dict] = []
    if ratings.height == 0:
        return pl.DataFrame(schema=AGREEMENT_SCHEMA)
    keys = ratings.select("instrument", "measure").unique().sort("instrument", "measure").rows()
    for instrument, measure in keys:  # one pass per instrument × measure, not per target
        part = ratings.filter((pl.col("instrument") == instrument) & (pl.col("measure") == measure)).drop_nulls(VALUE)
        _check_unique(part, TARGET, CODER, f"{instrument} {measure}: ")
        n_all = part.get_column(TARGET).n_unique()
        n_coders = part.get_column(CODER).n_unique()
        missing = part.height < n_all * n_coders
        nominal = instrument in categorical
        if nominal:
            part = part.with_columns(pl.col(VALUE).cast(pl.String))
            if n_coders == 2:
                res = cohen_kappa(part)
                ests = [("cohen_kappa", res)]
            else:
                res = fleiss_kappa(part)
                note = (
                    "Fleiss' kappa has no confidence interval here (statsmodels gives none)"
                    if res.get("value") is not None
                    else None
                )
                ests = [("fleiss_kappa", {**res, "_note": note})]
        else:
            res = icc(part.with_columns(pl.col(VALUE).cast(pl.Float64)))
            ests = [("icc2_1", res.get("icc2_1", {})), ("icc2_k", res.get("icc2_k", {}))]
        dropped = n_all - res["n_targets"]
        for stat, est in ests:
            note = est.get("_note")
            if dropped and res["n_targets"] >= MIN_TARGETS and n_coders >= 2:
                note = f"{res['n_targets']} of {n_all} targets rated by all {n_coders} coders; see krippendorff_alpha"
            elif n_coders < 2:
                note = f"{n_coders} coder(s): agreement needs at least 2"
            elif res["n_targets"] < MIN_TARGETS:
                note = f"{res['n_targets']} target(s) rated by all {n_coders} coders, needs {MIN_TARGETS}"
            rows.append(_row(instrument, measure, stat, "nominal" if nominal else "interval", res, note, est))
        if missing:
            level = "nominal" if nominal else "interval"
            ka = krippendorff_alpha(part, level)
            rows.append(_row(instrument, measure, "krippendorff_alpha", level, ka, None))
    return pl.DataFrame(rows, schema=AGREEMENT_SCHEMA, orient="row").select(AGREEMENT_COLUMNS)
