"""Ingest: read one raw export into the canonical questionnaire columns.

Every reader returns all cells as strings (validation parses and judges them), plus
``source_line`` (the line a person sees in an editor, the spreadsheet row, or the SPSS
case number) and the record's field count. Readers may mark a row as rejected already
(an incomplete REDCap form, a Qualtrics preview) in ``ingest_rule``/``ingest_message``;
validation reports those under their own rule. The result goes to
``results/ingest/<name>.parquet`` with a JSON sidecar that carries the file's sha256,
the number of rows read (questionnaires), of records in the file, the columns not
used and warnings about columns that look like direct identifiers.
"""

from __future__ import annotations

import polars as pl

from dyadflow import io
from dyadflow.errors import DyadflowError
from dyadflow.ingest import canonical, qualtrics, redcap, spreadsheet
from dyadflow.ingest.mapping import INGEST_RULE_COLUMNS
from dyadflow.naming import input_name  # also re-exported

READERS = {
    "canonical_csv": canonical.read,
    "redcap": redcap.read,
    "qualtrics": qualtrics.read,
    "xlsx": spreadsheet.read_xlsx,
    "sav": spreadsheet.read_sav,
}


def read_input(spec: dict) -> tuple[pl.DataFrame, dict]:
    fmt = spec["format"]
    reader = READERS.get(fmt)
    if reader is None:
        raise DyadflowError(f"unknown input format '{fmt}' (known: {', '.join(sorted(READERS))})", file=spec["path"])
    file = spec["path"]
    frame, meta = reader(spec["path"], file=file, spec=spec)
    frame = frame.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in INGEST_RULE_COLUMNS if c not in frame.columns]
    ).with_columns(pl.lit(file).alias("source_file"))
    meta.setdefault("warnings", [])
    meta.update(
        {
            "source_file": file,
            "input": input_name(spec),  # two inputs may read one file (two instruments)
            "format": fmt,
            "sha256": io.sha256_file(spec["path"]),
            "rows_read": frame.height,
        }
    )
    meta.setdefault("records_read", frame.height)
    return frame, meta


def run(spec: dict, out_parquet: str, out_meta: str) -> dict:
    frame, meta = read_input(spec)
    io.write_parquet(out_parquet, frame)
    io.write_json(out_meta, meta)
    return meta
