"""The canonical questionnaire table (``format: canonical_csv``), and any delimited
text export mapped onto it.

One row per completed questionnaire with the columns ``dyad_id, patient_id,
therapist_id, session, date, rater, instrument, item_01 … item_NN`` and optional
``arm, note, consent_share_text``. Column names are matched case-insensitively;
``item_1`` is read as ``item_01``. An export with other column names is wired in with
the input's ``columns``, ``items``, ``constants`` and ``values`` (see
:mod:`dyadflow.ingest.mapping`); the CSV quirks (``encoding``, ``delimiter``,
``decimal_comma``, ``date_format``, ``excel_serial_dates``) apply to every text format.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.performance import fast_path_enabled
from dyadflow.ingest.mapping import FIELDS, REQUIRED, apply_mapping, canonical_name  # noqa: F401  (re-exported)
from dyadflow.ingest.text import TextTable, read_text_table


def text_meta(table: TextTable, delimiter: str) -> dict:
    return {
        "encoding": table.encoding,
        "delimiter": delimiter,
        "header_line": table.header_line,
        "blank_rows": table.blank_rows,
        "columns": table.header,
        "file_warnings": table.warnings,
    }


def header_column(header: list[str], name: str) -> str | None:
    """The header name equal to ``name`` (lower case) ignoring case, or None."""
    return next((h for h in header if h.lower() == name), None)


def read_raw(path: str, file: str, spec: dict) -> tuple[TextTable, pl.DataFrame]:
    """The text table of an input (its encoding and delimiter), and its rows with the
    expected field count."""
    table = read_text_table(path, encoding=spec["encoding"], delimiter=spec["delimiter"], file=file)
    frame = table.frame.with_columns(pl.lit(table.n_fields, dtype=pl.Int64).alias("expected_fields"))
    if fast_path_enabled() and not _may_repeat_header(frame, table.header):
        # fast path: no row starts like the header, so none repeats it (one column looked at, not all)
        return table, frame.with_columns(
            pl.lit(None, dtype=pl.String).alias("ingest_rule"), pl.lit(None, dtype=pl.String).alias("ingest_message")
        )
    return table, frame.with_columns(repeated_header(table.header))


def _may_repeat_header(frame: pl.DataFrame, header: list[str]) -> bool:
    """Whether some row's first cell is the first header name (ignoring case)."""
    first = header[0]
    return bool(frame.select(pl.col(first).str.to_lowercase().eq_missing(first.lower()).any()).item())


def repeated_header(header: list[str]) -> list[pl.Expr]:
    """A row that repeats the header (two exports pasted together) is rejected as such."""
    same = pl.all_horizontal([pl.col(h).str.to_lowercase().eq_missing(h.lower()) for h in header])
    return [
        pl.when(same).then(pl.lit("header_repeated")).alias("ingest_rule"),
        pl.when(same)
        .then(pl.lit("this row repeats the header line: two exports pasted into one file?"))
        .alias("ingest_message"),
    ]


def read(path: str, *, file: str, spec: dict | None = None) -> tuple[pl.DataFrame, dict]:
    spec = spec or {}
    delimiter = spec["delimiter"]
    table, raw = read_raw(path, file, spec)
    mapped = apply_mapping(raw, table.header, spec, file=file, line=table.header_line)
    meta = text_meta(table, delimiter) | {
        "dropped_columns": mapped.dropped,
        "warnings": mapped.warnings,
        "source_columns": mapped.source_columns,
        "records_read": raw.height,
    }
    return mapped.frame, meta
