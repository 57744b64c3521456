"""Qualtrics CSV exports (``format: qualtrics``).

A Qualtrics export has three header rows: the export tags (column names), the question
text, and the ImportId JSON (legacy exports have only the first two: ``header_rows: 2``).
Data start on line 4, and ``source_line`` is that editor line.

- Embedded-data fields carry the IDs and the session: map them under ``columns``.
  ``date`` defaults to ``RecordedDate``.
- Answers come as numbers or as choice text; choice text is matched to the
  instrument's value labels by validation (``values: {items: {...}}`` recodes others).
- A response counts as complete when ``Finished`` is true, or ``Progress`` reaches the
  input's ``min_progress`` (default 100). Others are rejected under ``qualtrics_incomplete``.
- Survey previews and test responses (``Status`` Survey Preview / Survey Test, or
  ``DistributionChannel`` preview / test) are rejected under ``qualtrics_test_response``.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.core.performance import fast_path_enabled
from dyadflow.ingest.canonical import header_column, read_raw, text_meta
from dyadflow.ingest.mapping import apply_mapping

PREVIEW_STATUS = ("1", "9", "17", "survey preview", "preview spam", "offline survey preview")
TEST_STATUS = ("2", "survey test")
TRUE = ("1", "true", "yes")
SYSTEM_COLUMNS = ("status", "finished", "progress", "distributionchannel")


def _per_value(raw: pl.DataFrame, columns: list[str], decisions: tuple[pl.Expr, ...]) -> tuple[pl.Expr, ...]:
    """The ``decisions`` (expressions of ``columns`` only, never null) made on the distinct
    combinations of those columns' values, and looked up for every row by one join key:
    an export has a few statuses, channels and progress values, not a decision per cell."""
    if not columns:
        return decisions
    distinct = raw.select(pl.struct(columns).unique().struct.unnest())
    made = distinct.with_columns(d.alias(f"_d{i}") for i, d in enumerate(decisions))
    key = pl.struct(columns)
    return tuple(
        key.is_in(made.filter(pl.col(f"_d{i}")).select(pl.struct(columns)).to_series().implode())
        for i in range(len(decisions))
    )


def read(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    delimiter = spec["delimiter"]
    table, raw = read_raw(path, file, spec)
    header, line = table.header, table.header_line
    n_extra = int(spec["header_rows"]) - 1
    heads, raw = raw.head(n_extra), raw.slice(n_extra)
    if n_extra == 2:
        import_row = (
            heads.slice(1, 1).select(pl.any_horizontal(pl.col(header).str.starts_with('{"ImportId"'))).to_series()
        )
        if not import_row.len() or not import_row[0]:
            where = int(heads.get_column("source_line")[1]) if heads.height > 1 else line + 2
            raise DyadflowError(
                "expected the third header row of a Qualtrics export (the ImportId JSON) here; "
                "for a legacy export with two header rows set 'header_rows: 2'",
                file=file,
                line=where,
            )
    spec = dict(spec)
    if (
        "date" not in (spec.get("columns") or {})
        and "date" not in (spec.get("constants") or {})
        and header_column(header, "recordeddate")
    ):
        spec["columns"] = {**(spec.get("columns") or {}), "date": header_column(header, "recordeddate")}

    status = header_column(header, "status")
    channel = header_column(header, "distributionchannel")
    finished = header_column(header, "finished")
    progress = header_column(header, "progress")
    low = lambda c: pl.col(c).str.to_lowercase() if c else pl.lit(None, dtype=pl.String)  # noqa: E731
    preview = low(status).is_in(PREVIEW_STATUS).fill_null(False) | (low(channel) == "preview").fill_null(False)
    test = low(status).is_in(TEST_STATUS).fill_null(False) | (low(channel) == "test").fill_null(False)
    done = (
        low(finished).is_in(TRUE).fill_null(False)
        | (pl.col(progress).cast(pl.Float64, strict=False) >= float(spec["min_progress"])).fill_null(False)
        if progress
        else low(finished).is_in(TRUE).fill_null(False)
    )
    if finished is None and progress is None:
        done = pl.lit(True)
    # each decision once, as a column: the four columns below read them several times
    flags = ("__qualtrics_preview", "__qualtrics_test", "__qualtrics_done")
    decisions = (preview, test, done)
    if fast_path_enabled():  # decided once per distinct value (a few) and looked up, not per cell
        decisions = _per_value(raw, [c for c in (status, channel, finished, progress) if c], decisions)
    raw = raw.with_columns(e.alias(f) for e, f in zip(decisions, flags, strict=True))
    preview, test, done = (pl.col(f) for f in flags)
    shown = lambda c: pl.col(c).fill_null("") if c else pl.lit("")  # noqa: E731
    raw = raw.with_columns(
        pl.when(preview | test)
        .then(pl.lit("qualtrics_test_response"))
        .when(~done)
        .then(pl.lit("qualtrics_incomplete"))
        .alias("ingest_rule"),
        pl.when(preview)
        .then(
            pl.format(
                "a survey preview (Status '{}', DistributionChannel '{}'), not a response",
                shown(status),
                shown(channel),
            )
        )
        .when(test)
        .then(
            pl.format(
                "a test response (Status '{}', DistributionChannel '{}'), not a real one", shown(status), shown(channel)
            )
        )
        .when(~done)
        .then(
            pl.format("the response is not finished (Finished '{}', Progress {} %)", shown(finished), shown(progress))
        )
        .alias("ingest_message"),
        pl.when(preview | test)
        .then(pl.lit(status or channel))
        .when(~done)
        .then(pl.lit(finished or progress))
        .alias("ingest_column"),
        pl.when(preview | test)
        .then(pl.col(status or channel) if (status or channel) else None)
        .when(~done)
        .then(pl.col(finished or progress) if (finished or progress) else None)
        .alias("ingest_value"),
    ).drop(flags)
    keep_system = [c for c in (status, channel, finished, progress) if c]
    mapped = apply_mapping(raw, header, spec, file=file, line=line)
    dropped = [c for c in mapped.dropped if c not in keep_system]
    meta = text_meta(table, delimiter) | {
        "dropped_columns": dropped,
        "warnings": [w for w in mapped.warnings if w["column"] not in keep_system],
        "source_columns": mapped.source_columns,
        "records_read": raw.height,
        "header_rows": n_extra + 1,
    }
    return mapped.frame, meta
