"""pandera schemas, generated from the instrument registry.

Nothing here is written per instrument. :func:`raw_schema` checks the columns every
questionnaire row has; :func:`instrument_schema` is built from one
:class:`~dyadflow.core.registry.Instrument` and checks its raters, its items' allowed values
and the columns it must leave empty; :func:`validated_schema` checks the typed table
that validation writes. The ``name`` of every check is the rejection rule reported to
the data manager.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

from dyadflow.core.contract import Contract
from dyadflow.core.performance import fast_path_enabled  # noqa: F401  (re-exported)
from dyadflow.core.registry import RATERS, Instrument, item_column

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SESSION_PATTERN = r"^[0-9]{1,4}$"
# ISO 8601 calendar date, optionally followed by a time of day.
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
# Accepted spellings of a consent cell (case-insensitive); the studies are Nordic, so the
# Scandinavian words count too (ja/j: yes; nei: Norwegian no; nej: Swedish/Danish no).
TRUE_WORDS = ("true", "yes", "y", "1", "ja", "j")
FALSE_WORDS = ("false", "no", "n", "0", "nei", "nej")
# The consent columns (see dyadflow/validate/consent.py): whether the patient's free text and the
# patient's own ratings may be shown in the therapist's copy of the case report.

ID_COLUMNS = ("dyad_id", "patient_id", "therapist_id")
# pandera's own check names, mapped to the rule names dyadflow reports
PANDERA_RULES = {"not_nullable": "missing_value"}

# Human-readable rule descriptions, for the docs, the validation report and messages.
RULES = {
    "field_count": "the row has a different number of fields than the header",
    "header_repeated": "the row repeats the header line (two exports pasted into one file)",
    "redcap_incomplete": "a REDCap form with data that is not marked complete (<form>_complete is not 2)",
    "qualtrics_incomplete": "a Qualtrics response that is not finished (Finished false, Progress below min_progress)",
    "qualtrics_test_response": "a Qualtrics survey preview or test response",
    "missing_value": "a required field is empty",
    "id_format": "an ID must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ (IDs become file names)",
    "session_format": "session must be a whole number 0–9999 (0 is intake)",
    "date_format": "date must be an ISO 8601 calendar date (YYYY-MM-DD) that exists",
    "date_future": "the date is after the data freeze (config data_freeze; by default the day of the build)",
    "rater_unknown": "rater must be patient, therapist or observer",
    "instrument_unknown": "the instrument is not in the registry",
    "consent_value": "consent_share_text / consent_share_ratings must be true/false (yes/no, y/n, 1/0, ja/j, nei/nej) or empty",
    "rater_not_allowed": "the instrument is not rated by this rater",
    "item_value": "the answer is not allowed for this item",
    "item_not_in_instrument": "a value in an item column the instrument does not have",
    "no_items": "no item is answered",
    "total_missing": "an instrument declared input: total needs its score in the total column",
    "total_value": "the total is not a number",
    "total_range": "the total is outside the instrument's total_range",
    "total_not_in_instrument": "a value in the total column for an instrument scored from its items",
    "duplicate_exact": "an exact copy of another row; one copy is kept",
    "duplicate_conflict": "several different rows for the same dyad, session, rater and instrument; all rejected",
    "dyad_patient_changed": "the dyad has another patient_id in its other rows",
    "dyad_therapist_changed": "the dyad has another therapist_id in its other rows",
    "dyad_arm_changed": "the dyad has another arm in its other rows",
    "date_order": "the date is out of order with the dyad's other sessions",
    "cell_error": "xlsx: a mapped cell holds an Excel error (#DIV/0!) or a formula with no saved result",
    "header_unnamed": "xlsx: a value in a column whose header cell is empty (a header merged over two columns)",
    "value_out_of_range": "sav: a number beyond ±2^53 or infinite, which no answer, session or ID can be",
    "date_range": "the date is before the earliest date (config earliest_date, default 1900-01-01)",
    "coder_missing": "an observer row without coder_id: observer ratings are kept per coder",
    "code_unknown": "coding: the selection and code are not in the frozen key handed to the coders (coding.selections key)",
    "code_changed": "coding: the code's entry in the selection's current key differs from the frozen key (reported, not remapped)",
}


def _expr_check(name: str, expr_fn, fast_fn=None, per_value: bool | None = None) -> pa.Check:
    """A check on one column whose outcome is the polars expression ``expr_fn(col)``.

    An empty cell passes: whether a column may be empty is the column's ``nullable``.
    ``fast_fn(col)``, if given, is a cheaper expression that is true only where
    ``expr_fn`` is true too (it may be false where ``expr_fn`` holds): the fast path
    (:func:`clean_rows`) screens the rows with it and sends the others to pandera.
    ``per_value`` (default: when there is no ``fast_fn``): the screen evaluates the
    expression once per distinct value of the column rather than once per row (for
    regexes and date parsing on columns such as IDs and dates, whose values repeat).
    """
    check = pa.Check(
        lambda data: data.lazyframe.select(pl.col(data.key).is_null() | expr_fn(pl.col(data.key))), name=name
    )
    check.dyadflow_expr = fast_fn or expr_fn  # read by clean_rows
    check.dyadflow_per_value = fast_fn is None if per_value is None else per_value
    return check


def _frame_check(name: str, expr: pl.Expr) -> pa.Check:
    """A check on whole rows whose outcome is ``expr`` (true: the row passes)."""
    check = pa.Check(lambda data: data.lazyframe.select(expr), name=name)
    check.dyadflow_frame_expr = expr  # read by clean_rows
    return check


def clean_rows(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.Series | None:
    """The fast path's screen: True for the rows of ``frame`` that no check of ``schema``
    can fail, computed in one polars pass from the checks' own expressions (or their
    cheaper sufficient ``fast_fn``). Only the other rows need pandera, which then finds
    exactly the failures it would find in the whole frame, since every check here looks
    at one row at a time. None when the frame cannot be screened this way (a column
    missing or not text, a check without an expression): then pandera sees every row."""
    conditions: list[pl.Expr] = []
    for name, column in schema.columns.items():
        if name not in frame.columns or frame.schema[name] != pl.String:
            return None
        col = pl.col(name)
        if not column.nullable:
            conditions.append(col.is_not_null())
        per_value = []
        for check in column.checks:
            expr_fn = getattr(check, "dyadflow_expr", None)
            if expr_fn is None:
                return None
            (per_value if getattr(check, "dyadflow_per_value", False) else conditions).append(
                col.is_null() | expr_fn(col)
            )
        if per_value:
            # each check looks at one cell: judge each distinct value once, then look the cells up
            distinct = frame.select(col.unique())
            good = distinct.filter(pl.all_horizontal(per_value).fill_null(False)).get_column(name)
            conditions.append(col.is_null() | col.is_in(good.implode()))
    for check in schema.checks:
        expr = getattr(check, "dyadflow_frame_expr", None)
        if expr is None:
            return None
        conditions.append(expr)
    if not conditions:
        return pl.Series("clean", [True] * frame.height, dtype=pl.Boolean)
    return frame.select(pl.all_horizontal(conditions).fill_null(False).alias("clean")).to_series()


def simple_tokens(inst: Instrument, item: int) -> dict[str, int]:
    """The answers to ``item`` that :func:`item_value` maps by one lookup of their lower
    case (no ``|`` or ``/``): "3", "3.0", "1a", a label in lower case, and the usual
    spellings of the labels and codes (as the registry writes them, "Very often",
    "VERY OFTEN", "Very Often", "1A": the choice text of a Qualtrics export), with their
    values. The fast path looks cells up among them in one pass; any other cell (e.g.
    "very Often", "1a|2b") goes through :func:`item_value`, which gives the same value for
    these: a spelling is listed only when its lower case is the token."""
    tokens = {k: v for k, v in inst.token_map(item).items() if k == k.lower() and "|" not in k and "/" not in k}
    written = inst.codes if inst.categorical else [*inst.labels.values(), *inst.item_codes.get(item, {})]
    spellings = {}
    for text in written:
        text = text.strip()
        for variant in (text, text.capitalize(), text.upper(), text.title()):
            if variant.lower() in tokens:  # "ß".upper() is "SS", whose lower case is another token
                spellings[variant] = tokens[variant.lower()]
    return tokens | spellings


def parse_date(col: pl.Expr) -> pl.Expr:
    """The calendar date of an ISO 8601 string (polars 2 has no String→Date cast)."""
    return col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def parse_bool(col: pl.Expr) -> pl.Expr:
    low = col.str.to_lowercase()
    return pl.when(low.is_in(TRUE_WORDS)).then(True).when(low.is_in(FALSE_WORDS)).then(False).otherwise(None)


def raw_schema(
    known_instruments: list[str],
    has_consent: bool | tuple[str, ...],
    date_limit: dt.date | None = None,
    earliest_date: dt.date | None = None,
) -> pa.DataFrameSchema:
    """Checks on the columns every raw questionnaire row has (all cells are strings)."""
    columns = {
        c: pa.Column(pl.String, nullable=False, checks=[_expr_check("id_format", lambda x: x.str.contains(ID_PATTERN))])
        for c in ID_COLUMNS
    }
    columns["session"] = pa.Column(
        pl.String, nullable=False, checks=[_expr_check("session_format", lambda x: x.str.contains(SESSION_PATTERN))]
    )
    columns["date"] = pa.Column(
        pl.String,
        nullable=False,
        checks=[_expr_check("date_format", lambda x: x.str.contains(DATE_PATTERN) & parse_date(x).is_not_null())]
        + (
            [_expr_check("date_future", lambda x: parse_date(x).is_null() | (parse_date(x) <= pl.lit(date_limit)))]
            if date_limit is not None
            else []
        )
        + (
            [_expr_check("date_range", lambda x: parse_date(x).is_null() | (parse_date(x) >= pl.lit(earliest_date)))]
            if earliest_date is not None
            else []
        ),
    )
    columns["rater"] = pa.Column(
        pl.String, nullable=False, checks=[_expr_check("rater_unknown", lambda x: x.str.to_lowercase().is_in(RATERS))]
    )
    columns["instrument"] = pa.Column(
        pl.String,
        nullable=False,
        checks=[_expr_check("instrument_unknown", lambda x: x.str.to_lowercase().is_in(known_instruments))],
    )
    # who rated an observer row (optional column; an observer row needs it: coder_missing)
    columns["coder_id"] = pa.Column(
        pl.String, nullable=True, checks=[_expr_check("id_format", lambda x: x.str.contains(ID_PATTERN))]
    )
    # has_consent: True (consent_share_text) or the consent columns that hold a value
    for name in ("consent_share_text",) if has_consent is True else (has_consent or ()):
        columns[name] = pa.Column(
            pl.String, nullable=True, checks=[_expr_check("consent_value", lambda x: parse_bool(x).is_not_null())]
        )
    observer_coder = _frame_check(
        "coder_missing",
        (pl.col("rater").str.to_lowercase() != "observer").fill_null(True) | pl.col("coder_id").is_not_null(),
    )
    return pa.DataFrameSchema(columns, checks=[observer_coder], strict=False, name="questionnaire_row")


def item_value(inst: Instrument, item: int, col: pl.Expr) -> pl.Expr:
    """The answer value of ``item`` (Int16, before reverse keying); null if not allowed.

    Accepts the item's numbers, codes and value labels, case-insensitively. With
    ``multiple_answers: highest``, several answers ("1a|2b") score the highest.
    """
    tokens = inst.token_map(item)
    keys, values = list(tokens), list(tokens.values())
    low = col.str.to_lowercase()
    single = low.replace_strict(keys, values, default=None, return_dtype=pl.Int16)
    if inst.multiple_answers != "highest":
        return single
    parts = low.str.split("|").list.eval(
        pl.element().str.strip_chars().replace_strict(keys, values, default=None, return_dtype=pl.Int16)
    )
    multi = pl.when(parts.list.eval(pl.element().is_null()).list.any()).then(None).otherwise(parts.list.max())
    return pl.when(low.str.contains("[|/]")).then(multi.cast(pl.Int16)).otherwise(single)


def total_number(col: pl.Expr) -> pl.Expr:
    """A pre-scored total as a number (decimals allowed); null if not a finite number."""
    num = col.str.strip_chars().cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num)


def _normalise_separators(col: pl.Expr) -> pl.Expr:
    return col.str.replace_all("/", "|", literal=True)


def instrument_item_values(inst: Instrument, columns: list[str]) -> list[pl.Expr]:
    """Expressions giving the typed value of each of the instrument's items present in ``columns``."""
    return [
        item_value(inst, i, _normalise_separators(pl.col(item_column(i)))).alias(item_column(i))
        for i in range(1, inst.n_items + 1)
        if item_column(i) in columns
    ]


