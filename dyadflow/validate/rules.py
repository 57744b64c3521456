"""Validate: judge every ingested row, keep the good ones, account for all of them.

Row-level rules are pandera checks generated from the registry (see
:mod:`dyadflow.validate.checks`). Rules that compare rows (duplicates, a dyad's identity, the
order of dates) are polars expressions over the rows that passed the row-level rules.
Every row read ends up either in ``results/validated/questionnaires.parquet`` or in
``results/validation/rejections.csv`` with its file, line, rule and a message; the
counts per file are in ``results/validation/accounting.csv``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl

from dyadflow.core import atomic
from dyadflow.core.accounting import (
    ACCOUNTING_KEY,
    MAX_QUOTED,
    MAX_VALUE,
    REJECTION_COLUMNS,
    WARNING_COLUMNS,
    AccountingModel,
    RejectionsModel,
    WarningsModel,
    accounting_table,
    duplicate_groups,
    input_of,
    quote,
    shorten,
    warnings_table,
)
from dyadflow.core.contract import read_parquet
from dyadflow.core.errors import ValidationFailed
from dyadflow.core.registry import RATERS, Instrument, item_column
from dyadflow.validate import consent as consent_rules
from dyadflow.validate.checks import (
    ID_PATTERN,
    PANDERA_RULES,
    clean_rows,
    contract_holds,
    fast_path_enabled,
    instrument_item_values,
    instrument_schema,
    parse_bool,
    parse_date,
    raw_schema,
    simple_tokens,
    total_number,
    validated_schema,
)
from dyadflow.validate.consent import ConsentModel
from dyadflow.validate.linking import id_warnings

BASE_COLUMNS = ("dyad_id", "patient_id", "therapist_id", "arm", "session", "date", "rater", "instrument")
TEXT_COLUMNS = ("note", "consent_share_text", "consent_share_ratings")
PROVENANCE = ("source_file", "source_line")
# the raw rows' columns read after typing: rejection context, accounting, consent decisions
LATER_COLUMNS = ("dyad_id", "session", "date", "rater", "instrument", *consent_rules.CONSENT_COLUMNS)
# coder_id is empty on patient and therapist rows: an observer row's key is (dyad, session, instrument, coder)
DUPLICATE_KEY = ("dyad_id", "session", "rater", "instrument", "coder_id")
# config earliest_date: a date before it is rejected (date_range); year 0 would crash the reports
EARLIEST_DATE = dt.date(1900, 1, 1)

# Rejections a reader makes while mapping an export (see dyadflow.ingest)
INGEST_RULE_COLUMNS = ("ingest_rule", "ingest_message", "ingest_column", "ingest_value")


@dataclass
class ValidationResult:
    accepted: pl.DataFrame
    rejections: pl.DataFrame
    accounting: pl.DataFrame
    # every consent decision, also on rejected rows (dyadflow.validate.consent)
    consent: pl.DataFrame = field(default_factory=consent_rules.empty_table)
    # warnings.csv: ingest warnings, consent cells that are no decision (non-patient rows),
    # then the ID warnings (dyadflow.validate.linking), which are also kept apart in ``linking``
    warnings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNING_COLUMNS))
    linking: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=WARNING_COLUMNS))


def _found(
    rows: pl.DataFrame, rule: str, message: pl.Expr, column: str | None = None, value: pl.Expr | None = None
) -> pl.DataFrame:
    """Rejection records for the rows of ``rows`` (which has ``_row``)."""
    return rows.select(
        pl.col("_row"),
        pl.lit(column, dtype=pl.String).alias("column"),
        (value if value is not None else pl.lit(None, dtype=pl.String)).cast(pl.String).alias("value"),
        pl.lit(rule).alias("rule"),
        message.alias("message"),
    )


EMPTY_FOUND = pl.DataFrame(
    schema={"_row": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String, "message": pl.String}
)


def _pandera_failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Run a pandera schema with data checks; failures as (_row, column, value, rule).

    With the fast path on, the rows that pass every check in one polars pass
    (:func:`dyadflow.validate.checks.clean_rows`) are left out first: pandera judges only the
    others, and reports for them what it would report in the whole frame."""
    if fast_path_enabled():
        clean = clean_rows(schema, frame)
        if clean is not None:
            frame = frame.filter(~clean)
            if not frame.height:  # pandera would still run every check, on no rows
                return pl.DataFrame(
                    schema={"column": pl.String, "value": pl.String, "rule": pl.String, "_row": pl.Int64}
                )
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        rows = frame.get_column("_row")
        return (
            fc.select(
                pl.col("index").cast(pl.Int64),
                pl.when(pl.col("schema_context") == "Column").then(pl.col("column").cast(pl.String)).alias("column"),
                pl.when(pl.col("schema_context") == "Column")
                .then(pl.col("failure_case").cast(pl.String))
                .alias("value"),
                pl.col("check").replace(PANDERA_RULES).alias("rule"),
            )
            .with_columns(pl.col("index").map_batches(lambda s: rows.gather(s), return_dtype=pl.Int64).alias("_row"))
            .drop("index")
        )
    return pl.DataFrame(schema={"column": pl.String, "value": pl.String, "rule": pl.String, "_row": pl.Int64})


