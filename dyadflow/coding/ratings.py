"""Read and judge the coded files (config ``coding.inputs``), accounting for every row.

Each coded file is read by the ingest reader of its format (:mod:`dyadflow.ingest`),
with the coded fields (``selection``, ``code``, ``instrument``, ``coder_id``, items,
optional ``note``). Its rows are resolved through the frozen keys: a row whose
selection and code are not in them is rejected (``code_unknown``). Every other row is
judged by the validation rules themselves (:func:`dyadflow.validate.rules.validate_frames`:
coder ID, instrument, rater, item values, ``coder_missing``, duplicates per coder), in
the blinded space: each coded session is validated under a neutral target ID, so no
message, rejection or output names a dyad, a session number or a group. The accounting
is exact per file: rows read = rows accepted + rows rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dyadflow import ingest
from dyadflow.core.registry import Instrument
from dyadflow.ingest.mapping import INGEST_RULE_COLUMNS
from dyadflow.validate import rules as validate

# placeholders of the blinded space: the questionnaire columns a coded row does not have
BLIND_SESSION = "0"
BLIND_DATE = "2000-01-01"
REJECTION_COLUMNS = {
    "source_file": pl.String,
    "source_line": pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "rule": pl.String,
    "message": pl.String,
    "selection": pl.String,
    "code": pl.String,
    "instrument": pl.String,
    "source_column": pl.String,
    "input": pl.String,
}


@dataclass
class CodedRatings:
    ratings: pl.DataFrame  # selection, code, instrument, coder_id, item_NN (Int16), note, source_file, source_line
    rejections: pl.DataFrame
    accounting: pl.DataFrame
    warnings: pl.DataFrame


def read_coded(spec: dict, policy: str = "quarantine") -> tuple[pl.DataFrame, dict]:
    """One coded file through its ingest reader (``coded``: the coded fields are its canonical ones)."""
    return ingest.read_or_quarantine({**spec, "coded": True}, policy)


def _targets(keys: pl.DataFrame) -> pl.DataFrame:
    """A neutral ID per (selection, code) of the frozen keys: T1, T2, …"""
    return (
        keys.select("selection", "code")
        .sort("selection", "code")
        .with_row_index("_t", offset=1)
        .select("selection", "code", pl.format("T{}", pl.col("_t")).alias("_target"))
    )


def resolve(frame: pl.DataFrame, targets: pl.DataFrame, selections: list[str]) -> pl.DataFrame:
    """The coded rows with the questionnaire columns of the blinded space; rows whose
    selection and code are not in a frozen key carry ``code_unknown``."""
    for c in ("selection", "code", "coder_id", "instrument"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    frame = frame.join(targets, on=["selection", "code"], how="left", nulls_equal=False)
    rule, message, column, value = (pl.col(c) for c in INGEST_RULE_COLUMNS)
    known_selection = pl.col("selection").is_in(selections)
    why = (
        pl.when(pl.col("selection").is_null() | pl.col("code").is_null())
        .then(pl.lit("the row names no session: selection and code are both needed"))
        .when(~known_selection)
        .then(
            pl.format(
                "selection '{}' has no frozen key (coding.selections: {})",
                pl.col("selection"),
                pl.lit(", ".join(selections) or "none"),
            )
        )
        .otherwise(
            pl.format(
                "code '{}' is not in the frozen key of selection '{}' (the codes handed to the coders)",
                pl.col("code"),
                pl.col("selection"),
            )
        )
    )
    unknown = pl.col("_target").is_null() & rule.is_null()
    return frame.with_columns(
        pl.when(unknown).then(pl.lit("code_unknown")).otherwise(rule).alias("ingest_rule"),
        pl.when(unknown).then(why).otherwise(message).alias("ingest_message"),
        pl.when(unknown)
        .then(pl.when(known_selection).then(pl.lit("code")).otherwise(pl.lit("selection")))
        .otherwise(column)
        .alias("ingest_column"),
        pl.when(unknown)
        .then(pl.when(known_selection).then(pl.col("code")).otherwise(pl.col("selection")))
        .otherwise(value)
        .alias("ingest_value"),
        pl.col("_target").alias("dyad_id"),
        pl.col("_target").alias("patient_id"),
        pl.col("_target").alias("therapist_id"),
        pl.lit(BLIND_SESSION).alias("session"),
        pl.lit(BLIND_DATE).alias("date"),
        pl.lit("observer").alias("rater"),
    ).drop("_target")


def judge(
    frames: list[pl.DataFrame],
    metas: list[dict],
    keys: pl.DataFrame,
    registry: dict[str, Instrument],
    selections: list[str],
    key_warnings: pl.DataFrame,
) -> CodedRatings:
    """Accept or reject every coded row (see the module docstring)."""
    targets = _targets(keys)
    resolved = [resolve(f, targets, selections) for f in frames]
    result = validate.validate_frames(resolved, metas, registry, earliest_date=None)
    back = targets.rename({"_target": "dyad_id"})
    accepted = result.accepted.join(back, on="dyad_id", how="left")
    items = [c for c in accepted.columns if c.startswith("item_")]
    ratings = accepted.select(
        "selection", "code", "instrument", "coder_id", *items, "note", "source_file", "source_line"
    ).sort("selection", "code", "instrument", "coder_id")
    # the rejections of the blinded space: selection and code instead of the neutral target
    rej = result.rejections.join(back, on="dyad_id", how="left")
    blinded = rf"(?s)^(.*?)dyad T[0-9]+, session {BLIND_SESSION}(.*)$"  # the duplicate rules' wording
    msg = pl.col("message")
    plain = pl.format(
        "{}selection {}, code {}{}", msg.str.extract(blinded, 1), "selection", "code", msg.str.extract(blinded, 2)
    )
    rej = rej.with_columns(pl.when(msg.str.contains(blinded)).then(plain).otherwise(msg).alias("message"))
    # rows rejected before resolving (code_unknown, a reader's rule) keep the file's own selection and code
    raw = (
        pl.concat(
            [
                f.select(
                    pl.col("source_line"),
                    pl.col("selection").alias("_sel"),
                    pl.col("code").alias("_code"),
                    pl.lit(validate.input_of(m)).alias("input"),
                )
                for f, m in zip(resolved, metas, strict=False)
            ],
            how="diagonal_relaxed",
        )
        if resolved
        else pl.DataFrame(schema={"source_line": pl.Int64, "_sel": pl.String, "_code": pl.String, "input": pl.String})
    )
    rej = rej.join(raw.unique(["input", "source_line"]), on=["input", "source_line"], how="left").with_columns(
        pl.coalesce("selection", "_sel").alias("selection"), pl.coalesce("code", "_code").alias("code")
    )
    rejections = rej.select(list(REJECTION_COLUMNS)).cast(REJECTION_COLUMNS)
    # the ingest readers' warnings only: the ID warnings would be about the neutral targets
    warnings = pl.concat(
        [
            validate.warnings_table(metas).select(
                pl.lit(None, dtype=pl.String).alias("selection"),
                pl.lit(None, dtype=pl.String).alias("code"),
                pl.format("{}: {}", pl.col("source_file"), pl.col("warning")).alias("warning"),
            ),
            key_warnings,
        ]
    )
    return CodedRatings(ratings, rejections, result.accounting, warnings)
