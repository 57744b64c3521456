"""Multilevel lagged alliance → next-session outcome model (``results/stats/multilevel.json``).

The model (Falkenström et al. 2013, 2017; Wang & Maxwell 2015)::

    outcome(t+1) = b0 + b_within · alliance_within(t) + b_between · alliance_between
                   [+ b_outcome · outcome_within(t)]
                   + u_therapist + u_dyad + v_dyad · alliance_within(t) + e

- ``alliance_between`` is the dyad's mean alliance over all its rated sessions (the
  person mean), ``alliance_within`` = alliance − that mean (person-mean centring);
- with ``detrend`` the dyad's linear trend over session number is removed from alliance
  and outcome first (the residual of a within-dyad regression on session, as the ``_dt``
  columns of the session table, but kept on the raw scale, so the person means stay);
- with ``covariate_outcome`` the current session's outcome, person-mean centred, is a
  covariate: the model then predicts change to the next session (Falkenström et al. 2013);
- random effects: statsmodels :class:`~statsmodels.regression.mixed_linear_model.MixedLM`
  with therapists as groups (random intercept) and, within each therapist, a variance
  component for the dyad intercept and one for the dyad's within-person slope (a dyad is
  a patient nested in a therapist). MixedLM's variance components are independent, so
  the dyad intercept and slope are uncorrelated. With fewer than two therapists (or no
  therapist IDs) the therapist level is left out: dyads are the groups, with a
  correlated random intercept and slope, and the output says so. The same happens above
  ``max_nested_dyads`` dyads: the nested fit's time grows with the cube of the dyads per
  therapist (minutes at 2,000 dyads in 20 therapists on a loaded 2-core machine).

Fitted by REML. Any fitting problem (a convergence warning, a singular matrix, too few
observations) gives ``converged: false`` and a message; the workflow never fails on it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl

from dyadflow.core import config as config_schema
from dyadflow.stats import grouped

DYAD = "dyad_id"
OPTIMISERS = [
    "lbfgs",
    "cg",
]  # statsmodels tries the next when one fails; its default (bfgs first) often stops early with variance components
TERMS = {
    "alliance_within": "alliance_within",
    "alliance_between": "alliance_between",
    "outcome_within": "outcome_within",
}


def prepare(
    sessions: pl.DataFrame, dyads: pl.DataFrame, predictor: str = "composite", detrend: bool = False
) -> pl.DataFrame:
    """The model's rows: one per dyad × session with alliance(t) and outcome(t+1) observed.

    Columns: dyad_id, patient_id, therapist_id, session, outcome_next (y), outcome
    (current), alliance_within, alliance_between, outcome_within.
    """
    x_col = f"alliance_{predictor}"
    t = grouped.sort_by(sessions.select(DYAD, "session", x_col, "outcome", "outcome_next_session"), DYAD, "session")
    g, n_groups = grouped.group_index(t, DYAD)
    session = grouped.values(t, "session")
    x = grouped.values(t, x_col)
    y = grouped.values(t, "outcome")
    x_mean, _ = grouped.group_mean(x, g, n_groups)
    y_mean, _ = grouped.group_mean(y, g, n_groups)
    if detrend:
        x_dev = grouped.detrend(x, session, g, n_groups)
        y_dev = grouped.detrend(y, session, g, n_groups)
    else:
        x_dev = x - x_mean[g]
        y_dev = y - y_mean[g]
    t = t.with_columns(
        grouped.column("alliance_within", x_dev),
        grouped.column("alliance_between", x_mean[g]),
        grouped.column("outcome_within", y_dev),
        # the (detrended) outcome on its own scale: deviation + person mean
        grouped.column("_y", y_dev + y_mean[g]),
    )
    nxt = t.select(DYAD, pl.col("session").alias("outcome_next_session"), pl.col("_y").alias("outcome_next"))
    out = (
        t.join(nxt, on=[DYAD, "outcome_next_session"], how="left")
        .join(dyads.select(DYAD, "patient_id", "therapist_id"), on=DYAD, how="left")
        .filter(pl.col("outcome_next").is_not_null() & pl.col("alliance_within").is_not_null())
    )
    return out.select(
        DYAD,
        "patient_id",
        "therapist_id",
        "session",
        "outcome_next",
        pl.col("_y").alias("outcome"),
        "alliance_within",
        "alliance_between",
        "outcome_within",
    ).sort(DYAD, "session")


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def fit(
    rows: pl.DataFrame, covariate_outcome: bool = True, min_observations: int = 20, max_nested_dyads: int = 1000
) -> dict:
    """Fit the model on :func:`prepare`'s rows; a dict for ``multilevel.json``."""
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    terms = ["alliance_within", "alliance_between"] + (["outcome_within"] if covariate_outcome else [])
    rows = rows.drop_nulls(["outcome_next", *terms])
    n_missing_therapist = rows.get_column("therapist_id").null_count()
    therapists = rows.get_column("therapist_id").drop_nulls().n_unique()
    n_dyads = rows.get_column(DYAD).n_unique()
    nested = therapists >= 2 and n_missing_therapist == 0 and n_dyads <= max_nested_dyads
    formula = "outcome_next ~ " + " + ".join(terms)
    out: dict = {
        "model": formula.replace("outcome_next", "outcome(t+1)"),
        "terms": terms,
        "n_observations": rows.height,
        "n_dyads": n_dyads,
        "n_patients": rows.get_column("patient_id").n_unique(),
        "n_therapists": therapists,
        "therapist_level": nested,
        "method": "REML",
        "converged": False,
        "message": None,
        "fixed_effects": {},
        "variance_components": {},
    }
    if nested:
        out["random_effects"] = (
            "therapist random intercept (groups); dyad random intercept and dyad random slope of alliance_within "
            "as independent variance components within therapist"
        )
    else:
        if n_missing_therapist:
            why = f"{n_missing_therapist} observation(s) without a therapist ID"
        elif therapists < 2:
            why = f"{therapists} therapist(s), the therapist level needs at least 2"
        else:
            why = (
                f"{n_dyads} dyads, more than stats.multilevel.max_nested_dyads ({max_nested_dyads}); "
                "the nested fit's time grows with the cube of the dyads per therapist"
            )
        out["random_effects"] = (
            "dyad random intercept and random slope of alliance_within (correlated); no therapist level"
        )
        out["message"] = f"fitted without the therapist level: {why}"
    dyads_with_two = rows.group_by(DYAD).len().filter(pl.col("len") >= 2).height
    if rows.height < min_observations or dyads_with_two < 2:
        out["message"] = (
            f"not fitted: {rows.height} observation(s) in {dyads_with_two} dyad(s) with at least 2 session pairs; "
            f"the model needs {min_observations} observations and 2 such dyads"
        )
        return out
    if float(np.nanvar(rows.get_column("alliance_within").to_numpy())) == 0.0:
        out["message"] = "not fitted: alliance has no within-dyad variation"
        return out
    data = pd.DataFrame({c: rows.get_column(c).to_numpy() for c in ["outcome_next", *terms]})
    data["dyad"] = rows.get_column(DYAD).cast(pl.String).to_numpy()
    if nested:
        data["therapist"] = rows.get_column("therapist_id").cast(pl.String).to_numpy()
        model = smf.mixedlm(
            formula,
            data,
            groups="therapist",
            re_formula="1",
            vc_formula={"dyad": "0 + C(dyad)", "dyad_slope": "0 + C(dyad):alliance_within"},
        )
    else:
        model = smf.mixedlm(formula, data, groups="dyad", re_formula="1 + alliance_within")
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(reml=True, method=OPTIMISERS)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
            out["message"] = f"not fitted: the model could not be estimated ({type(exc).__name__}: {exc})"
            return out
    boundary = False
    for w in caught:
        text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else w.category.__name__
        if "boundary" in text.lower():
            boundary = True  # a variance estimated at (or near) zero: a result, not a failure
        elif issubclass(w.category, ConvergenceWarning) or "converge" in text.lower() or "singular" in text.lower():
            problems.append(text)
    converged = bool(res.converged) and not problems
    ci = res.conf_int()
    fe = {}
    for name in ["Intercept", *terms]:
        fe[TERMS.get(name, "intercept")] = {
            "estimate": _num(res.fe_params[name]),
            "se": _num(res.bse_fe[name]),
            "ci_low": _num(ci.loc[name, 0]),
            "ci_high": _num(ci.loc[name, 1]),
            "p": _num(res.pvalues[name]),
        }
    vc: dict = {"residual": _num(res.scale)}
    cov_re = np.asarray(res.cov_re)
    if nested:
        vc["therapist_intercept"] = _num(cov_re[0, 0])
        names = list(model.exog_vc.names)
        for name, v in zip(names, np.asarray(res.vcomp), strict=False):
            vc["dyad_intercept" if name == "dyad" else "dyad_slope"] = _num(v)
    else:
        vc["dyad_intercept"] = _num(cov_re[0, 0])
        vc["dyad_slope"] = _num(cov_re[1, 1])
        vc["dyad_intercept_slope_cov"] = _num(cov_re[0, 1])
    if any(v is None for e in fe.values() for v in (e["estimate"], e["se"])):
        converged = False
        problems.append("standard errors could not be computed (the Hessian is not positive definite)")
    out.update(converged=converged, fixed_effects=fe, variance_components=vc, log_likelihood=_num(res.llf))
    if boundary:
        small = ", ".join(
            k
            for k, v in vc.items()
            if k in ("therapist_intercept", "dyad_intercept", "dyad_slope")
            and v is not None
            and v < 1e-4 * max(vc["residual"] or 1.0, 1e-12)
        )
        note = "a variance component is estimated at or near zero (the boundary of the parameter space)" + (
            f": {small}" if small else ""
        )
        out["message"] = f"{out['message']}; {note}" if out["message"] else note
    if not converged:
        detail = "; ".join(dict.fromkeys(problems)) or "the optimiser did not converge"
        note = f"the model did not converge ({detail}): the estimates are not reliable"
        out["message"] = f"{out['message']}; {note}" if out["message"] else note
    return out


def run(sessions: pl.DataFrame, dyads: pl.DataFrame, cfg: dict | None = None, max_gap: int = 1) -> dict:
    """Prepare and fit with the ``stats.multilevel`` settings; the dict for ``multilevel.json``."""
    opts = config_schema.section("stats", {"multilevel": cfg or {}})["multilevel"]
    rows = prepare(sessions, dyads, opts["predictor"], bool(opts["detrend"]))
    out = fit(rows, bool(opts["covariate_outcome"]), int(opts["min_observations"]), int(opts["max_nested_dyads"]))
    out["options"] = {**opts, "max_gap": max_gap}
    return out
