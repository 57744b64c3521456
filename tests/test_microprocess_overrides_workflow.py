"""microprocess.overrides through Snakemake: a declared input of the microprocess rule
(only when configured), so the researcher's file reaches segments.csv and editing it
reruns the stage."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest
from conftest import REPO

pytestmark = pytest.mark.e2e

SHORT = [10, 10, 10, 8, 5, 2, 2, 4, 9, 15, 20, 20, 18, 25, 30, 28]


def snakemake(tmp_path, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "results/microprocess/segments.csv",
            "--cores",
            "1",
            *args,
            "--configfile",
            str(tmp_path / "study.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_overrides_are_an_input_of_the_microprocess_rule(tmp_path):
    (tmp_path / "q.csv").write_text(
        "dyad_id,patient_id,therapist_id,session,date,rater,instrument,total\n", encoding="utf-8"
    )
    dial = ["dyad_id,session,rater,second,rating"] + [f"D1,1,patient,{t},{v}" for t, v in enumerate(SHORT)]
    (tmp_path / "dial.csv").write_text("\n".join(dial) + "\n", encoding="utf-8")
    (tmp_path / "overrides.csv").write_text(
        "dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,rupture,0,3\n", encoding="utf-8"
    )
    (tmp_path / "study.yaml").write_text(
        "study: {name: overrides}\ninputs:\n  - {path: q.csv, format: canonical_csv}\n"
        "microprocess:\n  inputs:\n    - {path: dial.csv}\n"
        "  smoothing_s: 1\n  min_separation_s: 3\n  overrides: overrides.csv\n",
        encoding="utf-8",
    )
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seg = pl.read_csv(tmp_path / "results" / "microprocess" / "segments.csv")
    assert seg.filter(pl.col("kind") == "rupture").select(
        "rank", "start_s", "end_s", "extreme_rating", "source"
    ).rows() == [
        (1, 0, 3, 8.0, "manual"),
    ]
    assert set(seg.filter(pl.col("kind") != "rupture").get_column("source")) == {"algorithm"}
    # a researcher edits the file: the stage is due again
    (tmp_path / "overrides.csv").write_text(
        "dyad_id,session,rater,kind,start_s,end_s\nD1,1,patient,rupture,1,3\n", encoding="utf-8"
    )
    dry = snakemake(tmp_path, "-n")
    assert dry.returncode == 0 and "Updated input files: overrides.csv" in dry.stdout
