"""Per-input mapping: from an export's own columns to the canonical questionnaire columns.

Every reader produces a *raw table*: the file's columns as strings (empty → null), plus
``source_line`` (the line, spreadsheet row or case a person finds the record at) and
``source_fields``. :func:`apply_mapping` turns it into the canonical columns using the
input's config keys (all documented in ``dyadflow/schemas/config.schema.yaml``):

``columns``    canonical field → the export's column (``patient_id: pat_code``)
``items``      a pattern naming the item columns, ``{n}`` being the item number
               (``wai_sr_{n:02d}``, ``Q1_{n}``)
``constants``  canonical field → a value for every row (``rater: therapist``)
``values``     canonical field (or ``items``) → {value in the export: canonical value}
``date_format``  strptime format(s) of the dates (``%d.%m.%Y``); ISO dates always pass
``excel_serial_dates``  read whole numbers in the date column as Excel day serials
``decimal_comma``  ``3,0`` is the number 3.0 (item answers and session numbers)
``ids``        ID field → a rule making this input's IDs the study's (``strip_prefix``,
               ``regex`` or ``lookup``), applied to every format by :func:`apply_id_rules`

Canonical fields the config does not map are matched by name (case-insensitively), so
the canonical table needs no mapping. Only mapped columns are kept: the others are
listed in the ingest log, and those whose name looks like a direct identifier (a name,
an e-mail address, a phone number, a personal identity number …) are reported as
warnings in ``results/validation/warnings.csv``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import item_column

REQUIRED = ("dyad_id", "patient_id", "therapist_id", "session", "date", "rater", "instrument")
# ``total``: a pre-scored total, for instruments declared ``input: total``;
# ``coder_id``: who rated an observer row (rater observer needs one, rule coder_missing)
# the patient's two consents (dyadflow/validate/consent.py)
CONSENT_COLUMNS = ("consent_share_text", "consent_share_ratings")
OPTIONAL = ("arm", "note", *CONSENT_COLUMNS, "total", "coder_id")
FIELDS = REQUIRED + OPTIONAL
# A coded file (config ``coding.inputs``, dyadflow.coding) names its session by the
# selection and the blinding code; dyad, session, patient, therapist and date come from
# the frozen key, and every row is an observer's.
CODED_REQUIRED = ("selection", "code", "instrument", "coder_id")
CODED_FIELDS = CODED_REQUIRED + ("note",)
ITEM_RE = re.compile(r"^item_?0*(\d+)$", re.IGNORECASE)
# Reader-level rejections (an incomplete REDCap form, a Qualtrics preview) travel with the
# row in these columns; validation reports them under their own rule.
INGEST_RULE_COLUMNS = ("ingest_rule", "ingest_message", "ingest_column", "ingest_value")

# Column names that look like direct identifiers (groundwork for de-identification).
IDENTIFIER_RE = re.compile(
    r"(?<!event_)(?<!instrument_)(?<!form_)(?<!file_)name|e-?mail|phone|mobile|telefon|address|adress|street"
    r"|personnummer|person_?nr|fødselsnummer|fodselsnummer|identity.?number|\bssn\b|^ssn|ssn$|social.?security"
    r"|birth|latitude|longitude",
    re.IGNORECASE,
)
EXCEL_EPOCH = "1899-12-30"  # day 0 of Excel's (1900) date system, leap-year bug included


@dataclass
class Mapped:
    frame: pl.DataFrame
    used: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    source_columns: list[dict] = field(default_factory=list)


def canonical_name(name: str, fields: tuple[str, ...] = FIELDS) -> str | None:
    """The canonical column a header name stands for, or None if it is not one."""
    low = name.strip().lower()
    if low in fields:
        return low
    m = ITEM_RE.match(low)
    if m and int(m.group(1)) >= 1:
        return item_column(int(m.group(1)))
    return None


def pattern_regex(pattern: str) -> re.Pattern:
    """``wai_sr_{n:02d}`` → a regex whose group 1 is the item number."""
    if "{n" not in pattern:
        raise DyadflowError(f"the item pattern '{pattern}' has no {{n}} (the item number)", key="items")
    parts = re.split(r"\{n(?::0?(\d+)d)?\}", pattern)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        else:
            width = int(part) if part else 1
            out.append(rf"(\d{{{width},}})" if width > 1 else r"(\d+)")
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE)


def item_columns_by_pattern(header: list[str], pattern: str) -> dict[str, str]:
    """{source column: item_NN} for the header names the pattern matches."""
    rx = pattern_regex(pattern)
    found = {}
    for name in header:
        m = rx.match(name.strip())
        if m and int(m.group(1)) >= 1:
            found[name] = item_column(int(m.group(1)))
    return found


def find_column(header: list[str], name: str, *, file: str, line: int | None, key: str) -> str:
    """The header name matching ``name`` case-insensitively, or a clear error."""
    lookup = {h.strip().lower(): h for h in header}
    hit = lookup.get(str(name).strip().lower())
    if hit is None:
        raise DyadflowError(
            f"the mapping '{key}' names column '{name}', which is not in the file "
            f"(columns: {', '.join(header[:30])}{' …' if len(header) > 30 else ''})",
            file=file,
            line=line,
            column=str(name),
            key=key,
        )
    return hit


def identifier_warnings(columns: list[str], file: str) -> list[dict]:
    return [
        {
            "source_file": file,
            "column": c,
            "warning": "the column name looks like a direct identifier; it was not read. "
            "Remove it from the export if it holds personal data",
        }
        for c in columns
        if IDENTIFIER_RE.search(c)
    ]


def to_number_text(col: pl.Expr, decimal_comma: bool) -> pl.Expr:
    """Numbers as text: ``3,0`` → ``3.0`` with a decimal comma."""
    return col.str.replace(",", ".", literal=True) if decimal_comma else col


def normalise_dates(col: pl.Expr, formats: list[str], excel_serial: bool) -> pl.Expr:
    """ISO dates from the configured formats and Excel serials; anything else unchanged.

    A cell that matches no format is left as it is, so validation rejects it with
    ``date_format`` and shows the value as it was in the export.
    """
    out = col
    for fmt in reversed(formats):
        parsed = col.str.strptime(pl.Date, fmt, strict=False, exact=True)
        out = pl.when(parsed.is_not_null()).then(parsed.dt.to_string("%Y-%m-%d")).otherwise(out)
    if excel_serial:
        serial = col.str.extract(r"^(\d{1,6})(?:\.0+)?$", 1).cast(pl.Int64, strict=False)
        as_date = pl.lit(EXCEL_EPOCH).str.to_date() + pl.duration(days=serial)
        out = pl.when(serial.is_not_null() & (serial > 60)).then(as_date.dt.to_string("%Y-%m-%d")).otherwise(out)
    return out


def _value_map(expr: pl.Expr, table: dict) -> pl.Expr:
    """Replace values (compared as trimmed text, case-insensitively); others stay."""
    keys = [str(k).strip().lower() for k in table]
    values = ["" if v is None else str(v) for v in table.values()]
    mapped = expr.str.to_lowercase().replace_strict(keys, values, default=None, return_dtype=pl.String)
    return pl.when(mapped.is_not_null()).then(mapped.replace("", None)).otherwise(expr)


def resolve_columns(
    header: list[str], spec: dict, *, file: str, line: int | None, auto: bool = True, items_key: str = "items"
) -> tuple[dict[str, str], dict[str, str]]:
    """({canonical field: source column}, {source column: item_NN}) for this input."""
    known = field_names(spec)
    fields: dict[str, str] = {}
    for canon, src in (spec.get("columns") or {}).items():
        if canon not in known:
            raise DyadflowError(
                f"'{canon}' is not a canonical field (use one of {', '.join(known)})", file=file, key=f"columns.{canon}"
            )
        fields[canon] = find_column(header, src, file=file, line=line, key=f"columns.{canon}")
    items: dict[str, str] = {}
    if spec.get(items_key):
        items = item_columns_by_pattern(header, spec[items_key])
        if not items:
            raise DyadflowError(
                f"the item pattern '{spec[items_key]}' matches no column of the file",
                file=file,
                line=line,
                column=spec[items_key],
                key=items_key,
            )
    constants = spec.get("constants") or {}
    if auto:
        taken = set(fields.values()) | set(items)
        for name in header:
            if name in taken:
                continue
            canon = canonical_name(name, known)
            if canon is None or canon in fields or canon in constants:
                continue
            if canon.startswith("item_"):
                if spec.get(items_key):
                    continue
                if canon in items.values():
                    other = next(k for k, v in items.items() if v == canon)
                    raise DyadflowError(
                        f"columns '{other}' and '{name}' both mean '{canon}'", file=file, line=line, column=name
                    )
                items[name] = canon
                continue
            fields[canon] = name
    clash = sorted(set(fields) & set(constants))
    if clash:
        raise DyadflowError(
            f"'{clash[0]}' is given both as a column and as a constant", file=file, key=f"constants.{clash[0]}"
        )
    for canon in constants:
        if canon not in known:
            raise DyadflowError(f"'{canon}' is not a canonical field", file=file, key=f"constants.{canon}")
    for canon in spec.get("values") or {}:
        if canon not in known and canon != "items":
            raise DyadflowError(
                f"'{canon}' is not a canonical field: value maps are keyed by the field they fill "
                f"({', '.join(known)}) or 'items'",
                file=file,
                key=f"values.{canon}",
            )
    return fields, items


def field_names(spec: dict) -> tuple[str, ...]:
    """The canonical fields of an input: a coded file's (``coded``, set by dyadflow.coding) or a questionnaire export's."""
    return CODED_FIELDS if spec.get("coded") else FIELDS


def check_required(
    fields: dict, constants: dict, items: dict, *, file: str, line: int | None, spec: dict | None = None
) -> None:
    required = CODED_REQUIRED if (spec or {}).get("coded") else REQUIRED
    missing = [c for c in required if c not in fields and c not in constants]
    if missing:
        raise DyadflowError(
            f"required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)} "
            f"(map {'them' if len(missing) > 1 else 'it'} under the input's 'columns' or 'constants', "
            f"or name the column{'s' if len(missing) > 1 else ''} {', '.join(missing)})",
            file=file,
            line=line,
            column=missing[0],
        )
    if not items and "total" not in fields and "total" not in constants:
        raise DyadflowError(
            "no item columns (item_01 … item_NN, or the input's 'items' pattern) and no 'total' column in the header",
            file=file,
            line=line,
        )


def canonical_exprs(fields: dict[str, str], items: dict[str, str], spec: dict) -> list[pl.Expr]:
    """Expressions giving the canonical columns from the raw columns, with value maps,
    constants, dates and decimal commas applied."""
    values = spec.get("values") or {}
    decimal_comma = bool(spec["decimal_comma"])
    fmt = spec.get("date_format") or []
    formats = [fmt] if isinstance(fmt, str) else list(fmt)
    exprs = []
    for canon, src in fields.items():
        e = pl.col(src)
        if canon in values:
            e = _value_map(e, values[canon])
        if canon == "session":
            e = to_number_text(e, decimal_comma).str.replace(r"^(\d+)\.0+$", "${1}")
        if canon == "total":
            e = to_number_text(e, decimal_comma)
        if canon == "date":
            e = normalise_dates(e, formats, bool(spec["excel_serial_dates"]))
        exprs.append(e.alias(canon))
    for canon, value in (spec.get("constants") or {}).items():
        exprs.append(pl.lit(None if value is None else str(value), dtype=pl.String).alias(canon))
    for src, canon in sorted(items.items(), key=lambda kv: kv[1]):
        e = pl.col(src)
        if "items" in values:
            e = _value_map(e, values["items"])
        exprs.append(to_number_text(e, decimal_comma).alias(canon))
    return exprs


def apply_mapping(
    raw: pl.DataFrame, header: list[str], spec: dict, *, file: str, line: int | None, keep: tuple[str, ...] = ()
) -> Mapped:
    """The canonical frame of a raw table (see the module docstring)."""
    fields, items = resolve_columns(header, spec, file=file, line=line)
    constants = spec.get("constants") or {}
    check_required(fields, constants, items, file=file, line=line, spec=spec)
    frame = raw.select(
        *canonical_exprs(fields, items, spec),
        *[
            c
            for c in ("source_line", "source_fields", "expected_fields", *INGEST_RULE_COLUMNS, *keep)
            if c in raw.columns
        ],
    )
    used = set(fields.values()) | set(items) | set(keep)
    dropped = [h for h in header if h not in used]
    return Mapped(
        frame,
        sorted(used, key=header.index),
        dropped,
        identifier_warnings(dropped, file),
        source_columns(fields, items),
    )


def source_columns(fields: dict[str, str], items: dict[str, str], instrument: str | None = None) -> list[dict]:
    """Which export column each canonical column came from (rejections name both)."""
    pairs = [*fields.items(), *((canon, src) for src, canon in items.items())]
    return [{"instrument": instrument, "column": canon, "source_column": src} for canon, src in pairs if canon != src]


def null_empty(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Cells as stripped strings, empty → null."""
    return frame.with_columns(pl.col(columns).cast(pl.String).str.strip_chars().replace("", None))


