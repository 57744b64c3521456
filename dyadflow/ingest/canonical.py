"""The canonical questionnaire table (``format: canonical_csv``).

One row per completed questionnaire with the columns ``dyad_id, patient_id,
therapist_id, session, date, rater, instrument, item_01 … item_NN`` and optional
``arm, note, consent_share_text``. Column names are matched case-insensitively;
``item_1`` is read as ``item_01``.
"""

from __future__ import annotations

import re

import polars as pl

from dyadflow.errors import DyadflowError
from dyadflow.ingest.text import TextTable, read_text_table
from dyadflow.registry import item_column

REQUIRED = ("dyad_id", "patient_id", "therapist_id", "session", "date", "rater", "instrument")
OPTIONAL = ("arm", "note", "consent_share_text")
ITEM_RE = re.compile(r"^item_?0*(\d+)$", re.IGNORECASE)


def canonical_name(name: str) -> str | None:
    """The canonical column a header name stands for, or None if it is not one."""
    low = name.strip().lower()
    if low in REQUIRED or low in OPTIONAL:
        return low
    m = ITEM_RE.match(low)
    if m and int(m.group(1)) >= 1:
        return item_column(int(m.group(1)))
    return None


def map_columns(table: TextTable, file: str) -> tuple[pl.DataFrame, list[str]]:
    """Rename to canonical names; return the frame and the dropped column names."""
    mapping: dict[str, str] = {}
    dropped: list[str] = []
    for name in table.header:
        canon = canonical_name(name)
        if canon is None:
            dropped.append(name)
            continue
        if canon in mapping.values():
            other = next(k for k, v in mapping.items() if v == canon)
            raise DyadflowError(
                f"columns '{other}' and '{name}' both mean '{canon}'",
                file=file,
                line=table.header_line,
                column=name,
            )
        mapping[name] = canon
    missing = [c for c in REQUIRED if c not in mapping.values()]
    if missing:
        raise DyadflowError(
            f"required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)} "
            f"(the canonical table needs {', '.join(REQUIRED)}, item_01 … item_NN)",
            file=file,
            line=table.header_line,
            column=missing[0],
        )
    if not any(c.startswith("item_") for c in mapping.values()):
        raise DyadflowError(
            "no item columns (item_01 … item_NN) in the header", file=file, line=table.header_line
        )
    frame = table.frame.select([pl.col(k).alias(v) for k, v in mapping.items()] + ["source_line", "source_fields"])
    return frame, dropped


def read(path: str, *, file: str, encoding: str = "utf-8", delimiter: str = ",") -> tuple[pl.DataFrame, dict]:
    table = read_text_table(path, encoding=encoding, delimiter=delimiter, file=file)
    frame, dropped = map_columns(table, file)
    frame = frame.with_columns(pl.lit(table.n_fields, dtype=pl.Int64).alias("expected_fields"))
    meta = {
        "encoding": table.encoding,
        "delimiter": delimiter,
        "header_line": table.header_line,
        "blank_rows": table.blank_rows,
        "columns": table.header,
        "dropped_columns": dropped,
    }
    return frame, meta
