"""Issue 14, point 18: linking IDs across sources (the inputs' ``ids`` rules) and the
warnings about IDs that may not be linked (dyadflow.validate.linking)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, WAI_S_OK, WAI_SR_OK, make_small_study, row, run_nightly, write_canonical
from report_inputs import VALIDATION, paths_at

from dyadflow import ingest
from dyadflow.core.errors import DyadflowError
from dyadflow.tools import nightly
from dyadflow.validate import linking
from dyadflow.validate import rules as validate

# ---------------------------------------------------------------- the rules, one kind at a time


def ingest_ids(path: Path, ids: dict) -> pl.DataFrame:
    frame, _ = ingest.read_input({"path": str(path), "format": "canonical_csv", "ids": ids})
    return frame


def test_strip_prefix_gives_exact_ids_and_rejects_values_without_it(tmp_path):
    path = write_canonical(
        tmp_path / "q.csv",
        [
            row(dyad="D1001", therapist="TH-7", items=WAI_SR_OK),
            row(dyad="D1002", therapist="TH-12", session=2, date="2024-01-15", items=WAI_SR_OK),
            row(dyad="1003", therapist="TH-7", items=WAI_SR_OK),  # no prefix: not passed on unchanged
            row(dyad="D", therapist="TH-7", items=WAI_SR_OK),  # only the prefix: nothing left
        ],
    )
    frame = ingest_ids(path, {"dyad_id": {"strip_prefix": "D"}, "therapist_id": {"strip_prefix": "TH-"}})
    assert frame.select("dyad_id", "therapist_id", "ingest_rule", "ingest_value").rows() == [
        ("1001", "7", None, None),
        ("1002", "12", None, None),
        ("1003", "7", "id_unmapped", "1003"),
        ("D", "7", "id_unmapped", "D"),
    ]
    assert frame.item(2, "ingest_message") == "'1003' does not start with the prefix 'D' (ids.dyad_id of this input)"


def test_regex_takes_capture_group_one_of_the_whole_value(tmp_path):
    path = write_canonical(
        tmp_path / "q.csv",
        [
            row(dyad="D0042", items=WAI_SR_OK),
            row(dyad="D1001", items=WAI_SR_OK),
            row(dyad="XD1001", items=WAI_SR_OK),  # matches only part of the value
            row(dyad="D1001x", items=WAI_SR_OK),
            row(dyad="", items=WAI_SR_OK),  # empty stays empty (missing_value in validation)
        ],
    )
    frame = ingest_ids(path, {"dyad_id": {"regex": r"D0*(\d+)"}})
    assert frame.select("dyad_id", "ingest_rule").rows() == [
        ("42", None),
        ("1001", None),
        ("XD1001", "id_unmapped"),
        ("D1001x", "id_unmapped"),
        (None, None),
    ]
    assert frame.item(2, "ingest_message") == (
        "'XD1001' does not match the regular expression 'D0*(\\d+)' (ids.dyad_id of this input)"
    )


def test_lookup_maps_through_the_csv_and_rejects_ids_not_in_it(tmp_path):
    (tmp_path / "ids.csv").write_text("clinic_id,dyad_id,note\nD01,1001,x\nD02,1002,\n", encoding="utf-8")
    path = write_canonical(
        tmp_path / "q.csv",
        [
            row(dyad="D02", items=WAI_SR_OK),
            row(dyad="D01", items=WAI_SR_OK),
            row(dyad="D03", items=WAI_SR_OK),
            row(dyad="d01", items=WAI_SR_OK),  # IDs are compared exactly
        ],
    )
    lookup = {"lookup": str(tmp_path / "ids.csv"), "from": "clinic_id", "to": "dyad_id"}
    frame = ingest_ids(path, {"dyad_id": lookup})
    assert frame.select("dyad_id", "ingest_rule").rows() == [
        ("1002", None),
        ("1001", None),
        ("D03", "id_unmapped"),
        ("d01", "id_unmapped"),
    ]
    assert (
        frame.item(2, "ingest_message")
        == f"'D03' is not in column 'clinic_id' of {tmp_path / 'ids.csv'} (ids.dyad_id of this input)"
    )


def test_unmapped_id_is_a_rejection_with_rule_line_and_source_column(tmp_path, registry):
    path = tmp_path / "q.csv"
    path.write_text(
        "Dyad,patient_id,therapist_id,session,date,rater,instrument,"
        + ",".join(f"item_{i:02d}" for i in range(1, 13))
        + "\n"
        + "D1001,P1,T1,1,2024-01-08,patient,wai_sr,"
        + ",".join(map(str, WAI_SR_OK))
        + "\n"
        + "Q1001,P1,T1,2,2024-01-15,patient,wai_sr,"
        + ",".join(map(str, WAI_SR_OK))
        + "\n",
        encoding="utf-8",
    )
    frame, meta = ingest.read_input(
        {
            "path": str(path),
            "format": "canonical_csv",
            "columns": {"dyad_id": "Dyad"},
            "ids": {"dyad_id": {"strip_prefix": "D"}},
        }
    )
    result = validate.validate_frames([frame], [meta], registry)
    assert result.accepted.select("dyad_id", "session", "source_line").rows() == [("1001", 1, 2)]
    assert result.rejections.select(
        "source_line", "column", "value", "rule", "message", "dyad_id", "source_column"
    ).rows() == [
        (
            3,
            "dyad_id",
            "Q1001",
            "id_unmapped",
            "'Q1001' does not start with the prefix 'D' (ids.dyad_id of this input)",
            "Q1001",
            "Dyad",
        ),
    ]
    assert result.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (2, 1, 1)


def test_a_reader_rejection_is_kept_and_not_overwritten(tmp_path, registry):
    header = "dyad_id,patient_id,therapist_id,session,date,rater,instrument,item_01\n"
    path = tmp_path / "q.csv"
    path.write_text(header + header + "X9,P1,T1,1,2024-01-08,patient,wai_sr,4\n", encoding="utf-8")
    frame = ingest_ids(path, {"dyad_id": {"strip_prefix": "D"}})
    # the repeated header is rejected as such, not as an unmapped ID
    assert frame.select("source_line", "ingest_rule").rows() == [(2, "header_repeated"), (3, "id_unmapped")]


# ---------------------------------------------------------------- the three-systems example (docs/inputs.md)


def three_systems(tmp: Path) -> list[dict]:
    """REDCap says 1001, Qualtrics D1001, the clinic D01: one dyad."""
    write_canonical(
        tmp / "redcap.csv",
        [
            row(dyad="1001", patient="P1001", therapist="T07", session=1, date="2024-01-08", items=WAI_SR_OK),
            row(dyad="1002", patient="P1002", therapist="T03", session=1, date="2024-01-09", items=WAI_SR_OK),
        ],
    )
    write_canonical(
        tmp / "qualtrics.csv",
        [
            row(
                dyad="D1001",
                patient="P1001",
                therapist="T07",
                session=1,
                date="2024-01-08",
                rater="therapist",
                instrument="wai_s",
                items=WAI_S_OK,
            ),
            row(
                dyad="D1002",
                patient="P1002",
                therapist="T03",
                session=1,
                date="2024-01-09",
                rater="therapist",
                instrument="wai_s",
                items=WAI_S_OK,
            ),
        ],
    )
    write_canonical(
        tmp / "clinic.csv",
        [
            row(dyad="D01", patient="P1001", therapist="T07", session=2, date="2024-01-15", items=WAI_SR_OK),
            row(dyad="D02", patient="P1002", therapist="T03", session=2, date="2024-01-16", items=WAI_SR_OK),
        ],
    )
    (tmp / "clinic_ids.csv").write_text("clinic_id,dyad_id\nD01,1001\nD02,1002\n", encoding="utf-8")
    return [
        {"path": str(tmp / "redcap.csv"), "format": "canonical_csv"},
        {"path": str(tmp / "qualtrics.csv"), "format": "canonical_csv", "ids": {"dyad_id": {"strip_prefix": "D"}}},
        {
            "path": str(tmp / "clinic.csv"),
            "format": "canonical_csv",
            "ids": {"dyad_id": {"lookup": str(tmp / "clinic_ids.csv"), "from": "clinic_id", "to": "dyad_id"}},
        },
    ]


def validate_inputs(specs: list[dict], registry, alliance=None):
    read = [ingest.read_input(s) for s in specs]
    return validate.validate_frames([f for f, _ in read], [m for _, m in read], registry, alliance=alliance)


def test_three_systems_link_into_one_dyad(tmp_path, registry):
    result = validate_inputs(three_systems(tmp_path), registry, {"patient": "wai_sr", "therapist": "wai_s"})
    assert result.rejections.height == 0
    rows = result.accepted.select(
        "dyad_id", "session", "rater", "instrument", pl.col("source_file").str.replace(r".*/", ""), "source_line"
    ).rows()
    assert rows == [
        ("1001", 1, "therapist", "wai_s", "qualtrics.csv", 2),
        ("1001", 1, "patient", "wai_sr", "redcap.csv", 2),
        ("1001", 2, "patient", "wai_sr", "clinic.csv", 2),
        ("1002", 1, "therapist", "wai_s", "qualtrics.csv", 3),
        ("1002", 1, "patient", "wai_sr", "redcap.csv", 3),
        ("1002", 2, "patient", "wai_sr", "clinic.csv", 3),
    ]
    assert result.warnings.height == 0  # every dyad is in every input and has both raters


def test_without_rules_the_three_systems_are_three_dyads_and_warned_about(tmp_path, registry):
    specs = [{"path": s["path"], "format": s["format"]} for s in three_systems(tmp_path)]
    result = validate_inputs(specs, registry)
    assert result.accepted.get_column("dyad_id").unique().sort().to_list() == [
        "1001",
        "1002",
        "D01",
        "D02",
        "D1001",
        "D1002",
    ]
    files = [Path(f).name for f in result.warnings.get_column("source_file").to_list()]
    assert files == ["clinic.csv", "qualtrics.csv", "redcap.csv"]
    assert result.warnings.get_column("warning").to_list()[0] == (
        "2 dyad(s) are only in this input, in none of the study's 2 other questionnaire input(s): D01, D02. "
        "If the other inputs name them differently, link the IDs with the inputs' ids rules"
    )


# ---------------------------------------------------------------- lookup and config errors


def test_lookup_with_a_duplicated_key_stops_naming_file_line_and_column(tmp_path):
    (tmp_path / "ids.csv").write_text("clinic_id,dyad_id\nD01,1001\nD02,1002\nD01,1003\n", encoding="utf-8")
    path = write_canonical(tmp_path / "q.csv", [row(dyad="D01", items=WAI_SR_OK)])
    lk = str(tmp_path / "ids.csv")
    with pytest.raises(DyadflowError) as exc:
        ingest_ids(path, {"dyad_id": {"lookup": lk, "from": "clinic_id", "to": "dyad_id"}})
    assert str(exc.value) == (
        f"{lk}, line 4, column 'clinic_id', key 'ids.dyad_id': 'D01' appears twice in column 'clinic_id' of the lookup "
        "of 'ids.dyad_id' (lines 2, 4): each ID it maps must appear once"
    )


def test_lookup_without_the_named_column_or_with_an_empty_cell_stops(tmp_path):
    lk = tmp_path / "ids.csv"
    lk.write_text("clinic,dyad_id\nD01,1001\n", encoding="utf-8")
    path = write_canonical(tmp_path / "q.csv", [row(dyad="D01", items=WAI_SR_OK)])
    rule = {"dyad_id": {"lookup": str(lk), "from": "clinic_id", "to": "dyad_id"}}
    with pytest.raises(DyadflowError) as exc:
        ingest_ids(path, rule)
    assert str(exc.value) == (
        f"{lk}, line 1, column 'clinic_id', key 'ids.dyad_id.from': the mapping 'ids.dyad_id.from' names column "
        "'clinic_id', which is not in the file (columns: clinic, dyad_id)"
    )
    lk.write_text("clinic_id,dyad_id\nD01,1001\nD02,\n", encoding="utf-8")
    with pytest.raises(DyadflowError) as exc:
        ingest_ids(path, rule)
    assert (
        str(exc.value)
        == f"{lk}, line 3, column 'dyad_id', key 'ids.dyad_id': the lookup of 'ids.dyad_id' has an empty 'dyad_id' cell"
    )


def test_regex_without_a_capture_group_stops(tmp_path):
    path = write_canonical(tmp_path / "q.csv", [row(dyad="D01", items=WAI_SR_OK)])
    with pytest.raises(DyadflowError) as exc:
        ingest_ids(path, {"dyad_id": {"regex": r"D\d+"}})
    assert str(exc.value) == (
        f"{path}, key 'ids.dyad_id.regex': the regular expression 'D\\d+' has no capture group: put the part that is the ID in ( )"
    )


def test_regex_polars_cannot_use_stops(tmp_path):
    path = write_canonical(tmp_path / "q.csv", [row(dyad="D01", items=WAI_SR_OK)])
    with pytest.raises(DyadflowError) as exc:
        ingest_ids(path, {"dyad_id": {"regex": r"D(?=1)(\d+)"}})
    assert str(exc.value) == (
        f"{path}, key 'ids.dyad_id.regex': 'D(?=1)(\\d+)' is not a regular expression polars can use "
        "(look-around, including look-ahead and look-behind, is not supported)"
    )


def config_error(ids: dict) -> bool:
    from snakemake.utils import validate as snakemake_validate

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["inputs"][1]["ids"] = copy.deepcopy(ids)
    try:
        snakemake_validate(cfg, str(REPO / "dyadflow" / "schemas" / "config.schema.yaml"))
    except Exception:  # snakemake's WorkflowError
        return True
    return False


def test_config_schema_accepts_one_rule_per_id_field_and_nothing_else():
    assert not config_error(
        {
            "dyad_id": {"strip_prefix": "D"},
            "patient_id": {"regex": "P0*(\\d+)"},
            "therapist_id": {"lookup": "ids/t.csv", "from": "a", "to": "b"},
        }
    )
    assert config_error({"dyad_id": {"strip_prefix": "D", "regex": "D(\\d+)"}})  # two rules
    assert config_error({"dyad_id": {"lookup": "ids/t.csv", "from": "a"}})  # lookup without to
    assert config_error({"dyad_id": {"strip_prefix": "D", "to": "b"}})
    assert config_error({"dyad_id": {"strip_prefix": ""}})
    assert config_error({"session": {"strip_prefix": "S"}})  # not an ID field
    assert config_error({"dyad_id": {}})


# ---------------------------------------------------------------- warnings

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}


def accepted(rows: list[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    """Accepted rows as (dyad_id, therapist_id, rater, instrument, source_file)."""
    return pl.DataFrame(rows, schema=["dyad_id", "therapist_id", "rater", "instrument", "source_file"], orient="row")


def test_dyads_in_only_one_source_are_warned_about_with_two_inputs_not_one():
    rows = accepted(
        [
            ("D1", "T1", "patient", "wai_sr", "a.csv"),
            ("D1", "T1", "therapist", "wai_s", "b.csv"),
            ("D2", "T1", "patient", "wai_sr", "a.csv"),
            ("D2", "T1", "patient", "bdi_ii", "a.csv"),
            ("D3", "T2", "therapist", "wai_s", "b.csv"),
        ]
    )
    assert linking.single_source(rows, 2).rows() == [
        (
            "a.csv",
            "dyad_id",
            "1 dyad(s) are only in this input, in none of the study's 1 other questionnaire input(s): D2. "
            "If the other inputs name them differently, link the IDs with the inputs' ids rules",
        ),
        (
            "b.csv",
            "dyad_id",
            "1 dyad(s) are only in this input, in none of the study's 1 other questionnaire input(s): D3. "
            "If the other inputs name them differently, link the IDs with the inputs' ids rules",
        ),
    ]
    # one input: nothing to link
    assert linking.single_source(rows.with_columns(pl.lit("a.csv").alias("source_file")), 1).height == 0


def test_long_lists_of_ids_are_cut_at_20_with_a_count():
    def ids_in(n):
        rows = accepted(
            [(f"D{i:02d}", "T1", "patient", "wai_sr", "a.csv") for i in range(1, n + 1)]
            + [("X", "T1", "patient", "wai_sr", "b.csv")]
        )
        return linking.single_source(rows, 2).item(0, "warning").split(": ", 1)[1].split(". If")[0]

    assert ids_in(19) == ", ".join(f"D{i:02d}" for i in range(1, 20))
    assert ids_in(20) == ", ".join(f"D{i:02d}" for i in range(1, 21))
    assert ids_in(21) == ", ".join(f"D{i:02d}" for i in range(1, 21)) + " … and 1 more"


def test_dyads_with_only_one_alliance_rater_when_the_study_has_both():
    rows = accepted(
        [
            ("D1", "T1", "patient", "wai_sr", "a.csv"),
            ("D1", "T1", "therapist", "wai_s", "a.csv"),
            ("D2", "T1", "patient", "wai_sr", "a.csv"),
            ("D3", "T1", "patient", "wai_sr", "a.csv"),
            ("D4", "T2", "therapist", "wai_s", "a.csv"),
            ("D5", "T2", "patient", "bdi_ii", "a.csv"),  # no alliance at all: not warned about
            (
                "D6",
                "T2",
                "patient",
                "wai_s",
                "a.csv",
            ),  # the therapist's instrument rated by the patient: neither rating
        ]
    )
    assert linking.one_rater(rows, ALLIANCE).rows() == [
        (
            None,
            "rater",
            "2 dyad(s) have alliance ratings by the patient (wai_sr) but none by the therapist (wai_s): D2, D3. "
            "If the other rater's forms are in another input under another dyad ID, link the IDs with its ids rules",
        ),
        (
            None,
            "rater",
            "1 dyad(s) have alliance ratings by the therapist (wai_s) but none by the patient (wai_sr): D4. "
            "If the other rater's forms are in another input under another dyad ID, link the IDs with its ids rules",
        ),
    ]
    # a study whose data hold only patient-rated alliance: nothing to warn about
    only_patient = rows.filter(pl.col("rater") == "patient")
    assert linking.one_rater(only_patient, ALLIANCE).height == 0
    assert linking.one_rater(rows, None).height == 0


def test_therapist_ids_equal_to_or_shaped_like_dyad_ids():
    rows = accepted(
        [
            ("D001", "T01", "patient", "wai_sr", "a.csv"),
            ("D002", "D001", "patient", "wai_sr", "a.csv"),  # equal to a dyad ID
            ("D003", "d017", "patient", "wai_sr", "a.csv"),  # the form D999 of the dyad IDs
            ("D004", "D17", "patient", "wai_sr", "a.csv"),  # D99: another form
            ("D005", "T001", "patient", "wai_sr", "a.csv"),  # T999: another form
        ]
    )
    assert linking.therapist_like_dyad(rows).rows() == [
        (
            None,
            "therapist_id",
            "1 therapist ID(s) are also dyad IDs: D001. Check that the therapist column is not the dyad column",
        ),
        (
            None,
            "therapist_id",
            "1 therapist ID(s) have the form of the study's dyad IDs (D999; digits shown as 9): d017. "
            "Check that the therapist column holds therapist IDs",
        ),
    ]
    assert linking.therapist_like_dyad(rows.filter(pl.col("dyad_id") == "D001")).height == 0


def test_warnings_never_reject_rows_and_go_to_warnings_csv(tmp_path, registry):
    specs = three_systems(tmp_path)
    del specs[1]  # no therapist ratings at all now; and a therapist ID equal to a dyad ID:
    write_canonical(
        tmp_path / "clinic.csv",
        [
            row(dyad="D01", patient="P1001", therapist="T07", session=2, date="2024-01-15", items=WAI_SR_OK),
            row(dyad="D02", patient="P1002", therapist="T03", session=2, date="2024-01-16", items=WAI_SR_OK),
            row(dyad="D03", patient="P1003", therapist="1001", session=2, date="2024-01-16", items=WAI_SR_OK),
        ],
    )
    (tmp_path / "clinic_ids.csv").write_text("clinic_id,dyad_id\nD01,1001\nD02,1002\nD03,1003\n", encoding="utf-8")
    ingested, metas = [], []
    for i, spec in enumerate(specs):
        frame, meta = ingest.read_input(spec)
        frame.write_parquet(tmp_path / f"{i}.parquet")
        (tmp_path / f"{i}.json").write_text(json.dumps(meta), encoding="utf-8")
        ingested.append(str(tmp_path / f"{i}.parquet"))
        metas.append(str(tmp_path / f"{i}.json"))
    out = tmp_path / "out"
    result = validate.run(
        ingested,
        metas,
        registry,
        "strict",
        str(out / "v.parquet"),
        str(out / "r.csv"),
        str(out / "a.csv"),
        out_warnings=str(out / "warnings.csv"),
        alliance=ALLIANCE,
    )
    assert result.accepted.height == 5 and result.rejections.height == 0
    warnings = pl.read_csv(out / "warnings.csv", infer_schema=False)
    assert warnings.select(pl.col("source_file").str.replace(r".*/", ""), "column").rows() == [
        ("clinic.csv", "dyad_id"),
        (None, "therapist_id"),
    ]
    assert warnings.item(0, "warning").startswith(
        "1 dyad(s) are only in this input, in none of the study's 1 other questionnaire input(s): 1003."
    )
    assert warnings.item(1, "warning") == (
        "1 therapist ID(s) are also dyad IDs: 1001. Check that the therapist column is not the dyad column"
    )


def test_validation_report_has_a_section_for_id_warnings(tmp_path):
    from test_report_cohort import pdf_text
    from test_report_dyad import write_results

    from dyadflow.report import cohort

    res = write_results(tmp_path)
    pl.DataFrame(
        {
            "source_file": ["data/q.csv"],
            "rows_read": [20],
            "rows_accepted": [19],
            "rows_rejected": [1],
            "rows_duplicate": [0],
        }
    ).write_csv(res / "validation" / "accounting.csv")
    pl.DataFrame(
        {
            "source_file": ["data/q.csv", "data/q.csv", None],
            "column": ["patient_name", "dyad_id", "therapist_id"],
            "warning": [
                "the column name looks like a direct identifier; it was not read.",
                "1 dyad(s) are only in this input: D7.",
                "1 therapist ID(s) are also dyad IDs: D1.",
            ],
        }
    ).write_csv(res / "validation" / "warnings.csv")
    out = tmp_path / "validation.pdf"
    cohort.run_validation(paths_at(res, VALIDATION), "Trial", None, str(out))
    text = pdf_text(out)
    left_out = text.index("Columns left out")
    linking_ids = text.index("Linking IDs across sources")
    rules = text.index("Rejections by rule")
    assert left_out < text.index("patient_name") < linking_ids < rules
    assert linking_ids < text.index("data/q.csv dyad_id 1 dyad(s) are only in this input: D7.") < rules
    assert linking_ids < text.index("all inputs therapist_id 1 therapist ID(s) are also dyad IDs: D1.") < rules


# ---------------------------------------------------------------- the nightly summary (end to end)

LINKED_STUDY_CONFIG = """\
study: {name: "Small synthetic study, two systems"}
inputs:
  - path: data/questionnaires.csv
    format: canonical_csv
  - path: data/therapists.csv
    format: canonical_csv
    ids:
      dyad_id: {lookup: data/therapist_ids.csv, from: survey_id, to: dyad_id}
