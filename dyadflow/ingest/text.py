"""Reading delimited text exports with exact line numbers.

polars does the parsing. Alongside it, a vectorised numpy pass over the raw bytes finds
where every record starts (a newline ends a record only outside quotes), so each row
keeps the line number a person sees in a text editor, even when quoted cells span
several lines. The same pass counts the fields of every record, so a row with too few
or too many fields is rejected instead of being padded with empty cells.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.core.performance import fast_path_enabled

NEWLINE = 10
CR = 13
QUOTE = ord('"')


@dataclass
class TextTable:
    """All cells as strings (stripped, empty → null), plus where each row came from."""

    frame: pl.DataFrame  # columns as in the header, plus source_line and source_fields
    header: list[str]
    header_line: int
    n_fields: int
    blank_rows: int
    encoding: str
    notes: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # rows for results/validation/warnings.csv


UTF8 = ("utf-8", "utf8", "utf-8-sig")  # the names of UTF-8 an input may give


def decode(raw: bytes, encoding: str, file: str) -> tuple[str, str]:
    """Decode ``raw`` as declared; name the line where it fails. Returns (text, encoding used)."""
    enc = encoding.lower().replace("_", "-")
    used = encoding
    if enc in UTF8:
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
            used = "utf-8-sig"
        enc = "utf-8"
    try:
        return raw.decode(enc), used
    except LookupError:
        raise DyadflowError(f"unknown encoding '{encoding}'", file=file) from None
    except UnicodeDecodeError as exc:
        raise _undecodable(raw, 0, exc, encoding, file) from None


def _undecodable(raw: bytes, base: int, exc: UnicodeDecodeError, encoding: str, file: str) -> DyadflowError:
    """The message for bytes that do not decode: ``exc`` from decoding ``raw[base:]`` (or a
    part of it that starts at ``base``)."""
    start, end = base + exc.start, base + exc.end
    line = raw.count(b"\n", base, start) + 1
    line_start = max(raw.rfind(b"\n", base, start) + 1, base)
    col = start - line_start + 1
    bad = raw[start:end].hex(" ")
    return DyadflowError(
        f"cannot be decoded as {encoding}: byte(s) {bad} at character {col} "
        f"({exc.reason}); set the input's 'encoding' (e.g. cp1252 or latin-1)",
        file=file,
        line=line,
    )


def checked_utf8(raw: bytes, encoding: str, file: str, block: int = 1 << 24) -> str:
    """For a UTF-8 ``encoding``: the encoding used (``utf-8-sig`` when there is a BOM), having
    checked that the bytes are UTF-8 as :func:`decode` does, with its message when not, but
    without decoding the whole file into one string: only the span from the first byte
    outside ASCII to a few bytes past the last is decoded (ASCII bytes are UTF-8 as they
    are, and never part of a longer sequence, so the span decodes exactly where the file
    does; the bytes after it give the same reason for a sequence cut short), about
    ``block`` bytes at a time, each piece cut before a byte that starts a character (so
    no piece holds part of one; a file of non-ASCII text is never held twice)."""
    if raw.isascii():  # one fast pass; ASCII is UTF-8
        return encoding
    used = encoding
    base = 0
    if raw.startswith(b"\xef\xbb\xbf"):
        base, used = 3, "utf-8-sig"
    a = np.frombuffer(raw, dtype=np.uint8)[base:]
    first = last = -1
    for lo in range(0, a.size, block):  # (memory) a mask of one block at a time
        high = np.flatnonzero(a[lo : lo + block] >= 0x80)
        if high.size:
            first = lo + int(high[0]) if first < 0 else first
            last = lo + int(high[-1])
    stop = min(last + 4, a.size)
    at = first if first >= 0 else stop
    view = memoryview(raw)[base:]
    while at < stop:
        end = min(at + block, stop)
        # move the cut past continuation bytes (0x80-0xBF): a character is at most 4 bytes
        while end < min(at + block + 3, stop) and 0x80 <= a[end] <= 0xBF:
            end += 1
        try:
            str(view[at:end], "utf-8")
        except UnicodeDecodeError:
            # a bad file (once): the rest of the span decoded in one piece gives the error and
            # reason a whole decode gives (everything before ``at`` decoded, ``at`` starts a character)
            try:
                str(view[at:stop], "utf-8")
            except UnicodeDecodeError as exc:
                exc.start, exc.end = exc.start + at, exc.end + at
                raise _undecodable(raw, base, exc, encoding, file) from None
        at = end
    return used


# What a few binary formats that land in export folders start with.
MAGIC = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one: use format: xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file (.xls): save it as .xlsx or CSV",
    b"$FL2": "an SPSS .sav file: use format: sav",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip archive",
}


def refuse_binary(raw: bytes, file: str, encoding: str = "utf-8") -> None:
    """Stop with a clear message when ``raw`` is not text (NUL bytes or a known binary format)."""
    wide = encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))
    if not wide and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DyadflowError(
            "is UTF-16 text (Excel's 'Unicode text' export): set the input's encoding to utf-16", file=file, line=1
        )
    kind = next((what for magic, what in MAGIC.items() if raw.startswith(magic)), None)
    nul = -1 if wide else raw.find(b"\x00")
    if kind is None and nul < 0:
        return
    line = raw.count(b"\n", 0, nul) + 1 if nul >= 0 and kind is None else 1
    what = f"this is {kind}" if kind else "NUL bytes are never part of a text export (a damaged or binary file?)"
    raise DyadflowError(
        f"is not a text export: it is binary ({what})" if kind else f"contains NUL bytes: {what}", file=file, line=line
    )


def single_byte(encoding: str) -> bool:
    """Whether ``encoding`` gives one character per byte (cp1252, latin-1, …; not UTF-8, UTF-16, Shift-JIS)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    # a UTF codec replaces every invalid byte by one character too, so it is excluded by name
    return not name.startswith("utf") and len(bytes(range(256)).decode(name, errors="replace")) == 256


