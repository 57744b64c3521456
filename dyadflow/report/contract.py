"""The table the report stage writes: results/reports/index.csv.

One row per published PDF: a dyad's research report (``path``) and its copy in the
therapist's bundle (``bundle_path``), ``kind`` ``dyad``; then one row per therapist's
caseload page (``kind`` ``caseload``: no dyad, no ``path``). Each file's SHA-256 is next
to its path, so a reader can check what was published (docs/reports.md).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from dyadflow.core.contract import Contract, nullable

INDEX_KINDS = ("dyad", "caseload")


class ReportIndexModel(Contract):
    dyad_id: pl.String = nullable()
    therapist_id: pl.String = pa.Field(nullable=False)
    path: pl.String = nullable()
    sha256: pl.String = nullable()
    bundle_path: pl.String = pa.Field(nullable=False)
    bundle_sha256: pl.String = pa.Field(nullable=False)
    kind: pl.String = pa.Field(nullable=False, isin=list(INDEX_KINDS))