validation: quarantine
outcome: bdi_ii
alliance: {patient: wai_sr, therapist: wai_s}
selection: []
report: {audience: research, dyads_per_shard: 100000}
"""


def make_linked_study(tmp: Path) -> None:
    """The small study split in two systems: the therapists' WAI-S in their own survey,
    which names dyad D001 S-001; D012's therapist forms are missing, D005's therapist ID
    is D099."""
    make_small_study(tmp, LINKED_STUDY_CONFIG)
    q = pl.read_csv(tmp / "data" / "questionnaires.csv", infer_schema=False)
    q = q.with_columns(
        pl.when(pl.col("dyad_id") == "D005")
        .then(pl.lit("D099"))
        .otherwise(pl.col("therapist_id"))
        .alias("therapist_id")
    )
    therapist = pl.col("instrument") == "wai_s"
    q.filter(~therapist).write_csv(tmp / "data" / "questionnaires.csv")
    q.filter(therapist & (pl.col("dyad_id") != "D012")).with_columns(
        pl.col("dyad_id").str.replace("^D", "S-")
    ).write_csv(tmp / "data" / "therapists.csv")
    lookup = "\n".join(f"S-{i:03d},D{i:03d}" for i in range(1, 12))
    (tmp / "data" / "therapist_ids.csv").write_text(f"survey_id,dyad_id\n{lookup}\n", encoding="utf-8")


@pytest.mark.e2e
def test_nightly_summary_lists_id_warnings_and_a_changed_lookup_reruns(tmp_path):
    make_linked_study(tmp_path)
    proc = run_nightly(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert (
        "WARNINGS (results/validation/warnings.csv; no row is rejected for them)\n"
        "  warnings now: 3; dyad_id: 1; rater: 1; therapist_id: 1\n" in text
    )
    assert (
        "    dyad_id: data/questionnaires.csv: 1 dyad(s) are only in this input, in none of the study's 1 other "
        "questionnaire input(s): D012. If the other inputs name them differently, link the IDs with the inputs' ids rules\n"
    ) in text
    assert (
        "    rater: 1 dyad(s) have alliance ratings by the patient (wai_sr) but none by the therapist (wai_s): D012. "
        "If the other rater's forms are in another input under another dyad ID, link the IDs with its ids rules\n"
    ) in text
    assert (
        "    therapist_id: 1 therapist ID(s) have the form of the study's dyad IDs (D999; digits shown as 9): D099. "
        "Check that the therapist column holds therapist IDs\n"
    ) in text
    summary = json.loads(next((tmp_path / "results" / "runs").glob("*.json")).read_text(encoding="utf-8"))
    assert summary["warnings"]["total"] == 3
    assert summary["dyads"]["total"] == 12 and "rejected now: 0" in text
    # WARNING lines on the terminal (which the nightly keeps in its log) and in the validate log
    (terminal,) = (tmp_path / "logs" / "nightly").glob("*.log")
    assert (
        "\nWARNING dyadflow validate: IDs (therapist_id): 1 therapist ID(s) have the form of the study's dyad IDs "
        "(D999; digits shown as 9): D099. Check that the therapist column holds therapist IDs\n"
    ) in terminal.read_text(encoding="utf-8")
    assert "\nWARNING dyadflow validate: IDs (dyad_id, data/questionnaires.csv): 1 dyad(s) are only in this input" in (
        terminal.read_text(encoding="utf-8")
    )
    log = (tmp_path / "logs" / "validate.log").read_text(encoding="utf-8")
    assert (
        " WARNING IDs (rater): 1 dyad(s) have alliance ratings by the patient (wai_sr) but none by the therapist" in log
    )

    # the lookup is an input of the ingest job: D011 leaves it, and the next nightly rejects its forms
    lookup = tmp_path / "data" / "therapist_ids.csv"
    lookup.write_text(lookup.read_text(encoding="utf-8").replace("S-011,D011\n", ""), encoding="utf-8")
    proc = run_nightly(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n_d011 = (
        pl.read_csv(tmp_path / "data" / "therapists.csv", infer_schema=False)
        .filter(pl.col("dyad_id") == "S-011")
        .height
    )
    assert f"new since the last nightly: {n_d011}\n    id_unmapped: {n_d011}\n" in proc.stdout
    assert "in none of the study's 1 other questionnaire input(s): D011, D012." in proc.stdout
    assert "'S-011' is not in column 'survey_id' of data/therapist_ids.csv (ids.dyad_id of this input)" in proc.stdout


def test_summary_text_without_warnings_file():
    w = nightly.warnings_summary(Path("/nonexistent/warnings.csv"))
    assert w == {"note": "no results/validation/warnings.csv yet", "total": None}