def number_text(col: pl.Expr) -> pl.Expr:
    """A numeric column as text; whole numbers without ``.0`` (3.0 → ``3``)."""
    whole = col.is_finite() & (col == col.round(0))
    return (
        pl.when(col.is_nan())
        .then(None)
        .when(whole)
        .then(col.cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(col.cast(pl.String))
    )


def stringify(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column of a typed frame (a spreadsheet, an SPSS file) as text."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            exprs.append(number_text(col).alias(name))
        elif dtype == pl.Date:
            exprs.append(col.dt.to_string("%Y-%m-%d").alias(name))
        elif dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
            exprs.append(
                pl.when(col.dt.time() == pl.time(0))
                .then(col.dt.to_string("%Y-%m-%d"))
                .otherwise(col.dt.to_string("%Y-%m-%d %H:%M:%S"))
                .alias(name)
            )
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return null_empty(frame.select(exprs), list(frame.columns)) if exprs else frame


# ---------------------------------------------------------------- ids: linking IDs across sources

ID_FIELDS = ("dyad_id", "patient_id", "therapist_id")


def _quoted(expr: pl.Expr, limit: int = 80) -> pl.Expr:
    n = expr.str.len_chars()
    short = pl.when(n > limit).then(pl.format("{}… ({} characters)", expr.str.slice(0, limit), n)).otherwise(expr)
    return pl.concat_str(pl.lit("'"), short, pl.lit("'"))


def read_id_lookup(path: str, source: str, target: str, *, key: str) -> pl.DataFrame:
    """The lookup table of an ``ids`` rule: (``_from``, ``_to``), one row per ``from`` value.

    A missing column, an empty cell or a ``from`` value given twice stops with the file,
    line and column (a config/file-level problem, not a row rejection)."""
    from dyadflow.ingest.text import read_text_table

    table = read_text_table(path, file=path)
    src = find_column(table.header, source, file=path, line=table.header_line, key=f"{key}.from")
    dst = find_column(table.header, target, file=path, line=table.header_line, key=f"{key}.to")
    frame = table.frame.select(pl.col(src).alias("_from"), pl.col(dst).alias("_to"), "source_line")
    for col, name in (("_from", src), ("_to", dst)):
        empty = frame.filter(pl.col(col).is_null())
        if empty.height:
            raise DyadflowError(
                f"the lookup of '{key}' has an empty '{name}' cell",
                file=path,
                line=empty.item(0, "source_line"),
                column=name,
                key=key,
            )
    dup = frame.filter(pl.col("_from").is_duplicated()).sort("source_line")
    if dup.height:
        value = dup.item(0, "_from")
        lines = dup.filter(pl.col("_from") == value).get_column("source_line").to_list()
        raise DyadflowError(
            f"'{value}' appears twice in column '{src}' of the lookup of '{key}' (lines {', '.join(map(str, lines))}): "
            "each ID it maps must appear once",
            file=path,
            line=lines[1],
            column=src,
            key=key,
        )
    return frame.select("_from", "_to")


def id_rule_regex(pattern: str, *, file: str, key: str) -> str:
    """The regex of an ``ids`` rule anchored to the whole value; it must have a capture group."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DyadflowError(f"'{pattern}' is not a valid regular expression ({exc})", file=file, key=key) from None
    if compiled.groups < 1:
        raise DyadflowError(
            f"the regular expression '{pattern}' has no capture group: put the part that is the ID in ( )",
            file=file,
            key=key,
        )
    anchored = f"^(?:{pattern})$"
    try:  # polars (Rust's regex) knows less than Python's re: no look-around, no backreferences
        pl.Series([""], dtype=pl.String).str.extract(anchored, 1)
    except pl.exceptions.PolarsError as exc:
        why = next((ln[len("error: ") :] for ln in str(exc).splitlines() if ln.startswith("error: ")), "not supported")
        raise DyadflowError(
            f"'{pattern}' is not a regular expression polars can use ({why})", file=file, key=key
        ) from None
    return anchored


def apply_id_rules(frame: pl.DataFrame, spec: dict, *, file: str) -> pl.DataFrame:
    """Rewrite the ID columns with the input's ``ids`` rules (after column mapping, before
    validation), so that one dyad, patient or therapist has one ID in every source.

    Per ID field one rule: ``strip_prefix`` (the value must start with it), ``regex`` (the
    whole value must match; capture group 1 is the ID) or ``lookup`` (a CSV whose column
    ``from`` holds this input's IDs and ``to`` the study's). A value the rule cannot map is
    not passed on unchanged: its row is rejected under ``id_unmapped`` (unless a reader
    rejected it already); an empty value stays empty (validation rejects it as missing)."""
    rules = spec.get("ids") or {}
    if not rules or frame.height == 0:
        return frame
    failures: list[tuple[str, pl.Expr, pl.Expr]] = []
    for canon in ID_FIELDS:
        rule = rules.get(canon)
        if not rule or canon not in frame.columns:
            continue
        key = f"ids.{canon}"
        col = pl.col(canon)
        if rule.get("strip_prefix") is not None:
            prefix = str(rule["strip_prefix"])
            mapped = pl.when(col.str.starts_with(prefix)).then(col.str.strip_prefix(prefix).replace("", None))
            why = pl.format(
                "{} does not start with the prefix '{}' ({} of this input)", _quoted(col), pl.lit(prefix), pl.lit(key)
            )
        elif rule.get("regex") is not None:
            rx = id_rule_regex(str(rule["regex"]), file=file, key=f"{key}.regex")
            mapped = col.str.extract(rx, 1).replace("", None)
            why = pl.format(
                "{} does not match the regular expression '{}' ({} of this input)",
                _quoted(col),
                pl.lit(rule["regex"]),
                pl.lit(key),
            )
        elif rule.get("lookup") is not None:
            table = read_id_lookup(str(rule["lookup"]), str(rule["from"]), str(rule["to"]), key=key)
            mapped = col.replace_strict(
                table.get_column("_from"), table.get_column("_to"), default=None, return_dtype=pl.String
            )
            why = pl.format(
                "{} is not in column '{}' of {} ({} of this input)",
                _quoted(col),
                pl.lit(rule["from"]),
                pl.lit(rule["lookup"]),
                pl.lit(key),
            )
        else:  # the config schema allows nothing else
            raise DyadflowError("give one of strip_prefix, regex or lookup", file=file, key=key)
        frame = frame.with_columns(mapped.alias(f"_id_{canon}"))
        failures.append((canon, col.is_not_null() & pl.col(f"_id_{canon}").is_null(), why))
    if not failures:
        return frame
    rule_col, msg, column, value = (pl.col(c) for c in INGEST_RULE_COLUMNS)
    first = lambda pick: pl.coalesce([pl.when(bad).then(pick(canon, why)) for canon, bad, why in failures])  # noqa: E731
    unmapped = pl.any_horizontal([bad for _, bad, _ in failures]) & rule_col.is_null()
    frame = frame.with_columns(
        pl.when(unmapped).then(pl.lit("id_unmapped")).otherwise(rule_col).alias("ingest_rule"),
        pl.when(unmapped).then(first(lambda c, why: why)).otherwise(msg).alias("ingest_message"),
        pl.when(unmapped).then(first(lambda c, why: pl.lit(c))).otherwise(column).alias("ingest_column"),
        pl.when(unmapped).then(first(lambda c, why: pl.col(c))).otherwise(value).alias("ingest_value"),
    )
    # rows whose ID did not map keep the export's value (rejections show it as it was)
    return frame.with_columns(pl.coalesce(f"_id_{canon}", canon).alias(canon) for canon, _, _ in failures).drop(
        [f"_id_{canon}" for canon, _, _ in failures]
    )
