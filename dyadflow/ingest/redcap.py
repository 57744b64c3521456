"""REDCap flat CSV exports (``format: redcap``), raw or with labels.

A REDCap export has one record per ``record_id`` × event (× repeat instance), and each
record carries the fields of several forms (instruments). Every form that holds data in
a record becomes one questionnaire row, so ``rows_read`` counts questionnaires; the
number of file records is ``records_read``. A form with data whose ``<form>_complete``
is not one of the input's ``complete`` values (default: 2, Complete) is rejected under
the rule ``redcap_incomplete``; a form with no data and not marked complete is not a
questionnaire and is only counted (``forms_empty`` in the ingest sidecar).

Config (see ``dyadflow/schemas/config.schema.yaml``)::

    format: redcap
    dictionary: exports/data_dictionary.csv   # optional: maps label exports to codes
    record_id: dyad_id            # what record_id is: dyad_id or patient_id
    columns: {patient_id: pat_code, therapist_id: th_code, arm: arm}   # record-level fields
    events: {map: {baseline_arm_1: 0}, pattern: "session_{n}_arm_1"}
    instruments:
      bdi_ii: {form: bdi, items: "bdi_{n:02d}", columns: {date: bdi_date}}
      wai_sr: {items: "wai_sr_{n:02d}", columns: {date: wai_date, note: wai_note}}

Record-level fields (``columns``) are often entered once, on the enrolment event: an
empty cell takes the value the record has on its other rows. Not so the consent columns
(``consent_share_text``, ``consent_share_ratings``): consent is a decision at a point in
time (see :mod:`dyadflow.validate.consent`), so an empty consent cell is no decision and is never
filled from another event. A record-level consent cell on an event without form data is
still a decision at that event's session: it becomes a ``consent_only`` row (the
patient's, as the record's consent field is), which validation takes into
``consent.parquet`` and does not count as a questionnaire.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.core.performance import fast_path_enabled
from dyadflow.ingest.canonical import header_column, read_raw, text_meta
from dyadflow.ingest.mapping import (
    CONSENT_COLUMNS,
    INGEST_RULE_COLUMNS,
    canonical_exprs,
    check_required,
    find_column,
    identifier_warnings,
    pattern_regex,
    resolve_columns,
    source_columns,
)
from dyadflow.ingest.text import read_text_table

COMPLETE_LABELS = {"incomplete": "0", "unverified": "1", "complete": "2"}
COMPLETE_WORDS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
RECORD_FIELDS = ("dyad_id", "patient_id")


def parse_choices(text: str) -> dict[str, str]:
    """``1, Seldom | 2, Sometimes`` → {label (lower case): code}."""
    out = {}
    for part in (text or "").split("|"):
        code, sep, label = part.partition(",")
        if sep and label.strip():
            out[label.strip().lower()] = code.strip()
    return out


def read_dictionary(path: str) -> dict[str, dict[str, str]]:
    """{field name: {label: code}} from a REDCap data dictionary CSV."""
    table = read_text_table(path, file=path)
    header = table.header
    name = find_column(header, "Variable / Field Name", file=path, line=table.header_line, key="dictionary")
    choices = next((h for h in header if h.lower().startswith("choices")), None)
    if choices is None:
        raise DyadflowError(
            "no 'Choices, Calculations, OR Slider Labels' column: is this a REDCap data dictionary?",
            file=path,
            line=table.header_line,
            key="dictionary",
        )
    rows = table.frame.select(name, choices).drop_nulls().rows()
    return {field.lower(): parse_choices(text) for field, text in rows}


def session_from_event(event: pl.Expr, events: dict) -> pl.Expr:
    """The session of an event: from the map, else from the pattern; else the event name
    itself, which validation then rejects as not a session number."""
    out = event
    if events.get("pattern"):
        number = event.str.extract(pattern_regex(events["pattern"]).pattern, 1).cast(pl.Int64, strict=False)
        out = pl.when(number.is_not_null()).then(number.cast(pl.String)).otherwise(out)
    mapping = events.get("map") or {}
    if mapping:
        keys = [str(k).lower() for k in mapping]
        hit = event.str.to_lowercase().replace_strict(keys, [str(v) for v in mapping.values()], default=None)
        out = pl.when(hit.is_not_null()).then(hit).otherwise(out)
    return out


def _session(cfg, fields, event, repeat_no, events, file, line, where) -> tuple[pl.Expr, str]:
    """Where a form's session comes from: the repeat instance, the event, or a mapped column."""
    if cfg["session"] == "repeat_instance":
        if repeat_no is None:
            raise DyadflowError(
                "no redcap_repeat_instance column for 'session: repeat_instance'",
                file=file,
                line=line,
                key=f"{where}.session",
            )
        return pl.col(repeat_no), repeat_no
    if event is not None:
        return session_from_event(pl.col(event), events), event
    if "session" in fields:
        column = fields.pop("session")
        return pl.col(column), column
    raise DyadflowError(
        "no redcap_event_name column: map 'session' under the input's 'columns'", file=file, line=line, key="events"
    )