def _token_screen(tokens: list[str]):
    """The fast screen of an item column: the cell is one of ``tokens``."""
    listed = pl.Series(tokens, dtype=pl.String).implode()
    return lambda x: x.is_in(listed)


def instrument_schema(inst: Instrument, columns: list[str]) -> pa.DataFrameSchema:
    """Checks generated from one instrument definition, for rows of that instrument."""
    schema_columns: dict[str, pa.Column] = {
        "rater": pa.Column(
            pl.String,
            nullable=True,
            checks=[
                # an unknown rater is reported once, by rater_unknown
                _expr_check(
                    "rater_not_allowed",
                    lambda x: ~x.str.to_lowercase().is_in(RATERS) | x.str.to_lowercase().is_in(inst.raters),
                )
            ],
        )
    }
    if "total" in columns:
        if inst.total_only:
            lo, hi = inst.total_min, inst.total_max
            schema_columns["total"] = pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _expr_check("total_value", lambda x: total_number(x).is_not_null()),
                    # a non-number is reported once, by total_value
                    _expr_check(
                        "total_range", lambda x: total_number(x).is_null() | total_number(x).is_between(lo, hi)
                    ),
                ],
            )
        else:
            schema_columns["total"] = pa.Column(
                pl.String,
                nullable=True,
                checks=[_expr_check("total_not_in_instrument", lambda x: x.is_null(), per_value=False)],
            )
    own = set(inst.items)
    for i in range(1, inst.n_items + 1):
        name = item_column(i)
        if name in columns:
            schema_columns[name] = pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _expr_check(
                        "item_value",
                        lambda x, i=i: item_value(inst, i, _normalise_separators(x)).is_not_null(),
                        _token_screen(list(simple_tokens(inst, i))),
                    )
                ],
            )
    for name in columns:
        if name.startswith("item_") and name not in own:
            schema_columns[name] = pa.Column(
                pl.String,
                nullable=True,
                checks=[_expr_check("item_not_in_instrument", lambda x: x.is_null(), per_value=False)],
            )
    present = [c for c in inst.items if c in columns]
    answered = pl.any_horizontal([pl.col(c).is_not_null() for c in present]) if present else pl.lit(False)
    if inst.total_only:
        has_total = pl.col("total").is_not_null() if "total" in columns else pl.lit(False)
        frame_check = _frame_check("total_missing", has_total)
    else:
        frame_check = _frame_check("no_items", answered)
    return pa.DataFrameSchema(
        schema_columns,
        checks=[frame_check],
        strict=False,
        name=inst.key,
    )


