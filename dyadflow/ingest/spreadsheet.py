"""Excel workbooks (``format: xlsx``, read by fastexcel/calamine) and SPSS files
(``format: sav``, read by pyreadstat), mapped like any other input.

xlsx: ``sheet`` (a name, or the first visible sheet: hidden sheets are skipped with a
warning naming them), ``header_row`` (the spreadsheet row of the column names, default
1). ``source_line`` is the spreadsheet row number. Date cells become ISO dates; dates
typed as text need ``date_format``, serial numbers ``excel_serial_dates``. A cell the
reader would see as empty but is not is a rejection of its row, never a missing answer:
an Excel error (``#DIV/0!``) or a formula without a saved result in a mapped column is
``cell_error``; a value in a column whose header cell is empty (a header merged over two
columns) is ``header_unnamed``.

sav: ``source_line`` is the case number (the row in SPSS's Data View). Value labels are
honoured: ``value_labels: fields`` (the default) shows the labels of the mapped ID and
text fields (arm 1 → "CBT") and keeps item answers as their codes; ``all`` uses the
labels everywhere (then they must match the instrument's value labels); ``none`` keeps
all codes. SPSS user-missing values are empty. A number beyond ±2**53 (or infinite) in a
mapped column, which would otherwise become empty, is ``value_out_of_range``.
"""

from __future__ import annotations

import html
import re
import zipfile

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.ingest.mapping import _value_map, apply_mapping, resolve_columns, stringify
from dyadflow.ingest.text import read_bytes

# Beyond 2**53 a float no longer holds every whole number: no item answer, session number,
# code or ID is that large, and such a value would be read as empty (value_out_of_range).
MAX_NUMBER = 2.0**53


def _finish(raw: pl.DataFrame, header: list[str], spec: dict, file: str, line: int | None, meta: dict):
    raw = raw.with_columns(
        pl.lit(len(header), dtype=pl.Int64).alias("source_fields"),
        pl.lit(len(header), dtype=pl.Int64).alias("expected_fields"),
    )
    blank = pl.all_horizontal(pl.col(header).is_null()) if header else pl.lit(True)
    if "ingest_rule" in raw.columns:  # a row rejected while reading is never blank
        blank = blank & pl.col("ingest_rule").is_null()
    blank_rows = raw.select(blank.sum()).item()
    raw = raw.filter(~blank)
    mapped = apply_mapping(raw, header, spec, file=file, line=line)
    meta.update(
        {
            "blank_rows": int(blank_rows),
            "columns": header,
            "dropped_columns": mapped.dropped,
            "warnings": mapped.warnings,
            "records_read": raw.height,
            "source_columns": mapped.source_columns,
        }
    )
    return mapped.frame, meta


PROBLEMS = {
    "source_line": pl.Int64,
    "_pos": pl.Int64,
    "ingest_rule": pl.String,
    "ingest_message": pl.String,
    "ingest_column": pl.String,
    "ingest_value": pl.String,
}


def _mark_rows(frame: pl.DataFrame, problems: list[pl.DataFrame]) -> pl.DataFrame:
    """Each row's first problem (leftmost column) as its ingest rule; rows without one are unchanged."""
    found = (
        pl.concat([p.select(list(PROBLEMS)).cast(PROBLEMS) for p in problems])
        if problems
        else pl.DataFrame(schema=PROBLEMS)
    )
    first = found.sort("source_line", "_pos").unique("source_line", keep="first", maintain_order=True).drop("_pos")
    return frame.join(first, on="source_line", how="left", maintain_order="left")


def column_letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column index (0 → A, 27 → AB)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n - 1


CELLS = {"row": pl.Int64, "col": pl.Int64, "cell": pl.String, "kind": pl.String, "value": pl.String}


def _error_cells(xml: bytes, cell_tag: bytes) -> set[int]:
    """Where the cells typed as an error (``<c … t="e">``) start. The same cells as the
    pattern ``<c\\s[^>]*?\\bt=["']e["']``, found ten times faster: the scan looks for the
    literal ``t="e"`` (rare), and only from each hit back to the tag that holds it."""
    starts, done = set(), 0  # done: where the pattern's last match ended (matches do not overlap)
    for hit in re.finditer(rb't=["\']e["\']', xml):
        at = hit.start()
        if at and (xml[at - 1 : at].isalnum() or xml[at - 1 : at] == b"_"):  # not an attribute "…t"
            continue
        # the first tag after the last ">" before the hit
        i = xml.find(cell_tag, max(xml.rfind(b">", 0, at) + 1, done), at)
        while i >= 0 and not xml[i + len(cell_tag) : i + len(cell_tag) + 1].isspace():
            i = xml.find(cell_tag, i + 1, at)
        if i >= 0:
            starts.add(i)
            done = hit.end()
    return starts