ROW_MESSAGES = {
    "missing_value": lambda: pl.format("{} is empty", pl.col("column")),
    "id_format": lambda: pl.format(
        "{} is not a valid {}: use letters, digits, _ and - (1–64 characters, starting with a letter or digit)",
        quote(pl.col("value")),
        pl.col("column"),
    ),
    "session_format": lambda: pl.format(
        "{} is not a session number: a whole number 0–9999, where 0 is intake", quote(pl.col("value"))
    ),
    "date_format": lambda: pl.format("{} is not an ISO 8601 date (YYYY-MM-DD) that exists", quote(pl.col("value"))),
    "date_future": lambda: pl.format(
        "{} is in the future: after the data freeze date (config data_freeze, by default the day of the build)",
        quote(pl.col("value")),
    ),
    "rater_unknown": lambda: pl.format("{} is not a rater: use patient, therapist or observer", quote(pl.col("value"))),
    "consent_value": lambda: pl.format(
        "{} is not true or false (true/yes/y/1/ja/j or false/no/n/0/nei/nej)", quote(pl.col("value"))
    ),
    "coder_missing": lambda: pl.lit("an observer's rating needs its coder: coder_id is empty"),
}


def _keep(frame: pl.DataFrame, condition: pl.Expr) -> pl.DataFrame:
    """``frame.filter(condition)``; with the fast path, ``frame`` itself (no copy of every
    column) when the condition keeps every row, as it does on a clean export."""
    if not fast_path_enabled():
        return frame.filter(condition)
    mask = frame.select(condition.fill_null(False)).to_series()
    return frame if mask.all() else frame.filter(mask)


def _row_messages(found: pl.DataFrame, known: list[str], earliest_date: dt.date | None = None) -> pl.DataFrame:
    messages = dict(ROW_MESSAGES)
    messages["date_range"] = lambda: pl.format(
        "{} is before the earliest date {} (config earliest_date): a typing error?",
        quote(pl.col("value")),
        pl.lit(str(earliest_date)),
    )
    messages["instrument_unknown"] = lambda: pl.format(
        "{} is not in the instrument registry (known: {})", quote(pl.col("value")), pl.lit(", ".join(known))
    )
    expr = pl.lit(None, dtype=pl.String)
    for rule, make in messages.items():
        expr = pl.when(pl.col("rule") == rule).then(make()).otherwise(expr)
    coder = pl.col("rule") == "coder_missing"
    return found.with_columns(
        expr.alias("message"), pl.when(coder).then(pl.lit("coder_id")).otherwise(pl.col("column")).alias("column")
    )


def _instrument_messages(found: pl.DataFrame, inst: Instrument) -> pl.DataFrame:
    allowed = pl.DataFrame(
        {"column": inst.items, "_allowed": [inst.describe_allowed(i) for i in range(1, inst.n_items + 1)]},
        schema={"column": pl.String, "_allowed": pl.String},
    )
    found = found.join(allowed, on="column", how="left")
    item_no = pl.col("column").str.extract(r"(\d+)$").cast(pl.Int64).cast(pl.String)
    message = (
        pl.when(pl.col("rule") == "item_value")
        .then(
            pl.format(
                "{} is not an allowed answer to {} item {} (allowed: {})",
                quote(pl.col("value")),
                pl.lit(inst.key),
                item_no,
                pl.col("_allowed"),
            )
        )
        .when((pl.col("rule") == "item_not_in_instrument") & pl.lit(inst.total_only))
        .then(
            pl.format(
                "{} is scored from its total only (input: total), so {} must be empty (found {})",
                pl.lit(inst.key),
                pl.col("column"),
                quote(pl.col("value")),
            )
        )
        .when(pl.col("rule") == "item_not_in_instrument")
        .then(
            pl.format(
                "{} has {} items, so {} must be empty (found {})",
                pl.lit(inst.key),
                pl.lit(inst.n_items),
                pl.col("column"),
                quote(pl.col("value")),
            )
        )
        .when(pl.col("rule") == "total_missing")
        .then(pl.lit(f"{inst.key} is scored from its total (input: total), and the total is empty"))
        .when(pl.col("rule") == "total_value")
        .then(
            pl.format("{} is not a number: the total of {} must be a number", quote(pl.col("value")), pl.lit(inst.key))
        )
        .when(pl.col("rule") == "total_range")
        .then(
            pl.format(
                "total {} is outside {}'s total_range {}–{}",
                quote(pl.col("value")),
                pl.lit(inst.key),
                pl.lit(_number(inst.total_min)),
                pl.lit(_number(inst.total_max)),
            )
        )
        .when(pl.col("rule") == "total_not_in_instrument")
        .then(
            pl.format(
                "{} is scored from its items, so total must be empty (found {})",
                pl.lit(inst.key),
                quote(pl.col("value")),
            )
        )
        .when(pl.col("rule") == "rater_not_allowed")
        .then(
            pl.format(
                "{} is rated by {}, not by {}",
                pl.lit(inst.key),
                pl.lit(" or ".join(inst.raters)),
                quote(pl.col("value")),
            )
        )
        .when(pl.col("rule") == "no_items")
        .then(pl.lit(f"no item of {inst.key} is answered: an empty questionnaire is not a completed one"))
    )
    return found.with_columns(
        message.alias("message"),
        pl.when(pl.col("rule") == "total_missing").then(pl.lit("total")).otherwise(pl.col("column")).alias("column"),
    ).drop("_allowed")


