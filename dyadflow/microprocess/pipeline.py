"""The microprocess stage: read, validate, then analyse every session at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.core.accounting import AccountingModel
from dyadflow.core.performance import fast_path_enabled
from dyadflow.microprocess import KEY, congruence, load, segments, series
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


# rows (rated seconds) per batch of the analysis, fast path only: whole dyad-sessions of the
# sorted table, about this many rows each, analysed one after the other (see ``analyse``)
BATCH_ROWS = 2_000_000


def _batches(rows: pl.DataFrame, keys: pl.DataFrame, size: int) -> list[tuple[int, int, int, int]]:
    """Contiguous blocks of whole dyad-sessions, about ``size`` rows each:
    (first series, past the last series, first row, past the last row)."""
    n_series = keys.height
    firsts = np.searchsorted(rows.get_column("series").to_numpy(), np.arange(n_series + 1))
    pair_start = keys.select(
        pl.any_horizontal(pl.col(c) != pl.col(c).shift(1) for c in ("dyad_id", "session")).fill_null(True)
    ).to_series()
    starts = np.flatnonzero(pair_start.to_numpy())  # the first series of each dyad-session
    block = firsts[starts] // size
    cuts = np.append(starts[np.flatnonzero(np.diff(block, prepend=-1))], n_series)
    return [(int(a), int(b), int(firsts[a]), int(firsts[b])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _analyse(rows: pl.LazyFrame, keys: pl.DataFrame, s: dict, overrides: pl.DataFrame | None) -> Analysis:
    """The analysis of the series in ``rows`` (numbered 0 … keys.height − 1)."""
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
        segments=segments.find(smoothed, keys, s, overrides),
        gaps=gaps_out,
        series=smoothed,
        keys=keys,
    )


def analyse(accepted: pl.DataFrame | pl.LazyFrame, config: dict | None = None, in_order: bool = False) -> Analysis:
    """Gaps, congruence, discrepancy and segments of accepted ratings
    (``dyad_id, session, rater, second, rating``; one row per rated second).

    With the fast path (and no overrides), whole dyad-sessions of the sorted table are
    analysed in batches of about ``BATCH_ROWS`` rows, one after the other, and the
    results concatenated in order: every statistic is per series or per dyad-session,
    and every output is sorted by dyad, session and rater, so the tables are the same;
    each step's working memory is a batch's instead of the whole table's. ``in_order``:
    ``accepted`` is known to be sorted with no second twice (:func:`series.number_series`)."""
    s = fill_settings(config)
    rows, keys = series.number_series(accepted, in_order=in_order and fast_path_enabled())
    overrides = segments.read_overrides(s["overrides"]) if s.get("overrides") else None
    if overrides is not None or not fast_path_enabled() or keys.height == 0:
        return _analyse(rows, keys, s, overrides)
    table = rows.collect()
    parts = []
    for s0, s1, r0, r1 in _batches(table, keys, BATCH_ROWS):  # a few dozen batches at 60 M rows
        local = table.slice(r0, r1 - r0).with_columns(pl.col("series") - s0)
        part = _analyse(local.lazy(), keys.slice(s0, s1 - s0).with_columns(pl.col("series") - s0), s, None)
        part.series = part.series.with_columns(pl.col("series") + s0)
        parts.append(part)
    if len(parts) == 1:
        return Analysis(parts[0].sessions, parts[0].segments, parts[0].gaps, parts[0].series, keys)
    return Analysis(
        sessions=pl.concat([p.sessions for p in parts]),
        segments=pl.concat([p.segments for p in parts]),
        gaps=pl.concat([p.gaps for p in parts]),
        series=pl.concat([p.series for p in parts]),
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
    # only what the analysis reads; the tables read and judged are let go before it (at 60 M rows
    # they are gigabytes: the file's text columns, provenance, the rows as typed)
    accepted = checked.accepted.select(*KEY, "second", "rating")
    del raw, clean, checked
    result = analyse(accepted, s, in_order=True)  # validation sorts what it accepts, duplicates removed
    del accepted
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
