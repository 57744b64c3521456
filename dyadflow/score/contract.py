"""The table the score stage writes: results/scores/questionnaires.parquet (and .csv).

One row per questionnaire (dyad, session, rater, instrument) with its score. Subscale
columns (``sub_<name>``, from the instrument registry) come after ``risk_flag`` and are
not part of the fixed contract: they depend on the study's instruments.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.contract import Contract, nullable


class ScoresModel(Contract):
    dyad_id: pl.String = nullable()
    patient_id: pl.String = nullable()
    therapist_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    date: pl.Date = nullable()
    rater: pl.String = nullable()
    instrument: pl.String = nullable()
    total: pl.Float64 = nullable()
    mean: pl.Float64 = nullable()
    n_answered: pl.Int32 = nullable()
    prorated: pl.Boolean = nullable()
    band: pl.String = nullable()
    risk_flag: pl.Boolean = nullable()
    arm: pl.String = nullable()
    score: pl.Float64 = nullable()
    n_items: pl.Int32 = nullable()
    risk_items: pl.String = nullable()
    score_missing_reason: pl.String = nullable()
    source_file: pl.String = nullable()
    source_line: pl.Int64 = nullable()
    # what the reports need of each questionnaire (issue 16.3): the free-text note and the
    # patient's text consent that governs the row's session (false when none is recorded)
    note: pl.String = nullable()
    consent_share_text: pl.Boolean = nullable()
