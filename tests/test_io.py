from __future__ import annotations

import polars as pl
import pytest

from dyadflow.core import atomic


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    atomic.write_text(target, "whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_write_if_changed_keeps_the_file_untouched(tmp_path):
    target = tmp_path / "x.bin"
    assert atomic.write_bytes_if_changed(target, b"abc") is True
    before = target.stat().st_mtime_ns
    assert atomic.write_bytes_if_changed(target, b"abc") is False
    assert target.stat().st_mtime_ns == before
    assert atomic.write_bytes_if_changed(target, b"abd") is True


def test_csv_neutralises_formulas():
    df = pl.DataFrame(
        {
            "note": [
                '=HYPERLINK("http://x")',
                "+1",
                "-2",
                "@SUM(A1)",
                "fine",
                None,
                "-2+3+cmd|' /C calc'!A0",
                "\tx",
                "-0,5",
            ],
            "n": [-1, 2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    text = atomic.csv_bytes(df).decode()
    assert text.splitlines() == [
        "note,n",
        '"\'=HYPERLINK(""http://x"")",-1',
        "+1,2",  # a plain number is not a formula: left as it is
        "-2,3",
        "'@SUM(A1),4",
        "fine,5",
        ",6",
        "'-2+3+cmd|' /C calc'!A0,7",
        "'\tx,8",
        '"-0,5",9',
    ]