def utf8_in_single_byte(raw: bytes, encoding: str, file: str, limit: int = 10) -> list[dict]:
    """A warning when a file declared in a single-byte encoding holds UTF-8 sequences (a
    lead byte C2–F4 followed by its continuation bytes 80–BF): read as declared they
    become mojibake (``Ã¶`` for ``ö``). Names the lines; the file is read as declared."""
    if not single_byte(encoding):
        return []
    a = np.frombuffer(raw, dtype=np.uint8)
    n = a.size
    cont = (a >= 0x80) & (a <= 0xBF)
    after = [np.zeros(n, dtype=bool) for _ in range(3)]
    for k in range(3):
        after[k][: max(n - k - 1, 0)] = cont[k + 1 :]
    hit = (
        ((a >= 0xC2) & (a <= 0xDF) & after[0])
        | ((a >= 0xE0) & (a <= 0xEF) & after[0] & after[1])
        | ((a >= 0xF0) & (a <= 0xF4) & after[0] & after[1] & after[2])
    )
    where = np.flatnonzero(hit)
    if not where.size:
        return []
    lines = np.unique(np.searchsorted(np.flatnonzero(a == NEWLINE), where) + 1)
    first = int(where[0])
    size = 2 if a[first] <= 0xDF else 3 if a[first] <= 0xEF else 4
    seq = raw[first : first + size]
    shown = ", ".join(str(x) for x in lines[:limit]) + (f" and {lines.size - limit} more" if lines.size > limit else "")
    return [
        {
            "source_file": file,
            "column": None,
            "warning": (
                f"the file is declared {encoding} but line{'s' if lines.size > 1 else ''} {shown} "
                f"hold{'' if lines.size > 1 else 's'} UTF-8 text ('{seq.decode(encoding, errors='replace')}' is "
                f"'{seq.decode('utf-8')}' in UTF-8), which reads as garbled text: if the file is UTF-8, set encoding: utf-8"
            ),
        }
    ]


