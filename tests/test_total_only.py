"""Pre-scored totals (instrument files with ``input: total``): mapping, validation and
scoring, mixed with item-level instruments in one study."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import WAI_SR_OK, row, write_canonical

from dyadflow import ingest
from dyadflow.core.registry import load_registry
from dyadflow.score import score_frame
from dyadflow.validate import rules as validate

DATA = Path(__file__).parent / "data"


@pytest.fixture
def reg():
    return load_registry(DATA / "instruments")  # the built-ins plus das (input: total, 0–151)


def das(session, total, **kw):
    return row(session=session, instrument="das", total=total, **kw)


def check(path, reg, **spec):
    frame, meta = ingest.read_input({"path": str(path), "format": "canonical_csv", **spec})
    return validate.validate_frames([frame], [meta], reg)


def test_das_is_total_only(reg):
    d = reg["das"]
    assert d.total_only and (d.total_min, d.total_max) == (0, 151) and d.items == []
    assert (d.score_min, d.score_max) == (0, 151)


def test_total_range_boundaries_and_total_rules(tmp_path, reg):
    rows = [
        row(session=1, items=WAI_SR_OK),  # line 2: item-level, no total
        das(1, "0"),  # 3: the minimum
        das(2, "151"),  # 4: the maximum
        das(3, "151.5"),  # 5: max + 0.5
        das(4, "-0.5"),  # 6: min - 0.5
        das(5, "97.5"),  # 7: halves are allowed
        das(6, ""),  # 8: empty
        das(7, "lots"),  # 9: not a number
        row(session=8, instrument="das", total="80", items=(3,)),  # 10: an item for a total-only instrument
        row(session=9, items=WAI_SR_OK, total="47"),  # 11: a total for an item-level instrument
    ]
    path = write_canonical(tmp_path / "q.csv", rows, n_items=12, extra_columns=("total",))
    res = check(path, reg)
    got = res.rejections.select("source_line", "column", "rule", "message").rows()
    assert got == [
        (5, "total", "total_range", "total '151.5' is outside das's total_range 0–151"),
        (6, "total", "total_range", "total '-0.5' is outside das's total_range 0–151"),
        (8, "total", "total_missing", "das is scored from its total (input: total), and the total is empty"),
        (9, "total", "total_value", "'lots' is not a number: the total of das must be a number"),
        (
            10,
            "item_01",
            "item_not_in_instrument",
            "das is scored from its total only (input: total), so item_01 must be empty (found '3')",
        ),
        (
            11,
            "total",
            "total_not_in_instrument",
            "wai_sr is scored from its items, so total must be empty (found '47')",
        ),
    ]
    assert res.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (10, 4, 6)
    acc = res.accepted.sort("session", "instrument")
    assert acc.select("session", "instrument", "total").rows() == [
        (1, "das", 0.0),
        (1, "wai_sr", None),
        (2, "das", 151.0),
        (5, "das", 97.5),
    ]
    assert acc.schema["total"] == pl.Float64


def test_total_only_rows_need_no_item_columns_and_map_with_a_decimal_comma(tmp_path, reg):
    path = tmp_path / "totals.csv"
    path.write_text(
        "Dyad;patient_id;therapist_id;session;date;rater;DAS sum\n"
        "C01;P01;T1;0;2024-01-01;patient;90,5\n"
        "C01;P01;T1;12;2024-04-01;patient;97\n",
        encoding="utf-8",
    )
    res = check(
        path,
        reg,
        delimiter=";",
        decimal_comma=True,
        columns={"dyad_id": "Dyad", "total": "DAS sum"},
        constants={"instrument": "das"},
    )
    assert res.rejections.height == 0
    assert res.accepted.select("dyad_id", "session", "total").rows() == [("C01", 0, 90.5), ("C01", 12, 97.0)]


def test_a_file_with_neither_items_nor_total_stops_with_one_message(tmp_path, reg):
    path = tmp_path / "none.csv"
    path.write_text(
        "dyad_id,patient_id,therapist_id,session,date,rater,instrument\nC01,P01,T1,0,2024-01-01,patient,das\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception, match=r"no item columns .* and no 'total' column in the header"):
        check(path, reg)


def test_total_only_scores_flow_like_any_other(tmp_path, reg):
    rows = [row(session=1, items=WAI_SR_OK), das(1, "97.5"), das(2, "60")]
    path = write_canonical(tmp_path / "q.csv", rows, n_items=12, extra_columns=("total",))
    scores = score_frame(check(path, reg).accepted, reg)
    got = scores.select(
        "session",
        "instrument",
        "total",
        "mean",
        "score",
        "n_answered",
        "n_items",
        "prorated",
        "risk_flag",
        "score_missing_reason",
    ).rows()
    assert got == [
        (1, "das", 97.5, None, 97.5, None, None, None, None, "total only"),
        (1, "wai_sr", 47.0, pytest.approx(47 / 12), pytest.approx(47 / 12), 12, 12, False, None, None),
        (2, "das", 60.0, None, 60.0, None, None, None, None, "total only"),
    ]
    assert scores.filter(pl.col("instrument") == "das").get_column("sub_task").to_list() == [None, None]


TOTAL_FILE = """\
key: tot
name: A pre-scored total
raters: [patient]
input: total
total_range: {min: 0, max: 27}
scoring: {method: sum}
direction: lower_is_better
"""


@pytest.mark.parametrize(
    "change, key, words",
    [
        (("total_range: {min: 0, max: 27}\n", ""), "total_range", "'total_range' is a required property"),
        (("total_range: {min: 0, max: 27}", "total_range: {min: 27, max: 0}"), "total_range", "must be below max"),
        (
            ("direction: lower_is_better", "direction: lower_is_better\nsubscales: {a: [1]}"),
            "subscales",
            "has no items, so no subscales",
        ),
        (("input: total\n", ""), "n_items", "'n_items' is a required property"),
    ],
)
def test_total_only_instrument_file_errors(tmp_path, change, key, words):
    from dyadflow.core.errors import DyadflowError
    from dyadflow.core.registry import load_instrument

    path = tmp_path / "tot.yaml"
    path.write_text(TOTAL_FILE.replace(*change), encoding="utf-8")
    with pytest.raises(DyadflowError) as err:
        load_instrument(path)
    assert err.value.key == key and words in str(err.value)


def test_check_instruments_lists_a_total_only_file(capsys):
    from dyadflow.tools.cli import main

    assert main(["check-instruments", str(DATA / "instruments")]) == 0
    assert (
        f"{DATA / 'instruments' / 'das.yaml'}: das: pre-scored total 0–151, rated by patient" in capsys.readouterr().out
    )


def test_redcap_form_with_a_total_field_only(tmp_path, reg):
    """A REDCap form holding only a calculated total: mapped with the form's columns,
    no item pattern needed, and mixed with an item-level form in the same record."""
    path = tmp_path / "redcap.csv"
    items = ",".join(f"wai_sr_{i:02d}" for i in range(1, 13))
    answers = ",".join(str(v) for v in WAI_SR_OK)
    path.write_text(
        f"record_id,redcap_event_name,pat,ther,das_date,das_sum,das_complete,wai_date,{items},wai_sr_complete\n"
        f'C01,session_1_arm_1,P01,T1,2024-01-08,"90,5",2,2024-01-08,{answers},2\n'
        f"C01,session_12_arm_1,P01,T1,2024-04-01,151.5,2,,{',' * 11},\n",
        encoding="utf-8",
    )
    spec = {
        "path": str(path),
        "format": "redcap",
        "record_id": "dyad_id",
        "decimal_comma": True,
        "columns": {"patient_id": "pat", "therapist_id": "ther"},
        "events": {"pattern": "session_{n}_arm_1"},
        "instruments": {
            "das": {"rater": "patient", "columns": {"date": "das_date", "total": "das_sum"}},
            "wai_sr": {"items": "wai_sr_{n:02d}", "rater": "patient", "columns": {"date": "wai_date"}},
        },
    }
    frame, meta = ingest.read_input(spec)
    res = validate.validate_frames([frame], [meta], reg)
    assert res.accepted.select("session", "instrument", "total").rows() == [(1, "das", 90.5), (1, "wai_sr", None)]
    assert res.rejections.select("source_line", "column", "rule", "source_column").rows() == [
        (3, "total", "total_range", "das_sum")
    ]
