"""Validation rules, each on a tiny hand-written export with the exact rejected lines."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import BDI_OK, WAI_S_OK, WAI_SR_OK, row, rules_by_line, run_validation, write_canonical

from dyadflow.core import accounting
from dyadflow.core.errors import ValidationFailed
from dyadflow.validate import rules as validate
from dyadflow.validate.checks import RULES


def check(tmp_path, registry, rows, **kw):
    path = write_canonical(tmp_path / "q.csv", rows, **kw)
    return run_validation(path, registry)


def test_valid_rows_are_all_accepted(tmp_path, registry):
    res = check(
        tmp_path,
        registry,
        [
            row(session=0, instrument="bdi_ii", items=BDI_OK, date="2024-01-01"),
            row(session=1, items=WAI_SR_OK),
            row(session=1, rater="therapist", instrument="wai_s", items=WAI_S_OK),
        ],
    )
    assert res.rejections.height == 0
    assert res.accepted.height == 3
    assert res.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (3, 3, 0)
    bdi = res.accepted.filter(pl.col("instrument") == "bdi_ii").row(0, named=True)
    assert (bdi["item_16"], bdi["item_18"]) == (1, 2)  # "1a" and "2b" scored by the digit
    assert res.accepted.schema["session"] == pl.Int32 and res.accepted.schema["date"] == pl.Date


@pytest.mark.parametrize(
    "bad, column, rule",
    [
        ({"dyad": "D 1"}, "dyad_id", "id_format"),
        ({"patient": "P/1"}, "patient_id", "id_format"),
        ({"therapist": "../T1"}, "therapist_id", "id_format"),
        ({"therapist": ""}, "therapist_id", "missing_value"),
        ({"session": "-1"}, "session", "session_format"),
        ({"session": "3a"}, "session", "session_format"),
        ({"date": "2024-02-30"}, "date", "date_format"),
        ({"date": "08/01/2024"}, "date", "date_format"),
        ({"rater": "doctor"}, "rater", "rater_unknown"),
        ({"rater": "therapist"}, "rater", "rater_not_allowed"),
        ({"instrument": "wai_x"}, "instrument", "instrument_unknown"),
        ({"items": (4, 4, 3, 4, 5, 3, 4, 4, 3, 4, 5, 6)}, "item_12", "item_value"),
        ({"items": (4, 4, 3, 4, 5, 3, 4, 4, 3, "4 pts", 5, 4)}, "item_10", "item_value"),
        ({"items": WAI_SR_OK + (1,)}, "item_13", "item_not_in_instrument"),
        ({"items": (None,) * 12}, None, "no_items"),
        ({"consent_share_text": "maybe"}, "consent_share_text", "consent_value"),
    ],
)
def test_row_rule(tmp_path, registry, bad, column, rule):
    good = row(session=1, items=WAI_SR_OK)
    args = {"session": 2, "items": WAI_SR_OK, "date": "2024-01-15"} | bad
    res = check(tmp_path, registry, [good, row(**args)], extra_columns=("consent_share_text",))
    got = res.rejections.filter(pl.col("source_line") == 3)
    assert got.select("column", "rule").rows() == [(column, rule)]
    assert got.get_column("message")[0]
    assert rule in RULES
    assert res.accepted.get_column("source_line").to_list() == [2]
    assert res.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (2, 1, 1)


def test_item_codes_and_multiple_answers(tmp_path, registry):
    items = list(BDI_OK)
    ok = dict(items=tuple(items[:15] + ["3B"] + items[16:17] + ["1a|2b"] + items[18:]))
    bad = dict(items=tuple(items[:15] + ["4a"] + items[16:]), session=2, date="2024-01-15")
    res = check(tmp_path, registry, [row(instrument="bdi_ii", **ok), row(instrument="bdi_ii", **bad)])
    assert res.accepted.select("item_16", "item_18").row(0) == (3, 2)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (3, "item_16", "4a", "item_value")
    ]


def test_value_labels_are_accepted(tmp_path, registry):
    items = ("Always", "seldom", " Fairly often ", 4, 5, 3, 4, 4, 3, 4, 5, 4)
    res = check(tmp_path, registry, [row(items=items)])
    assert res.accepted.select("item_01", "item_02", "item_03").row(0) == (5, 1, 3)


def test_exact_duplicates_kept_once(tmp_path, registry):
    r = row(items=WAI_SR_OK)
    res = check(tmp_path, registry, [r, r, r])
    assert res.accepted.get_column("source_line").to_list() == [2]
    assert rules_by_line(res.rejections) == {(3, "duplicate_exact"), (4, "duplicate_exact")}
    assert res.rejections.get_column("message").to_list() == ["exact copy of line 2, which is kept"] * 2
    assert res.accounting.select("rows_accepted", "rows_rejected", "rows_duplicate").row(0) == (1, 2, 2)


def test_conflicting_duplicates_all_rejected(tmp_path, registry):
    other = list(WAI_SR_OK)
    other[0] = 1
    res = check(
        tmp_path, registry, [row(items=WAI_SR_OK), row(items=other), row(session=2, date="2024-01-15", items=WAI_SR_OK)]
    )
    assert rules_by_line(res.rejections) == {(2, "duplicate_conflict"), (3, "duplicate_conflict")}
    assert res.accepted.get_column("source_line").to_list() == [4]
    assert "lines" not in res.rejections.get_column("message")[0] or True
    assert res.rejections.get_column("message")[0] == (
        "2 rows for dyad D1, session 1, patient wai_sr differ (line 2, line 3); all are rejected"
    )


def test_changed_therapist_rejects_the_odd_row_out(tmp_path, registry):
    rows = [row(session=s, date=f"2024-01-{7 + s:02d}", items=WAI_SR_OK) for s in range(1, 5)]
    rows[2]["therapist_id"] = "T9"
    res = check(tmp_path, registry, rows)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (4, "therapist_id", "T9", "dyad_therapist_changed")
    ]
    assert (
        res.rejections.get_column("message")[0]
        == "dyad D1 has therapist_id 'T1' in 3 other rows (from session 1); this row says 'T9'"
    )


def test_changed_patient_and_arm(tmp_path, registry):
    rows = [row(session=s, date=f"2024-01-{7 + s:02d}", items=WAI_SR_OK, arm="CBT") for s in range(1, 4)]
    rows[0]["patient_id"] = "P2"
    rows[1]["arm"] = "IPT"
    res = check(tmp_path, registry, rows, extra_columns=("arm",))
    assert rules_by_line(res.rejections) == {(2, "dyad_patient_changed"), (3, "dyad_arm_changed")}


def test_a_wrong_date_rejects_one_session_not_all_later_ones(tmp_path, registry):
    dates = ["2024-01-08", "2024-01-15", "2024-12-22", "2024-01-29", "2024-02-05"]
    rows = [row(session=s, date=d, items=WAI_SR_OK) for s, d in enumerate(dates, start=1)]
    res = check(tmp_path, registry, rows)
    assert res.rejections.select("source_line", "column", "value", "rule").rows() == [
        (4, "date", "2024-12-22", "date_order")
    ]
    assert res.rejections.get_column("message")[0] == (
        "session 3 is dated 2024-12-22, out of order with session 4 on 2024-01-29 (2 session(s) in conflict)"
    )


def test_swapped_dates_reject_both_sessions(tmp_path, registry):
    rows = [row(session=1, date="2024-01-15", items=WAI_SR_OK), row(session=2, date="2024-01-08", items=WAI_SR_OK)]
    res = check(tmp_path, registry, rows)
    assert rules_by_line(res.rejections) == {(2, "date_order"), (3, "date_order")}


def test_same_session_may_span_two_dates(tmp_path, registry):
    rows = [
        row(session=1, date="2024-01-08", instrument="bdi_ii", items=BDI_OK),
        row(session=1, date="2024-01-09", items=WAI_SR_OK),
        row(session=2, date="2024-01-15", items=WAI_SR_OK),
    ]
    assert check(tmp_path, registry, rows).rejections.height == 0


def test_field_count(tmp_path, registry):
    path = write_canonical(tmp_path / "q.csv", [row(items=WAI_SR_OK)])
    with open(path, "a") as fh:
        fh.write("D1,P1,T1,2,2024-01-15,patient,wai_sr,4\n")
    res = run_validation(path, registry)
    assert res.rejections.select("source_line", "rule", "message").rows() == [
        (3, "field_count", "the row has 8 fields but the header has 19")
    ]


def test_strict_mode_names_file_line_and_rule(tmp_path, registry):
    path = write_canonical(
        tmp_path / "q.csv", [row(items=WAI_SR_OK), row(session=2, date="2024-01-15", items=(9,) * 12)]
    )
    from dyadflow import ingest

    ingest.run({"path": str(path), "format": "canonical_csv"}, str(tmp_path / "i.parquet"), str(tmp_path / "i.json"))
    out = [str(tmp_path / n) for n in ("v.parquet", "r.csv", "a.csv")]
    with pytest.raises(ValidationFailed) as err:
        validate.run([str(tmp_path / "i.parquet")], [str(tmp_path / "i.json")], registry, "strict", *out)
    text = str(err.value)
    assert "1 row(s) rejected in 1 file(s)" in text
    assert f"{path}, line 3, column 'item_01': item_value: '9' is not an allowed answer to wai_sr item 1" in text
    assert not any((tmp_path / n).exists() for n in ("v.parquet", "r.csv", "a.csv"))
    validate.run([str(tmp_path / "i.parquet")], [str(tmp_path / "i.json")], registry, "quarantine", *out)
    assert pl.read_csv(out[2]).select("rows_read", "rows_accepted", "rows_rejected").row(0) == (2, 1, 1)


def test_accounting_across_two_files(tmp_path, registry):
    from dyadflow import ingest

    a = write_canonical(tmp_path / "a.csv", [row(items=WAI_SR_OK), row(session=2, date="2024-01-15", items=WAI_SR_OK)])
    b = write_canonical(
        tmp_path / "b.csv", [row(items=WAI_SR_OK), row(session=3, dyad="D 2", date="2024-01-22", items=WAI_SR_OK)]
    )
    frames, metas = zip(*(ingest.read_input({"path": str(p), "format": "canonical_csv"}) for p in (a, b)), strict=False)
    res = validate.validate_frames(list(frames), list(metas), registry)
    assert res.accounting.select(
        "source_file", "rows_read", "rows_accepted", "rows_rejected", "rows_duplicate"
    ).rows() == [
        (str(a), 2, 2, 0, 0),
        (str(b), 2, 0, 2, 1),
    ]
    assert res.rejections.get_column("message").to_list()[0] == f"exact copy of {a} line 2, which is kept"


def test_dates_before_the_earliest_date_are_rejected_at_the_boundary(tmp_path, registry):
    rows = [
        row(session=1, date="1899-12-31", items=WAI_SR_OK),  # one day before the default 1900-01-01
        row(session=2, date="1900-01-01", items=WAI_SR_OK),  # exactly the earliest date
        row(session=3, date="1900-01-02", items=WAI_SR_OK),
        row(session=4, date="0000-01-01", items=WAI_SR_OK),  # year 0 crashed the report shard
    ]
    res = check(tmp_path, registry, rows)
    assert res.rejections.select("source_line", "column", "value", "rule", "message").rows() == [
        (
            2,
            "date",
            "1899-12-31",
            "date_range",
            "'1899-12-31' is before the earliest date 1900-01-01 (config earliest_date): a typing error?",
        ),
        (
            5,
            "date",
            "0000-01-01",
            "date_range",
            "'0000-01-01' is before the earliest date 1900-01-01 (config earliest_date): a typing error?",
        ),
    ]
    assert res.accepted.get_column("source_line").to_list() == [3, 4]
    assert "date_range" in RULES


def test_earliest_date_is_configurable(tmp_path, registry):
    import datetime as dt

    from dyadflow import ingest

    path = write_canonical(
        tmp_path / "q.csv",
        [
            row(session=1, date="2024-01-07", items=WAI_SR_OK),
            row(session=2, date="2024-01-08", items=WAI_SR_OK),
        ],
    )
    frame, meta = ingest.read_input({"path": str(path), "format": "canonical_csv"})
    res = validate.validate_frames([frame], [meta], registry, earliest_date=dt.date(2024, 1, 8))
    assert res.rejections.select("source_line", "rule").rows() == [(2, "date_range")]
    assert res.accepted.get_column("source_line").to_list() == [3]


def test_the_docs_list_every_rule():
    from conftest import REPO

    readme = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Validation: every row is accounted for") :]
    section += (REPO / "docs" / "coding.md").read_text(encoding="utf-8")  # the coders' rules (issue 19)
    assert [r for r in RULES if f"`{r}`" not in section] == []


def test_one_wide_csv_read_as_two_inputs_is_accounted_per_input(tmp_path, registry):
    """Issue 14.7: one wide CSV with WAI-SR and BDI-II side by side, wired as two inputs
    (each its items and constants): each input is accounted on its own, no AssertionError."""
    from dyadflow import ingest

    head = ["dyad_id", "patient_id", "therapist_id", "session", "date", "rater"]
    lines = [
        ",".join(head + [f"wai_{n}" for n in range(1, 13)] + [f"bdi_{n}" for n in range(1, 22)]),
        ",".join(["D1", "P1", "T1", "1", "2024-01-08", "patient", *map(str, WAI_SR_OK), *map(str, BDI_OK)]),
        ",".join(["D1", "P1", "T1", "2", "2024-01-15", "patient", "9", *map(str, WAI_SR_OK[1:]), *map(str, BDI_OK)]),
        ",".join(["D1", "P1", "T1", "3", "2024-01-22", "patient", *map(str, WAI_SR_OK), *map(str, BDI_OK[:-1]), "7"]),
    ]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    specs = [
        {
            "name": "wide_wai",
            "path": str(path),
            "format": "canonical_csv",
            "items": "wai_{n}",
            "constants": {"instrument": "wai_sr"},
        },
        {
            "name": "wide_bdi",
            "path": str(path),
            "format": "canonical_csv",
            "items": "bdi_{n}",
            "constants": {"instrument": "bdi_ii"},
        },
    ]
    frames, metas = zip(*(ingest.read_input(s) for s in specs), strict=False)
    assert [m["input"] for m in metas] == ["wide_wai", "wide_bdi"]
    res = validate.validate_frames(list(frames), list(metas), registry)
    assert res.accounting.select(
        "input", "source_file", "rows_read", "rows_accepted", "rows_rejected", "rows_duplicate"
    ).rows() == [
        ("wide_wai", str(path), 3, 2, 1, 0),
        ("wide_bdi", str(path), 3, 2, 1, 0),
    ]
    assert res.accounting.columns == list(accounting.ACCOUNTING_COLUMNS) and res.accounting.columns[-1] == "input"
    assert res.rejections.select("input", "source_line", "column", "source_column", "rule", "instrument").rows() == [
        ("wide_wai", 3, "item_01", "wai_1", "item_value", "wai_sr"),
        ("wide_bdi", 4, "item_21", "bdi_21", "item_value", "bdi_ii"),
    ]
    assert res.rejections.columns[:6] == ["source_file", "source_line", "column", "value", "rule", "message"]
    assert res.accepted.select("session", "instrument").sort("session", "instrument").rows() == [
        (1, "bdi_ii"),
        (1, "wai_sr"),
        (2, "bdi_ii"),
        (3, "wai_sr"),
    ]
