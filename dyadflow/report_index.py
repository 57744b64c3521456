"""The index of rendered dyad reports, and removal of reports of dyads that are gone."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from dyadflow import io


def run(manifests: list[str], out_dir: str, out_index: str) -> pl.DataFrame:
    rows = []
    for path in manifests:
        rows.extend(json.loads(Path(path).read_text(encoding="utf-8"))["reports"])
    index = pl.DataFrame(rows, schema={"dyad_id": pl.String, "path": pl.String, "sha256": pl.String}).sort("dyad_id")
    keep = set(index.get_column("path").to_list())
    folder = Path(out_dir)
    if folder.is_dir():
        for pdf in folder.glob("*.pdf"):
            if str(pdf) not in keep:  # the dyad left the data: its old report must not linger
                pdf.unlink()
    io.write_csv(out_index, index)
    return index
