"""The tables the stats stage writes (results/stats/), one contract each.

Written by :func:`dyadflow.stats.run` through :func:`dyadflow.core.atomic.write_table`
and read by the report with :func:`dyadflow.core.contract.read_table`. Column names are
contracts: add columns, never rename. Session numbers and counts are Int32, as in the
validated and scored tables.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.contract import Contract, nullable


class DyadsModel(Contract):
    """results/stats/dyads.parquet and dyads.csv: one row per dyad."""

    dyad_id: pl.String = nullable()
    patient_id: pl.String = nullable()
    therapist_id: pl.String = nullable()
    arm: pl.String = nullable()
    n_sessions: pl.Int32 = nullable()
    first_session: pl.Int32 = nullable()
    last_session: pl.Int32 = nullable()
    outcome_pre: pl.Float64 = nullable()
    outcome_post: pl.Float64 = nullable()
    outcome_change: pl.Float64 = nullable()
    rci: pl.Float64 = nullable()
    change_category: pl.String = nullable()
    alliance_patient_mean: pl.Float64 = nullable()
    alliance_therapist_mean: pl.Float64 = nullable()
    alliance_patient_early: pl.Float64 = nullable()
    alliance_therapist_early: pl.Float64 = nullable()
    alliance_patient_slope: pl.Float64 = nullable()
    alliance_therapist_slope: pl.Float64 = nullable()
    agreement_r: pl.Float64 = nullable()
    agreement_n: pl.Int32 = nullable()
    discrepancy_mean: pl.Float64 = nullable()
    lag_b: pl.Float64 = nullable()
    lag_se: pl.Float64 = nullable()
    lag_t: pl.Float64 = nullable()
    lag_p: pl.Float64 = nullable()
    lag_n: pl.Int32 = nullable()
    n_sudden_gains: pl.Int32 = nullable()
    n_sudden_losses: pl.Int32 = nullable()
    n_rupture_repairs: pl.Int32 = nullable()
    stats_note: pl.String = nullable()
    # additions beyond the first contract
    n_outcome: pl.Int32 = nullable()
    outcome_pre_session: pl.Int32 = nullable()
    outcome_post_session: pl.Int32 = nullable()
    reliable: pl.Boolean = nullable()
    n_ruptures: pl.Int32 = nullable()
    clinical_at_pre: pl.Boolean = nullable()
    # issue 17: the latest feedback signal and alliance alert, and the latest risk flag (for the report's override)
    signal: pl.String = nullable()
    signal_rule: pl.String = nullable()
    alliance_alert: pl.Boolean = nullable()
    risk_latest: pl.Boolean = nullable()
    risk_latest_session: pl.Int64 = nullable()
    # issue 16.3: computed here, rendered by the case report ("2, 4"; null when none)
    missed_sessions: pl.String = nullable()


class SessionsModel(Contract):
    """results/stats/sessions.parquet: one row per dyad and session (z-scored and detrended
    columns included)."""

    dyad_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    date: pl.Date = nullable()
    alliance_patient: pl.Float64 = nullable()
    alliance_therapist: pl.Float64 = nullable()
    alliance_composite: pl.Float64 = nullable()
    outcome: pl.Float64 = nullable()
    outcome_next: pl.Float64 = nullable()
    alliance_patient_z: pl.Float64 = nullable()
    alliance_therapist_z: pl.Float64 = nullable()
    alliance_composite_z: pl.Float64 = nullable()
    outcome_z: pl.Float64 = nullable()
    outcome_next_z: pl.Float64 = nullable()
    alliance_patient_dt: pl.Float64 = nullable()
    alliance_therapist_dt: pl.Float64 = nullable()
    alliance_composite_dt: pl.Float64 = nullable()
    outcome_dt: pl.Float64 = nullable()
    outcome_next_dt: pl.Float64 = nullable()
    outcome_next_session: pl.Int32 = nullable()


class SubscalesModel(Contract):
    """results/stats/subscales.csv: the subscale profile, the mean of each ``sub_*`` score of
    the alliance instruments over the sessions, per dyad and rater (one row per subscale)."""

    dyad_id: pl.String = nullable()
    rater: pl.String = nullable()
    subscale: pl.String = nullable()
    value: pl.Float64 = nullable()


class SuddenGainsModel(Contract):
    """results/stats/sudden_gains.csv: one row per sudden gain or loss (Tang & DeRubeis 1999)."""

    dyad_id: pl.String = nullable()
    kind: pl.String = nullable()
    pregain_session: pl.Int32 = nullable()
    postgain_session: pl.Int32 = nullable()
    pregain_score: pl.Float64 = nullable()
    postgain_score: pl.Float64 = nullable()
    magnitude: pl.Float64 = nullable()
    reversed: pl.Boolean = nullable()


class RupturesModel(Contract):
    """results/stats/ruptures.csv: one row per rupture (and its repair, if any)."""

    dyad_id: pl.String = nullable()
    rater: pl.String = nullable()
    pre_session: pl.Int32 = nullable()
    rupture_session: pl.Int32 = nullable()
    repair_session: pl.Int32 = nullable()
    pre_alliance: pl.Float64 = nullable()
    rupture_alliance: pl.Float64 = nullable()
    drop: pl.Float64 = nullable()
    repaired: pl.Boolean = nullable()


class FeedbackModel(Contract):
    """results/stats/feedback.parquet and feedback.csv: expected recovery curves and signals."""

    dyad_id: pl.String = nullable()
    session: pl.Int64 = nullable()
    outcome: pl.Float64 = nullable()
    expected_p10: pl.Float64 = nullable()
    expected_p25: pl.Float64 = nullable()
    expected_p50: pl.Float64 = nullable()
    expected_p75: pl.Float64 = nullable()
    expected_p90: pl.Float64 = nullable()
    signal: pl.String = nullable()
    signal_rule: pl.String = nullable()
    alliance_alert: pl.Boolean = nullable()
    alliance_alert_reason: pl.String = nullable()
    intake: pl.Float64 = nullable()
    intake_session: pl.Int64 = nullable()
    fold: pl.Int32 = nullable()
    risk_flag: pl.Boolean = nullable()
