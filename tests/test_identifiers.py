"""No direct identifiers in clinician reports (issue: hardening).

A small canonical export is seeded with names, e-mails, phone numbers, addresses and
personal identity numbers in columns the mapping does not name, and with e-mails and
phone numbers in the patients' notes. The workflow runs end to end with the clinician
audience; the text of every PDF it writes must hold none of the seeded column data, and
the notes it shows (consent given) must have the contact details redacted. All data here
are invented and marked as such (example.invalid, 000 numbers).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader
from report_inputs import VALIDATION, paths_at

from dyadflow.core import atomic
from dyadflow.tools import demo_study as demo

REPO = Path(__file__).resolve().parent.parent
SEEDED = {
    "patient_name": "Testperson Alfa Exempelsson",
    "email": "alfa.exempel@example.invalid",
    "Telefon": "+46 70 000 00 99",
    "address": "Exempelgatan 99, 000 00 Ingenstad",
    "personnummer": "19000101-0000",
}
NOTE = "Ring mig på 070-000 00 01 eller mejla beta@example.invalid om tiden."


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


@pytest.fixture(scope="module")
def clinician_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ident")
    table = demo.generate(n_dyads=3, n_sessions=4, bad_rows=False)
    consent = pl.col("dyad_id") == "D001"  # D001 shares text; the others do not
    is_note = (pl.col("instrument") == "wai_sr") & (pl.col("session") == "2")
    table = table.with_columns(
        pl.when(is_note).then(pl.lit(NOTE)).otherwise(pl.col("note")).alias("note"),
        # consent is the patient's decision: on the patient's rows only
        pl.when(pl.col("rater") != "patient")
        .then(None)
        .when(consent)
        .then(pl.lit("true"))
        .otherwise(pl.lit("false"))
        .alias("consent_share_text"),
        *[pl.lit(v).alias(k) for k, v in SEEDED.items()],
    )
    (tmp / "data").mkdir()
    atomic.write_bytes(tmp / "data" / "export.csv", atomic.csv_bytes(table))
    cfg = tmp / "study.yaml"
    cfg.write_text(
        "study: {name: Identifier test}\ninputs:\n  - {path: data/export.csv, format: canonical_csv}\n"
        "data_freeze: '2030-01-01'\nreport: {audience: clinician}\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp),
            "--cores",
            "2",
            "--configfile",
            str(cfg),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def test_unmapped_identifier_columns_are_dropped_and_listed(clinician_run):
    warnings = pl.read_csv(clinician_run / "results" / "validation" / "warnings.csv")
    assert sorted(warnings.get_column("column").to_list()) == sorted(SEEDED)
    validated = pl.read_parquet(clinician_run / "results" / "validated" / "questionnaires.parquet")
    assert not set(SEEDED) & set(validated.columns)
    text = pdf_text(clinician_run / "results" / "reports" / "validation.pdf")
    assert "personnummer" in text and "Exempelsson" not in text


def test_clinician_pdfs_hold_no_identifier_and_redacted_notes(clinician_run):
    reports = clinician_run / "results" / "reports"
    public = [*reports.glob("dyads/*.pdf"), *reports.glob("by_therapist/*/*.pdf"), *reports.glob("*.pdf")]
    assert len(public) == 3 + 3 + 3 + 2  # dyads, bundles, a caseload page per therapist, cohort + validation
    pdfs = sorted(reports.rglob("*.pdf"))  # and the shards' and caseload job's own copies (hard links)
    assert len(pdfs) == len(public) + 3 + 3 + 3
    for pdf in pdfs:
        text = pdf_text(pdf)
        for value in [*SEEDED.values(), "beta@example.invalid", "070-000 00 01"]:
            assert value not in text, (pdf.name, value)
    d001 = " ".join(pdf_text(reports / "dyads" / "D001.pdf").split())
    assert "Ring mig på [phone removed] eller mejla [e-mail removed] om tiden." in d001
    for other in ("D002", "D003"):  # no consent: the note is not shown at all
        assert "Ring mig" not in pdf_text(reports / "dyads" / f"{other}.pdf")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 KB tmpfs: too small for a report (needs root, as CI has)."""
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_rendering_into_a_full_disk_fails_cleanly(clinician_run, tiny_disk, capsys):
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    from dyadflow.stages import StageFailed, run_stage

    (tiny_disk / "reports").mkdir()
    with open(tiny_disk / "filler", "wb") as fh:  # the disk is full but for a few bytes
        try:
            fh.write(b"x" * (16 * 1024 - 512))
        except OSError:
            pass
    out = tiny_disk / "reports" / "validation.pdf"
    with pytest.raises(StageFailed):
        run_stage(
            "report_validation",
            log=[str(clinician_run / "logs" / "full_disk.log")],
            input=Namedlist(fromdict=paths_at(clinician_run / "results", VALIDATION)),
            output=SimpleNamespace(pdf=str(out)),
            params=SimpleNamespace(study="Identifier test", config_sha256="0" * 64),
        )
    err = capsys.readouterr().err
    assert f"{out}: cannot be written: no space left on the device" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tiny_disk.rglob("*")) == ["filler", "reports"]  # no PDF, no half-written temp file
