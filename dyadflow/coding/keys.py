"""The frozen blinding keys handed to coders, and how the current keys differ from them.

A frozen key is the copy of ``results/selection/<name>_key.csv`` given to whoever
prepared the recordings for the coders (``coding.selections[].key``). Coded rows are
resolved through it alone. When the selection has been rerun since (new data, another
seed), a code may now stand for another session: each such code is reported in
``results/coding/warnings.csv`` (by code only, never with its dyad), and the coded rows
keep the session the coders actually saw.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.ingest.text import read_text_table

KEY_COLUMNS = ("code", "dyad_id", "session")
WARNING_COLUMNS = {"selection": pl.String, "code": pl.String, "warning": pl.String}


def read_key(path: str, selection: str) -> pl.DataFrame:
    """A key file as (selection, code, dyad_id, session Int32, group); a missing column,
    an empty cell or a code given twice stops with the file, line and column."""
    table = read_text_table(path, file=path)
    lookup = {h.strip().lower(): h for h in table.header}
    for col in KEY_COLUMNS:
        if col not in lookup:
            raise DyadflowError(
                f"the blinding key has no column '{col}' (columns: {', '.join(table.header)}): "
                f"give the copy of results/selection/{selection}_key.csv that was handed to the coders",
                file=path,
                line=table.header_line,
                column=col,
            )
    frame = table.frame.select(
        pl.lit(selection).alias("selection"),
        *[pl.col(lookup[c]).alias(c) for c in KEY_COLUMNS],
        (pl.col(lookup["group"]) if "group" in lookup else pl.lit(None, dtype=pl.String)).alias("group"),
        "source_line",
    )
    for col in KEY_COLUMNS:
        empty = frame.filter(pl.col(col).is_null())
        if empty.height:
            raise DyadflowError(
                f"the blinding key has an empty '{col}' cell",
                file=path,
                line=empty.item(0, "source_line"),
                column=lookup[col],
            )
    bad = frame.filter(~pl.col("session").str.contains(r"^[0-9]{1,4}$"))
    if bad.height:
        raise DyadflowError(
            f"'{bad.item(0, 'session')}' is not a session number",
            file=path,
            line=bad.item(0, "source_line"),
            column=lookup["session"],
        )
    dup = frame.filter(pl.col("code").is_duplicated()).sort("source_line")
    if dup.height:
        code = dup.item(0, "code")
        lines = dup.filter(pl.col("code") == code).get_column("source_line").to_list()
        raise DyadflowError(
            f"code '{code}' appears twice in the blinding key (lines {', '.join(map(str, lines))})",
            file=path,
            line=lines[1],
            column=lookup["code"],
        )
    return frame.with_columns(pl.col("session").cast(pl.Int32)).drop("source_line")


def empty_key() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "selection": pl.String,
            "code": pl.String,
            "dyad_id": pl.String,
            "session": pl.Int32,
            "group": pl.String,
        }
    )


def key_changes(
    frozen: pl.DataFrame, current: pl.DataFrame, selection: str, frozen_path: str, current_path: str
) -> pl.DataFrame:
    """One warning per code whose entry in the current key differs from the frozen key's
    (another session, or no longer in the key), and per code the current key has that the
    frozen one lacks. By code only: nothing about dyads or groups."""
    both = frozen.select("code", pl.struct("dyad_id", "session").alias("_f")).join(
        current.select("code", pl.struct("dyad_id", "session").alias("_c")), on="code", how="full", coalesce=True
    )
    where = f"(frozen key {frozen_path}, current key {current_path})"
    msg = (
        pl.when(pl.col("_c").is_null())
        .then(
            pl.lit(
                f"the code is no longer in the current key: a rerun of the selection dropped its session; the coded rows keep the session of the frozen key {where}"
            )
        )
        .when(pl.col("_f").is_null())
        .then(
            pl.lit(
                f"the current key has this code but the frozen key does not: it was not handed to the coders {where}"
            )
        )
        .when(pl.col("_f") != pl.col("_c"))
        .then(
            pl.lit(
                f"the code now stands for another session: a rerun of the selection re-lettered the codes; the coded rows keep the session of the frozen key, never remapped {where}"
            )
        )
    )
    return (
        both.with_columns(msg.alias("warning"))
        .filter(pl.col("warning").is_not_null())
        .sort(pl.col("code").str.len_chars(), "code")
        .select(pl.lit(selection).alias("selection"), "code", "warning")
        .cast(WARNING_COLUMNS)
    )


def frozen_keys(selections: list[dict], current: dict[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(all frozen keys, the warnings about codes changed since) of the configured selections;
    ``current``: selection name → the path of its current key (results/selection/<name>_key.csv)."""
    keys = [empty_key()]
    warnings = [pl.DataFrame(schema=WARNING_COLUMNS)]
    for spec in selections:
        frozen = read_key(spec["key"], spec["name"])
        keys.append(frozen)
        current_path = (current or {}).get(spec["name"])
        if current_path:
            warnings.append(
                key_changes(frozen, read_key(current_path, spec["name"]), spec["name"], spec["key"], current_path)
            )
    return pl.concat(keys), pl.concat(warnings)
