"""Ingest: read one raw export into the canonical questionnaire columns.

Every reader returns all cells as strings (validation parses and judges them), plus
``source_line`` (the line a person sees in an editor, the spreadsheet row, or the SPSS
case number) and the record's field count. Readers may mark a row as rejected already
(an incomplete REDCap form, a Qualtrics preview) in ``ingest_rule``/``ingest_message``;
validation reports those under their own rule. The input's ``ids`` rules then rewrite the
dyad, patient and therapist IDs (rows whose ID they cannot map are rejected under
``id_unmapped``; see :func:`dyadflow.ingest.mapping.apply_id_rules`). The result goes to
``results/ingest/<name>.parquet`` with a JSON sidecar that carries the file's sha256,
the number of rows read (questionnaires), of records in the file, the columns not
used and warnings about columns that look like direct identifiers.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core import atomic
from dyadflow.core.config import input_spec
from dyadflow.core.errors import DyadflowError
from dyadflow.core.naming import input_name  # also re-exported
from dyadflow.ingest import canonical, qualtrics, redcap, spreadsheet
from dyadflow.ingest.mapping import INGEST_RULE_COLUMNS, apply_id_rules

READERS = {
    "canonical_csv": canonical.read,
    "redcap": redcap.read,
    "qualtrics": qualtrics.read,
    "xlsx": spreadsheet.read_xlsx,
    "sav": spreadsheet.read_sav,
}


def read_input(spec: dict) -> tuple[pl.DataFrame, dict]:
    spec = input_spec(spec)  # the config schema's defaults (encoding, delimiter, header rows ...)
    fmt = spec["format"]
    reader = READERS.get(fmt)
    if reader is None:
        raise DyadflowError(f"unknown input format '{fmt}' (known: {', '.join(sorted(READERS))})", file=spec["path"])
    file = spec["path"]
    frame, meta = reader(spec["path"], file=file, spec=spec)
    frame = frame.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in INGEST_RULE_COLUMNS if c not in frame.columns]
    ).with_columns(pl.lit(file).alias("source_file"))
    frame = apply_id_rules(frame, spec, file=file)
    # warnings about the file itself (hidden sheets, an encoding that looks wrong) come first
    meta["warnings"] = [*meta.pop("file_warnings", []), *meta.get("warnings", [])]
    meta.update(
        {
            "source_file": file,
            "input": input_name(spec),  # two inputs may read one file (two instruments)
            "format": fmt,
            "sha256": atomic.sha256_file(spec["path"]),
            # consent_only rows (a REDCap event with a consent cell and no form) are not questionnaires
            "rows_read": frame.height
            - (int(frame.get_column("consent_only").sum()) if "consent_only" in frame.columns else 0),
        }
    )
    meta.setdefault("records_read", frame.height)
    return frame, meta


def quarantined(spec: dict, exc: DyadflowError) -> tuple[pl.DataFrame, dict]:
    """No rows, and a meta whose ``file_error`` says why the file cannot be read."""
    frame = pl.DataFrame(
        schema={"source_line": pl.Int64, **{c: pl.String for c in INGEST_RULE_COLUMNS}, "source_file": pl.String}
    )
    try:
        sha256 = atomic.sha256_file(spec["path"])
    except OSError:  # missing or unreadable
        sha256 = None
    meta = {
        "source_file": spec["path"],
        "format": spec["format"],
        "sha256": sha256,
        "rows_read": 0,
        "records_read": 0,
        "blank_rows": 0,
        "warnings": [],
        "file_error": str(exc),
    }
    return frame, meta


def read_or_quarantine(spec: dict, policy: str = "strict") -> tuple[pl.DataFrame, dict]:
    """:func:`read_input`; with ``policy`` quarantine, a file that cannot be read as a
    whole (binary, undecodable, a broken header ...) gives no rows and a ``file_error``
    instead of stopping the build. A mistake in the input's config (the error names a
    config key) still stops it."""
    try:
        return read_input(spec)
    except DyadflowError as exc:
        if policy != "quarantine" or exc.key is not None:
            raise
        return quarantined(spec, exc)


def run(spec: dict, out_parquet: str, out_meta: str, policy: str = "strict") -> dict:
    frame, meta = read_or_quarantine(spec, policy)
    atomic.write_parquet(out_parquet, frame)
    atomic.write_json(out_meta, meta)
    return meta
