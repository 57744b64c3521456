"""Atomic, deterministic writing of outputs.

Every output is written to a temporary file in the same directory and renamed into
place, so a killed job never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from dyadflow.core import contract
from dyadflow.core.errors import DyadflowError

# Text cells starting with one of these are formulas to a spreadsheet program.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# ...except a plain number such as -3 or +1.5, which a spreadsheet reads as that number.
PLAIN_NUMBER = r"^[+-]?[0-9]+([.,][0-9]+)?$"


# Errors of the disk, not of dyadflow: they get a plain message instead of a traceback.
DISK_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
}


def _errno(exc: OSError) -> int | None:
    """The error number; polars' writers raise an OSError without one, its message ending
    in "(os error 28)"."""
    if exc.errno is not None:
        return exc.errno
    found = re.search(r"\(os error (\d+)\)", str(exc))
    return int(found.group(1)) if found else None


def _disk_error(exc: OSError, target: Path) -> DyadflowError:
    why = DISK_ERRORS[_errno(exc)]
    return DyadflowError(
        f"cannot be written: {why}. Nothing was left half-written; free some space (or move "
        "'results/' to a larger disk) and run again: finished outputs are kept",
        file=str(target),
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    On any failure the temporary file is removed, so a half-written output never exists
    under its real name. A full disk becomes a :class:`DyadflowError` naming the file.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        if _errno(exc) in DISK_ERRORS:
            raise _disk_error(exc, target) from None
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and _errno(exc) in DISK_ERRORS:
            raise _disk_error(exc, target) from None
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_bytes_if_changed(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly these bytes. Returns True if written."""
    target = Path(path)
    if target.exists() and target.stat().st_size == len(data) and target.read_bytes() == data:
        return False
    write_bytes(target, data)
    return True


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes(path, json_bytes(obj))


# Row groups of a fixed size: polars otherwise cuts them where the table's chunks happen to
# end in memory (how a file was read, how many threads), so the same table gave other bytes.
PARQUET_ROW_GROUP = 262_144


def write_parquet(path: str | os.PathLike[str], df: pl.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True, row_group_size=PARQUET_ROW_GROUP)


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Make text cells inert in spreadsheet programs (OWASP CSV injection advice).

    A text cell that starts with ``= + - @``, a tab or a carriage return gets a leading
    apostrophe, unless it is a plain number (``-3``). Only string columns are touched.
    """
    formula = {
        name: pl.col(name).str.contains(r"^[=+\-@\t\r]") & ~pl.col(name).str.contains(PLAIN_NUMBER)
        for name, dtype in df.schema.items()
        if dtype == pl.String
    }
    if not formula or not df.height:
        return df
    # only the columns with such a cell are rewritten (a text column is 16 bytes a row)
    found = df.select([f.any().alias(name) for name, f in formula.items()]).row(0)
    exprs = [
        pl.when(f).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for (name, f), hit in zip(formula.items(), found, strict=True)
        if hit
    ]
    return df.with_columns(exprs) if exprs else df


def _write_csv_to(df: pl.DataFrame, target) -> None:
    """The one CSV format of every output: header, LF line ends, empty cells for null,
    formula-like text neutralised."""
    neutralise_formulas(df).write_csv(target, include_header=True, line_terminator="\n", null_value="")


def csv_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    _write_csv_to(df, buf)
    return buf.getvalue()


def write_csv(path: str | os.PathLike[str], df: pl.DataFrame) -> None:
    """``df`` as CSV (the bytes of :func:`csv_bytes`), written straight to the temporary
    file: the text of a large table is never held whole in memory."""
    with atomic_path(path) as tmp:
        _write_csv_to(df, tmp)


def write_table(
    path: str | os.PathLike[str], df: pl.DataFrame, model: type[contract.Contract], kind: str | None = None
) -> pl.DataFrame:
    """Check ``df`` against its contract ``model``, then write it atomically (Parquet or CSV:
    ``kind``: "parquet" or "csv"; by default from the file's suffix). The writer's column order is kept; a contract column it lacks is added
    (null) at the end. Returns the table as written."""
    checked = contract.conform(df, model, name=path)
    checked = checked.select(*df.columns, *(c for c in checked.columns if c not in df.columns))
    if (kind or ("parquet" if str(path).endswith(".parquet") else "csv")) == "parquet":
        write_parquet(path, checked)
    else:
        write_csv(path, checked)
    return checked


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
