"""The report rules in Snakemake: all three report kinds and the bundles are written, and
changing one dyad's rows reruns one report_shard job, the one of that dyad (plus the
cohort-level outputs); a rerun with nothing changed runs nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
DYADS = ["D001", "D002", "D003", "D004"]
# only the reports and what they need (not the charts, manifest, microprocess or coding outputs)
TARGETS = ("results/reports/index.csv", "results/reports/cohort.pdf", "results/reports/validation.pdf")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, timeout=900)


def _state(root: Path) -> dict[str, tuple[int, bytes]]:
    files = [
        *(root / "results" / "reports").rglob("*.pdf"),
        *(root / "results" / "reports" / "shards").rglob("*.parquet"),
    ]
    return {p.relative_to(root / "results").as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


@pytest.mark.e2e
def test_reports_in_the_workflow_are_incremental(tmp_path):
    from dyadflow.tools import demo_study as demo

    lines = demo.write_canonical(tmp_path / "src").read_text(encoding="utf-8").splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",")[0] in DYADS]
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "q.csv"
    data.write_text("\n".join(keep) + "\n", encoding="utf-8")
    cfg = tmp_path / "study.yaml"
    cfg.write_text(
        "study: {name: Small trial}\ninputs:\n  - {path: data/q.csv, format: canonical_csv}\n"
        "report: {audience: research, dyads_per_shard: 2}\n"
    )
    proc = snakemake(tmp_path, *TARGETS, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp_path / "results" / "reports"
    assert (res / "cohort.pdf").is_file() and (res / "validation.pdf").is_file()
    assert sorted(p.stem for p in (res / "dyads").glob("*.pdf")) == DYADS
    index = pl.read_csv(res / "index.csv")
    caseloads = index.filter(pl.col("kind") == "caseload")
    index = index.filter(pl.col("kind") == "dyad")
    assert index.get_column("dyad_id").to_list() == DYADS
    therapists = sorted(set(index.get_column("therapist_id")))
    assert caseloads.get_column("bundle_path").to_list() == [
        f"results/reports/by_therapist/{t}/_caseload.pdf" for t in therapists
    ]
    for row in index.iter_rows(named=True):  # each therapist's folder holds only their dyads
        assert row["bundle_path"] == f"results/reports/by_therapist/{row['therapist_id']}/{row['dyad_id']}.pdf"
        assert (tmp_path / row["bundle_path"]).is_file()
    assert len(list((res / "by_therapist").rglob("*.pdf"))) == len(DYADS) + len(therapists)  # and the caseload pages
    n_jobs = proc.stderr.count("rule report_shard:")
    assert n_jobs == 2  # 4 dyads, 2 per shard: 2 jobs, not 4

    before = _state(tmp_path)
    # change one WAI-SR answer of D004 (session 5): only D004's reports change (D004 shares its
    # ratings with the therapist; without consent_share_ratings the therapist's copy would not show it)
    rows = data.read_text(encoding="utf-8").splitlines()
    target = next(i for i, ln in enumerate(rows) if ln.startswith("D004,") and ",5,20" in ln and ",wai_sr," in ln)
    cells = rows[target].split(",")
    first_item = cells.index("wai_sr") + 1
    cells[first_item] = "1" if cells[first_item] != "1" else "5"
    rows[target] = ",".join(cells)
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    proc = snakemake(tmp_path, *TARGETS, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = _state(tmp_path)
    # exactly one report_shard job ran: D004's (the plan rewrote every shard's tables, but
    # only D004's shard's bytes differ, and Snakemake compares checksums)
    ran = [block.split("wildcards: shard=", 1)[1].split()[0] for block in proc.stderr.split("rule report_shard:")[1:]]
    shard = next(k for k in ("0", "1") if "D004" in _shard_dyads(tmp_path, k))
    assert ran == [shard], proc.stderr[-3000:]
    changed_bytes = sorted(k for k in after if after[k][1] != before[k][1])
    therapist = index.filter(pl.col("dyad_id") == "D004").get_column("therapist_id")[0]
    # the therapist's caseload page may change with D004 (its status or alliance alert); no other page may
    tables = [k for k in changed_bytes if k.startswith("reports/shards/tables/")]
    assert tables and {k.split("/")[3] for k in tables} == {shard}
    assert set(k for k in changed_bytes if k.endswith(".pdf")) - {
        "reports/cohort.pdf",
        "reports/validation.pdf",
        f"reports/caseload/{therapist}/_caseload.pdf",
        f"reports/by_therapist/{therapist}/_caseload.pdf",
    } == {
        "reports/dyads/D004.pdf",
        f"reports/by_therapist/{therapist}/D004.pdf",
        f"reports/shards/pdf/{shard}/dyads/D004.pdf",
        f"reports/shards/pdf/{shard}/by_therapist/{therapist}/D004.pdf",
    }
    # rendered again (a new file): only the dyads of D004's shard
    rendered = {
        k.rsplit("/", 1)[1][:-4] for k in after if k.startswith("reports/dyads/") and after[k][0] != before[k][0]
    }
    assert rendered == set(_shard_dyads(tmp_path, shard)) and len(rendered) < len(DYADS)

    # a no-op rerun runs nothing and renders nothing
    proc = snakemake(tmp_path, *TARGETS, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stderr and "rule report_" not in proc.stderr
    assert _state(tmp_path) == after


def _shard_dyads(root: Path, shard: str) -> list[str]:
    manifest = json.loads((root / "results" / "reports" / "shards" / f"{shard}.json").read_text(encoding="utf-8"))
    return [r["dyad_id"] for r in manifest["reports"]]
