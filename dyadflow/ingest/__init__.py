"""Ingest: read one raw export into the canonical questionnaire columns.

Every reader returns all cells as strings (validation parses and judges them), plus
``source_line`` (the line a person sees in an editor) and the record's field count.
The result goes to ``results/ingest/<name>.parquet`` with a JSON sidecar that carries
the file's sha256 and the number of rows read.
"""

from __future__ import annotations

import polars as pl

from dyadflow import io
from dyadflow.errors import DyadflowError
from dyadflow.ingest import canonical
from dyadflow.naming import input_name  # noqa: F401  (re-exported)

READERS = {"canonical_csv": canonical.read}


def read_input(spec: dict) -> tuple[pl.DataFrame, dict]:
    fmt = spec["format"]
    reader = READERS.get(fmt)
    if reader is None:
        raise DyadflowError(f"unknown input format '{fmt}' (known: {', '.join(sorted(READERS))})", file=spec["path"])
    file = spec["path"]
    options = {k: spec[k] for k in ("encoding", "delimiter") if k in spec}
    frame, meta = reader(spec["path"], file=file, **options)
    frame = frame.with_columns(pl.lit(file).alias("source_file"))
    meta.update(
        {
            "source_file": file,
            "format": fmt,
            "sha256": io.sha256_file(spec["path"]),
            "rows_read": frame.height,
        }
    )
    return frame, meta


def run(spec: dict, out_parquet: str, out_meta: str) -> dict:
    frame, meta = read_input(spec)
    io.write_parquet(out_parquet, frame)
    io.write_json(out_meta, meta)
    return meta
