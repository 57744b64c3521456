"""The tables the reports read, always with the contract columns (dyadflow.core.contract).

Statistics (issue 4), selection (issue 5) and validation write these files. A study
may lack some of them (no selection configured) or an older results folder may lack
columns: :func:`read_report_tables` then adds every missing contract column as null,
and the report shows "—" with a short explanation. Reports never fail on a missing
optional table.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def read_report_tables(
    files: Mapping[str, str | Path | None], selections: Mapping[str, str | Path] | None = None
) -> ReportTables:
    """Read every table the reports use from ``files`` (the rule's named inputs: one path per
    name of :data:`CONTRACTS`), with all contract columns.

    ``selections`` maps each configured selection name to its ``<name>.csv``. A name without
    a path, or a path that does not exist, gives an empty table and is listed in ``missing``;
    a missing column is added as null.
    """
    paths = {key: files.get(key) for key in CONTRACTS}
    missing = [str(p if p is not None else key) for key, p in paths.items() if p is None or not Path(p).exists()]
    frames = {key: read_table(paths[key], model) for key, model in CONTRACTS.items()}
    parts = []
    for name, path in (selections or {}).items():
        if not Path(path).exists():
            missing.append(str(path))
        parts.append(read_table(path, SelectionModel).with_columns(pl.lit(name).alias("strategy")))
    selection = with_selection_columns(pl.concat(parts) if parts else pl.DataFrame(schema={"strategy": pl.String}))
    return ReportTables(selection=selection, missing=missing, **frames)