def _number(x: float | None) -> str:
    """151.0 -> "151", 0.5 -> "0.5" (for messages)."""
    return "" if x is None else f"{x:g}"


def _prepare(frames: list[pl.DataFrame]) -> pl.DataFrame:
    raw = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    for c in (*BASE_COLUMNS, *TEXT_COLUMNS, "source_file", "input", *INGEST_RULE_COLUMNS, "total", "coder_id"):
        if c not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    for c in ("source_line", "source_fields", "expected_fields"):
        if c not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.Int64).alias(c))
    # a REDCap event with a consent cell and no form (dyadflow.ingest.redcap)
    only = pl.col("consent_only").fill_null(False) if "consent_only" in raw.columns else pl.lit(False)
    raw = raw.with_columns(only.alias("consent_only"))
    # one chunk per column, as a defence against polars panics on multi-chunk string views
    # (see duplicate_groups); the frames of several files arrive as several chunks
    return raw.rechunk().with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))


def item_columns(frame: pl.DataFrame) -> list[str]:
    return sorted((c for c in frame.columns if c.startswith("item_")), key=lambda c: int(c[5:]))


def _row_level(
    raw: pl.DataFrame,
    registry: dict[str, Instrument],
    date_limit: dt.date | None = None,
    earliest_date: dt.date | None = EARLIEST_DATE,
) -> pl.DataFrame:
    """Rejections from the rules that look at one row at a time."""
    found: list[pl.DataFrame] = [
        raw.filter(pl.col("ingest_rule").is_not_null()).select(
            "_row",
            pl.col("ingest_column").alias("column"),
            pl.col("ingest_value").alias("value"),
            pl.col("ingest_rule").alias("rule"),
            pl.col("ingest_message").alias("message"),
        )
    ]
    raw = _keep(raw, pl.col("ingest_rule").is_null())
    ragged = raw.filter(pl.col("source_fields") != pl.col("expected_fields"))
    found.append(
        _found(
            ragged,
            "field_count",
            pl.format(
                "the row has {} fields but the header has {}", pl.col("source_fields"), pl.col("expected_fields")
            ),
        )
    )
    rest = _keep(raw, pl.col("source_fields") == pl.col("expected_fields"))
    known = sorted(registry)
    has_consent = tuple(
        c for c in ("consent_share_text", "consent_share_ratings") if rest.get_column(c).null_count() < rest.height
    )
    failures = _pandera_failures(raw_schema(known, has_consent, date_limit, earliest_date), rest)
    found.append(_row_messages(failures, known, earliest_date).select(EMPTY_FOUND.columns))

    items = item_columns(rest)
    rest = rest.with_columns(pl.col("instrument").str.to_lowercase().alias("_inst"))
    if fast_path_enabled():  # only the columns the instrument checks read are split per instrument
        rest = rest.select("_row", "_inst", "rater", "total", *items)
    for key in sorted(set(rest.get_column("_inst").drop_nulls().unique().to_list()) & set(known)):
        inst = registry[key]
        subset = rest.filter(pl.col("_inst") == key)
        failures = _pandera_failures(instrument_schema(inst, [*items, "total"]), subset)
        del subset  # (memory) before the next instrument's rows are copied
        found.append(_instrument_messages(failures, inst).select(EMPTY_FOUND.columns))
    return pl.concat(found)


