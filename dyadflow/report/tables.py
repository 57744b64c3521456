"""The tables the reports read, always with the contract columns (dyadflow.core.contract).

Statistics (issue 4), selection (issue 5) and validation write these files. A study
may lack some of them (no selection configured) or an older results folder may lack
columns: :func:`read_report_tables` then adds every missing contract column as null,
and the report shows "—" with a short explanation. Reports never fail on a missing
optional table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dyadflow.core.accounting import AccountingModel, RejectionsModel
from dyadflow.core.contract import conform, empty, read_table
from dyadflow.score.contract import ScoresModel
from dyadflow.select.common import SelectionModel
from dyadflow.stats.contract import (
    DyadsModel,
    FeedbackModel,
    RupturesModel,
    SessionsModel,
    SubscalesModel,
    SuddenGainsModel,
)
from dyadflow.validate.consent import ConsentModel

# The contract of each table the reports read (owned by the stage that writes it)
CONTRACTS = {
    "dyads": DyadsModel,
    "sessions": SessionsModel,
    "scores": ScoresModel,
    "sudden_gains": SuddenGainsModel,
    "ruptures": RupturesModel,
    "rejections": RejectionsModel,
    "consent": ConsentModel,
    "feedback": FeedbackModel,
    "subscales": SubscalesModel,
}
ACCOUNTING = AccountingModel


def with_selection_columns(selection: pl.DataFrame) -> pl.DataFrame:
    """The selections of all strategies: the selection contract plus the ``strategy`` (configured name)."""
    if "strategy" not in selection.columns:
        selection = selection.with_columns(pl.lit(None, dtype=pl.String).alias("strategy"))
    return conform(selection, SelectionModel).select(*SelectionModel.to_schema().columns, "strategy")


def with_note(scores: pl.DataFrame) -> pl.DataFrame:
    """The scores with a ``note`` column (the score stage carries it; null in an older results folder)."""
    return scores if "note" in scores.columns else scores.with_columns(pl.lit(None, dtype=pl.String).alias("note"))


@dataclass
class ReportTables:
    dyads: pl.DataFrame
    sessions: pl.DataFrame
    scores: pl.DataFrame
    sudden_gains: pl.DataFrame
    ruptures: pl.DataFrame
    selection: pl.DataFrame  # all strategies, with a ``strategy`` column (the configured name)
    rejections: pl.DataFrame
    missing: list[str] = field(default_factory=list)  # files that were not there
    # every recorded consent decision (CONSENT); none recorded = no consent
    consent: pl.DataFrame = field(default_factory=lambda: empty(ConsentModel))
    # the feedback rows (FeedbackModel); none = the clinician copy shows no signal
    feedback: pl.DataFrame = field(default_factory=lambda: empty(FeedbackModel))
    # the subscale profile per dyad and rater (stats); none = no profile chart
    subscales: pl.DataFrame = field(default_factory=lambda: empty(SubscalesModel))


def read_report_tables(results_dir: str | Path, strategies: list[str] = ()) -> ReportTables:
    """Read every table the reports use from ``results_dir``, with all contract columns.

    ``strategies`` are the configured selection names (``results/selection/<name>.csv``).
    A missing file gives an empty table and is listed in ``missing``; a missing column
    is added as null.
    """
    root = Path(results_dir)
    paths = {
        "dyads": root / "stats" / "dyads.parquet",
        "sessions": root / "stats" / "sessions.parquet",
        "scores": root / "scores" / "questionnaires.parquet",
        "sudden_gains": root / "stats" / "sudden_gains.csv",
        "ruptures": root / "stats" / "ruptures.csv",
        # the validate rule's declared output (no rule writes a rejections.parquet)
        "rejections": root / "validation" / "rejections.csv",
        "consent": root / "validated" / "consent.parquet",
        "feedback": root / "stats" / "feedback.parquet",
        "subscales": root / "stats" / "subscales.csv",
    }
    missing = [str(p) for p in paths.values() if not p.exists()]
    frames = {key: read_table(paths[key], model) for key, model in CONTRACTS.items()}
    frames["scores"] = with_note(frames["scores"])
    parts = []
    for name in strategies:
        path = root / "selection" / f"{name}.csv"
        if not path.exists():
            missing.append(str(path))
        parts.append(read_table(path, SelectionModel).with_columns(pl.lit(name).alias("strategy")))
    selection = with_selection_columns(pl.concat(parts) if parts else pl.DataFrame(schema={"strategy": pl.String}))
    return ReportTables(selection=selection, missing=missing, **frames)
