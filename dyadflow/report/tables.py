"""The tables the reports read, always with the contract columns.

Statistics (issue 4), selection (issue 5) and validation write these files. A study
may lack some of them (no selection configured) or an older results folder may lack
columns: :func:`read_report_tables` then adds every missing contract column as null,
and the report shows "—" with a short explanation. Reports never fail on a missing
optional table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

F, I, S, B, D = pl.Float64, pl.Int64, pl.String, pl.Boolean, pl.Date

DYADS = {
    "dyad_id": S, "patient_id": S, "therapist_id": S, "arm": S, "n_sessions": I, "first_session": I,
    "last_session": I, "outcome_pre": F, "outcome_post": F, "outcome_change": F, "rci": F, "change_category": S,
    "alliance_patient_mean": F, "alliance_therapist_mean": F, "alliance_patient_early": F,
    "alliance_therapist_early": F, "alliance_patient_slope": F, "alliance_therapist_slope": F,
    "agreement_r": F, "agreement_n": I, "discrepancy_mean": F, "lag_b": F, "lag_se": F, "lag_t": F, "lag_p": F,
    "lag_n": I, "n_sudden_gains": I, "n_sudden_losses": I, "n_rupture_repairs": I, "stats_note": S,
    # issue 17 (dyadflow.stats.feedback.DYAD_COLUMNS): the latest feedback signal, alliance alert and risk flag
    "signal": S, "signal_rule": S, "alliance_alert": B, "risk_latest": B, "risk_latest_session": I,
}
SESSIONS = {
    "dyad_id": S, "session": I, "date": D, "alliance_patient": F, "alliance_therapist": F,
    "alliance_composite": F, "outcome": F, "outcome_next": F,
}
SUDDEN_GAINS = {
    "dyad_id": S, "kind": S, "pregain_session": I, "postgain_session": I, "pregain_score": F,
    "postgain_score": F, "magnitude": F, "reversed": B,
}
RUPTURES = {
    "dyad_id": S, "rater": S, "pre_session": I, "rupture_session": I, "repair_session": I, "pre_alliance": F,
    "rupture_alliance": F, "drop": F, "repaired": B,
}
SELECTION = {"dyad_id": S, "session": I, "group": S, "rank": I, "reason": S}
SCORES = {
    "dyad_id": S, "patient_id": S, "therapist_id": S, "session": I, "date": D, "rater": S, "instrument": S,
    "score": F, "n_answered": I, "n_items": I, "prorated": B, "band": S, "risk_flag": B, "risk_items": S,
    "score_missing_reason": S, "arm": S, "note": S, "consent_share_text": B,
}
REJECTIONS = {
    "source_file": S, "source_line": I, "column": S, "value": S, "rule": S, "message": S, "dyad_id": S,
    "session": S, "instrument": S,
}
# results/validated/consent.parquet (dyadflow.validate.consent.CONSENT_TABLE): the only source of consent
CONSENT = {
    "dyad_id": S, "session": I, "date": D, "rater": S, "consent": B, "source_file": S, "source_line": I, "kind": S,
}
# results/stats/feedback.parquet (dyadflow.stats.feedback.COLUMNS): the clinician copy's signals and bands
FEEDBACK = {
    "dyad_id": S, "session": I, "outcome": F, "expected_p10": F, "expected_p25": F, "expected_p50": F,
    "expected_p75": F, "expected_p90": F, "signal": S, "signal_rule": S, "alliance_alert": B, "alliance_alert_reason": S,
    "intake": F, "intake_session": I,
}
ACCOUNTING = {
    "source_file": S, "rows_read": I, "rows_accepted": I, "rows_rejected": I, "rows_duplicate": I, "file_error": S, "input": S,
}


def with_contract_columns(frame: pl.DataFrame, contract: dict[str, pl.DataType]) -> pl.DataFrame:
    """Add each contract column ``frame`` lacks as a typed null column; cast the rest.

    Extra columns (``sub_*`` subscales, later additions) are kept after the contract ones.
    """
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in contract.items() if name not in frame.columns]
    frame = frame.with_columns(missing) if missing else frame
    casts = [pl.col(n).cast(t, strict=False) for n, t in contract.items() if frame.schema[n] != t]
    frame = frame.with_columns(casts) if casts else frame
    return frame.select(*contract, *(c for c in frame.columns if c not in contract))


def _read(path: Path) -> pl.DataFrame | None:
    if not path.exists():
        return None
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema_length=10000, try_parse_dates=False)


def read_table(path: str | Path | None, contract: dict[str, pl.DataType]) -> pl.DataFrame:
    """One table with the contract columns; an empty table when the file does not exist."""
    frame = _read(Path(path)) if path else None
    if frame is None:
        frame = pl.DataFrame(schema=contract)
    return with_contract_columns(frame, contract)


@dataclass
class ReportTables:
    dyads: pl.DataFrame
    sessions: pl.DataFrame
    scores: pl.DataFrame
    sudden_gains: pl.DataFrame
    ruptures: pl.DataFrame
    selection: pl.DataFrame  # all strategies, with a ``strategy`` column (the configured name)
    rejections: pl.DataFrame
    missing: list[str] = field(default_factory=list)  # files that were not there
    # every recorded consent decision (CONSENT); none recorded = no consent
    consent: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CONSENT))
    # the feedback rows (FEEDBACK); none = the clinician copy shows no signal
    feedback: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FEEDBACK))


def read_report_tables(results_dir: str | Path, strategies: list[str] = ()) -> ReportTables:
    """Read every table the reports use from ``results_dir``, with all contract columns.

    ``strategies`` are the configured selection names (``results/selection/<name>.csv``).
    A missing file gives an empty table and is listed in ``missing``; a missing column
    is added as null.
    """
    root = Path(results_dir)
    paths = {
        "dyads": root / "stats" / "dyads.parquet",
        "sessions": root / "stats" / "sessions.parquet",
        "scores": root / "scores" / "questionnaires.parquet",
        "sudden_gains": root / "stats" / "sudden_gains.csv",
        "ruptures": root / "stats" / "ruptures.csv",
        "rejections": root / "validation" / "rejections.parquet",
        "consent": root / "validated" / "consent.parquet",
        "feedback": root / "stats" / "feedback.parquet",
    }
    if not paths["rejections"].exists():
        paths["rejections"] = root / "validation" / "rejections.csv"
    contracts = {"dyads": DYADS, "sessions": SESSIONS, "scores": SCORES, "sudden_gains": SUDDEN_GAINS,
                 "ruptures": RUPTURES, "rejections": REJECTIONS, "consent": CONSENT, "feedback": FEEDBACK}
    missing = [str(p) for p in paths.values() if not p.exists()]
    scores = _read(paths["scores"])
    validated = root / "validated" / "questionnaires.parquet"
    if scores is not None and "note" not in scores.columns and validated.exists():
        # score drops the free text: take the note from the validated rows (consent comes from
        # validated/consent.parquet only, see dyadflow.validate.consent)
        keys = ["dyad_id", "session", "rater", "instrument"]
        text = pl.read_parquet(validated, columns=[*keys, "note"]).with_columns(
            pl.col("session").cast(scores.schema["session"]))
        scores = scores.join(text.unique(keys, keep="first"), on=keys, how="left")
    frames = {key: read_table(paths[key], contracts[key]) for key in contracts if key != "scores"}
    frames["scores"] = with_contract_columns(scores if scores is not None else pl.DataFrame(schema=SCORES), SCORES)
    parts = []
    for name in strategies:
        path = root / "selection" / f"{name}.csv"
        if not path.exists():
            missing.append(str(path))
        parts.append(read_table(path, SELECTION).select(*SELECTION).with_columns(pl.lit(name).alias("strategy")))
    selection = pl.concat(parts) if parts else with_contract_columns(pl.DataFrame(schema={"strategy": S}), SELECTION)
    return ReportTables(selection=selection.select(*SELECTION, "strategy"), missing=missing, **frames)