def _typed(rows: pl.DataFrame, registry: dict[str, Instrument]) -> pl.DataFrame:
    """Parse the accepted strings into their types; item answers become Int16 values."""
    items = item_columns(rows)
    rows = rows.with_columns(
        pl.col("session").cast(pl.Int32),
        parse_date(pl.col("date")).alias("date"),
        pl.col("rater").str.to_lowercase(),
        pl.col("instrument").str.to_lowercase(),
        parse_bool(pl.col("consent_share_text")).alias("consent_share_text"),
        parse_bool(pl.col("consent_share_ratings")).alias("consent_share_ratings"),
        total_number(pl.col("total")).alias("total"),
    )
    if fast_path_enabled() and items and rows.height:
        return rows.with_columns(_typed_items(rows, registry, items))
    parts = []
    fast = fast_path_enabled()
    # fast path: the instruments' rows are split off with only the columns typed here, and
    # the typed items put back in place (the other columns are not copied per instrument)
    source = rows.select("_row", "instrument", *items) if fast else rows
    for key in sorted(rows.get_column("instrument").unique().to_list()):
        part = source.filter(pl.col("instrument") == key)
        inst = registry[key]
        own = [(i, item_column(i)) for i in range(1, inst.n_items + 1) if item_column(i) in items]
        if fast and own:
            # fast path: the answers found among the item's simple tokens ("3", "1a") are
            # looked up in one pass; only rows with another answer ("1A", "1a|2b") take the
            # text path's normalising lookup
            simple = {c: simple_tokens(inst, i) for i, c in own}
            part = part.with_columns(
                [
                    pl.col(c)
                    .replace_strict(list(t), list(t.values()), default=None, return_dtype=pl.Int16)
                    .alias(f"_fast{c}")
                    for c, t in simple.items()
                ]
            )
            mask = part.select(
                pl.all_horizontal([pl.col(c).is_null() | pl.col(f"_fast{c}").is_not_null() for c in simple])
            ).to_series()
            fast_cols = [f"_fast{c}" for c in simple]
            part = pl.concat(
                [
                    part.filter(mask).with_columns([pl.col(f"_fast{c}").alias(c) for c in simple]).drop(fast_cols),
                    part.filter(~mask).drop(fast_cols).with_columns(instrument_item_values(inst, items)),
                ]
            )
        else:
            part = part.with_columns(instrument_item_values(inst, items))
        part = part.with_columns([pl.lit(None, dtype=pl.Int16).alias(c) for c in items if c not in inst.items])
        parts.append(part)
    if not parts:
        return rows.with_columns([pl.lit(None, dtype=pl.Int16).alias(c) for c in items])
    if fast:  # rows are in _row order (filtered from the prepared table), so are the typed items
        return rows.with_columns(pl.concat(parts).sort("_row").select(items).get_columns())
    return pl.concat(parts).sort("_row")


def _union_tokens(registry: dict[str, Instrument], keys: list[str], column: str) -> dict[str, int]:
    """The simple tokens of ``column`` over the instruments ``keys`` that have that item,
    without the tokens two of them read differently (``sometimes`` is 2 in the WAI-SR, 4
    in the WAI-S): one lookup then types the column for every instrument's rows."""
    number = int(column[5:])
    merged: dict[str, int] = {}
    clash: set[str] = set()
    for key in keys:
        inst = registry[key]
        if number <= inst.n_items:
            for token, value in simple_tokens(inst, number).items():
                if merged.setdefault(token, value) != value:
                    clash.add(token)
    return {t: v for t, v in merged.items() if t not in clash}


def _cast_reads(registry: dict[str, Instrument], keys: list[str], column: str) -> bool:
    """Whether a plain Int16 cast of ``column`` gives, for every answer any of the
    instruments ``keys`` accepts there, either its value or nothing (then the row takes
    the lookup): true for numeric items (``3`` is 3; ``3.0``, ``1A`` do not cast); false
    where the codes are numbers that mean other values (a categorical ``0`` that is code
    1) and, for speed only, for items with codes such as ``1a``, which the lookup reads."""
    number = int(column[5:])
    for key in keys:
        inst = registry[key]
        if number > inst.n_items:
            continue
        if inst.item_codes.get(number):
            return False
        tokens = inst.token_map(number)
        cast = pl.Series(list(tokens), dtype=pl.String).cast(pl.Int16, strict=False).to_list()
        if any(got is not None and got != value for got, value in zip(cast, tokens.values(), strict=True)):
            return False
    return True


