"""``dyadflow inspect FILE``: what an export is, and a config block to start from.

Prints the detected format, encoding and delimiter (text files), the sheet and header
row (xlsx), the columns with example values, a suggested ``inputs:`` entry to paste into
the study config, warnings about what ingest would reject or skip (rows with another
field count than the header, hidden sheets, Excel errors, formulas without a saved
result, unnamed columns with values; see :func:`problems`), and warnings about columns
that look like direct identifiers. The suggestion is a starting point: every guess is
marked, and the workflow checks the mapping against the file when it runs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import polars as pl
import yaml

from dyadflow.core.errors import DyadflowError
from dyadflow.ingest.mapping import FIELDS, REQUIRED, canonical_name, identifier_warnings
from dyadflow.ingest.text import decode, read_bytes, read_text_table

# Column names that usually hold a canonical field (lower case, compared without _ - space).
SYNONYMS = {
    "dyad_id": ["dyad", "dyadid", "dyadcode", "pair", "case", "caseid"],
    "patient_id": ["patient", "patientid", "patientcode", "pid", "pat", "client", "clientid", "klient"],
    "therapist_id": ["therapist", "therapistid", "therapistcode", "tid", "ther", "terapeut", "behandlare", "clinician"],
    "session": ["session", "sess", "sessionno", "sessionnr", "visit", "besok", "besök", "timme"],
    "date": ["date", "datum", "dato", "visitdate", "recordeddate", "sessiondate"],
    "rater": ["rater", "informant", "respondent"],
    "instrument": ["instrument", "form", "formular", "formulär", "questionnaire", "skala", "scale"],
    "arm": ["arm", "group", "grupp", "condition", "treatment"],
    "note": ["note", "notes", "comment", "comments", "kommentar", "anteckning", "merknad"],
    "consent_share_text": ["consentsharetext", "consentshare", "consent"],
    "consent_share_ratings": ["consentshareratings", "consentratings"],
}
QUALTRICS_SYSTEM = {
    "startdate",
    "enddate",
    "status",
    "ipaddress",
    "progress",
    "duration (in seconds)",
    "finished",
    "recordeddate",
    "responseid",
    "recipientlastname",
    "recipientfirstname",
    "recipientemail",
    "externalreference",
    "locationlatitude",
    "locationlongitude",
    "distributionchannel",
    "userlanguage",
}
DIGITS = re.compile(r"^(.*?)(\d+)$")


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-./]", "", name.lower())


def guess_fields(columns: list[str]) -> dict[str, str]:
    """Canonical field → the column that probably holds it."""
    found: dict[str, str] = {}
    for col in columns:
        canon = canonical_name(col)
        if canon in FIELDS and canon not in found:
            found[canon] = col
    for canon, names in SYNONYMS.items():
        if canon in found:
            continue
        hit = next((c for c in columns if _squash(c) in names), None)
        if hit:
            found[canon] = hit
    return found


def item_groups(columns: list[str], least: int = 3) -> list[tuple[str, list[str]]]:
    """Columns ending in a number, grouped by what comes before it (largest group first)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for col in columns:
        m = DIGITS.match(col)
        if m and m.group(1) and not col.lower().endswith("_complete"):
            groups[m.group(1)].append(col)
    big = [(p, cols) for p, cols in groups.items() if len(cols) >= least]
    return sorted(big, key=lambda g: (-len(g[1]), columns.index(g[1][0])))


def item_pattern(prefix: str, cols: list[str]) -> str:
    widths = {len(DIGITS.match(c).group(2)) for c in cols}
    padded = min(widths) > 1 and all(DIGITS.match(c).group(2).startswith("0") for c in cols[:1])
    return f"{prefix}{{n:0{min(widths)}d}}" if padded else f"{prefix}{{n}}"


def event_template(events: list[str]) -> str | None:
    """The event-name pattern with {n} that numbers the most events (session_{n}_arm_1)."""
    counts: dict[str, set[str]] = defaultdict(set)
    for e in events:
        for m in re.finditer(r"\d+", e):
            counts[e[: m.start()] + "{n}" + e[m.end() :]].add(m.group())
    if not counts:
        return None
    best = max(counts, key=lambda t: (len(counts[t]), -len(t)))
    return best if len(counts[best]) > 1 else None


def guess_instrument(n: int, values: set[str]) -> tuple[str | None, list[str]]:
    """The registry instrument with ``n`` items whose answers (numbers, labels) cover ``values``."""
    from dyadflow.core.registry import load_registry

    registry = load_registry()
    keys = sorted(k for k, inst in registry.items() if inst.n_items == n)
    fits = [k for k in keys if values <= set(registry[k].token_map(1))]
    return (fits[0] if fits else (keys[0] if keys else None)), keys