def _incomplete_message(form: str, complete: str, status: pl.Expr, allowed: list[str]) -> pl.Expr:
    word = status.replace_strict(COMPLETE_WORDS, default=pl.col(complete), return_dtype=pl.String)
    shown = (
        pl.when(pl.col(complete).is_null())
        .then(pl.lit("empty"))
        .when(pl.col(complete) == word)
        .then(pl.col(complete))
        .otherwise(pl.format("{}, {}", pl.col(complete), word))
    )
    return pl.format(
        "form {} is not marked complete ({} = {}); only forms marked {} are scored (the input's 'complete')",
        pl.lit(form),
        pl.lit(complete),
        shown,
        pl.lit(" or ".join(allowed)),
    )


def _consent_only(
    formless: pl.DataFrame, record_fields: dict, target: str, rid: str, event: str | None, spec: dict
) -> pl.DataFrame:
    """One ``consent_only`` row per record without form data whose record-level consent
    cell holds a value: the patient's decision at the event's session."""
    consent = {canon: src for canon, src in record_fields.items() if canon in CONSENT_COLUMNS}
    if not consent or event is None:
        return pl.DataFrame()
    others = {canon: src for canon, src in record_fields.items() if canon not in CONSENT_COLUMNS and canon != target}
    rows = formless.filter(pl.any_horizontal([pl.col(src).is_not_null() for src in consent.values()]))
    return rows.select(
        pl.col(rid).alias(target),
        *[pl.col(src).alias(canon) for canon, src in {**others, **consent}.items()],
        session_from_event(pl.col(event), spec.get("events") or {}).alias("session"),
        pl.lit(str((spec.get("constants") or {}).get("rater", "patient"))).alias("rater"),
        "source_line",
        "source_fields",
        "expected_fields",
        pl.lit(True).alias("consent_only"),
        pl.lit(-1).alias("_order"),
    )