def _typed_items(rows: pl.DataFrame, registry: dict[str, Instrument], items: list[str]) -> list[pl.Series]:
    """The fast path's typed item columns of accepted rows (lower-case ``instrument``).

    Every answer of an accepted row is one its instrument accepts, and an item an
    instrument does not have is empty; so a cell that is a simple token of its own
    instrument has the same value in the union of the instruments' simple tokens (tokens
    they read differently are left out of it). One lookup per column types all rows at
    once (no split per instrument); a numeric item is cast instead (:func:`_cast_reads`),
    and its cells the cast leaves empty (``3.0``, a value label) are looked up, in the
    columns that have such cells. Only rows with another spelling (``1a|2b``, ``sOMETIMES``,
    a label two instruments read differently) take the text path's normalising lookup."""
    keys = sorted(rows.get_column("instrument").unique().to_list())
    exprs, lookups = [], {}
    for c in items:
        tokens = _union_tokens(registry, keys, c)
        lookup = pl.col(c).replace_strict(list(tokens), list(tokens.values()), default=None, return_dtype=pl.Int16)
        if not tokens:
            exprs.append(pl.lit(None, dtype=pl.Int16))
        elif _cast_reads(registry, keys, c):
            exprs.append(pl.col(c).cast(pl.Int16, strict=False))
            lookups[c] = lookup
        else:
            exprs.append(lookup)
    typed = rows.select([e.alias(c) for e, c in zip(exprs, items, strict=True)])
    # a cast column whose answers are not all numbers (value labels: Qualtrics' choice
    # text) takes the lookup for the cells the cast leaves empty
    labelled = [c for c in lookups if typed.get_column(c).null_count() > rows.get_column(c).null_count()]
    if labelled:
        found = rows.select(lookups[c].alias(c) for c in labelled)
        typed = typed.with_columns(typed.get_column(c).fill_null(found.get_column(c)) for c in labelled)
    other = rows.select(
        pl.any_horizontal(
            [pl.col(c).is_not_null() & t.is_null() for c, t in zip(items, typed.get_columns(), strict=True)]
        )
    ).to_series()
    if not other.any():
        return typed.get_columns()
    where = other.arg_true()
    rest = rows.filter(other).select("_row", "instrument", *items)
    parts = []
    for key in sorted(rest.get_column("instrument").unique().to_list()):
        inst = registry[key]
        part = rest.filter(pl.col("instrument") == key).with_columns(instrument_item_values(inst, items))
        parts.append(part.with_columns([pl.lit(None, dtype=pl.Int16).alias(c) for c in items if c not in inst.items]))
    values = pl.concat(parts).sort("_row")
    return [typed.get_column(c).scatter(where, values.get_column(c)) for c in items]


def _duplicates(rows: pl.DataFrame) -> pl.DataFrame:
    key = list(DUPLICATE_KEY)
    content = [
        c
        for c in rows.columns
        if c
        not in (*key, "_row", "source_file", "source_line", "source_fields", "expected_fields", "consent_only", "input")
    ]
    g = duplicate_groups(rows, key, pl.struct(content))
    conflict = g.filter((pl.col("_n") > 1) & (pl.col("_distinct") > 1))
    exact = g.filter((pl.col("_n") > 1) & (pl.col("_distinct") == 1) & (pl.col("_row") != pl.col("_first")))
    return pl.concat(
        [
            _found(
                conflict,
                "duplicate_conflict",
                pl.format(
                    "{} rows for dyad {}, session {}, {} {}{} differ ({}); all are rejected",
                    pl.col("_n"),
                    pl.col("dyad_id"),
                    pl.col("session"),
                    pl.col("rater"),
                    pl.col("instrument"),
                    pl.when(pl.col("coder_id").is_not_null())
                    .then(pl.format(", coder {}", pl.col("coder_id")))
                    .otherwise(pl.lit("")),
                    pl.col("_all_where"),
                ),
            ),
            _found(exact, "duplicate_exact", pl.format("exact copy of {}, which is kept", pl.col("_first_where"))),
        ]
    )