class ValidatedModel(Contract):
    """results/validated/questionnaires.parquet: one row per accepted questionnaire. The item
    columns (``item_01`` … up to the longest instrument of the study, Int16, empty when not
    answered) come between ``instrument`` and ``note``; they depend on the study."""

    dyad_id: pl.String = pa.Field(str_matches=ID_PATTERN)
    patient_id: pl.String = pa.Field(str_matches=ID_PATTERN)
    therapist_id: pl.String = pa.Field(str_matches=ID_PATTERN)
    arm: pl.String = pa.Field(nullable=True)
    session: pl.Int32 = pa.Field(in_range={"min_value": 0, "max_value": 9999})
    date: pl.Date = pa.Field()
    rater: pl.String = pa.Field(isin=RATERS)
    instrument: pl.String = pa.Field()
    note: pl.String = pa.Field(nullable=True)
    consent_share_text: pl.Boolean = pa.Field(nullable=True)
    consent_share_ratings: pl.Boolean = pa.Field(nullable=True)
    source_file: pl.String = pa.Field()
    source_line: pl.Int64 = pa.Field(ge=1)
    # the pre-scored total of an instrument declared input: total (else empty)
    total: pl.Float64 = pa.Field(nullable=True)
    # who rated an observer row (empty for patient and therapist rows)
    coder_id: pl.String = pa.Field(str_matches=ID_PATTERN, nullable=True)


