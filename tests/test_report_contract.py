"""The contract of results/reports/index.csv (dyadflow.report.contract.ReportIndexModel)
and the one list of shard tables (dyadflow.core.naming.SHARD_TABLES)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dyadflow.core.errors import DyadflowError
from dyadflow.core.naming import SHARD_TABLES
from dyadflow.report import shards
from dyadflow.report.contract import ReportIndexModel
from dyadflow.report.tables import CONTRACTS


def _pdf(path: Path, body: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path)


def _dyad_entry(made: Path, dyad: str, therapist: str, n: str) -> dict:
    """A shard manifest's entry: the dyad's research copy and its therapist-bundle copy, made."""
    return {
        "dyad_id": dyad,
        "therapist_id": therapist,
        "path": _pdf(made / "dyads" / f"{dyad}.pdf", f"%PDF-{n}".encode()),
        "sha256": f"b{n}",
        "bundle_path": _pdf(made / "bundle" / therapist / f"{dyad}.pdf", f"%PDF-{n}c".encode()),
        "bundle_sha256": f"c{n}",
    }


def test_index_rows_kinds_and_order(tmp_path):
    made = tmp_path / "made"
    manifest = tmp_path / "shard_0.json"
    caseload = tmp_path / "caseload.json"
    manifest.write_text(
        json.dumps(
            {
                "reports": [
                    _dyad_entry(made, "D002", "T01", "2"),
                    _dyad_entry(made, "D001", "T02", "1"),
                ]
            }
        )
    )
    caseload.write_text(
        json.dumps(
            {
                "reports": [
                    {
                        "therapist_id": "T01",
                        "bundle_path": _pdf(made / "caseload" / "T01" / "_caseload.pdf", b"%PDF-cl"),
                        "bundle_sha256": "k1",
                    }
                ]
            }
        )
    )
    out = tmp_path / "reports"
    table = shards.index(
        [str(manifest), str(caseload)], str(out / "index.csv"), str(out / "dyads"), str(out / "by_therapist")
    )
    assert table.columns == list(ReportIndexModel.to_schema().columns)
    assert table.select("dyad_id", "therapist_id", "kind").rows() == [
        ("D001", "T02", "dyad"),
        ("D002", "T01", "dyad"),
        (None, "T01", "caseload"),
    ]
    assert table["path"].to_list() == [str(out / "dyads" / "D001.pdf"), str(out / "dyads" / "D002.pdf"), None]
    assert (out / "by_therapist" / "T01" / "_caseload.pdf").read_bytes() == b"%PDF-cl"
    written = pl.read_csv(out / "index.csv")
    assert written.columns == table.columns and written["kind"].to_list() == ["dyad", "dyad", "caseload"]


def _row(**change):
    row = {
        "dyad_id": "D001",
        "therapist_id": "T01",
        "path": "dyads/D001.pdf",
        "sha256": "a",
        "bundle_path": "by_therapist/T01/D001.pdf",
        "bundle_sha256": "b",
        "kind": "dyad",
    }
    row.update(change)
    return pl.DataFrame([row], schema={c: pl.String for c in row})


@pytest.mark.parametrize(
    ("change", "column"),
    [({"kind": "cohort"}, "kind"), ({"bundle_path": None}, "bundle_path"), ({"therapist_id": None}, "therapist_id")],
)
def test_index_contract_rejects(change, column):
    from dyadflow.core.contract import conform

    assert conform(_row(), ReportIndexModel).height == 1
    with pytest.raises(DyadflowError) as err:
        conform(_row(**change), ReportIndexModel, name="results/reports/index.csv")
    assert "ReportIndexModel" in str(err.value) and column in str(err.value)


def test_shard_tables_named_once():
    # the report plan writes, and a shard reads, one table per contract of the report's tables and the selection (read with its own columns)
    assert set(SHARD_TABLES) == set(CONTRACTS) | {"selection"}
    assert shards.SHARD_TABLES is SHARD_TABLES
    smk = (Path(__file__).resolve().parent.parent / "workflow" / "rules").glob("*.smk")
    assert not any("SHARD_TABLES = " in p.read_text(encoding="utf-8") for p in smk)