def _identity(rows: pl.DataFrame) -> pl.DataFrame:
    """A dyad keeps one patient, one therapist and one arm: the value most of its rows give."""
    found = []
    rows = rows.select("_row", "dyad_id", "session", "patient_id", "therapist_id", "arm")  # all that is read here
    for column, rule in (
        ("patient_id", "dyad_patient_changed"),
        ("therapist_id", "dyad_therapist_changed"),
        ("arm", "dyad_arm_changed"),
    ):
        counts = (
            rows.filter(pl.col(column).is_not_null())
            .group_by("dyad_id", column)
            .agg(pl.len().alias("_n"), pl.col("session").min().alias("_from"), pl.col("_row").min().alias("_r"))
            .sort(["dyad_id", "_n", "_from", "_r"], descending=[False, True, False, False])
        )
        if fast_path_enabled():
            # only a dyad with two values can have a row that differs from its reference
            counts = counts.filter(pl.len().over("dyad_id") > 1)
        ref = (
            counts.group_by("dyad_id", maintain_order=True)
            .first()
            .select(
                "dyad_id",
                pl.col(column).alias("_ref"),
                pl.col("_n").alias("_ref_n"),
                pl.col("_from").alias("_ref_from"),
            )
        )
        bad = rows.join(ref, on="dyad_id", how="inner").filter(
            pl.col(column).is_not_null() & (pl.col(column) != pl.col("_ref"))
        )
        found.append(
            _found(
                bad,
                rule,
                pl.format(
                    "dyad {} has {} {} in {} other rows (from session {}); this row says {}",
                    pl.col("dyad_id"),
                    pl.lit(column),
                    quote(pl.col("_ref")),
                    pl.col("_ref_n"),
                    pl.col("_ref_from"),
                    quote(pl.col(column)),
                ),
                column=column,
                value=pl.col(column),
            )
        )
    return pl.concat(found)


