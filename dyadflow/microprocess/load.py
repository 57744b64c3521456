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

import logging
import os
import re
from pathlib import Path

import polars as pl

from dyadflow.core import atomic
from dyadflow.core.config import section
from dyadflow.core.errors import DyadflowError
from dyadflow.ingest.text import read_text_table
from dyadflow.microprocess import input_files

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


def _meta(file: str, path: str, rows: int, blank: int, fmt: str) -> dict:
    return {
        "source_file": file,
        "sha256": atomic.sha256_file(path),
        "rows_read": rows,
        "blank_rows": blank,
        "records_read": rows + blank,  # records after the header, blank ones included
        "format": fmt,
    }


def read_long(spec: dict) -> tuple[pl.DataFrame, dict]:
    path = spec["path"]
    table = read_text_table(path, encoding=spec["encoding"], delimiter=spec["delimiter"], file=path)
    names = {
        "dyad_id": "dyad_id",
        "session": "session",
        "rater": "rater",
        "second": spec["time_column"],
        "rating": spec["rating_column"],
    }
    cols = {c: _column(table, names[c], path) for c in COLUMNS}
    frame = table.frame.select(
        *[pl.col(cols[c]).alias(c) for c in COLUMNS],
        "source_line",
        "source_fields",
        pl.lit(table.n_fields, dtype=pl.Int64).alias("expected_fields"),
        pl.lit(path).alias("source_file"),
    )
    return frame, _meta(path, path, frame.height, table.blank_rows, "dial_long")


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
    frames: list[pl.DataFrame] = []
    metas: list[dict] = []
    read_by: dict[str, str] = {}  # normalised path -> the input that read it
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
        if spec["layout"] == "long":
            if again:
                continue
            f, m = read_long(spec)
            fs, ms = [f], [m]
        else:
            fs, ms = read_per_file(spec, skip=set(read_by))
        for m in ms:
            m["input"] = label
            read_by[os.path.normpath(m["source_file"])] = label
        frames.extend(f.with_columns(pl.lit(label).alias("input")) for f in fs)
        metas.extend(ms)
    schema = {c: pl.String for c in COLUMNS} | {
        "source_line": pl.Int64,
        "source_fields": pl.Int64,
        "expected_fields": pl.Int64,
        "source_file": pl.String,
        "input": pl.String,
    }
    raw = pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)
    return raw, metas
