"""Real export formats mapped onto the canonical table: REDCap, Qualtrics, xlsx, SPSS .sav
and European CSV quirks. Each test reads a tiny hand-written (or in-test generated)
export and asserts the exact canonical rows and that the accounting balances."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from conftest import REPO

from dyadflow.core.errors import DyadflowError
from dyadflow.ingest import read_input
from dyadflow.ingest.mapping import item_columns_by_pattern, normalise_dates, pattern_regex
from dyadflow.ingest.redcap import parse_choices
from dyadflow.validate.rules import validate_frames

FORMATS = REPO / "tests" / "data" / "formats"
ROW = ("source_line", "dyad_id", "session", "date", "instrument", "item_01", "item_02", "ingest_rule")


def rows(frame: pl.DataFrame, columns=ROW) -> list[tuple]:
    return frame.select(columns).rows()


def balanced(frame, meta, registry) -> tuple[int, int, int]:
    acc = validate_frames([frame], [meta], registry).accounting
    read, accepted, rejected = acc.select("rows_read", "rows_accepted", "rows_rejected").row(0)
    assert read == accepted + rejected == frame.height
    return read, accepted, rejected


# --- mapping helpers --------------------------------------------------------------------


def test_item_patterns():
    assert pattern_regex("wai_sr_{n:02d}").pattern == r"^wai_sr_(\d{2,})$"
    header = ["wai_sr_01", "wai_sr_12", "wai_sr_1", "WAI_SR_02", "wai_sr_complete", "OQ7"]
    assert item_columns_by_pattern(header, "wai_sr_{n:02d}") == {
        "wai_sr_01": "item_01",
        "wai_sr_12": "item_12",
        "WAI_SR_02": "item_02",
    }
    assert item_columns_by_pattern(header, "OQ{n}") == {"OQ7": "item_07"}
    with pytest.raises(DyadflowError, match="has no"):
        pattern_regex("wai_sr_")


def test_dates_from_formats_and_excel_serials():
    s = pl.DataFrame({"d": ["2024-01-08", "08.01.2024", "8/1/2024", "45299", "45299.0", "31.02.2024", "soon", None]})
    out = s.select(normalise_dates(pl.col("d"), ["%d.%m.%Y", "%d/%m/%Y"], excel_serial=True)).to_series().to_list()
    assert out == ["2024-01-08", "2024-01-08", "2024-01-08", "2024-01-08", "2024-01-08", "31.02.2024", "soon", None]
    plain = s.select(normalise_dates(pl.col("d"), [], excel_serial=False)).to_series().to_list()
    assert plain == s.get_column("d").to_list()


def test_redcap_choices():
    assert parse_choices("1, Seldom | 2, Sometimes|3,Fairly often, at times") == {
        "seldom": "1",
        "sometimes": "2",
        "fairly often, at times": "3",
    }


# --- REDCap -----------------------------------------------------------------------------

REDCAP = {
    "path": str(FORMATS / "redcap_raw.csv"),
    "format": "redcap",
    "columns": {"patient_id": "pat", "therapist_id": "ther", "arm": "arm"},
    "events": {"map": {"baseline_arm_1": 0}, "pattern": "session_{n}_arm_1"},
    "instruments": {
        "bdi_ii": {"form": "bdi", "items": "bdi_{n:02d}", "columns": {"date": "bdi_date"}, "rater": "patient"},
        "wai_sr": {"items": "wai_sr_{n:02d}", "columns": {"date": "wai_date", "note": "wai_note"}, "rater": "patient"},
        "phq_9": {
            "form": "phq",
            "items": "phq_{n}",
            "columns": {"date": "phq_date"},
            "rater": "patient",
            "session": "repeat_instance",
        },
    },
}


def test_redcap_raw_export(registry):
    frame, meta = read_input(REDCAP)
    assert rows(frame) == [
        (2, "D1", "0", "2024-01-08", "bdi_ii", "1", "2", None),
        (3, "D1", "1", "2024-01-15", "bdi_ii", "0", "1", None),  # one record, two forms:
        (3, "D1", "1", "2024-01-15", "wai_sr", "4", "5", None),  # two questionnaires
        (5, "D1", "2", "2024-01-22", "bdi_ii", "3", "3", "redcap_incomplete"),  # bdi_complete = 1
        (5, "D1", "2", "2024-01-22", "wai_sr", "3", None, None),
        (6, "D1", "1", "2024-01-15", "phq_9", "2", "1", None),  # repeating form: session = instance
        (7, "D1", "2", "2024-01-22", "phq_9", "3", None, None),
        (8, "D1", "follow_up_arm_1", "2024-04-01", "bdi_ii", "1", "1", None),  # an event no rule maps
    ]
    # record-level fields are entered once (baseline) and hold for the whole record
    assert set(frame.select("patient_id", "therapist_id", "arm", "rater").rows()) == {("P1", "T1", "CBT", "patient")}
    assert frame.get_column("note").to_list()[2] == "Vi pratade om sömnen,\noch det kändes lättare."
    assert (meta["records_read"], meta["rows_read"], meta["forms_empty"]) == (6, 8, 1)
    assert meta["dropped_columns"] == ["full_name"] and [w["column"] for w in meta["warnings"]] == ["full_name"]
    res = validate_frames([frame], [meta], registry)
    assert res.rejections.select("source_line", "column", "value", "rule", "source_column").rows() == [
        (5, "bdi_complete", "1", "redcap_incomplete", "bdi_complete"),
        (8, "session", "follow_up_arm_1", "session_format", "redcap_event_name"),
    ]
    assert res.rejections.get_column("message")[0] == (
        "form bdi is not marked complete (bdi_complete = 1, Unverified); only forms marked 2 are scored (the input's 'complete')"
    )
    assert balanced(frame, meta, registry) == (8, 6, 2)


def test_redcap_label_export_with_data_dictionary(registry):
    spec = {
        "path": str(FORMATS / "redcap_labels.csv"),
        "format": "redcap",
        "dictionary": str(FORMATS / "redcap_dictionary.csv"),
        "constants": {"patient_id": "P2", "therapist_id": "T2"},
        "events": {"pattern": "Session {n} (Arm 1: Main)"},
        "complete": [1, 2],
        "instruments": {"wai_sr": {"items": "wai_sr_{n:02d}", "columns": {"date": "wai_date"}, "rater": "patient"}},
    }
    frame, meta = read_input(spec)
    # the labels, English and Swedish, go back to the codes of the project's dictionary
    assert rows(frame) == [
        (2, "D2", "1", "2024-02-05", "wai_sr", "4", "5", None),
        (3, "D2", "2", "2024-02-12", "wai_sr", "1", "2", "redcap_incomplete"),
        (4, "D2", "3", "2024-02-19", "wai_sr", "3", "4", None),  # Unverified, scored with complete: [1, 2]
    ]
    assert frame.get_column("ingest_message")[1] == (
        "form wai_sr is not marked complete (wai_sr_complete = Incomplete); only forms marked 1 or 2 are scored (the input's 'complete')"
    )
    assert balanced(frame, meta, registry) == (3, 2, 1)


def test_redcap_without_dictionary_passes_labels_to_the_registry(registry):
    spec = {
        "path": str(FORMATS / "redcap_labels.csv"),
        "format": "redcap",
        "constants": {"patient_id": "P2", "therapist_id": "T2"},
        "events": {"pattern": "Session {n} (Arm 1: Main)"},
        "instruments": {"wai_sr": {"items": "wai_sr_{n:02d}", "columns": {"date": "wai_date"}, "rater": "patient"}},
    }
    frame, meta = read_input(spec)
    res = validate_frames([frame], [meta], registry)
    # "Very often" is a WAI-SR label in the registry; the Swedish "Alltid" is not
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (2, "item_02", "Alltid", "item_value"),
        (3, "wai_sr_complete", "Incomplete", "redcap_incomplete"),
        (4, "wai_sr_complete", "Unverified", "redcap_incomplete"),
    ]


def test_redcap_form_without_complete_column_names_the_key(tmp_path):
    spec = {
        **REDCAP,
        "instruments": {"wai_s": {"items": "wai_s_{n}", "rater": "therapist", "columns": {"date": "wai_date"}}},
    }
    with pytest.raises(DyadflowError) as err:
        read_input(spec)
    e = err.value
    assert (e.file, e.line, e.column, e.key) == (REDCAP["path"], 1, "wai_s_complete", "instruments.wai_s.form")


# --- Qualtrics --------------------------------------------------------------------------

QUALTRICS = {
    "path": str(FORMATS / "qualtrics.csv"),
    "format": "qualtrics",
    "columns": {"dyad_id": "dyad", "patient_id": "pid", "therapist_id": "tid"},
    "items": "Q1_{n}",
    "constants": {"rater": "therapist", "instrument": "wai_s"},
    "min_progress": 90,
}


def test_qualtrics_export(registry):
    frame, meta = read_input(QUALTRICS)
    # three header rows (the question text spans two lines), so the data start on line 6
    assert rows(frame) == [
        (6, "D1", "1", "2024-01-15 17:05:01", "wai_s", "Very often", "5", None),
        (7, "D1", "1", "2024-01-10 09:01:01", "wai_s", "Always", "Always", "qualtrics_test_response"),
        (8, "D1", "1", "2024-01-10 09:11:01", "wai_s", "4", "4", "qualtrics_test_response"),  # Status 1 = preview
        (9, "D1", "2", "2024-01-29 17:01:00", "wai_s", "Often", None, "qualtrics_incomplete"),
        (10, "D1", "3", "2024-02-05 17:04:00", "wai_s", "Sometimes", "6", None),  # Progress 95 ≥ min_progress
        (11, "D9", "1", "2024-01-11 10:01:01", "wai_s", "1", "1", "qualtrics_test_response"),
    ]
    assert frame.get_column("ingest_message").to_list()[1:4] == [
        "a survey preview (Status 'Survey Preview', DistributionChannel 'preview'), not a response",
        "a survey preview (Status '1', DistributionChannel 'anonymous'), not a response",
        "the response is not finished (Finished 'False', Progress 60 %)",
    ]
    assert meta["encoding"] == "utf-8-sig" and meta["header_rows"] == 3
    assert meta["dropped_columns"] == ["StartDate", "EndDate", "ResponseId", "RecipientEmail"]
    assert [w["column"] for w in meta["warnings"]] == ["RecipientEmail"]
    res = validate_frames([frame], [meta], registry)
    accepted = res.accepted.select("source_line", "session", "date", "item_01", "item_02").rows()
    # choice text goes through the instrument's value labels (WAI-S: Very often = 6, Sometimes = 4)
    assert accepted == [(6, 1, dt.date(2024, 1, 15), 6, 5), (10, 3, dt.date(2024, 2, 5), 4, 6)]
    assert dict(res.rejections.group_by("rule").len().rows()) == {
        "qualtrics_test_response": 3,
        "qualtrics_incomplete": 1,
    }
    assert balanced(frame, meta, registry) == (6, 2, 4)


def test_qualtrics_legacy_two_header_rows_and_a_missing_importid_row(tmp_path):
    lines = (FORMATS / "qualtrics.csv").read_text(encoding="utf-8-sig").split("\n")
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("\n".join(lines[:4] + lines[5:]), encoding="utf-8")  # without the ImportId row (line 5)
    with pytest.raises(DyadflowError) as err:
        read_input({**QUALTRICS, "path": str(legacy)})
    assert err.value.line == 5 and "header_rows: 2" in str(err.value)
    frame, _ = read_input({**QUALTRICS, "path": str(legacy), "header_rows": 2})
    assert frame.get_column("source_line").to_list() == [5, 6, 7, 8, 9, 10]


# --- Excel ------------------------------------------------------------------------------


def clinic_workbook(path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Info"
    wb.active.append(["read me first"])
    ws = wb.create_sheet("Data")
    ws.append(["Clinic log (synthetic)"])
    ws.append([])
    ws.append(["Dyad", "Patient", "Therapist", "Session", "Date", "OQ1", "OQ2", "Kommentar", "Telefon"])
    ws.append(["D1", "P1", "T1", 0, dt.date(2024, 1, 8), 3, 2.0, "sömn ø", None])  # row 4: a date cell
    ws.append([])  # row 5: blank, skipped and counted
    ws.append(["D1", "P1", "T1", 4, "05/02/2024", 1, None, None, None])  # row 6: text dd/mm/yyyy
    ws.append(["D1", "P1", "T1", 8, 45348, "2", 4, None, None])  # row 7: a serial number
    ws.append(["D1", "P1", "T1", 12, "31/02/2024", 0, 0, None, None])  # row 8: no such day
    wb.save(path)
    return path


XLSX = {
    "format": "xlsx",
    "sheet": "Data",
    "header_row": 3,
    "items": "OQ{n}",
    "columns": {
        "dyad_id": "Dyad",
        "patient_id": "Patient",
        "therapist_id": "Therapist",
        "session": "Session",
        "date": "Date",
        "note": "Kommentar",
    },
    "constants": {"rater": "patient", "instrument": "oq_45"},
    "date_format": "%d/%m/%Y",
    "excel_serial_dates": True,
}


def test_xlsx_named_sheet_header_row_and_dates(tmp_path, registry):
    spec = {**XLSX, "path": str(clinic_workbook(tmp_path / "clinic.xlsx"))}
    frame, meta = read_input(spec)
    # source_line is the spreadsheet row
    assert rows(frame) == [
        (4, "D1", "0", "2024-01-08", "oq_45", "3", "2", None),
        (6, "D1", "4", "2024-02-05", "oq_45", "1", None, None),
        (7, "D1", "8", "2024-02-26", "oq_45", "2", "4", None),
        (8, "D1", "12", "31/02/2024", "oq_45", "0", "0", None),
    ]
    assert frame.get_column("note").to_list() == ["sömn ø", None, None, None]
    assert (meta["sheet"], meta["blank_rows"], meta["dropped_columns"]) == ("Data", 1, ["Telefon"])
    assert [w["column"] for w in meta["warnings"]] == ["Telefon"]
    res = validate_frames([frame], [meta], registry)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (8, "date", "31/02/2024", "date_format")
    ]
    assert balanced(frame, meta, registry) == (4, 3, 1)


def test_xlsx_errors_name_file_sheet_and_column(tmp_path):
    path = str(clinic_workbook(tmp_path / "clinic.xlsx"))
    with pytest.raises(DyadflowError) as err:
        read_input({**XLSX, "path": path, "sheet": "Blad1"})
    assert err.value.key == "sheet" and "sheets: Info, Data" in str(err.value)
    with pytest.raises(DyadflowError) as err:  # the first sheet holds no such columns
        read_input({**XLSX, "path": path, "sheet": None, "header_row": 1})
    assert (err.value.file, err.value.line, err.value.column, err.value.key) == (path, 1, "Dyad", "columns.dyad_id")
    bad = tmp_path / "not.xlsx"
    bad.write_text("dyad_id\n")
    with pytest.raises(DyadflowError, match="cannot be read as an Excel workbook"):
        read_input({**XLSX, "path": str(bad)})


CANONICAL_HEADER = ["dyad_id", "patient_id", "therapist_id", "session", "date", "rater", "instrument"]


def wai_row(session, items=(4, 4, 3, 4, 5, 3, 4, 4, 3, 4, 5, 4)):
    return ["D1", "P1", "T1", session, f"2024-01-{session + 7:02d}", "patient", "wai_sr", *items]


def save_with_cached_results(wb, path, results: dict[str, str]):
    """Save ``wb`` (openpyxl writes formulas without a result) and give the formulas in
    ``results`` ({"=2+1": "3"}) the saved result Excel would have written."""
    import zipfile

    wb.save(path)
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    for formula, value in results.items():
        for name in parts:
            if name.startswith("xl/worksheets/"):
                parts[name] = parts[name].replace(
                    f"<f>{formula[1:]}</f><v />".encode(), f"<f>{formula[1:]}</f><v>{value}</v>".encode()
                )
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def test_xlsx_excel_errors_uncached_formulas_and_unnamed_columns_are_rejected(tmp_path, registry):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    # item_12's header cell is merged over S and T, so column T has no name
    ws.append([*CANONICAL_HEADER, *(f"item_{i:02d}" for i in range(1, 13)), None, "sum"])
    ws.merge_cells("S1:T1")
    ws.append([*wai_row(1), None, "=SUM(H2:S2)"])  # row 2: a formula without result in an unmapped column
    ws.append(wai_row(2, (4, 4, "=2+1", 4, 5, 3, 4, 4, 3, 4, 5, 4)))  # row 3: a formula with its saved result
    ws.append(wai_row(3, (4, 4, 3, 4, "=1/0", 3, 4, 4, 3, 4, 5, 4)))  # row 4: no saved result
    ws.append(wai_row(4, (4, "#DIV/0!", 3, 4, 5, 3, 4, 4, 3, 4, 5, 4)))  # row 5: an Excel error
    ws.append([*wai_row(5), 4])  # row 6: an answer in the unnamed column T
    ws.append([])  # row 7: blank
    ws.append([None] * 19 + [5])  # row 8: nothing but a value in column T
    path = save_with_cached_results(wb, tmp_path / "errors.xlsx", {"=2+1": "3"})
    frame, meta = read_input({"path": str(path), "format": "xlsx"})
    res = validate_frames([frame], [meta], registry)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (4, "item_05", "=1/0", "cell_error"),
        (5, "item_02", "#DIV/0!", "cell_error"),
        (6, None, "4", "header_unnamed"),
        (8, None, "5", "header_unnamed"),
    ]
    assert res.rejections.get_column("message").to_list()[:3] == [
        "cell L4 is a formula (=1/0) with no saved result: the program that wrote the workbook did not calculate it; "
        "open and save it in Excel, or export values",
        "cell I5 holds the Excel error #DIV/0!: the answer is unknown (correct the formula or type the value)",
        "column T has a value but no name in the header (row 1): a header cell merged over two columns? "
        "The value cannot be attributed to a question",
    ]
    assert res.accepted.select("source_line", "item_03").rows() == [(2, 3), (3, 3)]
    assert (meta["blank_rows"], meta["dropped_columns"]) == (1, ["sum"])
    assert balanced(frame, meta, registry) == (6, 2, 4)


def test_problem_cells_in_sheet_xml_with_a_namespace_prefix():
    from dyadflow.ingest.spreadsheet import problem_cells

    xml = (
        b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData><x:row r="2">'
        b"<x:c r='B2' t='e'><x:v>#REF!</x:v></x:c>"  # a cached error, single quotes
        b'<x:c r="C2"><x:f>A1&amp;"x"</x:f></x:c>'  # no saved result
        b'<x:c r="D2"><x:f>A1</x:f><x:v>4</x:v></x:c>'  # a saved result: fine
        b'<x:c r="E2" t="str"><x:f>""</x:f><x:v></x:v></x:c>'  # a saved empty text: fine
        b'<x:c r="AB2" t="e"><x:f>1/0</x:f><x:v>#DIV/0!</x:v></x:c>'  # a formula whose saved result is an error
        b"</x:row></x:sheetData></x:worksheet>"
    )
    assert problem_cells(xml).rows() == [
        (2, 1, "B2", "error", "#REF!"),
        (2, 2, "C2", "uncached", '=A1&"x"'),
        (2, 27, "AB2", "error", "#DIV/0!"),
    ]


def test_xlsx_hidden_first_sheet_is_skipped_with_a_warning(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    stale = wb.active
    stale.title = "Old export"
    stale.sheet_state = "hidden"
    stale.append([*CANONICAL_HEADER, "item_01"])
    stale.append(["D9", "P9", "T9", 1, "2023-01-01", "patient", "wai_sr", 1])
    current = wb.create_sheet("Current")
    current.append([*CANONICAL_HEADER, "item_01"])
    current.append(["D1", "P1", "T1", 1, "2024-01-08", "patient", "wai_sr", 4])
    also = wb.create_sheet("Scratch")
    also.sheet_state = "veryHidden"
    wb.save(tmp_path / "hidden.xlsx")
    frame, meta = read_input({"path": str(tmp_path / "hidden.xlsx"), "format": "xlsx"})
    assert frame.select("source_line", "dyad_id").rows() == [(2, "D1")] and meta["sheet"] == "Current"
    assert meta["warnings"] == [
        {
            "source_file": str(tmp_path / "hidden.xlsx"),
            "column": None,
            "warning": (
                "hidden sheets 'Old export', 'Scratch' not read: reading 'Current', the first visible sheet; "
                "name the sheet with 'sheet' if that is not the data"
            ),
        }
    ]
    # a sheet named in the config is read, hidden or not, without a warning
    frame, meta = read_input({"path": str(tmp_path / "hidden.xlsx"), "format": "xlsx", "sheet": "Old export"})
    assert frame.get_column("dyad_id").to_list() == ["D9"] and meta["warnings"] == []


# --- SPSS -------------------------------------------------------------------------------


def spss_file(path):
    import pandas as pd
    import pyreadstat

    df = pd.DataFrame(
        {
            "dyad": ["D1", "D1", "D2"],
            "pid": ["P1", "P1", "P2"],
            "tid": ["T1", "T1", "T2"],
            "sess": [1.0, 2.0, 1.0],
            "datum": [dt.date(2024, 1, 15), dt.date(2024, 1, 22), dt.date(2024, 3, 4)],
            "arm": [1.0, 1.0, 2.0],
            "w1": [4.0, 5.0, 2.0],
            "w2": [3.0, 99.0, 1.0],
        }
    )
    pyreadstat.write_sav(
        df,
        str(path),
        variable_value_labels={
            "arm": {1: "CBT", 2: "IPT"},
            "w1": {1: "Seldom", 2: "Sometimes", 3: "Fairly often", 4: "Very often", 5: "Always"},
        },
        missing_ranges={"w2": [99]},
    )
    return path


SAV = {
    "format": "sav",
    "items": "w{n}",
    "columns": {
        "dyad_id": "dyad",
        "patient_id": "pid",
        "therapist_id": "tid",
        "session": "sess",
        "date": "datum",
        "arm": "arm",
    },
    "constants": {"rater": "patient", "instrument": "wai_sr"},
}


def test_sav_value_labels_and_user_missing(tmp_path, registry):
    spec = {**SAV, "path": str(spss_file(tmp_path / "trial.sav"))}
    frame, meta = read_input(spec)
    # source_line is the case number; arm shows its label, items keep their codes; 99 is user-missing
    assert frame.select("source_line", "dyad_id", "session", "date", "arm", "item_01", "item_02").rows() == [
        (1, "D1", "1", "2024-01-15", "CBT", "4", "3"),
        (2, "D1", "2", "2024-01-22", "CBT", "5", None),
        (3, "D2", "1", "2024-03-04", "IPT", "2", "1"),
    ]
    assert meta["labelled_columns"] == ["arm", "w1"]
    labelled, _ = read_input({**spec, "value_labels": "all"})
    assert labelled.select("arm", "item_01").rows() == [("CBT", "Very often"), ("CBT", "Always"), ("IPT", "Sometimes")]
    codes, _ = read_input({**spec, "value_labels": "none"})
    assert codes.get_column("arm").to_list() == ["1", "1", "2"]
    res = validate_frames([labelled], [meta], registry)
    assert res.accepted.select("item_01").to_series().to_list() == [4, 5, 2]
    assert balanced(frame, meta, registry) == (3, 3, 0)


def test_sav_numbers_no_instrument_can_hold_are_rejected(tmp_path, registry):
    import math

    import pandas as pd
    import pyreadstat

    limit = 2.0**53  # 9007199254740992: the largest magnitude accepted
    df = pd.DataFrame(
        {
            "dyad": ["D1", "D2", "D3", "D4", "D5"],
            "tid": ["T1"] * 5,
            "sess": [1.0] * 5,
            "datum": [dt.date(2024, 1, 15)] * 5,
            "pid": [limit - 1, limit, math.nextafter(limit, math.inf), 7.0, 8.0],
            "w1": [4.0, 4.0, 4.0, 1e19, 4.0],
            "w2": [3.0, 3.0, 3.0, 3.0, math.inf],
            "spare": [1e19] * 5,  # not mapped: not judged
        }
    )
    pyreadstat.write_sav(df, str(tmp_path / "big.sav"))
    spec = {
        **SAV,
        "path": str(tmp_path / "big.sav"),
        "columns": {k: v for k, v in SAV["columns"].items() if k != "arm"},
    }
    frame, meta = read_input(spec)
    res = validate_frames([frame], [meta], registry)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (3, "patient_id", "9007199254740994.0", "value_out_of_range"),
        (4, "item_01", "1e+19", "value_out_of_range"),
        (5, "item_02", "inf", "value_out_of_range"),
    ]
    assert res.rejections.get_column("message")[1] == (
        "1e+19 in w1 is out of range: no answer, session number, code or ID is beyond ±2^53 (9007199254740992); "
        "it would be read as empty"
    )
    assert res.accepted.select("patient_id").to_series().to_list() == ["9007199254740991", "9007199254740992"]
    assert balanced(frame, meta, registry) == (5, 2, 3)


# --- CSV quirks ---------------------------------------------------------------------------

EUROPEAN = (
    "Dyad;Patient;Terapeut;Session;Datum;Formulär;F1;F2;Anteckning;Personnummer\n"
    "D1;P1;T1;1;15.01.2024;WAI-SR;4,0;3;Jag sov bättre, tror jag;\n"
    "D1;P1;T1;2,0;22.01.2024;WAI-SR;5;;Vi snakket om søvn;\n"
    "D1;P1;T1;3;45320;WAI-SR;2;2;;\n"
    "D1;P1;T1;4;2024-02-05;WAI-SR;3,5;2;;\n"
)
EUROPEAN_SPEC = {
    "format": "canonical_csv",
    "encoding": "cp1252",
    "delimiter": ";",
    "decimal_comma": True,
    "date_format": "%d.%m.%Y",
    "excel_serial_dates": True,
    "items": "F{n}",
    "columns": {
        "dyad_id": "Dyad",
        "patient_id": "Patient",
        "therapist_id": "Terapeut",
        "session": "Session",
        "date": "Datum",
        "instrument": "Formulär",
        "note": "Anteckning",
    },
    "values": {"instrument": {"WAI-SR": "wai_sr"}},
    "constants": {"rater": "patient"},
}


def test_european_csv_cp1252_semicolon_decimal_comma_dates(tmp_path, registry):
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.encode("cp1252"))
    frame, meta = read_input({**EUROPEAN_SPEC, "path": str(path)})
    assert rows(frame) + [tuple(frame.get_column("note"))] == [
        (2, "D1", "1", "2024-01-15", "wai_sr", "4.0", "3", None),
        (3, "D1", "2", "2024-01-22", "wai_sr", "5", None, None),
        (4, "D1", "3", "2024-01-29", "wai_sr", "2", "2", None),  # serial 45320
        (5, "D1", "4", "2024-02-05", "wai_sr", "3.5", "2", None),
        ("Jag sov bättre, tror jag", "Vi snakket om søvn", None, None),
    ]
    assert [w["column"] for w in meta["warnings"]] == ["Personnummer"]
    res = validate_frames([frame], [meta], registry)
    assert res.accepted.select("session", "item_01").rows() == [(1, 4), (2, 5), (3, 2)]
    assert res.rejections.select("source_line", "column", "value", "rule", "source_column").rows() == [
        (5, "item_01", "3.5", "item_value", "F1")
    ]
    assert balanced(frame, meta, registry) == (4, 3, 1)


def test_utf8_text_in_a_file_declared_cp1252_is_a_warning_naming_the_lines(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.replace("Formulär", "Form").encode("utf-8"))  # bättre (line 2), søvn (3)
    columns = {**EUROPEAN_SPEC["columns"], "instrument": "Form"}
    frame, meta = read_input({**EUROPEAN_SPEC, "path": str(path), "columns": columns})
    assert meta["warnings"][0] == {
        "source_file": str(path),
        "column": None,
        "warning": (
            "the file is declared cp1252 but lines 2, 3 hold UTF-8 text ('Ã¤' is 'ä' in UTF-8), which reads as "
            "garbled text: if the file is UTF-8, set encoding: utf-8"
        ),
    }
    assert frame.get_column("note")[0] == "Jag sov bÃ¤ttre, tror jag"  # read as declared: warned, not refused


@pytest.mark.parametrize(
    "note, lines",
    [
        ("Á©", None),  # C1 A9: C1 is no UTF-8 lead byte
        ("Â©", "2"),  # C2 A9: the smallest two-byte sequence (©)
        ("Ãx", None),  # a lead byte without its continuation byte
        ("â€x", None),  # E2 80: a three-byte lead with one continuation byte only
        ("â€™", "2"),  # E2 80 99: ’ as UTF-8
    ],
)
def test_utf8_sequences_in_cp1252_at_the_boundaries(tmp_path, note, lines):
    path = tmp_path / "export.csv"
    path.write_bytes(
        f"dyad_id,patient_id,therapist_id,session,date,rater,instrument,item_01,note\nD1,P1,T1,1,2024-01-08,patient,wai_sr,4,{note}\n".encode(
            "cp1252"
        )
    )
    _, meta = read_input({"path": str(path), "format": "canonical_csv", "encoding": "cp1252"})
    assert [w["warning"].split(" hold")[0] for w in meta["warnings"]] == (
        [f"the file is declared cp1252 but line {lines}"] if lines else []
    )


def test_utf8_bom_with_semicolons(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + EUROPEAN.encode("utf-8"))
    frame, meta = read_input({**EUROPEAN_SPEC, "path": str(path), "encoding": "utf-8"})
    assert meta["encoding"] == "utf-8-sig" and frame.get_column("note")[1] == "Vi snakket om søvn"


def test_wrong_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.encode("cp1252"))
    with pytest.raises(DyadflowError) as err:
        read_input({**EUROPEAN_SPEC, "path": str(path), "encoding": "utf-8"})
    assert (err.value.file, err.value.line) == (str(path), 1)  # "Formulär" in the header
    assert str(err.value).startswith(f"{path}, line 1: cannot be decoded as utf-8: byte(s) e4")
    path.write_bytes(EUROPEAN.replace("Formulär", "Form").encode("cp1252"))
    with pytest.raises(DyadflowError) as err:
        read_input({**EUROPEAN_SPEC, "path": str(path), "encoding": "utf-8"})
    assert err.value.line == 2 and "set the input's 'encoding'" in str(err.value)


# --- mapping errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, column, key, words",
    [
        (
            {"columns": {**EUROPEAN_SPEC["columns"], "session": "Sesion"}},
            "Sesion",
            "columns.session",
            "names column 'Sesion', which is not in the file",
        ),
        ({"items": "Fråga{n}"}, "Fråga{n}", "items", "matches no column"),
        (
            {"constants": {"rater": "patient", "session": "1"}},
            None,
            "constants.session",
            "both as a column and as a constant",
        ),
        ({"constants": {}}, "rater", None, "required column missing: rater"),
        ({"values": {"Formulär": {"WAI-SR": "wai_sr"}}}, None, "values.Formulär", "value maps are keyed by the field"),
    ],
)
def test_mapping_errors_name_file_column_and_key(tmp_path, change, column, key, words):
    path = tmp_path / "export.csv"
    path.write_bytes(EUROPEAN.encode("cp1252"))
    with pytest.raises(DyadflowError) as err:
        read_input({**EUROPEAN_SPEC, "path": str(path), **change})
    assert (err.value.file, err.value.column, err.value.key) == (str(path), column, key)
    assert words in str(err.value)


def test_identifier_like_column_names():
    from dyadflow.ingest.mapping import IDENTIFIER_RE

    flagged = [
        "full_name",
        "RecipientEmail",
        "e-mail",
        "Telefon",
        "phone_mobile",
        "IPAddress",
        "Adress",
        "Personnummer",
        "ssn",
        "patient_ssn",
        "birth_date",
        "LocationLatitude",
        "Fødselsnummer",
    ]
    fine = [
        "redcap_event_name",
        "instrument_name",
        "form_name",
        "dyad",
        "session",
        "wai_sr_01",
        "lessons",
        "Datum",
        "Kommentar",
    ]
    assert [c for c in flagged if not IDENTIFIER_RE.search(c)] == []
    assert [c for c in fine if IDENTIFIER_RE.search(c)] == []


def test_config_schema_documents_every_input_key_and_rejects_typos():
    import jsonschema
    import yaml

    schema = yaml.safe_load((REPO / "dyadflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    keys = schema["properties"]["inputs"]["items"]["properties"]
    for name, prop in keys.items():
        assert prop.get("description"), name
        assert name in ("path", "format", "name") or "default" in prop, name
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(config, schema)
    config["inputs"][2]["colums"] = config["inputs"][2].pop("columns")
    with pytest.raises(jsonschema.ValidationError, match="'colums' was unexpected"):
        jsonschema.validate(config, schema)
