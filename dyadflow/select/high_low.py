"""``high_low_alliance``: Ekeblad, Dahlman, Pio, Malmquist & Falkenström (2022).

Steps (as the paper describes them; docs "Session selection"), for all therapies at once:

1. the composite alliance per session: the mean of the patient's and the therapist's
   ratings (``alliance_composite`` of results/stats/sessions.parquet);
2. the composite and the outcome standardised within each patient (``*_z``), or, with
   ``detrend: true``, detrended within patient first (``*_dt``: the paper's advice
   against high sessions piling up late in treatment);
3. within each therapy, next-session outcome regressed on this session's composite; a
   therapy is kept when the slope is significant (``alpha``) and has the expected sign
   (a better alliance followed by better next-session symptoms);
4. in each kept therapy the highest and the lowest composite. A final session is
   replaced by the next-ranked one; so is a high session not followed by an improvement
   at the next session (a BDI-II decrease) and a low session not followed by a worsening.
   A replacement never crosses the patient's own mean: a high session has z > 0, a low
   one z < 0 (of the score used for the ranking). A therapy without such a session has no
   row in that group, and the summary lists it under ``no_eligible_session`` with why.

``reason`` says which step decided each row. The decrease/increase check uses the
observed outcome, also with ``detrend``. ``max_per_group`` keeps, per group, the sessions
with the highest z (high) or the lowest z (low): the project's rule (the paper narrowed
its selection by hand). A therapy is kept when p < alpha (strictly: the paper's
"significantly predicts" at .05).
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish, ordinal, with_defaults
from dyadflow.stats import lagged as lagged_model


def therapies(sessions: pl.DataFrame, params: dict, lower_is_better: bool) -> pl.DataFrame:
    """Steps 2–3: per dyad ``lag_b, lag_p, lag_n``, ``tested`` and ``qualified`` (+ why not)."""
    fit = lagged_model.lagged(sessions, detrend=bool(params["detrend"]), min_pairs=int(params["min_pairs"]))
    sign = params["expected_sign"]
    negative = lower_is_better if sign == "auto" else sign == "negative"
    right_sign = (pl.col("lag_b") < 0) if negative else (pl.col("lag_b") > 0)
    return fit.with_columns(
        pl.col("lag_b").is_not_null().alias("tested"),
        (pl.col("lag_b").is_not_null() & (pl.col("lag_p") < params["alpha"]) & right_sign).alias("qualified"),
        pl.when(pl.col("lag_b").is_null())
        .then(pl.col("_note_lag"))
        .when(pl.col("lag_p") >= params["alpha"])
        .then(pl.format("not significant (p = {})", pl.col("lag_p").round(3)))
        .when(~right_sign)
        .then(pl.lit("wrong sign"))
        .alias("why_not"),
    )


def _skip_flags(cands: pl.DataFrame) -> pl.DataFrame:
    """Per candidate, whether one ranked above it in its dyad and group was skipped, and why."""
    flags = []
    for name in ("final", "no_next", "no_change"):
        above = (
            pl.col(f"_skip_{name}").cast(pl.Int8).cum_max().shift(1, fill_value=0).over(DYAD, "group", order_by="_rank")
        )
        flags.append((above > 0).alias(f"_above_{name}"))
    return cands.with_columns(flags)


def candidates(sessions: pl.DataFrame, qualified: pl.DataFrame, params: dict, lower_is_better: bool) -> pl.DataFrame:
    """Step 4's candidates: every session of a kept therapy on its group's side of the patient's mean, ranked, with skip flags."""
    score = "alliance_composite_dt" if params["detrend"] else "alliance_composite_z"
    last = sessions.group_by(DYAD).agg(pl.col("session").max().alias("_last"))
    base = (
        sessions.join(qualified.select(DYAD), on=DYAD, how="semi")
        .join(last, on=DYAD, how="left")
        .filter(pl.col(score).is_not_null() & pl.col(score).is_not_nan())
        .select(DYAD, "session", "_last", "outcome", "outcome_next", pl.col(score).alias("_z"))
    )
    better = (
        pl.col("outcome_next") < pl.col("outcome") if lower_is_better else pl.col("outcome_next") > pl.col("outcome")
    )
    worse = (
        pl.col("outcome_next") > pl.col("outcome") if lower_is_better else pl.col("outcome_next") < pl.col("outcome")
    )
    words = ("decrease", "increase") if lower_is_better else ("increase", "decrease")
    parts = []
    for group, descending, change, word in (("high", True, better, words[0]), ("low", False, worse, words[1])):
        parts.append(
            base.with_columns(
                pl.lit(group).alias("group"),
                pl.lit("highest" if descending else "lowest").alias("_end"),
                pl.lit(word).alias("_word"),
                (pl.col("session") == pl.col("_last")).alias("_skip_final"),
                (pl.col("outcome_next").is_null() & (pl.col("session") != pl.col("_last"))).alias("_skip_no_next"),
                (pl.col("outcome_next").is_not_null() & ~change.fill_null(False)).alias("_skip_no_change"),
                pl.col("_z").rank("ordinal", descending=descending).over(DYAD, order_by="session").alias("_rank"),
            ).filter((pl.col("_z") > 0) if descending else (pl.col("_z") < 0))  # never across the patient's mean
        )
    cands = pl.concat(parts).sort(DYAD, "group", "_rank")
    cands = cands.with_columns(
        (~(pl.col("_skip_final") | pl.col("_skip_no_next") | pl.col("_skip_no_change"))).alias("_eligible")
    ).with_columns(pl.col("_eligible").cast(pl.Int32).cum_sum().over(DYAD, "group", order_by="_rank").alias("_nth"))
    return _skip_flags(cands)