@dataclass
class Records:
    """Where the records of a text file are: byte spans, start lines, field counts."""

    starts: np.ndarray
    stops: np.ndarray
    lines: np.ndarray
    fields: np.ndarray
    empty: np.ndarray


def scan_records(data: bytes, delimiter: str) -> Records:
    """Byte span, start line, field count and emptiness of every record in ``data``.

    A newline or delimiter inside double quotes belongs to the cell. Doubled quotes
    ("") inside a quoted cell keep the quote parity even, so they need no special case.
    """
    a = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(a == QUOTE)
    newlines = np.flatnonzero(a == NEWLINE)
    outside = (np.searchsorted(quotes, newlines) & 1) == 0
    ends = newlines[outside]
    starts = np.concatenate(([0], ends + 1)).astype(np.int64)
    stops = np.concatenate((ends, [a.size])).astype(np.int64)
    if starts[-1] >= a.size:  # the file ends with a newline (or is empty)
        starts, stops = starts[:-1], stops[:-1]
    lines = np.searchsorted(newlines, starts) + 1
    # Fields per record = delimiters in the record, less those inside quoted cells, + 1.
    # Only the records' and the quoted cells' boundaries are looked up among the
    # delimiter positions (no per-delimiter arrays: a large export has hundreds of millions).
    opens = quotes[0::2]
    closes = np.append(quotes[1::2], a.size)[: opens.size]  # an unclosed quote runs to the end
    if fast_path_enabled():
        # a record starts one byte (its line feed) after the previous one stops: the same count
        at_stops, at_closes, at_opens = _count_before(a, ord(delimiter), stops, closes, opens)
        at_starts = np.concatenate(([0], at_stops[:-1])).astype(np.int64)[: at_stops.size]
    else:
        at_stops, at_starts, at_closes, at_opens = _count_before(a, ord(delimiter), stops, starts, closes, opens)
    fields = at_stops - at_starts + 1
    if quotes.size:
        quoted = at_closes - at_opens
        record_of = np.searchsorted(starts, opens, side="right") - 1
        fields = fields - np.bincount(record_of, weights=quoted, minlength=starts.size)[: starts.size].astype(np.int64)
    length = stops - starts
    ends_cr = (length > 0) & (a[np.maximum(stops - 1, 0)] == CR) if a.size else length > 0
    length = length - ends_cr
    return Records(starts, stops, lines.astype(np.int64), fields.astype(np.int64), length == 0)


def _count_before(a: np.ndarray, byte: int, *positions: np.ndarray, block: int = 1 << 24) -> list[np.ndarray]:
    """For each ascending array of ``positions``: how many bytes of ``a`` equal to ``byte``
    lie before each position (``np.searchsorted(np.flatnonzero(a == byte), positions)``).
    Found block by block: the positions of every delimiter of a large export (hundreds of
    millions, 8 bytes each) are never held at once."""
    out = [np.zeros(p.size, dtype=np.int64) for p in positions]
    seen = 0
    for lo in range(0, a.size, block):
        hi = lo + block
        found = np.flatnonzero(a[lo:hi] == byte) + lo
        last = hi >= a.size
        for p, o in zip(positions, out, strict=True):
            i, j = np.searchsorted(p, lo), (p.size if last else np.searchsorted(p, hi))
            o[i:j] = seen + np.searchsorted(found, p[i:j])
        seen += found.size
    return out


# What polars' str.strip_chars() strips (Unicode White_Space), as UTF-8: the one-byte
# characters, and the lead byte and the continuation bytes of the others.
_ASCII_SPACE = (9, 10, 11, 12, 13, 32)
_WIDE_SPACE = {
    0xC2: [(0x85,), (0xA0,)],
    0xE1: [(0x9A, 0x80)],
    0xE2: [(0x80, c) for c in (*range(0x80, 0x8B), 0xA8, 0xA9, 0xAF)] + [(0x81, 0x9F)],
    0xE3: [(0x80, 0x80)],
}


