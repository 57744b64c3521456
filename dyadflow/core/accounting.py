"""Accounting shared by every stage that reads rows: the rejection, accounting and warning
tables, duplicate grouping, and the messages about files no row of which was used.

Every input row is accepted or rejected with a rule and a line; :func:`accounting_table`
checks that rows read = rows accepted + rows rejected for every file (questionnaires,
dial files, coded sessions).
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.contract import Contract, dtypes, nullable
from dyadflow.core.naming import input_name


class RejectionsModel(Contract):
    """results/validation/rejections.csv: one row per rejected input row, with its rule and line."""

    source_file: pl.String = nullable()
    source_line: pl.Int64 = nullable()
    column: pl.String = nullable()
    value: pl.String = nullable()
    rule: pl.String = nullable()
    message: pl.String = nullable()
    dyad_id: pl.String = nullable()
    session: pl.String = nullable()
    instrument: pl.String = nullable()
    source_column: pl.String = nullable()
    input: pl.String = nullable()  # the config input's name: one file can be two inputs (two instruments)


class AccountingModel(Contract):
    """results/validation/accounting.csv: rows read = accepted + rejected, per input and file."""

    source_file: pl.String = nullable()
    sha256: pl.String = nullable()
    rows_read: pl.Int64 = nullable()
    rows_accepted: pl.Int64 = nullable()
    rows_rejected: pl.Int64 = nullable()
    rows_duplicate: pl.Int64 = nullable()
    blank_rows: pl.Int64 = nullable()
    format: pl.String = nullable()
    records_read: pl.Int64 = nullable()
    file_error: pl.String = nullable()  # a file quarantined as a whole (validation: quarantine): why it cannot be read
    input: pl.String = nullable()


class WarningsModel(Contract):
    """results/validation/warnings.csv."""

    source_file: pl.String = nullable()
    column: pl.String = nullable()
    warning: pl.String = nullable()


REJECTION_COLUMNS = dtypes(RejectionsModel)
ACCOUNTING_COLUMNS = dtypes(AccountingModel)
# a file is accounted once per input that reads it (a wide CSV can hold two instruments)
ACCOUNTING_KEY = ("input", "source_file")
WARNING_COLUMNS = dtypes(WarningsModel)


MAX_QUOTED = 80  # characters of a cell quoted in a message
MAX_VALUE = 200  # characters of a cell kept in the rejections' value column


def shorten(expr: pl.Expr, limit: int) -> pl.Expr:
    """A long cell cut to ``limit`` characters, saying how long it was."""
    n = expr.str.len_chars()
    return pl.when(n > limit).then(pl.format("{}… ({} characters)", expr.str.slice(0, limit), n)).otherwise(expr)


def quote(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), shorten(expr.fill_null(""), MAX_QUOTED), pl.lit("'"))


def duplicate_groups(rows: pl.DataFrame, key: list[str], distinct: pl.Expr) -> pl.DataFrame:
    """The rows whose ``key`` occurs more than once, each with its group's size ``_n``,
    its number of distinct contents ``_distinct`` (``distinct``, evaluated per group), its
    first row ``_first`` and where that is and where all of them are ("line 12" or, across
    files, "file line 12"), for the duplicate rules of questionnaires and dial files."""
    # one chunk per column: polars 2.1 panics ("assertion failed: i < self.len()", cf.
    # pola-rs/polars#25187) in the pl.format(..).sort_by().first().over() below on some
    # multi-chunk string columns (found by tests/test_redcap_properties.py, kept there as
    # POLARS_WINDOW_PANIC)
    rows = rows.rechunk()
    many_files = pl.col("source_file").n_unique().over(key) > 1
    where = (
        pl.when(many_files)
        .then(pl.format("{} line {}", pl.col("source_file"), pl.col("source_line")))
        .otherwise(pl.format("line {}", pl.col("source_line")))
    )
    # only keys that occur more than once need the expensive comparison
    return rows.filter(pl.len().over(key) > 1).with_columns(
        pl.len().over(key).alias("_n"),
        distinct.n_unique().over(key).alias("_distinct"),
        pl.col("_row").min().over(key).alias("_first"),
        where.sort_by("_row").first().over(key).alias("_first_where"),
        where.sort_by("_row").str.join(", ").over(key).alias("_all_where"),
    )


def accounting_table(
    base: pl.DataFrame, accepted: pl.DataFrame, rejected_rows: pl.DataFrame, rejections: pl.DataFrame
) -> pl.DataFrame:
    """The accounting table (ACCOUNTING_COLUMNS) from each file's own figures (``base``:
    one row per input and file) and the rows' outcomes (``accepted`` and ``rejected_rows``:
    one row per row, with ``input`` and ``source_file``); also used for the dial files.
    Raises if a file's rows read are not its rows accepted plus rejected, which would be a bug."""
    key = list(ACCOUNTING_KEY)
    per_file_rejected = rejected_rows.group_by(key).agg(pl.len().alias("rows_rejected"))
    per_file_dup = (
        rejections.filter(pl.col("rule") == "duplicate_exact").group_by(key).agg(pl.len().alias("rows_duplicate"))
    )
    # ``_n`` (optional): how many rows each row of ``accepted`` stands for (runs of one file's rows)
    count = pl.col("_n").sum() if "_n" in accepted.columns else pl.len()
    per_file_accepted = accepted.group_by(key).agg(count.alias("rows_accepted"))
    table = (
        base.join(per_file_accepted, on=key, how="left")
        .join(per_file_rejected, on=key, how="left")
        .join(per_file_dup, on=key, how="left")
        .with_columns(pl.col("rows_accepted", "rows_rejected", "rows_duplicate").fill_null(0))
        .select(list(ACCOUNTING_COLUMNS))
        .cast(ACCOUNTING_COLUMNS)
    )
    broken = table.filter(pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_rejected"))
    if broken.height:  # a bug in dyadflow, never a data problem
        raise AssertionError(f"accounting does not balance: {broken.to_dicts()}")
    return table


def files_without_data(accounting: pl.DataFrame) -> pl.DataFrame:
    """The files no row of which was accepted: every row rejected (``rows_read`` > 0,
    ``rows_accepted`` 0), or quarantined as a whole (``file_error``)."""
    return accounting.filter(
        pl.col("file_error").is_not_null() | ((pl.col("rows_read") > 0) & (pl.col("rows_accepted") == 0))
    )


def whole_file_message(row: dict) -> str:
    """One line about a file of :func:`files_without_data` (the terminal, the nightly, the report)."""
    if row.get("file_error"):
        return f"{row['source_file']}: the whole file was quarantined, it cannot be read: {row['file_error']}"
    return (
        f"{row['source_file']}: all {row['rows_read']} row(s) were rejected: no data from this file is used "
        "(results/validation/rejections.csv)"
    )


def input_of(meta: dict) -> str:
    """The name of the input a file's meta belongs to (the config input's name)."""
    return meta.get("input") or input_name({"path": meta["source_file"]})


def warnings_table(metas: list[dict]) -> pl.DataFrame:
    """One row per warning an ingest reader raised (e.g. a column that looks like a direct identifier)."""
    rows = [w for m in metas for w in m.get("warnings", [])]
    return pl.DataFrame(rows, schema=WARNING_COLUMNS) if rows else pl.DataFrame(schema=WARNING_COLUMNS)
