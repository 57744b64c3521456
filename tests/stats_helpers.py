"""Tiny hand-written tables for the stats tests."""

from __future__ import annotations

import datetime as dt

import polars as pl

from dyadflow.stats.sessions import SESSION_COLUMNS


def scores(rows: list[tuple]) -> pl.DataFrame:
    """A scores table from (dyad_id, session, instrument, rater, score) tuples."""
    return pl.DataFrame(
        {
            "dyad_id": [r[0] for r in rows],
            "patient_id": ["P" + r[0] for r in rows],
            "therapist_id": ["T1" for _ in rows],
            "session": [r[1] for r in rows],
            "date": [dt.date(2024, 1, 1) + dt.timedelta(days=7 * r[1]) for r in rows],
            "rater": [r[3] for r in rows],
            "instrument": [r[2] for r in rows],
            "score": [None if r[4] is None else float(r[4]) for r in rows],
            "arm": ["CBT" for _ in rows],
            "source_file": ["t.csv" for _ in rows],
            "source_line": list(range(2, len(rows) + 2)),
        },
        schema_overrides={"session": pl.Int32},
    )


def sessions(data: dict[str, dict[str, list]]) -> pl.DataFrame:
    """A sessions table: {dyad: {"session": [...], "outcome": [...], ...}}; other columns null."""
    parts = []
    for dyad, cols in data.items():
        n = len(cols["session"])
        frame = {"dyad_id": [dyad] * n}
        for c in SESSION_COLUMNS[1:]:
            if c == "date":
                continue
            frame[c] = cols.get(c, [None] * n)
        parts.append(
            pl.DataFrame(
                frame,
                schema_overrides={
                    c: pl.Float64 for c in frame if c not in ("dyad_id", "session", "outcome_next_session")
                },
            )
        )
    return pl.concat(parts).with_columns(pl.col("session").cast(pl.Int32))
