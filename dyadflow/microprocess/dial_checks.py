"""Validate dial ratings: every row is accepted or rejected with a rule and its line.

The accounting is the questionnaires' (:mod:`dyadflow.validate.rules`):
``results/microprocess/rejections.csv`` has one line per problem with the same columns
as ``results/validation/rejections.csv`` plus ``rater``; ``accounting.csv`` shows per
file ``rows_read = rows_accepted + rows_rejected``.

| rule | meaning |
|---|---|
| ``field_count`` | the row has more or fewer fields than the header |
| ``missing_value`` | dyad_id, session, rater, second or rating is empty |
| ``id_format`` | dyad_id is not a pseudonymous ID |
| ``session_format`` | session is not a whole number 0–9999 |
| ``rater_unknown`` | not patient (or client) or therapist |
| ``second_format`` | the second is not a whole number (``12.5``, ``abc``) |
| ``second_negative`` | the second is below 0 |
| ``second_range`` | the second is after ``max_session_s`` (seconds run 0 … max_session_s) |
| ``rating_format`` | the rating is not a number |
| ``rating_range`` | the rating is outside the configured range |
| ``duplicate_exact`` | the same second rated again with the same value: one row is kept |
| ``duplicate_second`` | the same second rated with different values: all those rows are rejected |
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dyadflow.core.accounting import (
    ACCOUNTING_COLUMNS,
    ACCOUNTING_KEY,
    REJECTION_COLUMNS,
    accounting_table,
    duplicate_groups,
)
from dyadflow.core.config import section
from dyadflow.microprocess import KEY, RATER_SYNONYMS
from dyadflow.microprocess.series import in_key_order
from dyadflow.validate.checks import ID_PATTERN

# the questionnaires' columns plus rater; input (the dial input that read the file) last
REJECTIONS = {k: t for k, t in REJECTION_COLUMNS.items() if k != "input"} | {"rater": pl.String, "input": pl.String}
ACCEPTED = {
    "dyad_id": pl.String,
    "session": pl.Int32,
    "rater": pl.String,
    "second": pl.Int32,
    "rating": pl.Float64,
    "source_file": pl.String,
    "source_line": pl.Int64,
}
_DEFAULTS = section("microprocess")  # the config schema's
MAX_SESSION_S = _DEFAULTS["max_session_s"]
INSTRUMENT = "dial"  # the value of the `instrument` column of the rejections


@dataclass
class DialValidation:
    accepted: pl.DataFrame
    rejections: pl.DataFrame
    accounting: pl.DataFrame


def _q(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), expr.fill_null(""), pl.lit("'"))


def _row_rules(lo: float, hi: float, max_s: int = MAX_SESSION_S) -> list[tuple[str, str | None, pl.Expr, pl.Expr]]:
    """(rule, column, condition, message) for the rules that look at one row."""
    sec = pl.col("second").cast(pl.Float64, strict=False)
    rat = pl.col("rating").cast(pl.Float64, strict=False)
    rules: list[tuple[str, str | None, pl.Expr, pl.Expr]] = [
        (
            "field_count",
            None,
            pl.col("source_fields") != pl.col("expected_fields"),
            pl.format(
                "the row has {} fields but the header has {}", pl.col("source_fields"), pl.col("expected_fields")
            ),
        )
    ]
    ok_fields = pl.col("source_fields") == pl.col("expected_fields")
    for c in ("dyad_id", "session", "rater", "second", "rating"):
        rules.append(("missing_value", c, ok_fields & pl.col(c).is_null(), pl.lit(f"{c} is empty")))
    rules += [
        (
            "id_format",
            "dyad_id",
            ok_fields & pl.col("dyad_id").is_not_null() & ~pl.col("dyad_id").str.contains(ID_PATTERN),
            pl.format(
                "{} is not a valid dyad_id: use letters, digits, _ and - (1–64 characters, starting with a letter or digit)",
                _q(pl.col("dyad_id")),
            ),
        ),
        (
            "session_format",
            "session",
            ok_fields & pl.col("session").is_not_null() & ~pl.col("session").str.contains(r"^[0-9]{1,4}$"),
            pl.format("{} is not a session number: a whole number 0–9999", _q(pl.col("session"))),
        ),
        (
            "rater_unknown",
            "rater",
            ok_fields & pl.col("rater").is_not_null() & ~pl.col("rater").str.to_lowercase().is_in(list(RATER_SYNONYMS)),
            pl.format("{} is not a dial rater: use patient (or client) or therapist", _q(pl.col("rater"))),
        ),
        (
            "second_format",
            "second",
            ok_fields & pl.col("second").is_not_null() & (sec.is_null() | ~sec.is_finite() | (sec != sec.floor())),
            pl.format("{} is not a whole number of seconds", _q(pl.col("second"))),
        ),
        (
            "second_negative",
            "second",
            ok_fields & sec.is_finite() & (sec == sec.floor()) & (sec < 0),
            pl.format("{} is before the start of the recording: seconds start at 0", _q(pl.col("second"))),
        ),
        (
            # also keeps the per-second grid bounded, and every accepted second within Int32
            "second_range",
            "second",
            ok_fields & sec.is_finite() & (sec == sec.floor()) & (sec > max_s),
            pl.format(
                "{} is after the end of the session: seconds run 0–{} (config microprocess.max_session_s)",
                _q(pl.col("second")),
                pl.lit(str(max_s)),
            ),
        ),
        (
            "rating_format",
            "rating",
            ok_fields & pl.col("rating").is_not_null() & (rat.is_null() | rat.is_nan()),
            pl.format("{} is not a number", _q(pl.col("rating"))),
        ),
        (
            "rating_range",
            "rating",
            ok_fields & rat.is_not_nan() & ((rat < lo) | (rat > hi)),
            pl.format(
                "{} is outside the rating range {} to {}", _q(pl.col("rating")), pl.lit(_num(lo)), pl.lit(_num(hi))
            ),
        ),
    ]
    return rules


def _num(x: float) -> str:
    return f"{x:g}"


def _found(rows: pl.DataFrame, rule: str, column: str | None, message: pl.Expr) -> pl.DataFrame:
    return rows.select(
        "_row",
        pl.lit(column, dtype=pl.String).alias("column"),
        (pl.col(column) if column else pl.lit(None, dtype=pl.String)).cast(pl.String).alias("value"),
        pl.lit(rule).alias("rule"),
        message.alias("message"),
    )


def row_level(raw: pl.DataFrame, lo: float, hi: float, max_s: int = MAX_SESSION_S) -> pl.DataFrame:
    """Rejections of the one-row rules, as (_row, column, value, rule, message)."""
    rules = _row_rules(lo, hi, max_s)
    flagged = raw.with_columns([cond.fill_null(False).alias(f"_f{i}") for i, (_, _, cond, _) in enumerate(rules)])
    parts = [
        _found(flagged.filter(pl.col(f"_f{i}")), rule, column, message)
        for i, (rule, column, _, message) in enumerate(rules)
    ]
    return pl.concat(parts)


def _rater() -> pl.Expr:
    return pl.col("rater").str.to_lowercase().replace_strict(RATER_SYNONYMS, return_dtype=pl.String)


def typed(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(
        pl.col("session").cast(pl.Int32),
        _rater(),
        pl.col("second").cast(pl.Float64).cast(pl.Int32),
        pl.col("rating").cast(pl.Float64),
    )


def _typed_clean(rows: pl.DataFrame) -> pl.DataFrame:
    """:func:`typed` for rows read typed (``second`` and ``rating`` are numbers already);
    the raters are mapped only when some is not written as the outputs write it."""
    written = set(rows.get_column("rater").unique().to_list())
    return rows.with_columns(
        pl.col("session").cast(pl.Int32),
        *([] if written <= set(RATER_SYNONYMS.values()) else [_rater()]),
    )


def duplicates(rows: pl.DataFrame) -> pl.DataFrame:
    """The same second of a dyad, session and rater more than once."""
    g = duplicate_groups(rows, [*KEY, "second"], pl.col("rating"))
    conflict = g.filter(pl.col("_distinct") > 1)
    exact = g.filter((pl.col("_distinct") == 1) & (pl.col("_row") != pl.col("_first")))
    return pl.concat(
        [
            _found(
                conflict,
                "duplicate_second",
                "second",
                pl.format(
                    "second {} of dyad {}, session {}, {} is rated {} times with different values ({}); all are rejected",
                    pl.col("second"),
                    pl.col("dyad_id"),
                    pl.col("session"),
                    pl.col("rater"),
                    pl.col("_n"),
                    pl.col("_all_where"),
                ),
            ),
            _found(
                exact,
                "duplicate_exact",
                "second",
                pl.format(
                    "second {} again with the same rating as {}, which is kept",
                    pl.col("second"),
                    pl.col("_first_where"),
                ),
            ),
        ]
    )


def validate_frame(
    raw: pl.DataFrame,
    metas: list[dict],
    lo: float = _DEFAULTS["range"]["min"],
    hi: float = _DEFAULTS["range"]["max"],
    max_session_s: int = MAX_SESSION_S,
    clean: pl.DataFrame | None = None,
) -> DialValidation:
    """Judge every row of ``raw`` (strings). ``clean`` (the fast path,
    :func:`dyadflow.microprocess.load.read_inputs_screened`): rows already known to pass
    every one-row rule, typed; ``raw`` and ``clean`` then carry ``_row``, each row's
    place among all rows read, so duplicates are judged in the order of the files."""
    if "input" not in raw.columns:  # read without load.read_inputs: each file is its own input
        raw = raw.with_columns(pl.col("source_file").alias("input"))
    metas = [{**m, "input": m.get("input") or m["source_file"]} for m in metas]
    if "_row" not in raw.columns:
        raw = raw.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    found = [row_level(raw, lo, hi, max_session_s)]
    survivors = typed(raw.join(found[0].select("_row").unique(), on="_row", how="anti"))
    context = _context(raw)
    in_order = False
    if clean is not None:
        cols = ["_row", *KEY, "second", "rating", "source_file", "source_line", "input"]
        survivors = pl.concat([survivors.select(cols), _typed_clean(clean).select(cols)])
        if raw.height:
            survivors = survivors.sort("_row")
        # sorted by dyad, session, rater and second with no second twice: no duplicates, no sort
        in_order = in_key_order(survivors)
        if not in_order:
            context = pl.concat([context, _context(clean)])
    found.append(duplicates(survivors) if not in_order else _found(survivors.clear(), "", None, pl.lit("")))
    if found[1].height:
        survivors = survivors.join(found[1].select("_row"), on="_row", how="anti")
    accepted = survivors.select(list(ACCEPTED)).cast(ACCEPTED)
    if not in_order:
        accepted = accepted.sort(*KEY, "second")
    rejections = (
        pl.concat(found)
        .join(context, on="_row", how="left")
        .select(
            "source_file",
            "source_line",
            "column",
            "value",
            "rule",
            "message",
            "dyad_id",
            pl.col("_s").alias("session"),
            pl.lit(INSTRUMENT).alias("instrument"),
            pl.col("column").alias("source_column"),
            pl.col("_r").alias("rater"),
            "input",
        )
        .sort("source_file", "source_line", "rule", "column", nulls_last=True)
        .cast(REJECTIONS)
    )
    # the accepted rows per input and file as runs of rows in a row (one file's rows are together):
    # counting runs compares neighbours; a group-by of every row hashed two text columns per row
    runs = (
        survivors.select(pl.struct(*ACCOUNTING_KEY).rle().alias("_run"))
        .unnest("_run")
        .select(pl.col("value").struct.unnest(), pl.col("len").cast(pl.Int64).alias("_n"))
    )
    return DialValidation(accepted, rejections, accounting(rejections, runs, metas))


def _context(rows: pl.DataFrame) -> pl.DataFrame:
    """What a rejection shows of its row: provenance, and the keys as written."""
    return rows.select(
        "_row",
        "source_file",
        "source_line",
        "input",
        "dyad_id",
        pl.col("session").alias("_s"),
        pl.col("rater").alias("_r"),
    )


def accounting(rejections: pl.DataFrame, accepted: pl.DataFrame, metas: list[dict]) -> pl.DataFrame:
    """Per file (each read once, for one input): ``accepted`` has a row per accepted row, or per
    run of them with ``_n``, the run's length."""
    # every per-file column of the questionnaires' accounting, taken from the file's meta
    counted = ("rows_accepted", "rows_rejected", "rows_duplicate")
    per_file = {k: t for k, t in ACCOUNTING_COLUMNS.items() if k not in counted}
    base = pl.DataFrame({k: [m.get(k) for m in metas] for k in per_file}, schema=per_file)
    rejected_rows = rejections.select(*ACCOUNTING_KEY, "source_line").unique()
    return accounting_table(base, accepted, rejected_rows, rejections)
