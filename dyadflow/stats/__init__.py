"""Stats: per-session, per-dyad and cohort alliance and outcome statistics.

One small module per concept:

- :mod:`.sessions`: the dyad × session table, within-dyad z-scores and detrending;
- :mod:`.change`: reliable change (Jacobson & Truax 1991) and change categories;
- :mod:`.alliance`: alliance means, early alliance, slopes, rater agreement;
- :mod:`.lagged`: within-dyad lagged regression outcome(t+1) ~ alliance(t), and the
  pooled fixed-effects version;
- :mod:`.sudden_gains`: Tang & DeRubeis sudden gains and losses;
- :mod:`.ruptures`: session-level rupture–repair sequences;
- :mod:`.cohort`: pooled effect, reliability, completeness, categories, flow;
- :mod:`.feedback`: expected recovery curves, signals and alliance alerts (clinician feedback).

Every computation runs over all dyads at once with polars expressions (``over`` and
``group_by``) or batched numpy; nothing loops over dyads in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.core import config as config_schema
from dyadflow.core.contract import columns, empty, read_parquet, read_table
from dyadflow.core.registry import Instrument
from dyadflow.core.study import instrument
from dyadflow.score.reliability import ReliabilityModel
from dyadflow.stats import alliance as alliance_mod
from dyadflow.stats import change, cohort, feedback, grouped, lagged, ruptures, sudden_gains
from dyadflow.stats import sessions as session_mod
from dyadflow.stats.contract import (
    DyadsModel,
    FeedbackModel,
    RupturesModel,
    SessionsModel,
    SubscalesModel,
    SuddenGainsModel,
)
from dyadflow.stats.sessions import session_table

__all__ = ["settings", "session_table", "compute", "run"]

# results/stats/dyads.parquet: the columns and types are the contract dyadflow.stats.contract.DyadsModel
# The scores columns no statistic reads: run() leaves them out (each text column is 16 bytes
# a row in memory, ~80 MB at 100,000 dyads).
NOT_READ = (
    "source_file",
    "source_line",
    "note",
    "consent_share_text",
    "risk_items",
    "score_missing_reason",
    "coder_id",
    "band",
    "prorated",
)
DYAD_COLUMNS = columns(DyadsModel)


def settings(cfg: dict | None) -> dict:
    """The ``stats`` config with every default of the config schema filled in."""
    return config_schema.section("stats", cfg)


def _identity(scores: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    # Validation rejects rows naming another patient, therapist or arm than the dyad's
    # other rows, so these are one value per dyad: the first row of each dyad's run
    # (the first non-empty arm) gives them.
    rows = grouped.sort_by(scores.select("dyad_id", "patient_id", "therapist_id", "arm"), "dyad_id")
    g, _ = grouped.group_index(rows, "dyad_id")
    first = np.r_[True, g[1:] != g[:-1]] if g.size else np.zeros(0, dtype=bool)
    arms = rows.filter(pl.col("arm").is_not_null())
    ga, _ = grouped.group_index(arms, "dyad_id")
    ident = (
        rows.filter(pl.Series(first, dtype=pl.Boolean))
        .select("dyad_id", "patient_id", "therapist_id")
        .join(
            arms.filter(
                pl.Series(np.r_[True, ga[1:] != ga[:-1]] if ga.size else np.zeros(0, dtype=bool), dtype=pl.Boolean)
            ).select("dyad_id", "arm"),
            on="dyad_id",
            how="left",
            maintain_order="left",
        )
    )
    treated = (
        sessions.filter(pl.col("session") >= 1)
        .group_by("dyad_id")
        .agg(
            pl.col("session").n_unique().cast(pl.Int32).alias("n_sessions"),
            pl.col("session").min().alias("first_session"),
            pl.col("session").max().alias("last_session"),
        )
    )
    outcome = (
        sessions.filter(pl.col("outcome").is_not_null())
        .group_by("dyad_id")
        .agg(
            pl.len().cast(pl.Int32).alias("n_outcome"),
            pl.col("outcome").get(pl.col("session").arg_min()).alias("outcome_pre"),
            pl.col("session").min().alias("outcome_pre_session"),
            pl.col("outcome").get(pl.col("session").arg_max()).alias("_last"),
            pl.col("session").max().alias("_last_session"),
        )
        .with_columns(
            pl.when(pl.col("n_outcome") >= 2).then(pl.col("_last")).alias("outcome_post"),
            pl.when(pl.col("n_outcome") >= 2).then(pl.col("_last_session")).alias("outcome_post_session"),
        )
        .with_columns((pl.col("outcome_post") - pl.col("outcome_pre")).alias("outcome_change"))
    )
    return (
        ident.join(treated, on="dyad_id", how="left")
        .join(outcome, on="dyad_id", how="left")
        .with_columns(pl.col("n_sessions", "n_outcome").fill_null(0))
        .with_columns(
            pl.when(pl.col("n_outcome") == 0)
            .then(pl.lit("outcome: no scored outcome questionnaire"))
            .when(pl.col("n_outcome") == 1)
            .then(pl.lit("outcome: only one scored outcome questionnaire, so no post score or change"))
            .alias("_note_outcome")
        )
        .sort("dyad_id")
    )


@dataclass
class StatsResult:
    sessions: pl.DataFrame
    dyads: pl.DataFrame
    gains: pl.DataFrame
    ruptures: pl.DataFrame
    cohort: dict
    feedback: pl.DataFrame | None = None
    subscales: pl.DataFrame | None = None


def compute(
    scores: pl.DataFrame,
    registry: dict[str, Instrument],
    outcome: str,
    alliance: dict[str, str],
    cfg: dict | None = None,
    reliability: pl.DataFrame | None = None,
    feedback_cfg: dict | None = None,
    reference: pl.DataFrame | None = None,
) -> StatsResult:
    """Everything the stats stage writes; ``reliability`` is the score stage's reliability
    table (:mod:`dyadflow.score.reliability`; none: no alpha), ``feedback_cfg`` the
    ``feedback:`` config and ``reference`` the outcome rows of ``feedback.reference``
    (:func:`feedback.read_reference`)."""
    s = settings(cfg)
    out_inst = instrument(registry, outcome, "outcome")
    pat_inst = instrument(registry, alliance["patient"], "alliance.patient")
    th_inst = instrument(registry, alliance["therapist"], "alliance.therapist")

    ranges = {"patient": (pat_inst.score_min, pat_inst.score_max), "therapist": (th_inst.score_min, th_inst.score_max)}
    sessions = session_table(
        scores, outcome, alliance, max_gap=int(s["max_gap"]), composite=s["composite"], ranges=ranges
    )
    dyads = _identity(scores, sessions)

    rule = change.change_rule(
        out_inst, dyads.get_column("outcome_pre"), s["change"]["criterion"], s["change"]["cutoff"]
    )
    dyads = dyads.with_columns(change.change_columns(rule)).with_columns(
        pl.when(pl.col("rci").is_null() & pl.col("outcome_change").is_not_null())
        .then(pl.lit("rci: the outcome instrument has neither reliability with an SD nor a reliable-change value"))
        .alias("_note_rci")
    )

    early = tuple(int(v) for v in s["early_sessions"])
    dyads = dyads.join(
        alliance_mod.alliance_summary(sessions, ranges, early, int(s["min_agreement"])), on="dyad_id", how="left"
    )

    lag = s["lag"]
    dyads = dyads.join(
        lagged.lagged(
            sessions, bool(lag["detrend"]), bool(lag["covariate_outcome"]), lag["predictor"], int(lag["min_pairs"])
        ),
        on="dyad_id",
        how="left",
    )

    sg = s["sudden_gains"]
    sg_cut = sg["cutoff"] if sg["cutoff"] is not None else rule.reliable_points
    if sg_cut is not None:
        gains, counts = sudden_gains.sudden_gains(
            sessions,
            float(sg_cut),
            out_inst.lower_is_better,
            float(sg["pct"]),
            float(sg["alpha"]),
            bool(sg["criterion3"]),
        )
    else:
        gains, counts = sudden_gains.empty(sessions.schema["session"])
    dyads = dyads.join(sudden_gains.dyad_counts(dyads, counts, sg_cut is not None), on="dyad_id", how="left")

    rp = s["ruptures"]
    rup = ruptures.ruptures(sessions, float(rp["sd_multiplier"]), int(rp["repair_window"]))
    dyads = dyads.join(ruptures.dyad_counts(dyads, rup), on="dyad_id", how="left")

    fb = feedback.feedback_table(sessions, scores, rule, rup, ranges, feedback_cfg, int(rp["repair_window"]), reference)
    dyads = dyads.join(feedback.dyad_latest(dyads, fb, scores), on="dyad_id", how="left")

    dyads = dyads.join(session_mod.missed_sessions(sessions), on="dyad_id", how="left")

    notes = ["_note_outcome", "_note_rci", "_note_alliance", "_note_lag", "_note_sg"]
    dyads = (
        dyads.with_columns(pl.concat_str(notes, separator="; ", ignore_nulls=True).alias("stats_note"))
        .with_columns(pl.when(pl.col("stats_note") != "").then(pl.col("stats_note")).alias("stats_note"))
        .sort("dyad_id")
        .select(DYAD_COLUMNS)
    )

    lag_y, lag_xs = lagged.lag_columns(sessions, bool(lag["detrend"]), bool(lag["covariate_outcome"]), lag["predictor"])
    # every instrument the study has (not only the outcome and alliance ones): a handful of keys
    present = set(scores.get_column("instrument").unique().to_list())
    instruments = sorted((present | {outcome, alliance["patient"], alliance["therapist"]}) & set(registry))
    coh = {
        "outcome": outcome,
        "alliance": dict(alliance),
        "pooled_effect": cohort.pooled(sessions, bool(lag["covariate_outcome"]), lag["predictor"]),
        "reliability": cohort.reliability(
            reliability if reliability is not None else empty(ReliabilityModel), instruments
        ),
        "completeness": cohort.completeness(scores, instruments),
        "change_categories": cohort.categories_by_arm(dyads),
        "change_rule": {
            "criterion": rule.criterion,
            "cutoff": rule.cutoff,
            "s_diff": rule.s_diff,
            "reliable_change_points": rule.reliable_points,
            "sd_source": rule.sd_source,
            "reliability": out_inst.reliability,
            "direction": out_inst.direction,
        },
        "sudden_gains": {
            "cutoff": sg_cut,
            "pct": sg["pct"],
            "alpha": sg["alpha"],
            "gains": int((gains.get_column("kind") == "gain").sum()),
            "losses": int((gains.get_column("kind") == "loss").sum()),
        },
        "ruptures": {**rp, "n": rup.height, "repaired": int(rup.get_column("repaired").sum())},
        "flow": cohort.flow(scores, dyads, sessions, lag_y, lag_xs),
        "arms": cohort.arms(dyads),
        "settings": s,
    }
    profile = alliance_mod.subscale_profile(scores, alliance)
    return StatsResult(sessions, dyads, gains, rup, coh, fb, profile)


def run(
    scores_path: str,
    registry: dict[str, Instrument],
    outcome: str,
    alliance: dict[str, str],
    cfg: dict | None,
    out: dict[str, str],
    reliability_path: str | None = None,
    feedback_cfg: dict | None = None,
) -> StatsResult:
    """Read the scores, compute everything, write the outputs named in ``out`` (the feedback
    table too when ``out`` names ``feedback`` and ``feedback_csv``)."""
    # only the columns the statistics read (provenance, notes and text consent are not)
    names = [c for c in pl.read_parquet_schema(scores_path) if c not in NOT_READ]
    scores = read_parquet(scores_path, names)
    reliability = read_table(reliability_path, ReliabilityModel) if reliability_path else None
    fcfg = feedback.settings(feedback_cfg)
    reference = feedback.read_reference(fcfg["reference"], outcome) if fcfg["reference"] else None
    res = compute(scores, registry, outcome, alliance, cfg, reliability, fcfg, reference)
    atomic.write_table(out["sessions"], res.sessions, SessionsModel, "parquet")
    atomic.write_table(out["dyads"], res.dyads, DyadsModel, "parquet")
    atomic.write_table(out["dyads_csv"], res.dyads, DyadsModel, "csv")
    atomic.write_table(out["sudden_gains"], res.gains, SuddenGainsModel, "csv")
    atomic.write_table(out["ruptures"], res.ruptures, RupturesModel, "csv")
    atomic.write_json(out["cohort"], res.cohort)
    if "subscales" in out:
        atomic.write_table(out["subscales"], res.subscales, SubscalesModel, "csv")
    if "feedback" in out:
        atomic.write_table(out["feedback"], res.feedback, FeedbackModel, "parquet")
        atomic.write_table(out["feedback_csv"], res.feedback, FeedbackModel, "csv")
    return res