def sniff_text(raw: bytes) -> tuple[str, str]:
    """(encoding, delimiter) of a text export."""
    encoding = "utf-8"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        encoding = "cp1252"
    text, _ = decode(raw, encoding, "")
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: counts[d])
    return encoding, delimiter if counts[delimiter] else ","


def _examples(frame: pl.DataFrame, col: str, k: int = 3) -> str:
    values = frame.get_column(col).drop_nulls().unique(maintain_order=True).head(k).to_list()
    shown = ", ".join(repr(v)[1:-1] if isinstance(v, str) else str(v) for v in values)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _read(path: str, sheet=None, header_row: int | None = None) -> dict:
    """The file's format facts and its first rows as text."""
    suffix = Path(path).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import fastexcel
        import openpyxl

        from dyadflow.ingest.spreadsheet import sheet_problem_cells, workbook_sheets

        read_bytes(path, path)
        book = fastexcel.read_excel(path)
        wb = openpyxl.load_workbook(path, read_only=True)
        states, parts = workbook_sheets(path, path)

        def filled(name):  # non-empty cells of the first 30 rows
            return [sum(v is not None for v in row) for row in wb[name].iter_rows(max_row=30, values_only=True)]

        if isinstance(sheet, int):
            sheet = book.sheet_names[sheet]
        # the named sheet, or the first visible one that looks like a table (3 or more columns)
        hidden = [] if sheet is not None else [n for n in book.sheet_names if states.get(n, "visible") != "visible"]
        visible = [n for n in book.sheet_names if n not in hidden] or book.sheet_names
        name = sheet if sheet is not None else next((n for n in visible if max(filled(n), default=0) >= 3), visible[0])
        if name not in book.sheet_names:
            raise DyadflowError(
                f"the workbook has no sheet '{name}' (sheets: {', '.join(book.sheet_names)})", file=path
            )
        if header_row is None:  # the first row that fills most of the widest row's cells
            counts = filled(name)
            header_row = (
                next((i + 1 for i, c in enumerate(counts) if c >= 0.8 * max(counts) and c > 0), 1) if counts else 1
            )
        wb.close()
        loaded = book.load_sheet(name, header_row=header_row - 1, dtypes="string")
        whole = loaded.to_polars()
        letters = {c.name: c.absolute_index for c in loaded.available_columns()}
        unnamed = [
            (
                letters[c],
                whole.with_row_index("_i")
                .filter(pl.col(c).str.strip_chars().replace("", None).is_not_null())
                .get_column("_i")
                .to_list(),
            )
            for c in whole.columns
            if c.startswith("__UNNAMED__")
        ]
        cells = sheet_problem_cells(path, parts.get(name)).filter(pl.col("row") > header_row)
        frame = whole.head(200).drop([c for c in whole.columns if c.startswith("__UNNAMED__")])
        return {
            "format": "xlsx",
            "sheets": book.sheet_names,
            "sheet": name,
            "header_row": header_row,
            "frame": frame,
            "hidden": hidden,
            "cells": cells,
            "unnamed": [(pos, [header_row + 1 + i for i in rows]) for pos, rows in unnamed if rows],
        }
    if suffix in (".sav", ".zsav"):
        import pyreadstat

        read_bytes(path, path)
        frame, info = pyreadstat.read_sav(path, output_format="polars", row_limit=200)
        from dyadflow.ingest.mapping import stringify

        return {
            "format": "sav",
            "frame": stringify(frame),
            "labels": info.variable_value_labels,
            "encoding": info.file_encoding,
        }
    raw = read_bytes(path, path)
    encoding, delimiter = sniff_text(raw)
    table = read_text_table(path, encoding=encoding, delimiter=delimiter, file=path)
    # rows with another field count than the header read shifted: warned about, and kept
    # out of the examples and the suggestion
    ragged = table.frame.filter(pl.col("source_fields") != table.n_fields)
    ragged_lines = list(ragged.select("source_line", "source_fields").iter_rows())
    frame = table.frame.filter(pl.col("source_fields") == table.n_fields).drop("source_line", "source_fields")
    low = {c.lower() for c in table.header}
    if "redcap_event_name" in low or ("record_id" in low and any(c.endswith("_complete") for c in low)):
        fmt = "redcap"
    elif {"responseid", "finished"} <= low or frame.head(3).select(
        pl.any_horizontal(pl.all().str.starts_with('{"ImportId"'))
    ).to_series().any():
        fmt = "qualtrics"
    else:
        fmt = "canonical_csv"
    return {
        "format": fmt,
        "encoding": table.encoding,
        "delimiter": delimiter,
        "frame": frame,
        "header_line": table.header_line,
        "n_fields": table.n_fields,
        "ragged": ragged_lines,
    }


