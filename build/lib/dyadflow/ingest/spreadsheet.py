"""Excel workbooks (``format: xlsx``, read by fastexcel/calamine) and SPSS files
(``format: sav``, read by pyreadstat), mapped like any other input.

xlsx: ``sheet`` (a name, or the first sheet), ``header_row`` (the spreadsheet row of the
column names, default 1). ``source_line`` is the spreadsheet row number. Date cells
become ISO dates; dates typed as text need ``date_format``, serial numbers
``excel_serial_dates``.

sav: ``source_line`` is the case number (the row in SPSS's Data View). Value labels are
honoured: ``value_labels: fields`` (the default) shows the labels of the mapped ID and
text fields (arm 1 → "CBT") and keeps item answers as their codes; ``all`` uses the
labels everywhere (then they must match the instrument's value labels); ``none`` keeps
all codes. SPSS user-missing values are empty.
"""

from __future__ import annotations

import polars as pl

from dyadflow.errors import DyadflowError
from dyadflow.ingest.mapping import _value_map, apply_mapping, resolve_columns, stringify
from dyadflow.ingest.text import read_bytes


def _finish(raw: pl.DataFrame, header: list[str], spec: dict, file: str, line: int | None, meta: dict):
    raw = raw.with_columns(pl.lit(len(header), dtype=pl.Int64).alias("source_fields"), pl.lit(len(header), dtype=pl.Int64).alias("expected_fields"))
    blank = pl.all_horizontal(pl.col(header).is_null()) if header else pl.lit(True)
    blank_rows = raw.select(blank.sum()).item()
    raw = raw.filter(~blank)
    mapped = apply_mapping(raw, header, spec, file=file, line=line)
    meta.update(
        {"blank_rows": int(blank_rows), "columns": header, "dropped_columns": mapped.dropped,
         "warnings": mapped.warnings, "records_read": raw.height, "source_columns": mapped.source_columns}
    )
    return mapped.frame, meta


def read_xlsx(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    import fastexcel

    read_bytes(path, file)  # a missing file gets the usual message
    header_row = int(spec.get("header_row", 1))
    try:
        book = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types
        raise DyadflowError(f"cannot be read as an Excel workbook: {exc}", file=file) from None
    sheet = spec.get("sheet")
    sheet = 0 if sheet is None else sheet
    if isinstance(sheet, str) and sheet not in book.sheet_names:
        raise DyadflowError(
            f"the workbook has no sheet '{sheet}' (sheets: {', '.join(book.sheet_names)})", file=file, key="sheet"
        )
    try:
        frame = book.load_sheet(sheet, header_row=header_row - 1, dtypes="string").to_polars()
    except Exception as exc:
        raise DyadflowError(f"sheet '{sheet}' cannot be read: {exc}", file=file, line=header_row) from None
    unnamed = [c for c in frame.columns if c.startswith("__UNNAMED__")]
    frame = frame.drop(unnamed)
    header = list(frame.columns)
    frame = frame.with_columns(
        pl.col(header).str.strip_chars().replace("", None).str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "${1}")
    ).with_columns(pl.int_range(header_row + 1, header_row + 1 + frame.height, dtype=pl.Int64).alias("source_line"))
    name = sheet if isinstance(sheet, str) else book.sheet_names[sheet]
    meta = {"sheet": name, "header_line": header_row, "encoding": None, "delimiter": None}
    return _finish(frame, header, spec, file, header_row, meta)


def read_sav(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    import pyreadstat

    read_bytes(path, file)
    try:
        frame, info = pyreadstat.read_sav(path, output_format="polars", encoding=spec.get("encoding"))
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise DyadflowError(f"cannot be read as an SPSS .sav file: {exc}", file=file) from None
    header = list(frame.columns)
    frame = stringify(frame).with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("source_line"))
    mode = spec.get("value_labels", "fields")
    labels = info.variable_value_labels or {}
    if mode != "none" and labels:
        fields, items = resolve_columns(header, spec, file=file, line=None)
        targets = set(fields.values()) | (set(items) if mode == "all" else set())
        frame = frame.with_columns(
            _value_map(pl.col(c), {_code(k): v for k, v in table.items()}).alias(c)
            for c, table in labels.items()
            if c in targets
        )
    meta = {"header_line": None, "encoding": info.file_encoding, "delimiter": None, "value_labels": mode,
            "labelled_columns": sorted(labels)}
    return _finish(frame, header, spec, file, None, meta)


def _code(k) -> str:
    """A value-label code as the text stringify gives the cell (1.0 → "1")."""
    if isinstance(k, float) and k.is_integer():
        return str(int(k))
    return str(k)