# pandera's built-in column checks (pandera.backends.polars.builtin_checks), as polars
# expressions on a column's values: what contract_holds can decide itself
_BUILTIN_CHECKS = {
    "str_matches": lambda x, s: x.str.contains(s["pattern"] if s["pattern"].startswith("^") else f"^{s['pattern']}"),
    "in_range": lambda x, s: (
        (x >= s["min_value"] if s["include_min"] else x > s["min_value"])
        & (x <= s["max_value"] if s["include_max"] else x < s["max_value"])
    ),
    "isin": lambda x, s: x.is_in(list(s["allowed_values"])),
    "greater_than_or_equal_to": lambda x, s: x >= s["min_value"],
}


def contract_holds(schema: pa.DataFrameSchema, frame: pl.DataFrame, sorted_by: tuple[str, ...] = ()) -> bool:
    """Whether ``frame`` passes ``schema`` (:func:`validated_schema`), decided in one polars
    pass: the columns and their types exactly (nothing to coerce), no empty cell where none
    is allowed, every built-in check on the distinct values of its column (a 10,000-dyad
    table has ~370,000 rows but 10,000 dyad IDs), no two rows with the same ``unique``
    columns. When it holds, pandera would pass the frame and return it as it is. False:
    not decided here (a failure, or a schema with other checks): pandera then judges and
    reports as before. ``sorted_by``: columns, all among the ``unique`` ones, that ``frame``
    is sorted by; two rows alike in every ``unique`` column are then alike in these and
    next to each other's run, so when no two neighbouring rows are alike in these, no
    two rows are alike at all (no hash of every row)."""
    columns = schema.columns
    if schema.coerce or schema.checks or not (schema.strict and schema.ordered) or frame.columns != list(columns):
        return False
    tests = []
    for name, column in columns.items():
        if column.coerce or column.unique or column.regex or frame.schema[name] != column.dtype.type:
            return False
        if not column.nullable:
            tests.append(pl.col(name).null_count() == 0)
        for check in column.checks:
            builtin = _BUILTIN_CHECKS.get(check.name)
            if builtin is None or not check.ignore_na:
                return False
            tests.append(builtin(pl.col(name).drop_nulls().unique(), check.statistics).all())
    if schema.unique:
        if sorted_by and set(sorted_by) <= set(schema.unique) and frame.height > 1:
            same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(c).shift(1)) for c in sorted_by)
            if frame.select(same.any()).item():  # neighbours alike: the hash decides
                tests.append(~pl.struct(schema.unique).is_duplicated().any())
        else:
            tests.append(~pl.struct(schema.unique).is_duplicated().any())
    return all(frame.select(t.alias(f"_{i}") for i, t in enumerate(tests)).row(0)) if tests else True


def validated_schema(max_items: int) -> pa.DataFrameSchema:
    """The typed, accepted questionnaire table as the validator writes it: the columns of
    :class:`ValidatedModel` with ``max_items`` item columns after ``instrument``, nothing
    else, in that order, one row per questionnaire (and coder)."""
    fixed = ValidatedModel.to_schema().columns
    names = list(fixed)
    cut = names.index("instrument") + 1
    columns = {c: fixed[c] for c in names[:cut]}
    for i in range(1, max_items + 1):
        columns[item_column(i)] = pa.Column(pl.Int16, nullable=True)
    columns.update({c: fixed[c] for c in names[cut:]})
    return pa.DataFrameSchema(
        columns, strict=True, ordered=True, unique=["dyad_id", "session", "rater", "instrument", "coder_id"]
    )
