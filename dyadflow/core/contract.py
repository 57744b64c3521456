"""Table contracts: one pandera ``DataFrameModel`` per stage table.

Each table a stage writes has one model, owned by the module that writes it (the scores
in :mod:`dyadflow.score.contract`, the stats tables in :mod:`dyadflow.stats.contract`,
the selection in :mod:`dyadflow.select.common`, consent in :mod:`dyadflow.validate.consent`,
the accounting tables in :mod:`dyadflow.core.accounting`). The writer checks its table
against the model (:func:`dyadflow.core.atomic.write_table`); every reader reads with the
model (:func:`read_table`), so an empty or missing file still has the contract's columns
and types, and a column an older results folder lacks is added as null (pandera's
``add_missing_columns`` and ``coerce``). Column names and types are written only here.

A model lists the columns every writer writes; a table may carry more (``sub_*``
subscales): extra columns are kept, after the contract ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from dyadflow.core.errors import DyadflowError


def nullable():
    """A contract column: present, of its type, and allowed to be empty."""
    return pa.Field(nullable=True)


class Contract(pa.DataFrameModel):
    """Base of every table contract: cast to the declared types, add missing columns as null,
    keep extra columns."""

    class Config:
        coerce = True
        add_missing_columns = True
        strict = False


def dtypes(model: type[Contract]) -> dict[str, pl.DataType]:
    """The contract's columns and polars types, in contract order."""
    return {name: col.dtype.type for name, col in model.to_schema().columns.items()}


def columns(model: type[Contract]) -> list[str]:
    return list(model.to_schema().columns)


def empty(model: type[Contract]) -> pl.DataFrame:
    return pl.DataFrame(schema=dtypes(model))


def conform(frame: pl.DataFrame, model: type[Contract], *, name: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """``frame`` checked against ``model``: contract columns first (missing ones added as null,
    all cast to their types), then any extra columns. A table that cannot be brought to the
    contract is a :class:`DyadflowError` naming the table and the column."""
    try:
        return model.validate(frame)
    except (SchemaError, SchemaErrors) as exc:
        column = getattr(getattr(exc, "schema", None), "name", None)
        what = str(name) if name else model.__name__
        raise DyadflowError(
            f"does not match its contract {model.__name__}: {exc}".splitlines()[0], file=what, column=column
        ) from None


def read_parquet(path: str | os.PathLike[str], columns: list[str] | None = None) -> pl.DataFrame:
    """The Parquet file at ``path`` (only ``columns``, when given), one chunk per column.

    Read a column at a time and each made contiguous before the next is read: a whole-file
    read gives one chunk per row group, and making those contiguous later (``rechunk``)
    holds two copies of the whole table at once. A text column costs 16 bytes a row in
    polars whatever its content (a string view), so at 100,000 dyads one copy of the
    ingested table is ~3 GB.
    """
    names = columns if columns is not None else list(pl.read_parquet_schema(path))
    if not names:
        return pl.read_parquet(path, columns=[])
    return pl.DataFrame([_compact(pl.read_parquet(path, columns=[c]).to_series()) for c in names])


def _compact(column: pl.Series) -> pl.Series:
    """``column`` in one chunk; an all-empty column as a constant (no 16 bytes a row)."""
    if column.len() and column.null_count() == column.len():
        return column.new_from_index(0, column.len())
    return column.rechunk()


def read_table(path: str | os.PathLike[str] | None, model: type[Contract]) -> pl.DataFrame:
    """The table at ``path`` read with ``model``; an empty contract table when there is no file.

    A CSV is read with the contract's types for its columns (an empty CSV keeps them); other
    columns are inferred.
    """
    p = Path(path) if path else None
    if p is None or not p.exists():
        return empty(model)
    if p.suffix == ".parquet":
        frame = read_parquet(p)
    else:
        header = pl.read_csv(p, n_rows=0).columns
        types = dtypes(model)
        frame = pl.read_csv(
            p,
            infer_schema_length=10000,
            try_parse_dates=False,
            schema_overrides={c: types[c] for c in header if c in types},
        )
    return conform(frame, model, name=p)