def _date_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Dates must not decrease as session numbers increase within a dyad.

    Where they do, the (session, date) entries involved in the most inversions are
    rejected, and the check repeats until the dyad is in order: one wrong date rejects
    one session, not every session after it.
    """
    fast = fast_path_enabled()
    # fast path: the screen groups the rows themselves, and only the suspects' entries are made unique
    entries = rows.select("dyad_id", "session", "date")
    if not fast:
        entries = entries.unique()
    # cheap screen: dyads where some session starts before an earlier session ended
    per_session = (
        entries.group_by("dyad_id", "session")
        .agg(pl.col("date").min().alias("_lo"), pl.col("date").max().alias("_hi"))
        .sort("dyad_id", "session")
    )
    if fast and per_session.schema["_hi"] == pl.Date and not per_session.get_column("_hi").has_nulls():
        # fast path: the latest date of a dyad's earlier sessions without grouping again: the
        # rows are sorted by dyad, so one running maximum of (dyad's number, day) gives it
        # within the dyad (an earlier dyad's keys are all smaller; no date is empty)
        first = pl.col("dyad_id").ne_missing(pl.col("dyad_id").shift(1))
        dyad = first.cum_sum().cast(pl.Int64) * (1 << 32)
        key = dyad + pl.col("_hi").to_physical().cast(pl.Int64) + (1 << 31)
        before = pl.when(first).then(None).otherwise(key.cum_max().shift(1) - dyad - (1 << 31))
        per_session = per_session.with_columns(before.cast(pl.Int32).cast(pl.Date).alias("_before"))
    else:
        per_session = per_session.with_columns(pl.col("_hi").cum_max().shift(1).over("dyad_id").alias("_before"))
    suspects = per_session.filter(pl.col("_lo") < pl.col("_before")).get_column("dyad_id").unique()
    entries = entries.filter(pl.col("dyad_id").is_in(suspects.implode()))
    if fast:
        entries = entries.unique()
    bad_entries = []
    while entries.height:
        pairs = entries.join(entries, on="dyad_id", suffix="_o").filter(
            ((pl.col("session") < pl.col("session_o")) & (pl.col("date") > pl.col("date_o")))
            | ((pl.col("session") > pl.col("session_o")) & (pl.col("date") < pl.col("date_o")))
        )
        if not pairs.height:
            break
        counts = (
            pairs.group_by("dyad_id", "session", "date")
            .agg(
                pl.len().alias("_inv"),
                pl.col("session_o").sort_by("session_o").first().alias("_o_session"),
                pl.col("date_o").sort_by("session_o").first().alias("_o_date"),
            )
            .with_columns(pl.col("_inv").max().over("dyad_id").alias("_max"))
        )
        worst = counts.filter(pl.col("_inv") == pl.col("_max"))
        bad_entries.append(worst)
        entries = entries.join(
            worst.select("dyad_id", "session", "date"), on=["dyad_id", "session", "date"], how="anti"
        )
    if not bad_entries:
        return EMPTY_FOUND
    worst = pl.concat(bad_entries)
    bad = rows.join(worst, on=["dyad_id", "session", "date"], how="inner")
    return _found(
        bad,
        "date_order",
        pl.format(
            "session {} is dated {}, out of order with session {} on {} ({} session(s) in conflict)",
            pl.col("session"),
            pl.col("date"),
            pl.col("_o_session"),
            pl.col("_o_date"),
            pl.col("_inv"),
        ),
        column="date",
        value=pl.col("date").cast(pl.String),
    )


def validate_frames(
    frames: list[pl.DataFrame],
    metas: list[dict],
    registry: dict[str, Instrument],
    date_limit: dt.date | None = None,
    alliance: dict | None = None,
    earliest_date: dt.date | None = EARLIEST_DATE,
) -> ValidationResult:
    """Accept or reject every row. Dates after ``date_limit`` (if given) are rejected as date_future,
    dates before ``earliest_date`` as date_range.
    ``alliance`` (the config's patient/therapist instruments) enables the one-rater ID warning.

    ``frames`` and ``metas`` are parallel: one ingested input each. Each input's rows are
    accounted under its name (meta ``input``), also when two inputs read the same file."""
    frames = [
        f.with_columns(pl.lit(input_of(m), dtype=pl.String).alias("input")) for f, m in zip(frames, metas, strict=False)
    ]
    raw = _prepare(frames)
    del frames  # (memory) raw holds the cells now; see run()
    consent_only = raw.filter(pl.col("consent_only"))  # not questionnaires: only their consent counts
    raw = _keep(raw, ~pl.col("consent_only"))
    found = [_row_level(raw, registry, date_limit, earliest_date)]
    rejected = found[0].get_column("_row").unique()
    survivors = _typed(_keep(raw, ~pl.col("_row").is_in(rejected.implode())), registry)
    # (memory) from here on only these text columns of the raw rows are read: the item
    # answers' text (most of the table) is dropped once the accepted rows are typed
    later = [c for c in ("_row", *PROVENANCE, "input", *LATER_COLUMNS) if c in raw.columns]
    raw, consent_only = raw.select(later), consent_only.select(later)
    for rule_set in (_duplicates, _identity, _date_order):
        step = rule_set(survivors)
        found.append(step)
        survivors = _keep(survivors, ~pl.col("_row").is_in(step.get_column("_row").implode()))

    items = item_columns(survivors)
    max_items = max((int(c[5:]) for c in items), default=0)
    schema = validated_schema(max_items)  # the columns of ValidatedModel, items after instrument
    order = ("dyad_id", "session", "instrument", "rater", "source_file", "source_line")
    accepted = (
        survivors.with_columns(
            [
                pl.lit(None, dtype=pl.Int16).alias(item_column(i))
                for i in range(1, max_items + 1)
                if item_column(i) not in items
            ]
        )
        .sort(*order)
        .select(*schema.columns)
    )
    if not (
        fast_path_enabled() and contract_holds(schema, accepted, order[:4])
    ):  # fast path: one polars pass when it holds
        accepted = schema.validate(accepted)

    context = raw.select(
        "_row",
        *PROVENANCE,
        "input",
        "dyad_id",
        pl.col("session").alias("_session"),
        pl.col("instrument").alias("_instrument"),
    )
    rejections = (
        pl.concat(found)
        .join(context, on="_row", how="left")
        .select(
            *PROVENANCE,
            "column",
            shorten(pl.col("value"), MAX_VALUE),
            "rule",
            "message",
            shorten(pl.col("dyad_id"), MAX_QUOTED),
            pl.col("_session").alias("session"),
            pl.col("_instrument").alias("instrument"),
            "input",
        )
        .sort("source_file", "source_line", "rule", "column", "input", nulls_last=True)
    )
    rejections = _with_source_columns(rejections, metas).cast(REJECTION_COLUMNS)
    # a REDCap record gives several questionnaires on one line: count rejected rows, not lines
    rejected_rows = pl.concat(found).select("_row").unique().join(raw.select("_row", *ACCOUNTING_KEY), on="_row")
    accounting = _accounting(raw, rejections, survivors.select(*ACCOUNTING_KEY), metas, rejected_rows)
    untrusted = found[0].filter(pl.col("rule").is_in(consent_rules.UNTRUSTED_RULES)).get_column("_row")
    consent, consent_warnings = consent_rules.decisions(pl.concat([raw, consent_only]), untrusted)
    linking = id_warnings(accepted, len(metas), alliance).cast(WARNING_COLUMNS)
    warnings = pl.concat(
        [warnings_table(metas), consent_warnings, consent_rules.invalid_cells(consent_only), linking]
    ).cast(WARNING_COLUMNS)
    return ValidationResult(accepted, rejections, accounting, consent, warnings, linking)


def _with_source_columns(rejections: pl.DataFrame, metas: list[dict]) -> pl.DataFrame:
    """Add ``source_column``: the export's own name of the column a rejection is about
    (``wai_sr_04`` for ``item_04`` of a REDCap form); the column itself when not renamed."""
    origins = pl.DataFrame(
        [
            {**o, "source_file": m["source_file"], "input": input_of(m)}
            for m in metas
            for o in m.get("source_columns", [])
        ],
        schema={
            "instrument": pl.String,
            "column": pl.String,
            "source_column": pl.String,
            "source_file": pl.String,
            "input": pl.String,
        },
    )
    per_instrument = origins.filter(pl.col("instrument").is_not_null()).rename({"source_column": "_by_instrument"})
    per_file = origins.filter(pl.col("instrument").is_null()).drop("instrument").rename({"source_column": "_by_file"})
    out = (
        rejections.with_row_index("_i")
        .join(per_instrument, on=["input", "source_file", "instrument", "column"], how="left")
        .join(per_file, on=["input", "source_file", "column"], how="left")
    )
    return (
        out.with_columns(pl.coalesce("_by_instrument", "_by_file", "column").alias("source_column"))
        .sort("_i")
        .select(*REJECTION_COLUMNS)
    )


def _accounting(
    raw: pl.DataFrame,
    rejections: pl.DataFrame,
    accepted: pl.DataFrame,
    metas: list[dict],
    rejected_rows: pl.DataFrame | None = None,
) -> pl.DataFrame:
    if rejected_rows is None:
        rejected_rows = rejections.select(*PROVENANCE, "input").unique()
    base = pl.DataFrame(
        {
            "input": [input_of(m) for m in metas],
            "source_file": [m["source_file"] for m in metas],
            "sha256": [m["sha256"] for m in metas],
            "rows_read": [m["rows_read"] for m in metas],
            "blank_rows": [m.get("blank_rows", 0) for m in metas],
            "format": [m["format"] for m in metas],
            "records_read": [m.get("records_read", m["rows_read"]) for m in metas],
            "file_error": [m.get("file_error") for m in metas],
        },
        schema={
            "input": pl.String,
            "source_file": pl.String,
            "sha256": pl.String,
            "rows_read": pl.Int64,
            "blank_rows": pl.Int64,
            "format": pl.String,
            "records_read": pl.Int64,
            "file_error": pl.String,
        },
    )
    return accounting_table(base, accepted, rejected_rows, rejections)


def strict_message(rejections: pl.DataFrame, limit: int = 10) -> str:
    n_rows = rejections.select(*PROVENANCE, "instrument").unique().height
    n_files = rejections.get_column("source_file").n_unique()
    lines = [
        f"validation failed (validation: strict): {n_rows} row(s) rejected in {n_files} file(s). The first problems:"
    ]
    for r in rejections.head(limit).iter_rows(named=True):
        col = f", column '{r['column']}'" if r["column"] else ""
        if r.get("source_column") and r["source_column"] != r["column"]:
            col += f" ('{r['source_column']}' in the export)"
        lines.append(f"  {r['source_file']}, line {r['source_line']}{col}: {r['rule']}: {r['message']}")
    if rejections.height > limit:
        lines.append(f"  … and {rejections.height - limit} more.")
    lines.append("Fix the export, or set 'validation: quarantine' to continue with the accepted rows.")
    return "\n".join(lines)


def run(
    ingested: list[str],
    metas: list[str],
    registry: dict[str, Instrument],
    policy: str,
    out_validated: str,
    out_rejections: str,
    out_accounting: str,
    strict_rejections: str | None = None,
    out_warnings: str | None = None,
    date_limit: dt.date | None = None,
    alliance: dict | None = None,
    out_consent: str | None = None,
    earliest_date: dt.date | None = EARLIEST_DATE,
) -> ValidationResult:
    """Validate the ingested files and write the outputs.

    In strict mode any rejection stops the build; the full list then goes to
    ``strict_rejections`` (outside ``results/``, which Snakemake cleans up after a failed job).
    """
    meta = [json.loads(Path(p).read_text(encoding="utf-8")) for p in metas]
    # the tables are handed over, not kept here, so that validate_frames can let go of the
    # text it no longer needs (one text column is 16 bytes a row: ~80 MB at 100,000 dyads)
    result = validate_frames([read_parquet(p) for p in ingested], meta, registry, date_limit, alliance, earliest_date)
    if policy == "strict" and result.rejections.height:
        message = strict_message(result.rejections)
        if strict_rejections:
            atomic.write_csv(strict_rejections, result.rejections)
            message += f"\nAll {result.rejections.height} rejections: {strict_rejections}"
        raise ValidationFailed(message)
    atomic.write_parquet(out_validated, result.accepted)
    atomic.write_table(out_rejections, result.rejections, RejectionsModel, "csv")
    atomic.write_table(out_accounting, result.accounting, AccountingModel, "csv")
    if out_warnings:
        atomic.write_table(out_warnings, result.warnings, WarningsModel, "csv")
    if out_consent:
        atomic.write_table(out_consent, result.consent, ConsentModel, "parquet")
    return result


__all__ = ["run", "validate_frames", "ValidationResult", "RATERS", "ID_PATTERN"]