def _lines(numbers: list, limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def problems(info: dict) -> list[str]:
    """What ingest will reject or skip in this file, one line each (field counts, hidden
    sheets, Excel errors, formulas without a saved result, columns without a name)."""
    out = []
    if info.get("ragged"):
        lines = [f"{line} ({n} fields)" for line, n in info["ragged"]]
        out.append(
            f"{len(lines)} row(s) have another number of fields than the header (line {info['header_line']}, "
            f"{info['n_fields']} fields): line{'s' if len(lines) > 1 else ''} {_lines(lines)}. Their cells are shifted: "
            "they are left out of the examples and the suggestion, and ingest rejects them (field_count)"
        )
    if info.get("hidden"):
        out.append(
            f"hidden sheet{'s' if len(info['hidden']) > 1 else ''} {', '.join(repr(h) for h in info['hidden'])} "
            f"not read: reading '{info['sheet']}', the first visible sheet that holds a table"
        )
    cells = info.get("cells")
    if cells is not None and cells.height:
        for kind, what in (("error", "hold an Excel error"), ("uncached", "hold a formula with no saved result")):
            found = cells.filter(pl.col("kind") == kind).sort("row", "col")
            if found.height:
                shown = [f"{c} ({v})" for c, v in found.select("cell", "value").iter_rows()]
                out.append(
                    f"{found.height} cell(s) {what}: {_lines(shown)}; ingest rejects their rows (cell_error) "
                    "where the column is mapped"
                )
    for pos, rows in info.get("unnamed", []):
        from dyadflow.ingest.spreadsheet import column_letter

        out.append(
            f"column {column_letter(pos)} has values but no name in the header (row {info['header_row']}; "
            f"row{'s' if len(rows) > 1 else ''} {_lines(rows)}): a header cell merged over two columns? "
            "Ingest rejects those rows (header_unnamed)"
        )
    return out


def suggest(path: str, info: dict) -> tuple[dict, list[str], list[str]]:
    """A suggested ``inputs:`` entry, the columns it does not read, and notes on what to check."""
    frame: pl.DataFrame = info["frame"]
    fmt = info["format"]
    columns = list(frame.columns)
    spec: dict = {"path": path, "format": fmt}
    notes: list[str] = []
    if info.get("encoding") and fmt != "sav" and info["encoding"] not in ("utf-8", "utf-8-sig"):
        spec["encoding"] = info["encoding"]
        notes.append(
            f"the file is not UTF-8; {info['encoding']} is a guess (latin-1 and cp1252 differ in a few characters)"
        )
    if info.get("delimiter") and info["delimiter"] != ",":
        spec["delimiter"] = info["delimiter"]
    if fmt == "xlsx":
        spec["sheet"] = info["sheet"]
        spec["header_row"] = info["header_row"]

    if fmt == "qualtrics":
        frame = frame.slice(2)  # the question-text and ImportId rows
        columns = [c for c in columns if c.lower() not in QUALTRICS_SYSTEM or c.lower() == "recordeddate"]
    if fmt == "redcap":
        forms = [c[: -len("_complete")] for c in columns if c.lower().endswith("_complete")]
        record_fields = guess_fields([c for c in columns if c.lower() not in ("record_id", "redcap_event_name")])
        spec["record_id"] = "dyad_id"
        spec["columns"] = {
            k: v
            for k, v in record_fields.items()
            if k in ("patient_id", "therapist_id", "arm", "consent_share_text", "consent_share_ratings")
        }
        events = (
            frame.get_column("redcap_event_name").drop_nulls().unique(maintain_order=True).to_list()
            if "redcap_event_name" in frame.columns
            else []
        )
        template = event_template(events)
        if template:
            spec["events"] = {"pattern": template}
            rx = re.compile("^" + re.escape(template).replace(r"\{n\}", r"\d+") + "$")
            others = [e for e in events if not rx.match(e)]
            if others:
                spec["events"]["map"] = {e: 0 for e in others}
                notes.append(
                    f"event{'s' if len(others) > 1 else ''} {', '.join(others)} mapped to session 0 as a guess: correct events.map"
                )
        instruments = {}
        form_columns: list[str] = ["redcap_repeat_instrument", "redcap_repeat_instance"]
        groups = item_groups(columns, least=2)  # a form's own prefix makes two fields enough
        for form in forms:
            mine = [(p, cols) for p, cols in groups if p.lower().startswith(form.lower())]
            if not mine:
                continue
            prefix, cols = mine[0]
            values = set(
                frame.select(
                    pl.concat_list(pl.col(cols).str.to_lowercase()).explode().drop_nulls().unique()
                ).to_series()
            )
            guess, keys = guess_instrument(len(cols), values)
            key = next((k for k in keys if k == form.lower()), guess or form)
            date = next((c for c in columns if c.lower().startswith(form.lower()) and "date" in c.lower()), None)
            entry = {"form": form, "items": item_pattern(prefix, cols), "rater": "patient"}
            note = next(
                (
                    c
                    for c in columns
                    if c.lower().startswith(form.lower())
                    and any(w in c.lower() for w in ("note", "comment", "kommentar"))
                ),
                None,
            )
            own = {"date": date, "note": note}
            if date or note:
                entry["columns"] = {k: v for k, v in own.items() if v}
                form_columns.extend(v for v in own.values() if v)
            instruments[key] = entry
            form_columns.extend([*cols, *([date] if date else []), f"{form}_complete"])
            notes.append(
                f"form {form}: {len(cols)} item fields ({cols[0]} … {cols[-1]}); instrument '{key}' is a guess"
                + (
                    f" (instruments with {len(cols)} items: {', '.join(keys)})"
                    if keys
                    else " (no registry instrument has that many items)"
                )
            )
        spec["instruments"] = instruments or {
            "INSTRUMENT_KEY": {"form": "FORM", "items": "FORM_{n}", "rater": "patient"}
        }
        undated = [e["form"] for e in instruments.values() if "date" not in (e.get("columns") or {})]
        if undated:
            notes.append(
                f"no date field found for form {', '.join(undated)}: add columns: {{date: <field>}} under the instrument"
            )
        absent = [c for c in ("patient_id", "therapist_id") if c not in spec["columns"]]
        if absent:
            notes.append(
                f"no column found for {', '.join(absent)}: map it under 'columns' or give it under 'constants'"
            )
        used = {*spec["columns"].values(), "record_id", "redcap_event_name", *form_columns}
    else:
        fields = guess_fields(columns)
        if fmt == "qualtrics" and "date" not in fields and "RecordedDate" in columns:
            fields["date"] = "RecordedDate"
        groups = item_groups([c for c in columns if c not in fields.values()])
        items_cols: list[str] = []
        guess = None
        if groups and not all(canonical_name(c) for c in groups[0][1]):
            prefix, items_cols = groups[0]
            spec["items"] = item_pattern(prefix, items_cols)
            values = set(
                frame.select(
                    pl.concat_list(pl.col(items_cols).str.to_lowercase()).explode().drop_nulls().unique()
                ).to_series()
            )
            guess, keys = guess_instrument(len(items_cols), values)
            notes.append(
                f"items: {len(items_cols)} columns {items_cols[0]} … {items_cols[-1]}"
                + (f"; instruments with {len(items_cols)} items: {', '.join(keys)}" if keys else "")
                + (f"; the answers fit {guess}" if guess else "")
            )
            if len(groups) > 1:
                notes.append("other numbered columns: " + ", ".join(f"{p}… ({len(c)})" for p, c in groups[1:]))
        spec["columns"] = dict(fields)
        missing = [c for c in REQUIRED if c not in fields]
        constants = {}
        from dyadflow.core.registry import load_registry

        for c in missing:
            if c == "instrument" and guess:
                constants["instrument"] = guess
            elif c == "rater":
                constants["rater"] = load_registry()[guess].raters[0] if guess else "patient"
            else:
                constants[c] = "?"
        if "instrument" in constants and "rater" in constants:  # instrument first: it decides the rater
            constants = {"rater": constants.pop("rater"), **constants}
        if constants:
            spec["constants"] = constants
            notes.append(
                "no column found for "
                + ", ".join(missing)
                + ": given as constants"
                + ("; replace each '?' with a column under 'columns', or a value" if "?" in constants.values() else "")
            )
        if "instrument" in fields:
            from dyadflow.core.registry import load_registry

            keys = list(load_registry())
            seen = frame.get_column(fields["instrument"]).drop_nulls().unique(maintain_order=True).to_list()
            recode = {
                v: next((k for k in keys if _squash(k) == _squash(v)), None) for v in seen if v.lower() not in keys
            }
            if any(recode.values()):
                spec["values"] = {"instrument": {v: k for v, k in recode.items() if k}}
            unknown = [v for v, k in recode.items() if not k]
            if unknown:
                notes.append(
                    f"instrument value{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} match no registry key: "
                    "add them under values.instrument, or validation rejects those rows (instrument_unknown)"
                )
        dates = (
            frame.get_column(fields["date"]).drop_nulls().head(50)
            if "date" in fields
            else pl.Series([], dtype=pl.String)
        )
        if dates.str.contains(r"^\d{1,2}\.\d{1,2}\.\d{4}").any():
            spec["date_format"] = "%d.%m.%Y"
        elif dates.str.contains(r"^\d{1,2}/\d{1,2}/\d{4}").any():
            spec["date_format"] = "%d/%m/%Y"
            notes.append("dates like 05/02/2024: dd/mm/yyyy is a guess (US exports use %m/%d/%Y)")
        if dates.str.contains(r"^\d{5}(\.0+)?$").any():
            spec["excel_serial_dates"] = True
        if items_cols and frame.select(pl.col(items_cols).str.contains(r"^\d+,\d+$").any()).row(0).count(True):
            spec["decimal_comma"] = True
        used = {*fields.values(), *items_cols}
        if fmt == "qualtrics":
            from dyadflow.ingest.qualtrics import SYSTEM_COLUMNS

            used |= {c for c in info["frame"].columns if c.lower() in SYSTEM_COLUMNS}
    if not spec.get("columns"):
        spec.pop("columns", None)
    unused = [c for c in info["frame"].columns if c not in used]
    return spec, unused, notes


def report(path: str, sheet=None, header_row: int | None = None) -> str:
    info = _read(path, sheet, header_row)
    frame: pl.DataFrame = info["frame"]
    spec, unused, notes = suggest(path, info)
    shown = frame.slice(2) if info["format"] == "qualtrics" else frame
    out = [f"{path}", f"  format:    {info['format']}"]
    if info["format"] == "xlsx":
        out.append(
            f"  sheets:    {', '.join(info['sheets'])} (reading '{info['sheet']}', column names on row {info['header_row']})"
        )
    else:
        out.append(f"  encoding:  {info.get('encoding')}")
    if info.get("delimiter"):
        out.append(f"  delimiter: {info['delimiter']!r}")
    more = info["format"] in ("xlsx", "sav") and shown.height >= 200
    ragged = f" (and {len(info['ragged'])} with another number of fields, not shown)" if info.get("ragged") else ""
    out.append(
        f"  rows:      {'the first ' if more else ''}{shown.height}{' (the rest not read here)' if more else ''}{ragged}"
    )
    out.append(f"  columns ({len(frame.columns)}):")
    width = min(max((len(c) for c in frame.columns), default=10), 32)
    for c in frame.columns:
        label = ""
        if info.get("labels", {}).get(c):
            label = f"  [value labels: {', '.join(f'{k:g}={v}' for k, v in list(info['labels'][c].items())[:4])}]"
        out.append(f"    {c:<{width}}  {_examples(shown, c)}{label}")
    found = problems(info)
    if found:
        out.append("")
        out.extend(f"Warning: {p}" for p in found)
    out.append("")
    out.append("Suggested config (paste under 'inputs:' in your study config and check every line):")
    out.append("")
    block = yaml.safe_dump([spec], sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)
    out.extend("  " + line for line in block.rstrip().split("\n"))
    if notes:
        out.append("")
        out.append("Check:")
        out.extend(f"  - {n}" for n in notes)
    warnings = identifier_warnings(unused, path)
    if unused:
        out.append("")
        out.append(f"Not read (not mapped): {', '.join(unused)}")
    if warnings:
        out.append("")
        out.append(
            "Warning: these columns look like direct identifiers; dyadflow does not read them, but remove them from exports that leave the clinic:"
        )
        out.append("  " + ", ".join(w["column"] for w in warnings))
    out.append("")
    out.append(
        "Every key is described in dyadflow/schemas/config.schema.yaml; docs/inputs.md ('Inputs and formats') has examples."
    )
    return "\n".join(out)


def main(path: str, sheet=None, header_row: int | None = None) -> int:
    if not Path(path).exists():
        raise DyadflowError("file not found", file=path)
    print(report(path, sheet, header_row))
    return 0
