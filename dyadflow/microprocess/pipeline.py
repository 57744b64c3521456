"""The microprocess stage: read, validate, then analyse every session at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from dyadflow.core import atomic
from dyadflow.core.accounting import AccountingModel
from dyadflow.core.performance import fast_path_enabled
from dyadflow.microprocess import congruence, load, segments, series
from dyadflow.microprocess import settings as fill_settings
from dyadflow.microprocess.congruence import MicroSessionsModel
from dyadflow.microprocess.dial_checks import validate_frame
from dyadflow.microprocess.segments import SegmentsModel

log = logging.getLogger("dyadflow")

SERIES_COLUMNS = {
    "dyad_id": pl.String,
    "session": pl.Int32,
    "rater": pl.String,
    "second": pl.Int32,
    "rating": pl.Float64,
    "observed": pl.Boolean,
    "smoothed": pl.Float64,
}


@dataclass
class Analysis:
    sessions: pl.DataFrame
    segments: pl.DataFrame
    gaps: pl.DataFrame
    series: pl.DataFrame  # series id, second, rating, observed, smoothed
    keys: pl.DataFrame  # series id → dyad_id, session, rater

    def _series_lazy(self) -> pl.LazyFrame:
        return (
            self.series.lazy()
            .join(self.keys.lazy(), on="series", how="left", maintain_order="left")
            .select(list(SERIES_COLUMNS))
            .cast(SERIES_COLUMNS)
        )

    def series_table(self) -> pl.DataFrame:
        """The per-second table with its keys (results/microprocess/series.parquet)."""
        return self._series_lazy().collect()

    def write_series(self, path) -> None:
        """Write the per-second table, streamed (the keys are never copied onto every row in memory)."""
        with atomic.atomic_path(path) as tmp:
            self._series_lazy().sink_parquet(tmp, compression="zstd", statistics=True)


def analyse(accepted: pl.DataFrame | pl.LazyFrame, config: dict | None = None) -> Analysis:
    """Gaps, congruence, discrepancy and segments of accepted ratings
    (``dyad_id, session, rater, second, rating``; one row per rated second)."""
    s = fill_settings(config)
    rows, keys = series.number_series(accepted)
    gap_table = series.gaps(rows, s["max_gap_s"]).collect()
    grid = series.fill(rows, gap_table)
    smoothed = series.smooth(grid, s["smoothing_s"])
    gaps_out = (
        gap_table.join(keys, on="series", how="left")
        .select(list(series.GAP_COLUMNS))
        .cast(series.GAP_COLUMNS)
        .sort("dyad_id", "session", "rater", "from_s")
    )
    return Analysis(
        sessions=congruence.sessions(grid, keys),
        segments=segments.find(
            smoothed, keys, s, segments.read_overrides(s["overrides"]) if s.get("overrides") else None
        ),
        gaps=gaps_out,
        series=smoothed,
        keys=keys,
    )


def run(specs: list[dict], config: dict, out: dict) -> Analysis:
    """Read and validate the inputs, analyse, write every output named in ``out``."""
    s = fill_settings(config)
    lo, hi, max_s = s["range"]["min"], s["range"]["max"], s["max_session_s"]
    if fast_path_enabled():  # long files read typed, the text path only for rows that are not clean
        raw, clean, metas = load.read_inputs_screened([dict(x) for x in specs], lo, hi, max_s)
    else:
        (raw, metas), clean = load.read_inputs([dict(x) for x in specs]), None
    checked = validate_frame(raw, metas, lo, hi, max_s, clean=clean)
    atomic.write_csv(out["rejections"], checked.rejections)
    atomic.write_table(out["accounting"], checked.accounting, AccountingModel, "csv")
    for row in checked.accounting.iter_rows(named=True):  # one line per file in the log
        log.info(
            "%s: %d read, %d accepted, %d rejected",
            row["source_file"],
            row["rows_read"],
            row["rows_accepted"],
            row["rows_rejected"],
        )
    if checked.rejections.height:
        counts = checked.rejections.group_by("rule").len().sort("rule")
        log.info("rejections by rule: %s", ", ".join(f"{r} {n}" for r, n in counts.iter_rows()))
    result = analyse(checked.accepted, s)
    atomic.write_table(out["sessions"], result.sessions, MicroSessionsModel, "csv")
    atomic.write_table(out["segments"], result.segments, SegmentsModel, "csv")
    atomic.write_csv(out["gaps"], result.gaps)
    result.write_series(out["series"])
    log.info(
        "%d sessions, %d segments, %d gaps (%d longer than %d s, not interpolated)",
        result.sessions.height,
        result.segments.height,
        result.gaps.height,
        result.gaps.filter(~pl.col("interpolated")).height,
        s["max_gap_s"],
    )
    return result
