"""Table contracts (issue 16, point 1): one pandera model per stage table, checked when
written (atomic.write_table), used by every reader (contract.read_table)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from report_inputs import TABLES, paths_at, selections

from dyadflow.core import atomic
from dyadflow.core.accounting import REJECTION_COLUMNS, RejectionsModel
from dyadflow.core.contract import columns, dtypes, read_table
from dyadflow.core.errors import DyadflowError
from dyadflow.report.tables import read_report_tables
from dyadflow.select.common import SELECTION_SCHEMA, SelectionModel
from dyadflow.stats import DYAD_COLUMNS
from dyadflow.stats import ruptures as rupture_table
from dyadflow.stats.contract import DyadsModel, RupturesModel, SessionsModel


def test_column_lists_come_from_the_models():
    assert DYAD_COLUMNS == columns(DyadsModel)
    assert DYAD_COLUMNS[:3] == ["dyad_id", "patient_id", "therapist_id"] and DYAD_COLUMNS[-1] == "missed_sessions"
    assert len(DYAD_COLUMNS) == 42
    assert rupture_table.COLUMNS == columns(RupturesModel)
    assert SELECTION_SCHEMA == {
        "dyad_id": pl.String,
        "session": pl.Int32,
        "group": pl.String,
        "rank": pl.Int32,
        "reason": pl.String,
    }
    assert REJECTION_COLUMNS == dtypes(RejectionsModel)


def test_write_table_refuses_a_table_that_breaks_its_contract(tmp_path):
    bad = pl.DataFrame({"dyad_id": ["D001"], "session": ["three"], "group": ["high"], "rank": [1], "reason": ["x"]})
    target = tmp_path / "selection" / "high_low.csv"
    with pytest.raises(DyadflowError) as err:
        atomic.write_table(target, bad, SelectionModel)
    assert str(target) in str(err.value) and "SelectionModel" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert not target.exists() and not list(tmp_path.rglob("*.tmp"))


def test_write_table_keeps_the_writers_column_order_and_casts(tmp_path):
    frame = pl.DataFrame(
        {
            "dyad_id": ["D002", "D001"],
            "session": [4, 2],
            "group": ["low", "high"],
            "rank": [1, 1],
            "reason": ["lowest composite", "highest composite"],
        }
    )
    written = atomic.write_table(tmp_path / "s.csv", frame, SelectionModel)
    assert written.schema == pl.Schema(SELECTION_SCHEMA)
    assert (tmp_path / "s.csv").read_text() == (
        "dyad_id,session,group,rank,reason\nD002,4,low,1,lowest composite\nD001,2,high,1,highest composite\n"
    )


def test_an_empty_csv_reads_back_with_the_contract_types(tmp_path):
    path = tmp_path / "ruptures.csv"
    path.write_text(",".join(columns(RupturesModel)) + "\n")
    frame = read_table(path, RupturesModel)
    assert frame.height == 0
    assert frame.schema["pre_session"] == pl.Int32 and frame.schema["repaired"] == pl.Boolean
    assert frame.schema["drop"] == pl.Float64
    missing = read_table(tmp_path / "nothere.csv", SessionsModel)
    assert missing.schema == pl.Schema(dtypes(SessionsModel)) and missing.height == 0


def test_an_older_table_gets_the_new_contract_columns_as_null(tmp_path):
    old = pl.DataFrame(
        {"dyad_id": ["D001"], "n_sessions": [6], "stats_note": [None]}, schema_overrides={"stats_note": pl.String}
    )
    old.write_parquet(tmp_path / "dyads.parquet")
    frame = read_table(tmp_path / "dyads.parquet", DyadsModel)
    assert frame.columns == columns(DyadsModel)
    assert frame.row(0, named=True)["n_sessions"] == 6 and frame.schema["n_sessions"] == pl.Int32
    assert frame.row(0, named=True)["risk_latest"] is None and frame.schema["risk_latest"] == pl.Boolean


def test_selection_session_and_rank_are_int32_in_the_report_as_written(tmp_path):
    """select writes session/rank as Int32; the report reads them as Int32 too (it cast them to Int64)."""
    (tmp_path / "selection").mkdir()
    (tmp_path / "selection" / "high_low.csv").write_text(
        "dyad_id,session,group,rank,reason\nD001,4,high,1,highest composite\n"
    )
    t = read_report_tables(paths_at(tmp_path, TABLES), selections(tmp_path, ["high_low"]))
    assert t.selection.schema["session"] == pl.Int32 == t.sessions.schema["session"]
    assert t.selection.schema["rank"] == pl.Int32
    assert t.selection.rows() == [("D001", 4, "high", 1, "highest composite", "high_low")]


def test_the_validated_questionnaires_table_has_one_model(tmp_path):
    from dyadflow.validate.checks import ValidatedModel, validated_schema

    fixed = columns(ValidatedModel)
    assert list(validated_schema(2).columns) == [*fixed[:8], "item_01", "item_02", *fixed[8:]]
    assert fixed[:8] == ["dyad_id", "patient_id", "therapist_id", "arm", "session", "date", "rater", "instrument"]
    assert fixed[8:] == [
        "note",
        "consent_share_text",
        "consent_share_ratings",
        "source_file",
        "source_line",
        "total",
        "coder_id",
    ]
    # a reader (the score stage) reads it with the model: types cast, items kept after the contract columns
    row = {"dyad_id": "D1", "patient_id": "P1", "therapist_id": "T1", "session": 3, "rater": "patient"}
    frame = pl.DataFrame([{**row, "instrument": "phq_9", "item_01": 2, "source_file": "q.csv", "source_line": 2}])
    frame = frame.with_columns(pl.lit(dt.date(2024, 1, 8)).alias("date"))
    frame.write_parquet(tmp_path / "v.parquet")
    read = read_table(tmp_path / "v.parquet", ValidatedModel)
    assert read.schema["session"] == pl.Int32 and read.schema["consent_share_text"] == pl.Boolean
    assert read.columns[-1] == "item_01" and read.row(0, named=True)["note"] is None
    frame.with_columns(pl.lit("bad id!").alias("dyad_id")).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(DyadflowError) as err:
        read_table(tmp_path / "b.parquet", ValidatedModel)
    assert "ValidatedModel" in str(err.value) and str(tmp_path / "b.parquet") in str(err.value)


def test_the_microprocess_tables_have_their_models(tmp_path):
    from dyadflow.microprocess.congruence import SESSION_COLUMNS, MicroSessionsModel
    from dyadflow.microprocess.segments import SEGMENT_COLUMNS, SegmentsModel

    assert SESSION_COLUMNS == dtypes(MicroSessionsModel) and SEGMENT_COLUMNS == dtypes(SegmentsModel)
    assert list(SEGMENT_COLUMNS)[-1] == "source" and list(SESSION_COLUMNS)[-1] == "note"
    # a sessions.csv whose optional columns are all empty reads back with the contract's types
    (tmp_path / "sessions.csv").write_text("dyad_id,session,congruence_r,note\nD1,2,,\n")
    frame = read_table(tmp_path / "sessions.csv", MicroSessionsModel)
    assert frame.schema["congruence_r"] == pl.Float64 and frame.schema["note"] == pl.String
    assert frame.schema["session"] == pl.Int32 and frame.columns == columns(MicroSessionsModel)
    bad = pl.DataFrame({"dyad_id": ["D1"], "session": [1], "rank": ["first"]})
    with pytest.raises(DyadflowError):
        atomic.write_table(tmp_path / "segments.csv", bad, SegmentsModel)
    assert not (tmp_path / "segments.csv").exists()
