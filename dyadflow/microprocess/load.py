"""Read dial-rating exports into one table of strings with source lines.

Two layouts (``microprocess.inputs[].layout``):

* ``long``: one CSV with the columns ``dyad_id, session, rater, second, rating``;
* ``per_file``: a folder or glob of CSVs, one per dyad, session and rater, as
  continuous-rating tools such as CARMA export them. The file name gives the dyad,
  session and rater (a regular expression with the named groups ``dyad_id``,
  ``session`` and ``rater``); ``time_column`` and ``rating_column`` name the columns.

Every cell stays a string; :mod:`dyadflow.microprocess.dial_checks` judges them. Rows keep
the line a person sees in a text editor (:func:`dyadflow.ingest.text.read_text_table`).
Reading is a loop over files (each is one read); all row work is polars.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.core.config import section
from dyadflow.core.errors import DyadflowError
from dyadflow.core.performance import fast_path_enabled
from dyadflow.ingest.text import UTF8, checked_utf8, parse_header, read_bytes, read_text_table, refuse_binary
from dyadflow.microprocess import KEY, RATER_SYNONYMS, input_files
from dyadflow.validate.checks import ID_PATTERN, SESSION_PATTERN

COLUMNS = ("dyad_id", "session", "rater", "second", "rating")
log = logging.getLogger("dyadflow")


def _column(table, wanted: str, file: str) -> str:
    for name in table.header:
        if name.strip().lower() == wanted.strip().lower():
            return name
    raise DyadflowError(
        f"required column '{wanted}' missing (the header has: {', '.join(table.header)})",
        file=file,
        line=table.header_line,
        column=wanted,
    )


def _meta(file: str, path: str, rows: int, blank: int, fmt: str, sha256: str | None = None) -> dict:
    return {
        "source_file": file,
        "sha256": sha256 or atomic.sha256_file(path),
        "rows_read": rows,
        "blank_rows": blank,
        "records_read": rows + blank,  # records after the header, blank ones included
        "format": fmt,
    }


def _long_names(spec: dict) -> dict[str, str]:
    return {
        "dyad_id": "dyad_id",
        "session": "session",
        "rater": "rater",
        "second": spec["time_column"],
        "rating": spec["rating_column"],
    }


def read_long(spec: dict, raw: bytes | None = None) -> tuple[pl.DataFrame, dict]:
    path = spec["path"]
    table = read_text_table(path, encoding=spec["encoding"], delimiter=spec["delimiter"], file=path, raw=raw)
    names = _long_names(spec)
    cols = {c: _column(table, names[c], path) for c in COLUMNS}
    frame = table.frame.select(
        *[pl.col(cols[c]).alias(c) for c in COLUMNS],
        "source_line",
        "source_fields",
        pl.lit(table.n_fields, dtype=pl.Int64).alias("expected_fields"),
        pl.lit(path).alias("source_file"),
    )
    return frame, _meta(path, path, frame.height, table.blank_rows, "dial_long")


@dataclass
class FastLong:
    """A long dial file read typed (the fast path): ``clean`` holds the rows that pass
    every one-row rule, typed (``dyad_id``, ``session`` and ``rater`` as written, ``second``
    Int32, ``rating`` Float64, ``source_line``, ``_pos``: the row's place among the file's
    records); ``rest`` the other rows as the text path reads them (strings, ``_pos``)."""

    clean: pl.DataFrame
    rest: pl.DataFrame
    meta: dict
    records: int  # records after the header (the span of ``_pos``)


def _ok_values(column: pl.Series, pattern: str | None = None, allowed=None) -> pl.Series:
    """The distinct values of ``column`` that pass (a regex, or a set of lower-cased words)."""
    values = column.unique()
    ok = values.str.contains(pattern) if pattern else values.str.to_lowercase().is_in(list(allowed))
    return values.filter(ok.fill_null(False))


def read_long_fast(spec: dict, lo: float, hi: float, max_s: int) -> FastLong | None:
    """Read a long dial file typed, with the text path only for the rows that are not
    clean; None when the file does not qualify (then the text path reads all of it).

    Qualifies: UTF-8, a one-byte delimiter, no quote character anywhere (so every line is
    one record and a row's line is its place in the file), the header on line 1 with
    exactly the five columns, and as many rows read as lines. A clean row has five
    fields, no empty cell, a pseudonymous ID, a session number, a known rater, a whole
    second 0 … ``max_s`` and a finite rating within ``lo`` … ``hi``: the text path would
    accept it as read. Every other row (a short row, an empty or unparsable cell, a
    blank line, a value out of range, a cell with spaces) is cut out of the bytes and read
    by the text path, which judges it as it always did (messages quote its raw text); its
    line is mapped back."""
    path, delimiter = spec["path"], spec["delimiter"]
    if spec["encoding"].lower().replace("_", "-") not in UTF8 or len(delimiter) != 1:
        return None
    raw = read_bytes(path, path)
    refuse_binary(raw, path, spec["encoding"])
    # checked a piece at a time, with the text path's message for bytes that are not UTF-8
    bom = checked_utf8(raw, spec["encoding"], path) == "utf-8-sig"
    data = raw[3:] if bom else raw
    first_nl = data.find(b"\n")
    if b'"' in data or b"\x00" in data or first_nl <= 0 or not data[:first_nl].strip():
        return None
    header = parse_header(data[:first_nl].decode("utf-8"), delimiter, path, 1)
    names = _long_names(spec)
    cols = {c: next((h for h in header if h.strip().lower() == names[c].strip().lower()), None) for c in COLUMNS}
    if None in cols.values() or len(header) != len(COLUMNS):
        return None  # a column missing (the text path says which) or others besides
    # the records after the header, counted without copying them out of the file's bytes
    records = data.count(b"\n", first_nl + 1) + (1 if len(data) > first_nl + 1 and not data.endswith(b"\n") else 0)
    dtypes = {"second": pl.Int32, "rating": pl.Float64}
    schema = {h: pl.String for h in header} | {cols[c]: t for c, t in dtypes.items()}
    try:
        frame = pl.read_csv(
            # the file itself after its header line (no copy of the bytes; no quotes, so one line is one
            # record); with a BOM the bytes after the header (the CSV reader would keep the BOM)
            data[first_nl + 1 :] if bom else path,
            skip_rows=0 if bom else 1,
            has_header=False,
            new_columns=header,
            schema=schema,
            separator=delimiter,
            quote_char=None,
            ignore_errors=True,  # a cell that does not parse is empty: its row is not clean
            raise_if_empty=False,
            # each row's place among the records, numbered by the reader chunk by chunk (an index
            # added afterwards as one column made polars copy every column into one chunk)
            row_index_name="_pos",
        )
    except pl.exceptions.PolarsError:  # e.g. a row with more fields than the header
        return None
    if frame.height != records:
        return None
    frame = frame.select(*[pl.col(cols[c]).alias(c) for c in COLUMNS], pl.col("_pos").cast(pl.Int64))
    c = pl.col
    clean_expr = (
        pl.all_horizontal(c(x).is_not_null() for x in COLUMNS)
        & c("dyad_id").is_in(_ok_values(frame.get_column("dyad_id"), ID_PATTERN).implode())
        & c("session").is_in(_ok_values(frame.get_column("session"), SESSION_PATTERN).implode())
        & c("rater").is_in(_ok_values(frame.get_column("rater"), allowed=RATER_SYNONYMS).implode())
        & c("second").is_between(0, max_s)
        & c("rating").is_finite()
        & c("rating").is_between(lo, hi)
    ).fill_null(False)
    is_clean = frame.select(clean_expr).to_series()
    frame = frame.with_columns((c("_pos") + 2).alias("source_line"))  # the header is line 1
    if is_clean.all():  # no row to cut out: no copy of the table
        clean, positions = frame, np.zeros(0, dtype=np.int64)
    else:
        clean, positions = frame.filter(is_clean), np.flatnonzero(~is_clean.to_numpy())
    rest = _rest(spec, raw, data, first_nl, positions)
    meta = _meta(
        path,
        path,
        clean.height + rest.frame.height,
        rest.blank_rows,
        "dial_long",
        hashlib.sha256(raw).hexdigest(),
    )
    rest_frame = rest.frame.select(*COLUMNS, "source_line", "source_fields").with_columns(
        (c("source_line") - 2).alias("_pos")
    )
    # the line in the cut-out text (header line 1) -> the line in the file
    lines = pl.Series(rest.positions + 2, dtype=pl.Int64)
    rest_frame = rest_frame.with_columns(
        pl.lit(lines).gather(c("_pos")).alias("source_line"),
        pl.lit(pl.Series(rest.positions, dtype=pl.Int64)).gather(c("_pos")).alias("_pos"),
        pl.lit(len(header), dtype=pl.Int64).alias("expected_fields"),
        pl.lit(path).alias("source_file"),
    )
    return FastLong(clean, rest_frame, meta, records)


@dataclass
class _Rest:
    frame: pl.DataFrame
    blank_rows: int
    positions: np.ndarray  # the file's record index of each cut-out line


def _rest(spec: dict, raw: bytes, data: bytes, first_nl: int, positions: np.ndarray) -> _Rest:
    """The rows at ``positions`` (record indexes after the header) read by the text path
    from the header line and those lines, cut out of ``data`` by one numpy mask."""
    path = spec["path"]
    head = data[: first_nl + 1]
    if positions.size:
        a = np.frombuffer(data, dtype=np.uint8)[first_nl + 1 :]
        ends = np.flatnonzero(a == 10)
        starts = np.concatenate(([0], ends + 1))[positions]
        stops = np.append(ends, a.size - 1)[positions] + 1  # one past each line's newline
        mark = np.zeros(a.size + 1, dtype=np.int64)
        np.add.at(mark, starts, 1)
        np.add.at(mark, stops, -1)
        cut = a[np.cumsum(mark)[: a.size] > 0].tobytes()
        if not cut.endswith(b"\n"):
            cut += b"\n"
    else:
        cut = b""
    bom = raw[: len(raw) - len(data)]
    table = read_text_table(
        path, encoding=spec["encoding"], delimiter=spec["delimiter"], file=path, raw=bom + head + cut
    )
    return _Rest(table.frame, table.blank_rows, positions)


def input_label(spec: dict) -> str:
    """The name of a dial input in the outputs' ``input`` column: its ``name``, else its path."""
    return spec.get("name") or spec["path"]


def read_per_file(spec: dict, skip: set[str] = frozenset()) -> tuple[list[pl.DataFrame], list[dict]]:
    pattern = re.compile(spec["pattern"])
    missing = {"dyad_id", "session", "rater"} - set(pattern.groupindex)
    if missing:
        raise DyadflowError(
            f"the file-name pattern lacks the named group(s) {', '.join(sorted(missing))}: "
            "use (?P<dyad_id>…), (?P<session>…) and (?P<rater>…)",
            key="microprocess.inputs.pattern",
        )
    files = input_files([spec])
    if not files:
        raise DyadflowError("no dial-rating files found", file=spec["path"])
    frames, metas = [], []
    for path in files:  # one read per file; the rows are handled by polars
        if os.path.normpath(path) in skip:
            continue
        m = pattern.search(Path(path).name)
        if not m:
            raise DyadflowError(
                f"the file name does not match the pattern {pattern.pattern!r}, so its dyad, "
                "session and rater are unknown; rename it or set the input's 'pattern'",
                file=path,
            )
        table = read_text_table(path, encoding=spec["encoding"], delimiter=spec["delimiter"], file=path)
        t_col = _column(table, spec["time_column"], path)
        r_col = _column(table, spec["rating_column"], path)
        frame = table.frame.select(
            pl.lit(m.group("dyad_id")).alias("dyad_id"),
            pl.lit(m.group("session")).alias("session"),
            pl.lit(m.group("rater")).alias("rater"),
            pl.col(t_col).alias("second"),
            pl.col(r_col).alias("rating"),
            "source_line",
            "source_fields",
            pl.lit(table.n_fields, dtype=pl.Int64).alias("expected_fields"),
            pl.lit(path).alias("source_file"),
        )
        frames.append(frame)
        metas.append(_meta(path, path, frame.height, table.blank_rows, "dial_per_file"))
    return frames, metas


def read_inputs(specs: list[dict]) -> tuple[pl.DataFrame, list[dict]]:
    """All inputs as one string table (``COLUMNS`` + provenance) and one meta dict per file.

    A file that two inputs match (a folder and a glob over it) is read once, for the
    first of them, with a warning naming the file and both inputs."""
    raw, _, metas = _read(specs, None)
    return raw, metas


def read_inputs_screened(
    specs: list[dict], lo: float, hi: float, max_s: int
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """:func:`read_inputs` with the fast path: long files read typed (:func:`read_long_fast`).
    Returns the string table of the rows the text path reads, the clean typed rows
    (``dyad_id, session, rater`` as written, ``second``, ``rating``, provenance) and the
    metas; both tables carry ``_row``, every row's place among all rows read."""
    return _read(specs, (lo, hi, max_s))


STRING_SCHEMA = {c: pl.String for c in COLUMNS} | {
    "source_line": pl.Int64,
    "source_fields": pl.Int64,
    "expected_fields": pl.Int64,
    "source_file": pl.String,
    "input": pl.String,
}
CLEAN_SCHEMA = {c: pl.String for c in KEY} | {
    "second": pl.Int32,
    "rating": pl.Float64,
    "source_line": pl.Int64,
    "source_file": pl.String,
    "input": pl.String,
    "_row": pl.Int64,
}


def _read(specs: list[dict], screen: tuple | None) -> tuple[pl.DataFrame, pl.DataFrame | None, list[dict]]:
    frames: list[pl.DataFrame] = []
    cleans: list[pl.DataFrame] = []
    metas: list[dict] = []
    read_by: dict[str, str] = {}  # normalised path -> the input that read it
    offset = 0  # rows (records, for a file read typed) before this file: the _row of its first
    # each input with the config schema's defaults (layout, pattern, columns, encoding)
    specs = section("microprocess", {"inputs": list(specs)})["inputs"]
    for spec in specs:
        label = input_label(spec)
        again = [p for p in input_files([spec]) if os.path.normpath(p) in read_by]
        for p in again:
            log.warning(
                "dial file %s is matched by the inputs '%s' and '%s': it is read once, for '%s'",
                p,
                read_by[os.path.normpath(p)],
                label,
                read_by[os.path.normpath(p)],
            )
        fast = None
        if spec["layout"] == "long":
            if again:
                continue
            fast = read_long_fast(spec, *screen) if screen and fast_path_enabled() else None
            if fast:
                fs, ms = [fast.rest], [fast.meta]
                cleans.append(
                    fast.clean.with_columns(
                        (pl.col("_pos") + offset).alias("_row"),
                        pl.lit(spec["path"]).alias("source_file"),
                        pl.lit(label).alias("input"),
                    ).select(list(CLEAN_SCHEMA))
                )
            else:
                f, m = read_long(spec)
                fs, ms = [f], [m]
        else:
            fs, ms = read_per_file(spec, skip=set(read_by))
        for m in ms:
            m["input"] = label
            read_by[os.path.normpath(m["source_file"])] = label
        for f in fs:
            f = f.with_columns(pl.lit(label).alias("input"))
            if screen:
                pos = pl.col("_pos") if fast else pl.int_range(pl.len(), dtype=pl.Int64)
                f = f.with_columns((pos + offset).alias("_row"))
                offset += fast.records if fast else f.height
            frames.append(f)
        metas.extend(ms)
    schema = STRING_SCHEMA | ({"_row": pl.Int64} if screen else {})
    raw = pl.concat([f.select(list(schema)).cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)
    if not screen:
        return raw, None, metas
    clean = pl.concat(cleans) if cleans else pl.DataFrame(schema=CLEAN_SCHEMA)
    return raw, clean, metas
