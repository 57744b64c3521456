"""Clinician feedback: expected recovery curves, signals and alliance alerts (issue 17).

One row per dyad × session with an outcome score (``results/stats/feedback.parquet``):

- **expected recovery curves**: the 10th, 25th, 50th, 75th and 90th percentile of the
  outcome at a session given the intake score, from linear quantile regressions
  (Koenker & Bassett 1978) of the outcome on intake, log(t + 1) and intake × log(t + 1),
  t = sessions since intake; the log-linear shape and the intake × time term follow the
  expected-recovery curves of Finch, Lambert & Schaalje (2001), used for OQ-45 feedback
  by Lambert et al. (2002). Each dyad's curves come from a model fitted without its own
  fold (cross-fitting), or from an earlier run's scores table (``feedback.reference``);
- **signal**: red / yellow / green / recovered against those curves and the reliable
  change rule of :mod:`dyadflow.stats.change` (Jacobson & Truax 1991), with the rule
  that decided it in ``signal_rule``;
- **alliance alert**: a person-centred drop, an unrepaired rupture
  (:mod:`dyadflow.stats.ruptures`) or both raters in the lower half of the 0–1 scale.

The only Python loop is over folds × quantiles (the 5 × 5 model fits); everything else
runs over all dyads at once with polars expressions and numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from dyadflow.core import config as config_schema
from dyadflow.core.errors import DyadflowError
from dyadflow.core.hashing import stable_hash
from dyadflow.stats import change

DYAD = "dyad_id"
QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
EXPECTED = ["expected_p10", "expected_p25", "expected_p50", "expected_p75", "expected_p90"]
COLUMNS = [
    "dyad_id",
    "session",
    "outcome",
    *EXPECTED,
    "signal",
    "signal_rule",
    "alliance_alert",
    "alliance_alert_reason",
    # additions beyond the contract
    "intake",
    "intake_session",
    "fold",
    "risk_flag",
]
DYAD_COLUMNS = ["signal", "signal_rule", "alliance_alert", "risk_latest", "risk_latest_session"]
# the drop rule needs this many earlier ratings of the rater: the SD of 2 ratings is no person's SD
MIN_EARLIER = 3


def settings(cfg: dict | None) -> dict:
    """The ``feedback`` config with every default of the config schema filled in."""
    return config_schema.section("feedback", cfg)


def _mix(h: np.ndarray) -> np.ndarray:
    """The 64-bit finaliser of MurmurHash3 (fmix64), so that every bit of the FNV hash counts."""
    h = h.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


def fold_of(ids: pl.Series, folds: int) -> np.ndarray:
    """Fold 0 … folds − 1 of each dyad ID by a stable hash (FNV-1a, :mod:`dyadflow.core.hashing`).

    The same ID gets the same fold on every machine and run, whatever the other dyads.
    Cross-fitting as in Chernozhukov et al. (2018, "Double/debiased machine learning",
    The Econometrics Journal 21:C1–C68): a dyad's curves come from the other folds.
    """
    return (_mix(stable_hash(ids.cast(pl.String))) % np.uint64(folds)).astype(np.int64)


def sample_key(ids: pl.Series) -> np.ndarray:
    """A stable hash for the reference sample cap, independent of the fold hash (salted ID)."""
    salted = pl.select(pl.concat_str(pl.lit("feedback-sample:"), pl.lit(ids.cast(pl.String)))).to_series()
    return _mix(stable_hash(salted))


def outcome_rows(scores: pl.DataFrame, outcome: str) -> pl.DataFrame:
    """dyad_id, session, outcome: the mean outcome score per dyad × session of a scores table
    (the reference cohort's; the study's own come from the session table)."""
    return (
        scores.filter((pl.col("instrument") == outcome) & pl.col("score").is_not_null())
        .group_by(DYAD, "session")
        .agg(pl.col("score").cast(pl.Float64).mean().alias("outcome"))
        .sort(DYAD, "session")
    )


def read_reference(path: str, outcome: str) -> pl.DataFrame:
    """The outcome rows of an earlier dyadflow run's scores table (parquet or csv)."""
    need = {DYAD: pl.String, "session": pl.Int64, "instrument": pl.String, "score": pl.Float64}
    try:
        if str(path).lower().endswith(".csv"):
            raw = pl.read_csv(path, infer_schema=False)
        else:
            raw = pl.read_parquet(path)
    except FileNotFoundError:
        raise DyadflowError(
            "the feedback reference scores table does not exist", file=path, key="feedback.reference"
        ) from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DyadflowError(
            f"cannot read the feedback reference scores table ({exc.__class__.__name__})",
            file=path,
            key="feedback.reference",
        ) from None
    for col in need:
        if col not in raw.columns:
            raise DyadflowError(
                "the feedback reference scores table has no such column (it must be an earlier run's results/scores/questionnaires.parquet or .csv)",
                file=path,
                column=col,
            )
    typed = raw.select([pl.col(c).cast(t, strict=False) for c, t in need.items()])
    return outcome_rows(typed, outcome)