def read(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    delimiter = spec["delimiter"]
    table, raw = read_raw(path, file, spec)
    header, line = table.header, table.header_line
    rid = find_column(header, spec["record_id_column"], file=file, line=line, key="record_id_column")
    target = spec["record_id"]
    event = header_column(header, "redcap_event_name")
    repeat_form = header_column(header, "redcap_repeat_instrument")
    repeat_no = header_column(header, "redcap_repeat_instance")
    choices = read_dictionary(spec["dictionary"]) if spec.get("dictionary") else {}
    allowed = [str(c) for c in spec["complete"]]

    # record-level fields: mapped once, filled within the record
    record_fields, _ = resolve_columns(header, {"columns": spec.get("columns") or {}}, file=file, line=line, auto=False)
    # consent is never filled across events: an empty cell is no decision (issue 14)
    fill = [
        pl.col(src).fill_null(pl.col(src).drop_nulls().first().over(rid)).alias(src)
        for canon, src in record_fields.items()
        if canon not in CONSENT_COLUMNS
    ]
    raw = raw.with_columns(fill)
    used = {rid, *(c for c in (event, repeat_form, repeat_no) if c), *record_fields.values()}

    instruments = spec.get("instruments") or {}
    if not instruments:
        raise DyadflowError(
            "a REDCap input needs 'instruments': which forms hold which questionnaire", file=file, key="instruments"
        )
    parts = []
    origins: list[dict] = []
    empty_forms = 0
    # fast path: the forms are cut out in one lazy query, which copies only the columns each
    # form reads (not the whole record per form) and sorts on one integer key
    fast = fast_path_enabled()
    source = raw.lazy() if fast else raw
    any_form = pl.lit(False)
    empties: list[pl.Expr] = []
    for order, (key, cfg) in enumerate(instruments.items()):
        cfg = cfg or {}
        form = cfg.get("form", key)
        where = f"instruments.{key}"
        complete = find_column(header, f"{form}_complete", file=file, line=line, key=f"{where}.form")
        own_fields, items = resolve_columns(
            header,
            {
                "columns": cfg.get("columns") or {},
                "items": cfg.get("items", None if "total" in (cfg.get("columns") or {}) else f"{form}_{{n}}"),
            },
            file=file,
            line=line,
            auto=False,
        )
        items = {src: canon for src, canon in items.items() if src != complete}
        fields = {**record_fields, **own_fields, target: rid}
        sub_spec = {
            **spec,
            "constants": {
                "instrument": key,
                **({"rater": cfg["rater"]} if cfg.get("rater") else {}),
                **(spec.get("constants") or {}),
                **(cfg.get("constants") or {}),
            },
            "values": {**(spec.get("values") or {}), **(cfg.get("values") or {})},
        }
        clash = sorted(set(fields) & set(sub_spec["constants"]))
        if clash:
            raise DyadflowError(
                f"'{clash[0]}' is given both as a column and as a constant", file=file, key=f"{where}.constants"
            )
        session, session_column = _session(cfg, fields, event, repeat_no, spec.get("events") or {}, file, line, where)
        fields.pop("session", None)
        check_required({**fields, "session": "-"}, sub_spec["constants"], items, file=file, line=line)
        used |= {complete, *own_fields.values(), *items}
        origins += source_columns({**fields, "session": session_column}, items, key)

        belongs = (
            pl.lit(True)
            if repeat_form is None
            else (pl.col(repeat_form).is_null() | (pl.col(repeat_form).str.to_lowercase() == form.lower()))
        )
        status = pl.col(complete).str.to_lowercase().replace(COMPLETE_LABELS)
        data_cols = [*items, *own_fields.values()]
        has_data = pl.any_horizontal([pl.col(c).is_not_null() for c in data_cols])
        present = belongs & (has_data | status.is_in(["1", "2"]))
        empty = (belongs & ~present & status.is_not_null()).sum()
        if fast:  # counted with the other forms' in one pass below
            empties.append(empty.alias(f"_empty{order}"))
        else:
            empty_forms += raw.select(empty).item()
        any_form = any_form | present.fill_null(False)
        sub = source.filter(present)
        if choices:  # a label export: labels back to the project's codes
            sub = sub.with_columns(
                pl.col(src)
                .str.to_lowercase()
                .replace_strict(list(choices[src.lower()]), list(choices[src.lower()].values()), default=pl.col(src))
                for src in items
                if choices.get(src.lower())
            )
        incomplete = status.is_null() | ~status.is_in(allowed)
        parts.append(
            sub.select(
                *canonical_exprs(fields, items, sub_spec),
                session.alias("session"),
                "source_line",
                "source_fields",
                "expected_fields",
                pl.when(incomplete).then(pl.lit("redcap_incomplete")).alias("ingest_rule"),
                pl.when(incomplete).then(_incomplete_message(form, complete, status, allowed)).alias("ingest_message"),
                pl.when(incomplete).then(pl.lit(complete)).alias("ingest_column"),
                pl.when(incomplete).then(pl.col(complete)).alias("ingest_value"),
                pl.lit(order).alias("_order"),
            )
        )
    if empties:
        empty_forms = sum(raw.select(empties).row(0))
    consent_only = _consent_only(raw.filter(~any_form), record_fields, target, rid, event, spec)
    parts.append(consent_only.lazy() if fast else consent_only)
    frame = pl.concat(parts, how="diagonal_relaxed")
    if fast:  # (source_line, _order) is unique: one form of a record once, a consent-only row alone
        key = pl.col("source_line") * (len(instruments) + 1) + pl.col("_order").cast(pl.Int64) + 1
        frame = frame.sort(key).drop("_order").collect()
    else:
        frame = frame.sort("source_line", "_order").drop("_order")
    frame = frame.with_columns(pl.col(INGEST_RULE_COLUMNS).cast(pl.String))
    dropped = [h for h in header if h not in used]
    forms = frame.filter(~pl.col("consent_only").fill_null(False)) if "consent_only" in frame.columns else frame
    records_with_forms = forms.get_column("source_line").n_unique()
    meta = text_meta(table, delimiter) | {
        "dropped_columns": dropped,
        "warnings": identifier_warnings(dropped, file),
        "records_read": raw.height,
        "records_without_forms": raw.height - records_with_forms,
        "forms_empty": empty_forms,
        "source_columns": origins,
        "rows_are": "questionnaires: one per form with data in a record",
    }
    return frame, meta


__all__ = ["read", "read_dictionary", "parse_choices", "session_from_event"]