def no_eligible(cands: pl.DataFrame, qualified: pl.DataFrame, lower_is_better: bool) -> pl.DataFrame:
    """Kept therapies with no eligible session in a group: ``dyad_id, group, reason``."""
    dec, inc = ("decrease", "increase") if lower_is_better else ("increase", "decrease")
    words = {"high": ("above", dec), "low": ("below", inc)}
    wanted = qualified.select(DYAD).join(pl.DataFrame({"group": ["high", "low"]}), how="cross")
    counts = cands.group_by(DYAD, "group").agg(
        pl.len().alias("_n"),
        pl.col("_eligible").any().alias("_any"),
        *[pl.col(f"_skip_{k}").sum().alias(f"_{k}") for k in ("final", "no_next", "no_change")],
    )
    side = pl.col("group").replace_strict({g: w[0] for g, w in words.items()})
    change = pl.col("group").replace_strict({g: w[1] for g, w in words.items()})
    return (
        wanted.join(counts, on=[DYAD, "group"], how="left")
        .filter(~pl.col("_any").fill_null(False))
        .with_columns(pl.col("_n", "_final", "_no_next", "_no_change").fill_null(0))
        .with_columns(
            pl.format(
                "no eligible session: {} session(s) {} the patient's mean composite (z {} 0), none followed by {} "
                "at the next session (final session: {}; no outcome at next session: {}; no {}: {})",
                pl.col("_n"),
                side,
                pl.when(pl.col("group") == "high").then(pl.lit(">")).otherwise(pl.lit("<")),
                pl.when(change == "increase").then(pl.lit("an increase")).otherwise(pl.lit("a decrease")),
                pl.col("_final"),
                pl.col("_no_next"),
                change,
                pl.col("_no_change"),
            ).alias("reason")
        )
        .select(DYAD, "group", "reason")
        .sort("group", DYAD)
    )


def pick(sessions: pl.DataFrame, qualified: pl.DataFrame, params: dict, lower_is_better: bool) -> pl.DataFrame:
    """Step 4 for every kept therapy: the selected sessions with group, z and reason."""
    return _picked(candidates(sessions, qualified, params, lower_is_better), params)


def _picked(cands: pl.DataFrame, params: dict) -> pl.DataFrame:
    picked = cands.filter(pl.col("_eligible") & (pl.col("_nth") <= params["per_dyad"]))
    replaced = (
        pl.concat_list(
            pl.when(pl.col("_above_final")).then(pl.lit("final session")),
            pl.when(pl.col("_above_no_next")).then(pl.lit("no outcome at next session")),
            pl.when(pl.col("_above_no_change")).then(pl.format("no {} at next session", pl.col("_word"))),
        )
        .list.drop_nulls()
        .list.join(", ")
    )
    ranked = pl.format("{}{} composite", ordinal(pl.col("_rank")), pl.col("_end"))
    return picked.with_columns(
        pl.when(replaced == "")
        .then(ranked)
        .otherwise(pl.format("replaced: {} (took the {})", replaced, ranked))
        .alias("reason"),
        pl.col("_z").abs().alias("abs_z"),
    ).select(DYAD, "session", "group", "reason", "abs_z", "_z")