def with_intake(rows: pl.DataFrame) -> pl.DataFrame:
    """Add ``intake`` (the dyad's first outcome score), ``intake_session`` and ``log_t`` = log(t + 1),
    t = session − intake_session (sessions since intake, 0 at intake)."""
    rows = rows.filter(pl.col("outcome").is_not_null()).sort(DYAD, "session").rechunk()
    return rows.with_columns(
        pl.col("outcome").first().over(DYAD).alias("intake"),
        pl.col("session").first().over(DYAD).alias("intake_session"),
    ).with_columns(((pl.col("session") - pl.col("intake_session")).cast(pl.Float64) + 1.0).log().alias("log_t"))


def design(rows: pl.DataFrame) -> np.ndarray:
    """The design matrix [1, intake, log(t + 1), intake × log(t + 1)] (Finch, Lambert & Schaalje 2001)."""
    intake = rows.get_column("intake").cast(pl.Float64).to_numpy()
    lt = rows.get_column("log_t").to_numpy()
    return np.column_stack([np.ones(rows.height), intake, lt, intake * lt])


def fit_quantiles(train: pl.DataFrame) -> np.ndarray | None:
    """Coefficients (5 × 4) of the quantile regressions at 0.10 … 0.90 (Koenker & Bassett 1978,
    "Regression quantiles", Econometrica 46:33–50; statsmodels QuantReg), or None when the
    training rows do not identify the model (e.g. every intake the same)."""
    from statsmodels.regression.quantile_regression import QuantReg

    X = design(train)
    y = train.get_column("outcome").to_numpy()
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    params = np.empty((len(QUANTILES), X.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterationLimitWarning / ConvergenceWarning: the fit stays usable
        for i, q in enumerate(QUANTILES):  # 5 fits per fold, never per dyad
            try:
                params[i] = QuantReg(y, X).fit(q=q, max_iter=2000).params
            except (np.linalg.LinAlgError, ValueError):
                return None
    return params


def training_dyads(candidates: pl.DataFrame, cap: int) -> pl.Series:
    """The dyad IDs that train a model: those with an outcome after intake, at most ``cap`` of
    them, the ones with the smallest :func:`sample_key` (a stable-hash sample)."""
    ids = candidates.filter(pl.col("log_t") > 0).get_column(DYAD).unique()
    if ids.len() <= cap:
        return ids
    order = np.argsort(sample_key(ids), kind="stable")[:cap]
    return ids.gather(order)


def training_rows(train: pl.DataFrame, cap: int) -> pl.DataFrame:
    """At most ``cap`` of the training rows (observations): all when there are no more, else the
    ones with the smallest stable hash of the salted "dyad_id|session" key, in their original
    order. The same rows on every run and machine, whatever the other rows; the quantile
    regression on a random sample estimates the same population quantiles as on all rows (its
    cost grows with the rows, not its meaning; bench/RESULTS.md)."""
    if train.height <= cap:
        return train
    key = pl.select(
        pl.concat_str(
            pl.lit("feedback-rows:"),
            pl.lit(train.get_column(DYAD).cast(pl.String)),
            pl.lit("|"),
            pl.lit(train.get_column("session").cast(pl.String)),
        )
    ).to_series()
    keep = np.sort(np.argsort(_mix(stable_hash(key)), kind="stable")[:cap])
    return train[keep]


def predict(rows: pl.DataFrame, params: np.ndarray) -> np.ndarray:
    """Predicted quantiles (n × 5), sorted across quantiles in every row so the curves never
    cross (rearrangement: Chernozhukov, Fernández-Val & Galichon 2010, Econometrica 78:1093–1125).
    ``params`` is (n × 5 × 4): each row's own model. At intake (t = 0) every curve is the intake."""
    pred = np.einsum("nk,nqk->nq", design(rows), params)
    pred = np.sort(pred, axis=1)
    at_intake = rows.get_column("log_t").to_numpy() == 0
    intake = rows.get_column("intake").cast(pl.Float64).to_numpy()
    return np.where(at_intake[:, None], intake[:, None], pred)


def _predicted(rows: pl.DataFrame, fitted: np.ndarray) -> np.ndarray:
    """:func:`predict` of ``rows`` all with the one model ``fitted`` (5 × 4), given as a
    read-only broadcast view instead of a copy per row."""
    return predict(rows, np.broadcast_to(fitted, (rows.height, *fitted.shape)))


def expected_curves(rows: pl.DataFrame, cfg: dict, reference: pl.DataFrame | None = None) -> pl.DataFrame:
    """``rows`` (from :func:`with_intake`) with the five ``expected_p*`` columns and ``fold``.

    Without a reference: folds by :func:`fold_of`; the model for fold k is fitted on the
    (sampled) dyads of the other folds, at most ``max_training_rows`` of their observations
    (:func:`training_rows`); fewer than ``min_reference_dyads`` of them → no
    curves (null) for fold k. With a reference: one model from the reference for all dyads.
    """
    folds, min_n, cap = int(cfg["folds"]), int(cfg["min_reference_dyads"]), int(cfg["max_reference_dyads"])
    max_rows = int(cfg["max_training_rows"])
    n = rows.height
    # predicted fold by fold: no n × 5 × 4 array of every row's model (hundreds of MB at scale)
    pred = np.full((n, len(QUANTILES)), np.nan)
    if reference is not None:
        ref = with_intake(reference)
        ids = training_dyads(ref, cap)
        fitted = (
            fit_quantiles(
                training_rows(ref.filter(pl.col(DYAD).is_in(ids.implode()) & (pl.col("log_t") > 0)), max_rows)
            )
            if ids.len() >= min_n and n
            else None
        )
        if fitted is not None:
            pred = _predicted(rows, fitted)
        fold = pl.lit(None, dtype=pl.Int32).alias("fold")
    else:
        fold_np = fold_of(rows.get_column(DYAD), folds) if n else np.zeros(0, dtype=np.int64)
        with_fold = rows.with_columns(pl.Series("fold", fold_np, dtype=pl.Int32))
        for k in range(folds):  # folds × quantiles model fits, never a loop over dyads
            here = fold_np == k
            if not here.any():
                continue
            others = with_fold.filter(pl.col("fold") != k)
            ids = training_dyads(others, cap)
            if ids.len() < min_n:
                continue
            fitted = fit_quantiles(
                training_rows(others.filter(pl.col(DYAD).is_in(ids.implode()) & (pl.col("log_t") > 0)), max_rows)
            )
            if fitted is not None:
                pred[here] = _predicted(rows.filter(pl.Series(here)), fitted)
        fold = pl.Series("fold", fold_np, dtype=pl.Int32)
    return rows.with_columns(
        fold, *[pl.Series(name, pred[:, i], dtype=pl.Float64).fill_nan(None) for i, name in enumerate(EXPECTED)]
    )


def signal_columns(lower_is_better: bool) -> list[pl.Expr]:
    """``signal`` and ``signal_rule`` from the curves and the row's ``change_category``.

    Precedence (the first that applies decides): the intake row (null, ``intake``);
    reliable deterioration since intake (red; Lambert et al. 2002 treat it as not on
    track); recovered (the stats' recovered rule, Jacobson & Truax 1991); worse than the
    90th (lower is better: strictly above p90; higher is better: strictly below p10) red;
    worse than the 75th (above p75 up to p90 / from p10 to below p25) yellow; else green.
    Without curves the reliable-change fallback: deterioration red, recovered, improved
    or unchanged green (``fallback_rci_*``); without a reliable-change rule either, null.
    """
    out, cat = pl.col("outcome"), pl.col("change_category")
    if lower_is_better:
        red, yellow = out > pl.col("expected_p90"), out > pl.col("expected_p75")
        red_rule, yellow_rule = "above_p90", "p75_to_p90"
    else:
        red, yellow = out < pl.col("expected_p10"), out < pl.col("expected_p25")
        red_rule, yellow_rule = "below_p10", "p10_to_p25"
    curves = pl.col("expected_p90").is_not_null() & pl.col("expected_p10").is_not_null()
    decided = [
        (pl.col("session") == pl.col("intake_session"), None, "intake"),
        (curves & (cat == "deteriorated"), "red", "reliable_deterioration"),
        (curves & (cat == "recovered"), "recovered", "recovered"),
        (curves & red, "red", red_rule),
        (curves & yellow, "yellow", yellow_rule),
        (curves, "green", "within_expected"),
        (cat == "deteriorated", "red", "fallback_rci_deterioration"),
        (cat == "recovered", "recovered", "fallback_rci_recovered"),
        (cat == "improved", "green", "fallback_rci_improved"),
        (cat == "unchanged", "green", "fallback_rci_unchanged"),
    ]
    signal = pl.when(decided[0][0]).then(pl.lit(decided[0][1], dtype=pl.String))
    rule = pl.when(decided[0][0]).then(pl.lit(decided[0][2]))
    for cond, sig, name in decided[1:]:  # the rules, not rows
        signal = signal.when(cond).then(pl.lit(sig, dtype=pl.String))
        rule = rule.when(cond).then(pl.lit(name))
    return [
        signal.otherwise(None).alias("signal"),
        rule.otherwise(pl.lit("no_curves_no_reliable_change_rule")).alias("signal_rule"),
    ]


def _fmt(expr: pl.Expr) -> pl.Expr:
    return expr.round(2).cast(pl.String)


def alliance_alerts(
    rows: pl.DataFrame,
    sessions: pl.DataFrame,
    rup: pl.DataFrame,
    ranges: dict[str, tuple[float, float]],
    alliance_sd: float,
    repair_window: int,
) -> pl.DataFrame:
    """dyad_id, session, alliance_alert, alliance_alert_reason at each of ``rows``' sessions.

    Each rater's latest rating up to and including the session decides:

    - ``drop``: the latest rating is more than ``alliance_sd`` SDs below the mean of that
      rater's earlier ratings (SD of the earlier ratings, ddof 1, at least
      :data:`MIN_EARLIER` (3) earlier ratings: the SD of 2 ratings made a rating a hair
      below two equal ones an alert; strictly more: exactly ``alliance_sd`` SDs below is no alert);
    - ``rupture``: a rupture of :mod:`dyadflow.stats.ruptures` at session r ≤ s that is not
      repaired by s, while its repair window is open (s ≤ r + repair_window) and the
      rater's latest rating is still below the mean of their earlier ratings (a drop from
      a one-off peak back to the usual level is not kept as an alert);
    - ``lower half``: both raters' latest ratings below 0.5 on 0–1 ((x − min)/(max − min)
      with the registry's range; exactly 0.5 is not the lower half).

    Null when neither rater has a rating up to the session.
    """
    keys = rows.select(DYAD, pl.col("session").cast(pl.Int64)).sort(DYAD, "session")
    out = keys
    for rater in ("patient", "therapist"):  # the two raters
        lo, hi = ranges[rater]
        r = (
            sessions.select(
                DYAD, pl.col("session").cast(pl.Int64), pl.col(f"alliance_{rater}").cast(pl.Float64).alias("v")
            )
            .drop_nulls("v")
            .sort(DYAD, "session")
            .rechunk()
            .with_columns(
                pl.int_range(pl.len()).over(DYAD).cast(pl.Float64).alias("n"),
                (pl.col("v").cum_sum().over(DYAD) - pl.col("v")).alias("_s"),
                ((pl.col("v") ** 2).cum_sum().over(DYAD) - pl.col("v") ** 2).alias("_ss"),
            )
            .with_columns((pl.col("_s") / pl.col("n")).alias("mean"))
            .with_columns(
                ((pl.col("_ss") - pl.col("_s") * pl.col("mean")) / (pl.col("n") - 1))
                .clip(lower_bound=0.0)
                .sqrt()
                .alias("sd")
            )
            .with_columns(
                ((pl.col("n") >= MIN_EARLIER) & (pl.col("v") < pl.col("mean") - alliance_sd * pl.col("sd"))).alias(
                    "drop"
                ),
                ((pl.col("v") - lo) / (hi - lo)).alias("pomp"),
            )
            .select(
                DYAD,
                pl.col("session").alias("_rs"),
                pl.col("session"),
                *[pl.col(c).alias(f"{rater}_{c}") for c in ("v", "n", "mean", "sd", "drop", "pomp")],
            )
        )
        out = out.join_asof(r, on="session", by=DYAD, strategy="backward", check_sortedness=False).rename(
            {"_rs": f"{rater}_session"}
        )
        ru = (
            keys.join(
                rup.filter(pl.col("rater") == rater).select(
                    DYAD, "rupture_session", "repair_session", "pre_alliance", "rupture_alliance"
                ),
                on=DYAD,
                how="inner",
            )
            .filter(
                (pl.col("rupture_session") <= pl.col("session"))
                & (pl.col("session") <= pl.col("rupture_session") + repair_window)
                & (pl.col("repair_session").is_null() | (pl.col("repair_session") > pl.col("session")))
            )
            .group_by(DYAD, "session")
            .agg(pl.all().sort_by("rupture_session").last())
            .select(
                DYAD,
                "session",
                *[pl.col(c).alias(f"{rater}_{c}") for c in ("rupture_session", "pre_alliance", "rupture_alliance")],
            )
        )
        out = out.join(ru, on=[DYAD, "session"], how="left").with_columns(
            # a rupture alerts only while the rater's latest rating is still below their own earlier
            # mean: a fall from a one-off peak back to the usual level is no rupture to act on
            pl.when(pl.col(f"{rater}_v") < pl.col(f"{rater}_mean"))
            .then(pl.col(f"{rater}_rupture_session"))
            .alias(f"{rater}_rupture_session")
        )
    low = (pl.col("patient_pomp") < 0.5) & (pl.col("therapist_pomp") < 0.5)
    parts = []
    for rater in ("patient", "therapist"):
        p = f"{rater}_"
        parts.append(
            pl.when(pl.col(p + "drop")).then(
                pl.concat_str(
                    pl.lit(f"{rater}: latest rating "),
                    _fmt(pl.col(p + "v")),
                    pl.lit(f" more than {alliance_sd:g} SD below the earlier mean "),
                    _fmt(pl.col(p + "mean")),
                    pl.lit(" (SD "),
                    _fmt(pl.col(p + "sd")),
                    pl.lit(", "),
                    pl.col(p + "n").cast(pl.Int64).cast(pl.String),
                    pl.lit(" earlier ratings)"),
                )
            )
        )
        parts.append(
            pl.when(pl.col(p + "rupture_session").is_not_null()).then(
                pl.concat_str(
                    pl.lit(f"{rater}: unrepaired rupture at session "),
                    pl.col(p + "rupture_session").cast(pl.String),
                    pl.lit(" ("),
                    _fmt(pl.col(p + "pre_alliance")),
                    pl.lit(" → "),
                    _fmt(pl.col(p + "rupture_alliance")),
                    pl.lit(")"),
                )
            )
        )
    parts.append(
        pl.when(low).then(
            pl.concat_str(
                pl.lit("both raters in the lower half of the 0-1 scale (patient "),
                _fmt(pl.col("patient_pomp")),
                pl.lit(", therapist "),
                _fmt(pl.col("therapist_pomp")),
                pl.lit(")"),
            )
        )
    )
    any_rating = pl.col("patient_v").is_not_null() | pl.col("therapist_v").is_not_null()
    fired = (
        pl.col("patient_drop").fill_null(False)
        | pl.col("therapist_drop").fill_null(False)
        | pl.col("patient_rupture_session").is_not_null()
        | pl.col("therapist_rupture_session").is_not_null()
        | low.fill_null(False)
    )
    return out.select(
        DYAD,
        "session",
        pl.when(any_rating).then(fired).alias("alliance_alert"),
        pl.when(~any_rating)
        .then(pl.lit("no alliance rating up to this session"))
        .otherwise(pl.concat_str(parts, separator="; ", ignore_nulls=True))
        .alias("alliance_alert_reason"),
    ).with_columns(
        pl.when(pl.col("alliance_alert_reason") != "")
        .then(pl.col("alliance_alert_reason"))
        .alias("alliance_alert_reason")
    )


def risk_by_session(scores: pl.DataFrame) -> pl.DataFrame:
    """dyad_id, session, risk_flag: true when any questionnaire of that session flags a risk item,
    false when some carry a flag and none is true, null when none carries one (for the
    report's risk override, which belongs to the report)."""
    if "risk_flag" not in scores.columns:
        return pl.DataFrame(schema={DYAD: pl.String, "session": pl.Int64, "risk_flag": pl.Boolean})
    return (
        scores.select(DYAD, pl.col("session").cast(pl.Int64), pl.col("risk_flag").cast(pl.Boolean))
        .drop_nulls("risk_flag")
        .group_by(DYAD, "session")
        .agg(pl.col("risk_flag").any())
        .sort(DYAD, "session")
    )


def feedback_table(
    sessions: pl.DataFrame,
    scores: pl.DataFrame,
    rule: change.ChangeRule,
    rup: pl.DataFrame,
    ranges: dict[str, tuple[float, float]],
    cfg: dict | None = None,
    repair_window: int = 3,
    reference: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The feedback table: one row per dyad × session with an outcome score (:data:`COLUMNS`)."""
    s = settings(cfg)
    rows = with_intake(sessions.select(DYAD, pl.col("session").cast(pl.Int64), pl.col("outcome").cast(pl.Float64)))
    rows = expected_curves(rows, s, reference)
    rows = rows.with_columns(change.change_columns(rule, pre="intake", post="outcome")).with_columns(
        signal_columns(rule.lower_is_better)
    )
    alerts = alliance_alerts(rows, sessions, rup, ranges, float(s["alliance_sd"]), int(repair_window))
    return (
        rows.join(alerts, on=[DYAD, "session"], how="left")
        .join(risk_by_session(scores), on=[DYAD, "session"], how="left")
        .with_columns(pl.col("intake_session").cast(pl.Int64))
        .sort(DYAD, "session")
        .select(COLUMNS)
    )


def dyad_latest(dyads: pl.DataFrame, fb: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """Per dyad: the latest session's ``signal``, ``signal_rule`` and ``alliance_alert``, and the
    risk flag of the latest session carrying one (``risk_latest``, ``risk_latest_session``)."""
    latest = fb.group_by(DYAD).agg(pl.col("signal", "signal_rule", "alliance_alert").sort_by("session").last())
    risk = (
        risk_by_session(scores)
        .group_by(DYAD)
        .agg(
            pl.col("risk_flag").sort_by("session").last().alias("risk_latest"),
            pl.col("session").max().alias("risk_latest_session"),
        )
    )
    return (
        dyads.select(DYAD).join(latest, on=DYAD, how="left").join(risk, on=DYAD, how="left").select(DYAD, *DYAD_COLUMNS)
    )