def problem_cells(xml: bytes) -> pl.DataFrame:
    """The cells of a worksheet's XML that a reader would see as empty although they are
    not: ``error`` (a cached Excel error such as #DIV/0!) and ``uncached`` (a formula with
    no saved result, as written by programs that do not calculate). Only those cells are
    looked at; the sheet's other cells are never visited one by one."""
    m = re.search(rb"<(\w+:)?sheetData", xml)
    if m is None:
        return pl.DataFrame(schema=CELLS)
    prefix = m.group(1) or b""
    ns = re.escape(prefix)
    cell_tag, close_tag = b"<" + prefix + b"c", b"</" + prefix + b"c>"
    starts = _error_cells(xml, cell_tag)
    for f in re.finditer(rb"<" + ns + rb"f[\s>/]", xml):  # the cell a formula is in
        i = xml.rfind(cell_tag, 0, f.start())
        while i >= 0 and not xml[i + len(cell_tag) : i + len(cell_tag) + 1].isspace():
            i = xml.rfind(cell_tag, 0, i)
        if i >= 0:
            starts.add(i)
    rows = []
    for start in sorted(starts):
        end = xml.find(close_tag, start)
        cell = xml[start : end if end >= 0 else len(xml)]
        attrs = cell[: cell.find(b">")]
        ref = re.search(rb'\br=["\']([A-Za-z]+)([0-9]+)["\']', attrs)
        if ref is None:
            continue
        kind = re.search(rb'\bt=["\']([^"\']*)["\']', attrs)
        kind = kind.group(1) if kind else b"n"
        value = re.search(rb"<" + ns + rb"v>(.*?)</" + ns + rb"v>", cell, re.S)
        value = html.unescape(value.group(1).decode("utf-8")) if value else ""
        formula = re.search(rb"<" + ns + rb"f(?:\s[^>]*)?>(.*?)</" + ns + rb"f>", cell, re.S)
        if kind == b"e":
            what = "error"
        elif value == "" and kind != b"str":
            what, value = "uncached", "=" + (html.unescape(formula.group(1).decode("utf-8")) if formula else "")
        else:
            continue
        letters, row = ref.group(1), int(ref.group(2))
        rows.append((row, _column_index(letters), f"{letters.decode().upper()}{row}", what, value))
    return pl.DataFrame(rows, schema=CELLS, orient="row")


