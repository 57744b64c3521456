"""Issue 19.1: coders. Observer rows carry a coder_id (the questionnaire key of an
observer row is dyad, session, instrument, coder); categorical instruments list their
codes, which are validated and stored but never summed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import row, run_validation, write_canonical

from dyadflow import score
from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import load_registry, parse_instrument

DEMO_INSTRUMENTS = Path(__file__).resolve().parent.parent / "data" / "demo" / "instruments"


@pytest.fixture(scope="module")
def coded_registry():
    return load_registry(DEMO_INSTRUMENTS)


def obs(coder, session=1, items=(2, 1, 3), instrument="rupture_markers", dyad="D1"):
    extra = {"coder_id": coder} if coder is not None else {}
    return row(dyad=dyad, session=session, rater="observer", instrument=instrument, items=items, **extra)


def validate_rows(tmp_path, registry, rows):
    path = write_canonical(tmp_path / "coded.csv", rows, extra_columns=("coder_id",))
    return run_validation(path, registry)


def test_an_observer_row_without_coder_is_rejected_with_coder_missing(tmp_path, coded_registry):
    res = validate_rows(tmp_path, coded_registry, [obs("C1"), obs(""), obs("C2")])
    assert res.rejections.select("source_line", "column", "rule", "message").rows() == [
        (3, "coder_id", "coder_missing", "an observer's rating needs its coder: coder_id is empty")
    ]
    assert res.accepted.select("coder_id").to_series().to_list() == ["C1", "C2"]
    acc = res.accounting.row(0, named=True)
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"]) == (3, 2, 1)


def test_two_coders_of_one_session_are_two_questionnaires_one_coder_twice_is_a_conflict(tmp_path, coded_registry):
    rows = [obs("C1"), obs("C2", items=(4, 0, 1)), obs("C3"), obs("C3", items=(5, 5, 5))]
    res = validate_rows(tmp_path, coded_registry, rows)
    assert res.rejections.select("source_line", "rule").rows() == [(4, "duplicate_conflict"), (5, "duplicate_conflict")]
    assert res.rejections.item(0, "message") == (
        "2 rows for dyad D1, session 1, observer rupture_markers, coder C3 differ (line 4, line 5); all are rejected"
    )
    assert res.accepted.select("coder_id", "item_01").rows() == [("C1", 2), ("C2", 4)]


def test_a_coder_id_must_be_an_id(tmp_path, coded_registry):
    res = validate_rows(tmp_path, coded_registry, [obs("coder one")])
    assert res.rejections.select("column", "rule", "value").rows() == [("coder_id", "id_format", "coder one")]


def test_patient_rows_need_no_coder(tmp_path, registry):
    from conftest import WAI_SR_OK

    res = validate_rows(tmp_path, registry, [row(items=WAI_SR_OK)])
    assert res.rejections.height == 0
    assert res.accepted.get_column("coder_id").to_list() == [None]


def test_categorical_codes_are_validated_and_stored_in_order(tmp_path, coded_registry):
    inst = coded_registry["rupture_type"]
    assert inst.categorical and inst.codes == ("none", "withdrawal", "confrontation", "mixed")
    rows = [
        obs("C1", instrument="rupture_type", items=("withdrawal",)),
        obs("C2", instrument="rupture_type", items=("MIXED",)),
        obs("C3", instrument="rupture_type", items=("2",)),  # a number is not a code
        obs("C4", instrument="rupture_type", items=("sulking",)),
    ]
    res = validate_rows(tmp_path, coded_registry, rows)
    assert res.accepted.select("coder_id", "item_01").rows() == [("C1", 2), ("C2", 4)]
    assert res.rejections.select("source_line", "rule", "message").rows() == [
        (
            4,
            "item_value",
            "'2' is not an allowed answer to rupture_type item 1 (allowed: none, withdrawal, confrontation, mixed)",
        ),
        (
            5,
            "item_value",
            "'sulking' is not an allowed answer to rupture_type item 1 (allowed: none, withdrawal, confrontation, mixed)",
        ),
    ]
    assert [inst.code_of(v) for v in res.accepted.get_column("item_01").to_list()] == ["withdrawal", "mixed"]


def test_categorical_items_are_not_summed(tmp_path, coded_registry):
    rows = [obs("C1", instrument="rupture_type", items=("mixed",)), obs("C1", items=(2, 1, 3))]
    res = validate_rows(tmp_path, coded_registry, rows)
    scored = score.score_frame(res.accepted, coded_registry).sort("instrument")
    assert scored.select("instrument", "coder_id", "score", "n_answered", "score_missing_reason").rows() == [
        ("rupture_markers", "C1", pytest.approx(5 / 3), 3, None),  # mean of 2, 1 and 5 - 3 (item 3 reverse-keyed)
        ("rupture_type", "C1", None, 1, "categorical codes are not summed"),
    ]


@pytest.mark.parametrize(
    "response, key, says",
    [
        ({"type": "categorical"}, "response.codes", "'codes' is a required property"),
        ({"type": "categorical", "codes": ["a", "A"]}, "response.codes", "two codes differ only in case"),
        ({"type": "categorical", "codes": ["a"]}, "response.codes", "too short"),
    ],
)
def test_a_categorical_instrument_needs_its_codes(response, key, says):
    data = {
        "key": "x",
        "name": "X",
        "raters": ["observer"],
        "n_items": 1,
        "response": response,
        "scoring": {"method": "sum"},
        "direction": "lower_is_better",
    }
    with pytest.raises(DyadflowError) as info:
        parse_instrument(data, Path("x.yaml"))
    assert info.value.key == key
    assert says in info.value.message
