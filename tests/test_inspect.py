"""``dyadflow inspect``: the detected facts, and a suggested mapping that reads the file."""

from __future__ import annotations

import yaml
from conftest import DEMO_DIR, REPO, demo_inputs

from dyadflow.ingest import read_input
from dyadflow.tools.cli import main

FORMATS = REPO / "tests" / "data" / "formats"


def inspect(capsys, path, *args) -> tuple[str, dict]:
    assert main(["inspect", str(path), *args]) == 0
    out = capsys.readouterr().out
    block = out.split("check every line):\n\n", 1)[1].split("\n\n", 1)[0]
    return out, yaml.safe_load(block)[0]


def test_inspect_the_demo_exports_suggests_what_the_demo_config_says(capsys):
    configured = {spec["format"]: spec for spec in demo_inputs()}
    out, spec = inspect(capsys, DEMO_DIR / "oq45_clinic.xlsx")
    assert "format:    xlsx" in out and "sheets:    Read me, OQ-45 (reading 'OQ-45', column names on row 3)" in out
    want = configured["xlsx"]
    for key in ("format", "sheet", "header_row", "items", "columns", "date_format", "excel_serial_dates"):
        assert spec[key] == want[key], key
    assert spec["constants"] == {"rater": "patient"} and spec["values"] == want["values"]
    assert "OQ-30 match no registry key" in out
    # the suggestion reads the file as the demo config does
    got, expected = read_input(spec)[0], read_input({**want, "path": spec["path"]})[0]
    assert got.select(sorted(got.columns)).equals(expected.select(sorted(expected.columns)))

    out, spec = inspect(capsys, DEMO_DIR / "wai_s_qualtrics.csv")
    assert "format:    qualtrics" in out and "encoding:  utf-8-sig" in out and "delimiter: ','" in out
    assert spec["items"] == "Q1_{n}" and spec["constants"] == {"rater": "therapist", "instrument": "wai_s"}
    assert (
        "IPAddress, RecipientLastName, RecipientFirstName, RecipientEmail, LocationLatitude, LocationLongitude" in out
    )
    assert read_input(spec)[1]["rows_read"] == 941

    out, spec = inspect(capsys, DEMO_DIR / "redcap_export.csv")
    want = configured["redcap"]
    assert "format:    redcap" in out
    assert spec["events"] == want["events"] and spec["columns"] == want["columns"]
    assert spec["instruments"] == want["instruments"]
    assert "Not read (not mapped): enrolment_complete" in out


def test_inspect_a_nordic_csv(capsys, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "Dyad;Patient;Terapeut;Session;Datum;F1;F2;F3;F4;F5;F6;F7;F8;F9;Anteckning;Telefon\n"
        "D1;P1;T1;1;15.01.2024;1;0;2;1;0;3;1;0;1,0;sömn;\n"
        "D1;P1;T1;2;22.01.2024;0;0;1;1;0;2;0;0;0;;\n".encode("cp1252")
    )
    out, spec = inspect(capsys, path)
    assert "encoding:  cp1252" in out and "delimiter: ';'" in out
    assert spec == {
        "path": str(path),
        "format": "canonical_csv",
        "encoding": "cp1252",
        "delimiter": ";",
        "items": "F{n}",
        "columns": {
            "dyad_id": "Dyad",
            "patient_id": "Patient",
            "therapist_id": "Terapeut",
            "session": "Session",
            "date": "Datum",
            "note": "Anteckning",
        },
        "constants": {"rater": "patient", "instrument": "phq_9"},
        "date_format": "%d.%m.%Y",
        "decimal_comma": True,
    }
    assert "Telefon" in out.split("direct identifiers")[1]
    frame, meta = read_input(spec)
    assert frame.select("date", "item_09", "note").rows() == [("2024-01-15", "1.0", "sömn"), ("2024-01-22", "0", None)]


def test_inspect_a_missing_file(capsys, tmp_path):
    assert main(["inspect", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err


def test_inspect_warns_about_rows_with_another_field_count(capsys, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Dyad,Patient,Therapist,Session,Date,Q1,Q2,Q3,Note\n"
        "D1,P1,T1,1,2024-01-08,4,4,3,ok\n"
        "D1,P1,T1,2,2024-01-15,4,4,3,slept, better\n"  # line 3: an unquoted comma, 10 fields
        "D1,P1,T1,3,2024-01-22,4,4,3\n"  # line 4: 8 fields
        "D1,P1,T1,4,2024-01-29,4,4,3,\n",
        encoding="utf-8",
    )
    out, spec = inspect(capsys, path)
    assert (
        "\nWarning: 2 row(s) have another number of fields than the header (line 1, 9 fields): lines 3 (10 fields), "
        "4 (8 fields). Their cells are shifted: they are left out of the examples and the suggestion, and ingest "
        "rejects them (field_count)\n"
    ) in out
    assert "  rows:      2 (and 2 with another number of fields, not shown)\n" in out
    assert "    Session    1, 4\n" in out and "    Note       ok\n" in out  # the shifted rows are not examples
    assert spec["items"] == "Q{n}"


def test_inspect_reports_what_ingest_rejects_in_a_workbook(capsys, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    old = wb.active
    old.title = "Old"
    old.sheet_state = "hidden"
    old.append(["dyad_id", "patient_id", "therapist_id", "session", "q1", "q2", "q3"])
    ws = wb.create_sheet("Data")
    ws.append(["dyad_id", "patient_id", "therapist_id", "session", "q1", "q2", None, "q3"])
    ws.merge_cells("F1:G1")
    ws.append(["D1", "P1", "T1", 1, 4, 4, None, 3])
    ws.append(["D1", "P1", "T1", 2, "#DIV/0!", 4, 2, 3])
    ws.append(["D1", "P1", "T1", 3, 4, "=1/0", None, "#N/A"])
    ws.append(["D1", "P1", "T1", 4, 4, 4, 5, 3])
    wb.save(tmp_path / "clinic.xlsx")
    out, spec = inspect(capsys, tmp_path / "clinic.xlsx")
    assert spec["sheet"] == "Data"
    warnings = [line for line in out.splitlines() if line.startswith("Warning: ") and "direct identifiers" not in line]
    assert warnings == [
        "Warning: hidden sheet 'Old' not read: reading 'Data', the first visible sheet that holds a table",
        "Warning: 2 cell(s) hold an Excel error: E3 (#DIV/0!), H4 (#N/A); ingest rejects their rows (cell_error) where the column is mapped",
        "Warning: 1 cell(s) hold a formula with no saved result: F4 (=1/0); ingest rejects their rows (cell_error) where the column is mapped",
        "Warning: column G has values but no name in the header (row 1; rows 3, 5): a header cell merged over two columns? "
        "Ingest rejects those rows (header_unnamed)",
    ]