def may_need_strip(data: bytes, delimiter: str) -> bool:
    """False only when no cell of ``data`` (UTF-8 records, no header) can start or end
    with whitespace, so stripping every cell would change nothing (the fast path then
    skips that pass over every cell). Decided on the bytes: a whitespace character next to
    a quote that opens or closes a cell (not one of a doubled "" inside it: the JSON
    header row of a Qualtrics export), a line end, a delimiter outside quotes or an end of
    the file. A line feed
    outside quotes, and a carriage return before one, end a line; elsewhere they are
    whitespace. Conservative: True whenever unsure (e.g. a quoted cell that starts with a
    space)."""
    a = np.frombuffer(data, dtype=np.uint8)
    if not a.size:
        return False
    n, delim = a.size, ord(delimiter)
    quotes = np.flatnonzero(a == QUOTE)
    if quotes.size:
        # quote parity tells what is inside a quoted cell only when every quote opens a
        # cell, closes one or is doubled ("") inside one; a stray quote (a"b) is literal
        bound = np.zeros(256, dtype=bool)
        bound[[delim, NEWLINE, CR, QUOTE]] = True
        opens, closes = quotes[0::2], quotes[1::2]
        if not (
            (bound[a[np.maximum(opens - 1, 0)]] | (opens == 0)).all()
            and (bound[a[np.minimum(closes + 1, n - 1)]] | (closes == n - 1)).all()
        ):
            return True

    def inside_quotes(pos: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Whether each ``pos`` lies inside a quoted cell, looked up only where ``where``."""
        out = np.zeros(pos.size, dtype=bool)
        if quotes.size:
            out[where] = (np.searchsorted(quotes, pos[where]) & 1) == 1
        return out

    low = np.flatnonzero(a <= 32)
    byte = a[low]
    if fast_path_enabled():
        # only whitespace next to a delimiter, a line feed, a carriage return or a quote (or
        # at an end) can be at a cell's edge: the check below needs no other (a file has a
        # space in most rows: "Very often", a date and time, a note)
        near = (low == 0) | (low == n - 1)
        for side in (a[np.maximum(low - 1, 0)], a[np.minimum(low + 1, n - 1)]):
            near |= (side == delim) | (side == NEWLINE) | (side == CR) | (side == QUOTE)
        low, byte = low[near], byte[near]
    low = low[np.isin(byte, _ASCII_SPACE)]
    byte = a[low]
    nxt = a[np.minimum(low + 1, n - 1)]
    line_end = ((byte == NEWLINE) | ((byte == CR) & (nxt == NEWLINE) & (low + 1 < n))) | (byte == delim)
    # a line end or a delimiter inside a quoted cell is part of the cell
    low = low[~line_end | inside_quotes(low, line_end)]
    first, last = [low], [low]
    high = np.flatnonzero(a >= 0xC2)
    lead = a[high]
    for byte_value, tails in _WIDE_SPACE.items():
        at = high[lead == byte_value]
        for tail in tails:
            hit = np.ones(at.size, dtype=bool)
            for k, t in enumerate(tail, start=1):
                hit &= (at + k < n) & (a[np.minimum(at + k, n - 1)] == t)
            first.append(at[hit])
            last.append(at[hit] + len(tail))
    first, last = np.concatenate(first), np.concatenate(last)
    if not first.size:
        return False
    before, after = np.maximum(first - 1, 0), np.minimum(last + 1, n - 1)

    def doubled(pos: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Whether each quote at ``pos`` (looked up only where ``where``) is one of a
        doubled pair ("") inside a quoted cell, not the cell's opening or closing quote:
        the first of a pair closes by parity and is followed by a quote, the second
        opens by parity and follows one (an empty cell's "" is its open and close)."""
        out = np.zeros(pos.size, dtype=bool)
        at = pos[where]
        closes = (np.searchsorted(quotes, at) & 1) == 1
        out[where] = np.where(
            closes, a[np.minimum(at + 1, n - 1)] == QUOTE, (at > 0) & (a[np.maximum(at - 1, 0)] == QUOTE)
        ) & np.where(closes, at + 1 < n, True)
        return out

    def ends_cell(pos: np.ndarray) -> np.ndarray:
        b = a[pos]
        at_delim, at_quote = b == delim, b == QUOTE
        # whitespace next to a doubled quote ("x"" y") is inside its cell, not at an edge
        edge_quote = at_quote & ~doubled(pos, at_quote)
        return (b == NEWLINE) | (b == CR) | edge_quote | (at_delim & ~inside_quotes(pos, at_delim))

    return bool(((first == 0) | (last == n - 1) | ends_cell(before) | ends_cell(after)).any())


def parse_header(text: str, delimiter: str, file: str, line: int) -> list[str]:
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (StopIteration, csv.Error) as exc:
        raise DyadflowError(f"the header line cannot be read: {exc}", file=file, line=line) from None
    header = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if not name:
            raise DyadflowError(f"header field {i} is empty", file=file, line=line)
        key = name.lower()
        if key in seen:
            raise DyadflowError(
                f"column name '{name}' appears twice in the header (fields {seen[key]} and {i})",
                file=file,
                line=line,
                column=name,
            )
        seen[key] = i
    return header


NOT_REGULAR = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_bytes(path: str | Path, file: str) -> bytes:
    """The bytes of an input file. Anything but a regular file is refused before it is read:
    reading a named pipe would wait forever for a writer, a device never ends. The file is
    opened without blocking and checked on the open descriptor, so it cannot be swapped
    for a pipe between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DyadflowError("input file not found", file=file) from None
    except IsADirectoryError:
        raise DyadflowError("is a directory, not a file", file=file) from None
    except PermissionError:
        raise DyadflowError("cannot be read: permission denied", file=file) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise DyadflowError("is a directory, not a file", file=file)
        what = NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        raise DyadflowError(f"is not a regular file ({what}): give the path of an export file", file=file)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def read_text_table(
    path: str | Path,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    file: str | None = None,
    raw: bytes | None = None,
) -> TextTable:
    """Read a delimited file with a header line; every cell as a stripped string.
    ``raw``: the file's bytes when the caller has them already (not read again)."""
    file = file or str(path)
    raw = read_bytes(path, file) if raw is None else raw
    refuse_binary(raw, file, encoding)
    utf8 = encoding.lower().replace("_", "-") in UTF8
    if utf8 and fast_path_enabled():
        # fast path: checked, not decoded into one string that is thrown away
        text, used = None, checked_utf8(raw, encoding, file)
    else:
        text, used = decode(raw, encoding, file)
    warnings = utf8_in_single_byte(raw, encoding, file)
    if utf8:
        # valid UTF-8 already (decode checked it): the bytes are the text, no second copy
        data = raw[3:] if used == "utf-8-sig" else raw
    else:
        data = text.encode("utf-8")
    del text, raw
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise DyadflowError("contains NUL characters: this is not a clean text export", file=file, line=line)
    rec = scan_records(data, delimiter)
    if not rec.lines.size or rec.empty.all():
        raise DyadflowError("the file is empty: no header line", file=file, line=1)
    first = int(np.argmax(~rec.empty))  # blank lines before the header are skipped
    header_line = int(rec.lines[first])
    header = parse_header(data[rec.starts[first] : rec.stops[first]].decode("utf-8"), delimiter, file, header_line)
    n_fields = len(header)
    body_lines = rec.lines[first + 1 :]
    names = [f"_c{i}" for i in range(n_fields)]
    # screened before the cells are read (memory: its arrays and the table are never held together)
    body = memoryview(data)[rec.starts[first + 1] :] if body_lines.size else b""  # (a view, not a copy)
    strip = not fast_path_enabled() or may_need_strip(body, delimiter)
    del body
    if body_lines.size:
        # (memory) a header on the first line without quotes is skipped by polars itself:
        # slicing the bytes after it would hold a second copy of the file during the read
        body_start = int(rec.starts[first + 1])
        plain = first == 0 and b'"' not in data[:body_start]
        try:
            frame = pl.read_csv(
                data if plain else data[body_start:],
                skip_rows=1 if plain else 0,
                has_header=False,
                new_columns=names,
                schema={n: pl.String for n in names},
                separator=delimiter,
                quote_char='"',
                truncate_ragged_lines=True,
                missing_columns="insert",
                raise_if_empty=False,
                empty_string_is_null=True,
            )
        except pl.exceptions.PolarsError as exc:
            line = _first_unbalanced_quote_line(data)
            why = "a quote is not closed" if line else str(exc).splitlines()[0]
            raise DyadflowError(f"the rows cannot be parsed as delimited text: {why}", file=file, line=line) from None
    else:
        frame = pl.DataFrame(schema={n: pl.String for n in names})
    if frame.height != body_lines.size:
        raise DyadflowError(
            f"found {body_lines.size} records but parsed {frame.height} rows: "
            "a quote is probably not closed, so the rest of the file reads as one cell",
            file=file,
            line=_first_unbalanced_quote_line(data),
        )
    frame = frame.rename(dict(zip(names, header, strict=False)))
    del data  # (memory) the file's bytes are not needed once the cells are read
    if not strip:
        # fast path: no cell starts or ends with whitespace, so only quoted empty cells ("")
        # need to become null (polars reads them as ""), in the columns that have one
        empty = frame.select((pl.all().str.len_bytes() == 0).any()).row(0)
        cleaned = [pl.col(c).replace("", None) for c, e in zip(header, empty, strict=True) if e]
    else:
        cleaned = [pl.all().str.strip_chars().replace("", None)]
    lengths = frame.get_column(header[0]).chunk_lengths() if header else []
    frame = frame.with_columns(cleaned).with_columns(
        _chunked("source_line", body_lines, pl.Int64, lengths),
        _chunked("source_fields", rec.fields[first + 1 :], pl.Int64, lengths),
        _chunked("_empty", rec.empty[first + 1 :], pl.Boolean, lengths),
    )
    is_blank = pl.col("_empty") | pl.all_horizontal(pl.col(header).is_null())
    blank_rows = frame.select(is_blank.sum()).item()
    if blank_rows or not fast_path_enabled():
        frame = frame.filter(~is_blank)
    frame = frame.drop("_empty")  # fast path: no blank row, no copy of every column
    return TextTable(
        frame=frame,
        header=header,
        header_line=header_line,
        n_fields=n_fields,
        blank_rows=int(blank_rows),
        encoding=used,
        warnings=warnings,
    )


def _chunked(name: str, values: np.ndarray, dtype: pl.DataType, lengths: list[int]) -> pl.Series:
    """``values`` as a Series cut into chunks of ``lengths`` (those of the table's columns):
    a column chunked otherwise makes polars copy every column of the table into one chunk
    at the next filter or drop (for a large export, gigabytes)."""
    if len(lengths) <= 1:
        return pl.Series(name, values, dtype=dtype)
    ends = np.cumsum(lengths)
    return pl.concat(
        [pl.Series(name, values[e - n : e], dtype=dtype) for e, n in zip(ends, lengths, strict=True)], rechunk=False
    )


def _first_unbalanced_quote_line(data: bytes) -> int | None:
    """The line of the quote that opens a cell and never closes."""
    a = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(a == QUOTE)
    if quotes.size % 2 == 0:
        return None
    last_open = int(quotes[-1])
    return data.count(b"\n", 0, last_open) + 1
