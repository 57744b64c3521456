"""The report stages' inputs by name, at their places in a results folder, for the tests that
call the report code directly (in the workflow, the report rules name them)."""

from __future__ import annotations

from pathlib import Path

TABLES = {
    "dyads": "stats/dyads.parquet",
    "sessions": "stats/sessions.parquet",
    "scores": "scores/questionnaires.parquet",
    "sudden_gains": "stats/sudden_gains.csv",
    "ruptures": "stats/ruptures.csv",
    "rejections": "validation/rejections.csv",
    "consent": "validated/consent.parquet",
    "feedback": "stats/feedback.parquet",
    "subscales": "stats/subscales.csv",
}
COHORT = {
    "dyads": "stats/dyads.parquet",
    "sessions": "stats/sessions.parquet",
    "cohort": "stats/cohort.json",
    "multilevel": "stats/multilevel.json",
    "agreement": "coding/agreement.csv",
    "comparison": "coding/comparison.csv",
}
VALIDATION = {
    "accounting": "validation/accounting.csv",
    "rejections": "validation/rejections.csv",
    "warnings": "validation/warnings.csv",
    "sessions": "stats/sessions.parquet",
}
MICROPROCESS = {
    "sessions": "microprocess/sessions.csv",
    "segments": "microprocess/segments.csv",
    "series": "microprocess/series.parquet",
}


def paths_at(results: str | Path, names: dict[str, str]) -> dict[str, str]:
    return {k: str(Path(results) / rel) for k, rel in names.items()}


def selections(results: str | Path, names, suffix: str = ".csv") -> dict[str, str]:
    return {n: str(Path(results) / "selection" / f"{n}{suffix}") for n in names}
