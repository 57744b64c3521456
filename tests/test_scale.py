"""Memory at scale (issue 18, third part): reading and writing large tables without extra
copies, with the same values and the same bytes whatever the in-memory layout."""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.core.contract import read_parquet
from dyadflow.ingest import text


def _chunked(df: pl.DataFrame, k: int) -> pl.DataFrame:
    n = df.height
    return pl.concat([df[i * n // k : (i + 1) * n // k] for i in range(k)], rechunk=False)


def test_parquet_bytes_do_not_depend_on_how_the_table_is_chunked(tmp_path):
    n = 300_000
    df = pl.DataFrame({"a": range(n), "s": [f"x{i % 97}" for i in range(n)]})
    parts = _chunked(df, 16)
    assert parts.n_chunks() == 16
    atomic.write_parquet(tmp_path / "one.parquet", df)
    atomic.write_parquet(tmp_path / "many.parquet", parts)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "many.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "many.parquet").equals(df)


def test_read_parquet_gives_one_chunk_per_column_and_the_same_table(tmp_path):
    df = pl.DataFrame(
        {
            "dyad_id": [f"D{i:03d}" for i in range(1000)],
            "session": pl.Series(range(1000), dtype=pl.Int32),
            "note": pl.Series([None] * 1000, dtype=pl.String),  # all empty: kept as a constant
        }
    )
    path = tmp_path / "t.parquet"
    df.write_parquet(path, row_group_size=100)
    assert pl.read_parquet(path).n_chunks() == 10
    got = read_parquet(path)
    assert got.n_chunks("all") == [1, 1, 1]
    assert got.schema == df.schema
    assert got.equals(df)
    assert read_parquet(path, ["session"]).get_column("session").to_list()[:3] == [0, 1, 2]


def test_read_parquet_of_an_empty_table_keeps_its_columns(tmp_path):
    path = tmp_path / "e.parquet"
    pl.DataFrame(schema={"dyad_id": pl.String, "session": pl.Int32}).write_parquet(path)
    got = read_parquet(path)
    assert got.height == 0
    assert got.schema == pl.Schema({"dyad_id": pl.String, "session": pl.Int32})


def test_delimiters_before_each_position_counted_block_by_block():
    # a , b , " c , d " \n 1 , 2   (delimiters at bytes 1, 3, 6 and 11)
    data = np.frombuffer(b'a,b,"c,d"\n1,2', dtype=np.uint8)
    positions = np.array([0, 2, 4, 11, 13])
    for block in (1, 2, 5, 1 << 24):
        (got,) = text._count_before(data, ord(","), positions, block=block)
        assert got.tolist() == [0, 1, 2, 3, 4]
    # the field count of each record uses these counts (a quoted delimiter is not one)
    rec = text.scan_records(b'a,b,"c,d"\n1,2', ",")
    assert rec.fields.tolist() == [3, 2]


def test_the_text_table_columns_share_one_chunk_layout(tmp_path):
    # polars reads even a small file in several chunks; a column added in one chunk made
    # the next filter or drop copy every column of the table into one chunk
    path = tmp_path / "q.csv"
    body = "".join(f"D{i:04d},{i % 20},patient\n" for i in range(2000))
    path.write_text("dyad_id,session,rater\n" + body, encoding="utf-8")
    table = text.read_text_table(path)
    lengths = {tuple(table.frame.get_column(c).chunk_lengths()) for c in table.frame.columns}
    assert len(lengths) == 1
    assert len(next(iter(lengths))) > 1
    assert table.frame.get_column("source_line").to_list()[:3] == [2, 3, 4]
    assert table.frame.get_column("source_line").to_list()[-1] == 2001
    assert table.frame.get_column("source_fields").unique().to_list() == [3]


def test_formula_cells_are_neutralised_and_a_table_without_them_is_not_copied():
    clean = pl.DataFrame({"a": ["1", "-3", None], "b": ["x", "y", "z"]})
    assert atomic.neutralise_formulas(clean) is clean
    mixed = pl.DataFrame({"a": ["=1+1", "-3", "@x"], "b": ["x", "y", "z"]})
    out = atomic.neutralise_formulas(mixed)
    assert out.get_column("a").to_list() == ["'=1+1", "-3", "'@x"]
    assert out.get_column("b").to_list() == ["x", "y", "z"]


def test_a_full_disk_while_polars_streams_a_csv_is_one_message(tmp_path, monkeypatch):
    # polars raises OSError without errno ("... (os error 28)") from its own writer
    from dyadflow.core.errors import DyadflowError

    def full(self, *args, **kwargs):
        raise OSError("No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    target = tmp_path / "scores.csv"
    try:
        atomic.write_csv(target, pl.DataFrame({"a": ["x"]}))
    except DyadflowError as exc:
        assert str(exc).startswith(f"{target}: cannot be written: no space left on the device.")
    else:
        raise AssertionError("no error")
    assert list(tmp_path.iterdir()) == []  # no half-written temporary file