def select(
    sessions: pl.DataFrame, dyads: pl.DataFrame, params: dict, lower_is_better: bool, composite: str | None = None
) -> tuple[pl.DataFrame, dict]:
    """The selection (``dyad_id, session, group, rank, reason``) and its summary.

    ``composite`` names how ``alliance_composite`` was made (``stats.composite``), for the summary.
    """
    params = with_defaults("high_low_alliance", params)
    fits = therapies(sessions, params, lower_is_better)
    qualified = fits.filter(pl.col("qualified"))
    cands = candidates(sessions, qualified, params, lower_is_better)
    picked = _picked(cands, params)
    # rank within the group by signed z: the highest z first among high, the lowest first among low
    signed = pl.when(pl.col("group") == "high").then(-pl.col("_z")).otherwise(pl.col("_z"))
    picked = picked.with_columns(
        signed.rank("ordinal").over("group", order_by=[DYAD, "session"]).cast(pl.Int32).alias("rank")
    )
    if params["max_per_group"] is not None:
        picked = picked.filter(pl.col("rank") <= params["max_per_group"])
    out = summary(picked, sessions, dyads, fits, params)
    if composite is not None:
        out["composite"] = composite
    out["no_eligible_session"] = _no_eligible_summary(no_eligible(cands, qualified, lower_is_better))
    return finish(picked), out


def _no_eligible_summary(missing: pl.DataFrame) -> dict:
    """Per group: how many kept therapies had no eligible session, and each one's reason."""
    return {
        g: {"therapies": part.height, "reasons": part.select(DYAD, "reason").to_dicts()}
        for g in ("high", "low")
        for part in [missing.filter(pl.col("group") == g)]
    }


def _mean(expr: pl.Expr) -> pl.Expr:
    return expr.mean().round(2)


def summary(
    picked: pl.DataFrame, sessions: pl.DataFrame, dyads: pl.DataFrame, fits: pl.DataFrame, params: dict
) -> dict:
    """What the paper reports per group (their Table 1), from the selected sessions."""
    people = dyads.select(
        DYAD,
        "patient_id",
        "therapist_id",
        "outcome_pre",
        "outcome_post",
        "alliance_patient_mean",
        "alliance_therapist_mean",
    )
    rows = picked.join(people, on=DYAD, how="left")
    per_patient = rows.unique(subset=["group", DYAD])
    counts = rows.group_by("group").agg(
        pl.len().alias("sessions"),
        pl.col("patient_id").n_unique().alias("patients"),
        pl.col("therapist_id").n_unique().alias("therapists"),
        pl.col("session").min().alias("session_min"),
        pl.col("session").max().alias("session_max"),
    )
    means = per_patient.group_by("group").agg(
        _mean(pl.col("outcome_pre")).alias("outcome_pre_mean"),
        _mean(pl.col("outcome_post")).alias("outcome_last_mean"),
        _mean(pl.col("alliance_patient_mean")).alias("alliance_patient_mean"),
        _mean(pl.col("alliance_therapist_mean")).alias("alliance_therapist_mean"),
    )
    table = counts.join(means, on="group", how="left").sort("group")
    groups = {r.pop("group"): r for r in table.to_dicts()}
    both = rows.group_by("patient_id").agg(pl.col("group").n_unique()).filter(pl.col("group") > 1).height
    return {
        "strategy": "high_low_alliance",
        "source": "Ekeblad, Dahlman, Pio, Malmquist & Falkenström (2022), Psychotherapy Research, doi 10.1080/10503307.2022.2074806",
        "parameters": params,
        "therapies_tested": int(fits.get_column("tested").sum()),
        "therapies_qualified": int(fits.get_column("qualified").sum()),
        "therapies_total": fits.height,
        "patients_in_both_groups": both,
        "groups": {g: groups.get(g) for g in ("high", "low")},
        "not_qualified": fits.filter(~pl.col("qualified"))
        .group_by(pl.col("why_not").str.replace(r" \(p = .*\)$", "").alias("why"))
        .len()
        .sort("why")
        .rows(),
    }
