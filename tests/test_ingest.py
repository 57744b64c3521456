"""Reading text exports: exact line numbers, ragged rows, and file-level errors."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import HEADER

from dyadflow.core.errors import DyadflowError
from dyadflow.ingest import read_input
from dyadflow.ingest.text import read_text_table, scan_records


def read(path, **spec):
    return read_input({"path": str(path), "format": "canonical_csv", **spec})


def test_scan_records_counts_quoted_newlines_and_delimiters():
    data = b'a,b\n1,"x\ny,z"\n\n2,3\r\n4'
    rec = scan_records(data, ",")
    assert rec.lines.tolist() == [1, 2, 4, 5, 6]
    assert rec.fields.tolist() == [2, 2, 1, 2, 1]
    assert rec.empty.tolist() == [False, False, True, False, False]


def test_source_lines_follow_the_editor(tmp_path):
    text = (
        ",".join(HEADER + ["item_01", "note"]) + "\n"
        'D1,P1,T1,1,2024-01-08,patient,wai_sr,4,"two\nlines"\n'
        "\n"
        "D1,P1,T1,2,2024-01-15,patient,wai_sr,5,\n"
        ",,,,,,,,\n"
        'D1,P1,T1,3,2024-01-22,patient,wai_sr,3,"say ""hi"""\n'
    )
    path = tmp_path / "q.csv"
    path.write_text(text, encoding="utf-8")
    frame, meta = read(path)
    assert frame.get_column("source_line").to_list() == [2, 5, 7]
    assert frame.get_column("note").to_list() == ["two\nlines", None, 'say "hi"']
    assert meta["rows_read"] == 3 and meta["blank_rows"] == 2


def test_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(
        "\ufeff".encode()
        + b"DYAD_ID,patient_id,therapist_id,session,date,rater,instrument,Item_1\r\nD1,P1,T1,1,2024-01-08,patient,wai_sr,4\r\n"
    )
    frame, meta = read(path)
    assert frame.select("dyad_id", "item_01", "source_line").row(0) == ("D1", "4", 2)
    assert meta["encoding"] == "utf-8-sig"


def test_ragged_rows_keep_their_field_count(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        ",".join(HEADER + ["item_01"])
        + "\nD1,P1,T1,1,2024-01-08,patient,wai_sr\nD1,P1,T1,2,2024-01-15,patient,wai_sr,4,9\n"
    )
    frame, _ = read(path)
    assert frame.select("source_fields", "expected_fields").rows() == [(7, 8), (9, 8)]


def test_unmapped_columns_are_dropped_and_listed(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(",".join(HEADER + ["item_01", "clinic"]) + "\nD1,P1,T1,1,2024-01-08,patient,wai_sr,4,north\n")
    frame, meta = read(path)
    assert "clinic" not in frame.columns and meta["dropped_columns"] == ["clinic"]


@pytest.mark.parametrize(
    "content, line, column, words",
    [
        (b"", 1, None, "the file is empty"),
        (b"\n\n", 1, None, "the file is empty"),
        (
            ",".join(HEADER[:3] + HEADER[4:] + ["item_01"]).encode() + b"\n",
            1,
            "session",
            "required column missing: session",
        ),
        (",".join(HEADER + ["item_01", "Session"]).encode() + b"\n", 1, "Session", "appears twice"),
        (",".join(HEADER).encode() + b"\nD1\n", 1, None, "no item columns"),
        (
            ",".join(HEADER + ["item_01"]).encode() + b"\nD1,P1,T1,1,2024-01-08,patient,wai_sr,\x004\n",
            2,
            None,
            "NUL bytes",
        ),
    ],
)
def test_file_level_problems_name_file_line_and_column(tmp_path, content, line, column, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DyadflowError) as err:
        read(path)
    assert err.value.file == str(path) and err.value.line == line and err.value.column == column
    assert words in str(err.value)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    text = (
        ",".join(HEADER + ["item_01", "note"])
        + "\nD1,P1,T1,1,2024-01-08,patient,wai_sr,4,ok\nD1,P1,T1,2,2024-01-15,patient,wai_sr,4,sömn\n"
    )
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DyadflowError) as err:
        read(path)
    assert err.value.line == 3 and "cannot be decoded as utf-8" in str(err.value)
    frame, _ = read(path, encoding="latin-1")
    assert frame.get_column("note").to_list() == ["ok", "sömn"]


def test_unbalanced_quote_is_a_file_error(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        ",".join(HEADER + ["item_01", "note"])
        + '\nD1,P1,T1,1,2024-01-08,patient,wai_sr,4,"open\nD1,P1,T1,2,2024-01-15,patient,wai_sr,4,x\n'
    )
    with pytest.raises(DyadflowError) as err:
        read(path)
    assert err.value.line == 2 and "quote" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DyadflowError, match="input file not found"):
        read(tmp_path / "nope.csv")


def test_cells_are_strings_stripped_and_empty_is_null(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("a,b\n  x  ,   \n")
    table = read_text_table(path)
    assert table.frame.select("a", "b").rows() == [("x", None)]
    assert table.frame.schema["a"] == pl.String