def workbook_sheets(path: str, file: str) -> tuple[dict[str, str], dict[str, str]]:
    """({sheet: visible | hidden | veryHidden}, {sheet: its XML part in the zip})."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception as exc:  # openpyxl raises many types
        raise DyadflowError(f"cannot be read as an Excel workbook: {exc}", file=file) from None
    try:
        return (
            {ws.title: ws.sheet_state for ws in wb.worksheets},
            {ws.title: getattr(ws, "_worksheet_path", None) for ws in wb.worksheets},
        )
    finally:
        wb.close()


def sheet_problem_cells(path: str, part: str | None) -> pl.DataFrame:
    if part is None:
        return pl.DataFrame(schema=CELLS)
    with zipfile.ZipFile(path) as z:
        return problem_cells(z.read(part))


def choose_sheet(names: list[str], states: dict[str, str], sheet, file: str) -> tuple[str, list[str]]:
    """The sheet to read (its name) and, when none is named, the hidden sheets skipped."""
    if isinstance(sheet, str):
        if sheet not in names:
            raise DyadflowError(
                f"the workbook has no sheet '{sheet}' (sheets: {', '.join(names)})", file=file, key="sheet"
            )
        return sheet, []
    if isinstance(sheet, int):
        return names[sheet], []
    hidden = [n for n in names if states.get(n, "visible") != "visible"]
    visible = [n for n in names if n not in hidden]
    if not visible:
        raise DyadflowError(
            f"every sheet of the workbook is hidden ({', '.join(hidden)}): name one with 'sheet'",
            file=file,
            key="sheet",
        )
    return visible[0], hidden


def hidden_sheets_warning(hidden: list[str], name: str, file: str) -> list[dict]:
    if not hidden:
        return []
    return [
        {
            "source_file": file,
            "column": None,
            "warning": (
                f"hidden sheet{'s' if len(hidden) > 1 else ''} {', '.join(repr(h) for h in hidden)} not read: reading "
                f"'{name}', the first visible sheet; name the sheet with 'sheet' if that is not the data"
            ),
        }
    ]


def cell_problems(
    frame: pl.DataFrame, cells: pl.DataFrame, columns: dict[int, str], used: dict[str, str], header_row: int
) -> list[pl.DataFrame]:
    """Rejections of rows with an error or uncached formula in a mapped column (``used``:
    export column → canonical column), and of rows with a value in an unnamed column."""
    names = pl.DataFrame(
        {"col": list(columns), "_src": list(columns.values())}, schema={"col": pl.Int64, "_src": pl.String}
    )
    bad = (
        cells.filter(pl.col("row") > header_row)
        .join(names, on="col", how="inner")
        .filter(pl.col("_src").is_in(list(used)))
    )
    out = [
        bad.select(
            pl.col("row").alias("source_line"),
            pl.col("col").alias("_pos"),
            pl.lit("cell_error").alias("ingest_rule"),
            pl.when(pl.col("kind") == "error")
            .then(
                pl.format(
                    "cell {} holds the Excel error {}: the answer is unknown (correct the formula or type the value)",
                    pl.col("cell"),
                    pl.col("value"),
                )
            )
            .otherwise(
                pl.format(
                    "cell {} is a formula ({}) with no saved result: the program that wrote the workbook did not "
                    "calculate it; open and save it in Excel, or export values",
                    pl.col("cell"),
                    pl.col("value"),
                )
            )
            .alias("ingest_message"),
            pl.col("_src").replace_strict(used, default=None, return_dtype=pl.String).alias("ingest_column"),
            pl.col("value").alias("ingest_value"),
        )
    ]
    for pos, name in columns.items():
        if name.startswith("__UNNAMED__"):
            out.append(
                frame.filter(pl.col(name).is_not_null()).select(
                    "source_line",
                    pl.lit(pos, dtype=pl.Int64).alias("_pos"),
                    pl.lit("header_unnamed").alias("ingest_rule"),
                    pl.lit(
                        f"column {column_letter(pos)} has a value but no name in the header (row {header_row}): a header "
                        "cell merged over two columns? The value cannot be attributed to a question"
                    ).alias("ingest_message"),
                    pl.lit(None, dtype=pl.String).alias("ingest_column"),
                    pl.col(name).alias("ingest_value"),
                )
            )
    return out


def read_xlsx(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    import fastexcel

    read_bytes(path, file)  # a missing file gets the usual message
    header_row = int(spec["header_row"])
    try:
        book = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types
        raise DyadflowError(f"cannot be read as an Excel workbook: {exc}", file=file) from None
    states, parts = workbook_sheets(path, file)
    name, hidden = choose_sheet(book.sheet_names, states, spec.get("sheet"), file)
    try:
        loaded = book.load_sheet(name, header_row=header_row - 1, dtypes="string")
        frame = loaded.to_polars()
    except Exception as exc:
        raise DyadflowError(f"sheet '{name}' cannot be read: {exc}", file=file, line=header_row) from None
    positions = {c.absolute_index: c.name for c in loaded.available_columns()}
    header = [c for c in frame.columns if not c.startswith("__UNNAMED__")]
    frame = frame.with_columns(
        pl.col(frame.columns).str.strip_chars().replace("", None).str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "${1}")
    ).with_columns(pl.int_range(header_row + 1, header_row + 1 + frame.height, dtype=pl.Int64).alias("source_line"))
    fields, items = resolve_columns(header, spec, file=file, line=header_row)
    used = {src: canon for canon, src in fields.items()} | items
    cells = sheet_problem_cells(path, parts.get(name))
    frame = _mark_rows(frame, cell_problems(frame, cells, positions, used, header_row)).drop(
        [c for c in frame.columns if c.startswith("__UNNAMED__")]
    )
    meta = {
        "sheet": name,
        "header_line": header_row,
        "encoding": None,
        "delimiter": None,
        "file_warnings": hidden_sheets_warning(hidden, name, file),
    }
    return _finish(frame, header, spec, file, header_row, meta)


def read_sav(path: str, *, file: str, spec: dict) -> tuple[pl.DataFrame, dict]:
    import pyreadstat

    read_bytes(path, file)
    try:
        frame, info = pyreadstat.read_sav(path, output_format="polars", encoding=spec.get("encoding"))
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise DyadflowError(f"cannot be read as an SPSS .sav file: {exc}", file=file) from None
    header = list(frame.columns)
    fields, items = resolve_columns(header, spec, file=file, line=None)
    used = {src: canon for canon, src in fields.items()} | items
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("source_line"))
    problems = [
        frame.filter(pl.col(c).is_not_nan() & (pl.col(c).is_infinite() | (pl.col(c).abs() > MAX_NUMBER))).select(
            "source_line",
            pl.lit(header.index(c), dtype=pl.Int64).alias("_pos"),
            pl.lit("value_out_of_range").alias("ingest_rule"),
            pl.format(
                "{} in {} is out of range: no answer, session number, code or ID is beyond ±2^53 "
                "(9007199254740992); it would be read as empty",
                pl.col(c).cast(pl.String),
                pl.lit(c),
            ).alias("ingest_message"),
            pl.lit(used[c]).alias("ingest_column"),
            pl.col(c).cast(pl.String).alias("ingest_value"),
        )
        for c in header
        if c in used and frame.schema[c].is_float()
    ]
    frame = _mark_rows(stringify(frame.drop("source_line")).with_columns(frame.get_column("source_line")), problems)
    mode = spec["value_labels"]
    labels = info.variable_value_labels or {}
    if mode != "none" and labels:
        targets = set(fields.values()) | (set(items) if mode == "all" else set())
        frame = frame.with_columns(
            _value_map(pl.col(c), {_code(k): v for k, v in table.items()}).alias(c)
            for c, table in labels.items()
            if c in targets
        )
    meta = {
        "header_line": None,
        "encoding": info.file_encoding,
        "delimiter": None,
        "value_labels": mode,
        "labelled_columns": sorted(labels),
    }
    return _finish(frame, header, spec, file, None, meta)


def _code(k) -> str:
    """A value-label code as the text stringify gives the cell (1.0 → "1")."""
    if isinstance(k, float) and k.is_integer():
        return str(int(k))
    return str(k)
