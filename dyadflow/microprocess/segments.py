"""Ruptures, repairs, peaks and clips of every rater's smoothed series, all at once.

Definitions (on the smoothed series; a second without a smoothed value splits the
series into pieces, and no shape is read across such a split):

* **Opened series**: the smoothed series with upward blips narrower than
  ``2 · smoothing_s − 1`` seconds removed (a morphological opening: rolling minimum,
  then rolling maximum). Declines, valleys and wide plateaus are unchanged; a small
  bump at the bottom of a dip or during a decline no longer interrupts it.
* **Candidate minimum** (on the opened series): a second where the series has just
  fallen (or a piece starts) and the next change is a rise (or the piece ends). On a
  flat bottom the first second counts.
* **Ruptures**: the ``n_segments`` lowest candidates, chosen greedily (lowest first;
  on ties the earlier), each segment ``[onset, minimum]`` at least
  ``min_separation_s`` seconds from every segment already chosen (so they never
  overlap). Rank 1 is the lowest. ``extreme_rating`` is the smoothed rating at the
  minimum.
* **Onset**: where the decline into the minimum begins. First on the opened series:
  the last second before the first fall of the uninterrupted non-increasing run that
  ends in the minimum (the end of the plateau at the top). Then, within that stretch,
  on the smoothed series: the last second within ``onset_tolerance`` points of the
  stretch's highest rating, and back from there through the uninterrupted decline to
  its top. Refining only moves the onset later, so the separation still holds.
* **Repairs**: for each rupture, the first second after its minimum where the
  smoothed rating is at least ``repair_rise`` points above that minimum (the series'
  later pieces count too). The repair ends where that rise levels off: the last
  second that rose before the next fall (or the end of the piece), i.e. the first
  second of the plateau at the top; ``extreme_rating`` is the smoothed rating there. A rupture without such a second has no repair row. A repair has the
  rank of its rupture.
* **Peaks** (helpful moments, after Swift et al. 2017): the same as ruptures on the
  negated series (downward blips are passed over): the ``n_segments`` highest, onset
  where the rise into the peak begins, segment ``[onset, peak]``.
* **Clip**: ``clip_s`` seconds, written ``mm:ss–mm:ss`` (minutes may exceed 59), cut
  at the series' first and last seconds. With ``clip_anchor: minimum`` (the default) a
  rupture's clip ends ``clip_after_s`` seconds after its minimum (so it holds the low
  and the ``clip_s − clip_after_s`` seconds before it, however long the decline), and a
  repair's clip starts where the rise begins: the last second of the lowest smoothed
  rating between the rupture's minimum and the repair's start. Peaks, and every
  segment with ``clip_anchor: start``, clip from the segment's start.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.contract import Contract, dtypes, nullable
from dyadflow.core.errors import DyadflowError


class SegmentsModel(Contract):
    """results/microprocess/segments.csv: one row per segment (rupture-like drop, peak, ...)."""

    dyad_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    rater: pl.String = nullable()
    kind: pl.String = nullable()
    rank: pl.Int32 = nullable()
    start_s: pl.Int32 = nullable()
    end_s: pl.Int32 = nullable()
    clip: pl.String = nullable()
    extreme_rating: pl.Float64 = nullable()
    source: pl.String = nullable()  # algorithm, or manual (microprocess.overrides)


SEGMENT_COLUMNS = dtypes(SegmentsModel)
OVERRIDE_COLUMNS = ("dyad_id", "session", "rater", "kind", "start_s", "end_s")
KIND_ORDER = {"rupture": 0, "repair": 1, "peak": 2}


def _pieces(smoothed: pl.DataFrame, column: str) -> pl.LazyFrame:
    """series, second, s, piece start/end flags and d (the change from the previous second)."""
    s = pl.col("s")
    start = pl.col("_piece_start")
    return (
        smoothed.lazy()
        .select("series", "second", pl.col(column).alias("s"))
        .filter(s.is_not_null())
        .with_columns(
            ((pl.col("series") != pl.col("series").shift(1)) | (pl.col("second") - pl.col("second").shift(1) != 1))
            .fill_null(True)
            .alias("_piece_start"),
        )
        .with_columns(
            pl.col("_piece_start").shift(-1).fill_null(True).alias("_piece_end"),
            pl.when(~start).then(s - s.shift(1)).alias("d"),
        )
    )


def minima(smoothed: pl.DataFrame, column: str = "smoothed") -> pl.DataFrame:
    """The candidate minima: series, second, s, onset (where the decline into it begins)."""
    d = pl.col("d")
    start = pl.col("_piece_start")
    end = pl.col("_piece_end")
    return (
        _pieces(smoothed, column)
        .with_columns(
            # sign of the change; 0 (a boundary) at each piece start, empty on a flat step
            pl.when(start).then(0).when(d > 0).then(1).when(d < 0).then(-1).cast(pl.Int8).alias("_sgn"),
            (start | (d > 0)).alias("_run_start"),
            (d < 0).fill_null(False).cum_sum().cast(pl.Int64).alias("_falls"),
        )
        .with_columns(
            pl.when(end).then(0).otherwise(pl.col("_sgn").shift(-1).backward_fill().fill_null(0)).alias("_next_sgn"),
            # falls so far in this run (a run starts at a rise or a piece start)
            (pl.col("_falls") - pl.when("_run_start").then("_falls").forward_fill()).alias("_falls"),
        )
        .with_columns(
            pl.when((d < 0) & (pl.col("_falls") == 1))
            .then(pl.col("second") - 1)
            .when("_run_start")
            .then(-1)
            .forward_fill()
            .alias("_first_fall"),
        )
        .filter((start | (d < 0)) & pl.col("_next_sgn").is_in([0, 1]))
        .select(
            "series",
            "second",
            "s",
            pl.when(pl.col("_first_fall") >= 0).then("_first_fall").otherwise("second").cast(pl.Int32).alias("onset"),
        )
        .collect()
    )


def rises(smoothed: pl.DataFrame, column: str = "smoothed") -> pl.DataFrame:
    """The seconds where a threshold can first be crossed (a rise, or a piece start):
    series, second, s, top and top_s (where the rise levels off, and the value there)."""
    s = pl.col("s")
    d = pl.col("d")
    start = pl.col("_piece_start")
    end = pl.col("_piece_end")
    return (
        _pieces(smoothed, column)
        .with_columns(
            # the last second that rose (the start of the plateau at the top)
            pl.when(d > 0).then("second").when(start).then(-1).forward_fill().alias("_lr"),
        )
        .with_columns(
            pl.when(d < 0).then(pl.col("_lr").shift(1)).when(end).then("_lr").alias("_h"),
            pl.when(d < 0).then(s.shift(1)).when(end).then(s).alias("_hv"),
        )
        .with_columns(
            pl.max_horizontal("second", pl.when(end).then("_lr").otherwise(pl.col("_h").shift(-1).backward_fill()))
            .cast(pl.Int32)
            .alias("top"),
            pl.when(end).then("s").otherwise(pl.col("_hv").shift(-1).backward_fill()).alias("top_s"),
        )
        .filter(start | (d > 0))
        .select("series", "second", "s", "top", "top_s")
        .collect()
    )


def pick(candidates: pl.DataFrame, n: int, separation: int) -> pl.DataFrame:
    """Greedy choice of the n lowest candidates per series, segments [onset, second] at
    least ``separation`` seconds apart. Returns series, rank, onset, second, s.

    The loop runs over ranks (n, 3 by default), each step over every series at once."""
    pool = candidates.select("series", "onset", "second", "s")  # the candidate minima
    chosen = []
    for rank in range(1, n + 1):
        best = pool.sort("series", "s", "second").group_by("series", maintain_order=True).first()
        if not best.height:
            break
        chosen.append(best.with_columns(pl.lit(rank, dtype=pl.Int32).alias("rank")))
        b = best.select("series", pl.col("onset").alias("_o"), pl.col("second").alias("_t"))
        pool = (
            pool.join(b, on="series", how="left")
            .filter(
                pl.col("_o").is_null()
                | (pl.col("second") + separation <= pl.col("_o"))
                | (pl.col("onset") >= pl.col("_t") + separation)
            )
            .drop("_o", "_t")
        )
    if not chosen:
        return pl.DataFrame(
            schema={"series": pl.Int32, "rank": pl.Int32, "onset": pl.Int32, "second": pl.Int32, "s": pl.Float64}
        )
    return pl.concat(chosen).select("series", "rank", "onset", "second", "s")


def repairs(rising: pl.DataFrame, ruptures: pl.DataFrame, rise: float, n: int, n_series: int) -> pl.DataFrame:
    """For each rupture, the first second after its minimum with s ≥ minimum + rise.

    One pass over the rising seconds: each rupture's minimum and threshold are looked up
    by series number (an array gather), and every rank is one aggregation."""
    empty = pl.DataFrame(
        schema={"series": pl.Int32, "rank": pl.Int32, "start": pl.Int32, "end": pl.Int32, "value": pl.Float64}
    )
    ranks = sorted(set(ruptures.get_column("rank").to_list()))
    if not ranks:
        return empty
    lookups, aggs = [], []
    for k in ranks:  # over ranks (3 by default), never over series
        part = ruptures.filter(pl.col("rank") == k)
        at = pl.Series(f"_t{k}", [None] * n_series, dtype=pl.Int32).scatter(
            part.get_column("series"), part.get_column("second")
        )
        need = pl.Series(f"_v{k}", [None] * n_series, dtype=pl.Float64).scatter(
            part.get_column("series"), part.get_column("s") + rise
        )
        lookups += [
            pl.lit(at).gather(pl.col("series")).alias(f"_t{k}"),
            pl.lit(need).gather(pl.col("series")).alias(f"_v{k}"),
        ]
        hit = (pl.col("second") > pl.col(f"_t{k}")) & (pl.col("s") >= pl.col(f"_v{k}"))
        aggs += [
            pl.col("second").filter(hit).first().alias(f"start_{k}"),
            pl.col("top").filter(hit).first().alias(f"end_{k}"),
            pl.col("top_s").filter(hit).first().alias(f"value_{k}"),
        ]
    found = rising.lazy().with_columns(lookups).group_by("series").agg(aggs).collect()
    parts = [
        found.select(
            pl.col("series").cast(pl.Int32),
            pl.lit(k, dtype=pl.Int32).alias("rank"),
            pl.col(f"start_{k}").cast(pl.Int32).alias("start"),
            pl.col(f"end_{k}").cast(pl.Int32).alias("end"),
            pl.col(f"value_{k}").alias("value"),
        ).filter(pl.col("start").is_not_null())
        for k in ranks
    ]
    return pl.concat(parts) if parts else empty


def mmss(seconds: pl.Expr) -> pl.Expr:
    return pl.format(
        "{}:{}",
        (seconds // 60).cast(pl.String).str.zfill(2),
        (seconds % 60).cast(pl.String).str.zfill(2),
    )


def clip(start: pl.Expr, last: pl.Expr, clip_s: int) -> pl.Expr:
    return pl.concat_str(mmss(start), pl.lit("–"), mmss(pl.min_horizontal(start + clip_s, last)))


def clip_ending(end: pl.Expr, first: pl.Expr, last: pl.Expr, clip_s: int) -> pl.Expr:
    """A clip of ``clip_s`` seconds ending at ``end`` (cut at the series' first and last second)."""
    stop = pl.min_horizontal(end, last)
    return pl.concat_str(mmss(pl.max_horizontal(stop - clip_s, first)), pl.lit("–"), mmss(stop))


def rise_begins(smoothed: pl.DataFrame, spans: pl.DataFrame) -> pl.Series:
    """For each span (series, ``_from``, ``_to``; seconds of the grid), the last second of
    the lowest smoothed rating within it: where the rise out of the low begins.

    The seconds are gathered by row number (the grid holds every second of a series in
    order), one pass for all spans; no loop over series."""
    if not spans.height:
        return pl.Series("_rise", [], dtype=pl.Int32)
    first_row = smoothed.get_column("series").search_sorted(spans.get_column("series"), side="left").cast(pl.Int64)
    base = pl.Series(first_row) - smoothed.get_column("second").gather(first_row).cast(pl.Int64)
    values = smoothed.get_column("smoothed")
    found = (
        spans.with_columns(base.alias("_base"), pl.int_range(pl.len()).alias("_span"))
        .lazy()
        .select(
            "_span",
            "_base",
            pl.int_ranges(pl.col("_base") + pl.col("_from"), pl.col("_base") + pl.col("_to") + 1).alias("_row"),
        )
        .explode("_row")
        .with_columns(pl.lit(values).gather(pl.col("_row")).alias("v"))
        .group_by("_span")
        .agg((pl.col("_row").filter(pl.col("v") == pl.col("v").min()).max() - pl.col("_base").first()).alias("_rise"))
        .sort("_span")
        .collect()
    )
    return found.get_column("_rise").cast(pl.Int32)


def opening(smoothed: pl.DataFrame, width: int) -> pl.DataFrame:
    """series, second, smoothed, and ``opened``: the smoothed series with every upward
    blip narrower than ``width`` seconds removed (a morphological opening: a centred
    rolling minimum, then a centred rolling maximum, per series). Declines, valleys and
    plateaus wider than ``width`` are kept exactly. ``width`` 1 changes nothing."""
    v = pl.col("smoothed")
    if width <= 1:
        return smoothed.select("series", "second", "smoothed", v.alias("opened"))
    eroded = pl.when(v.is_not_null()).then(v.rolling_min(width, min_samples=1, center=True).over("series"))
    opened = pl.when(v.is_not_null()).then(eroded.rolling_max(width, min_samples=1, center=True).over("series"))
    return smoothed.select("series", "second", "smoothed", opened.alias("opened"))


def refine(chosen: pl.DataFrame, frame: pl.DataFrame, column: str, tolerance: float) -> pl.DataFrame:
    """Onsets on the smoothed series, within each chosen segment [onset, second].

    The segment comes from the opened series (its decline may pass small blips). On the
    smoothed series: the last second of the segment within ``tolerance`` points of the
    segment's highest value, then back from there through the uninterrupted decline to
    its top (the end of the plateau there). Returns ``chosen`` with ``onset`` replaced
    and ``s`` the smoothed value at the minimum.

    The segments' seconds are gathered by row number (the grid holds every second of a
    series in order), one pass for all segments; no loop over series."""
    if not chosen.height:
        return chosen
    series_col = frame.get_column("series")
    first_row = series_col.search_sorted(chosen.get_column("series"), side="left").cast(pl.Int64)
    first_sec = frame.get_column("second").gather(first_row).cast(pl.Int64)
    seg = chosen.with_columns(
        (pl.Series(first_row) - pl.Series(first_sec)).alias("_base"),
        pl.int_range(pl.len()).alias("_seg"),
    )
    values = frame.get_column(column)
    rows = (
        seg.lazy()
        .select(
            "_seg",
            pl.int_ranges(pl.col("_base") + pl.col("onset"), pl.col("_base") + pl.col("second") + 1).alias("_row"),
        )
        .explode("_row")
        .with_columns(
            pl.lit(values).gather(pl.col("_row")).alias("v"),
            (pl.col("_row") - pl.col("_row").min().over("_seg")).alias("_pos"),
        )
        .with_columns(
            (pl.col("v") > pl.col("v").shift(1)).over("_seg").fill_null(False).alias("_rise"),
            (pl.col("v") < pl.col("v").shift(1)).over("_seg").fill_null(False).alias("_fall"),
            (pl.col("v") >= pl.col("v").max().over("_seg") - tolerance).alias("_near_top"),
        )
        .with_columns(pl.col("_pos").filter("_near_top").max().over("_seg").alias("_r"))
        .with_columns(
            pl.col("_pos")
            .filter(pl.col("_rise") & (pl.col("_pos") <= pl.col("_r")))
            .max()
            .over("_seg")
            .fill_null(0)
            .alias("_q")
        )
        .group_by("_seg")
        .agg(
            pl.col("_r").first(),
            pl.col("_pos")
            .filter(pl.col("_fall") & (pl.col("_pos") > pl.col("_q")) & (pl.col("_pos") <= pl.col("_r")))
            .min()
            .alias("_f"),
            pl.col("v").last().alias("_vmin"),
        )
        .collect()
    )
    return (
        seg.join(rows, on="_seg", how="left")
        .with_columns(
            (pl.col("onset") + pl.when(pl.col("_f").is_not_null()).then(pl.col("_f") - 1).otherwise("_r"))
            .cast(pl.Int32)
            .alias("onset"),
            pl.col("_vmin").alias("s"),
        )
        .select(chosen.columns)
    )


def _choose(smoothed: pl.DataFrame, settings: dict, invert: bool) -> pl.DataFrame:
    width = max(1, 2 * int(settings["smoothing_s"]) - 1)
    frame = smoothed.select(
        "series", "second", (-pl.col("smoothed") if invert else pl.col("smoothed")).alias("smoothed")
    )
    opened = opening(frame, width)
    chosen = pick(minima(opened, "opened"), settings["n_segments"], settings["min_separation_s"])
    return refine(chosen, opened, "smoothed", float(settings["onset_tolerance"])).sort("series", "rank")


def clip_column(settings: dict, clip_s: int) -> pl.Expr:
    """The clip of each segment row (with ``kind``, ``start_s``, ``_anchor``, ``_first``, ``_last``)."""
    from_start = clip(pl.col("start_s"), pl.col("_last"), clip_s)
    if settings["clip_anchor"] == "start":
        return from_start
    after = int(settings["clip_after_s"])
    return (
        pl.when(pl.col("kind") == "rupture")
        .then(clip_ending(pl.col("_anchor") + after, pl.col("_first"), pl.col("_last"), clip_s))
        .when(pl.col("kind") == "repair")
        .then(clip(pl.col("_anchor"), pl.col("_last"), clip_s))
        .otherwise(from_start)
    )


def read_overrides(path: str) -> pl.DataFrame:
    """A researcher's own segments (``microprocess.overrides``): a CSV with the header
    ``dyad_id, session, rater, kind, start_s, end_s``. Returns those columns typed, with
    ``source_line``. A bad header or value stops with the file, line and column."""
    from dyadflow.ingest.text import read_text_table
    from dyadflow.microprocess import RATER_SYNONYMS

    table = read_text_table(path, file=path)
    names = {h.strip().lower(): h for h in table.header}
    missing = [c for c in OVERRIDE_COLUMNS if c not in names]
    extra = [h for h in table.header if h.strip().lower() not in OVERRIDE_COLUMNS]
    if missing or extra:
        raise DyadflowError(
            f"the overrides need the header {', '.join(OVERRIDE_COLUMNS)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not allowed: {', '.join(extra)}" if extra else ""),
            file=path,
            line=table.header_line,
            column=(missing or extra)[0],
        )
    raw = table.frame.select(*[pl.col(names[c]).alias(c) for c in OVERRIDE_COLUMNS], "source_line")
    whole = r"^[0-9]{1,6}$"
    checks = {
        "dyad_id": (pl.col("dyad_id").is_not_null(), "a dyad_id is needed"),
        "session": (pl.col("session").str.contains(whole).fill_null(False), "session must be a whole number"),
        "rater": (
            pl.col("rater").str.to_lowercase().is_in(list(RATER_SYNONYMS)).fill_null(False),
            "rater must be patient (or client) or therapist",
        ),
        "kind": (
            pl.col("kind").str.to_lowercase().is_in(list(KIND_ORDER)).fill_null(False),
            "kind must be rupture, repair or peak",
        ),
        "start_s": (
            pl.col("start_s").str.contains(whole).fill_null(False),
            "start_s must be a whole number of seconds",
        ),
        "end_s": (pl.col("end_s").str.contains(whole).fill_null(False), "end_s must be a whole number of seconds"),
    }
    bad = raw.select(
        "source_line",
        *[(~ok).alias(c) for c, (ok, _) in checks.items()],
        *[pl.col(c).alias(f"_v_{c}") for c in OVERRIDE_COLUMNS],
    )
    for column, (_, message) in checks.items():  # six columns, not rows
        hit = bad.filter(pl.col(column)).head(1)
        if hit.height:
            value = hit.get_column(f"_v_{column}")[0]
            raise DyadflowError(
                f"{message} (found '{value or ''}')",
                file=path,
                line=int(hit.get_column("source_line")[0]),
                column=column,
            )
    typed = raw.with_columns(
        pl.col("session").cast(pl.Int32),
        pl.col("rater").str.to_lowercase().replace_strict(RATER_SYNONYMS, return_dtype=pl.String),
        pl.col("kind").str.to_lowercase(),
        pl.col("start_s", "end_s").cast(pl.Int32),
    )
    reversed_ = typed.filter(pl.col("end_s") < pl.col("start_s")).head(1)
    if reversed_.height:
        r = reversed_.row(0, named=True)
        raise DyadflowError(
            f"end_s ({r['end_s']}) is before start_s ({r['start_s']})", file=path, line=r["source_line"], column="end_s"
        )
    return typed


def manual_rows(overrides: pl.DataFrame, smoothed: pl.DataFrame, keys: pl.DataFrame, path: str) -> pl.DataFrame:
    """The override rows as segment rows (series, kind, rank, start_s, end_s,
    extreme_rating, _anchor): ranked by start within their rater, session and kind;
    ``extreme_rating`` the smoothed rating at ``end_s`` (the minimum of a rupture, the
    peak of a peak, where a repair levels off); a rupture's clip is anchored on its
    ``end_s``, a repair's on its ``start_s``."""
    span = smoothed.group_by("series").agg(
        pl.col("second").min().alias("_first"), pl.col("second").max().alias("_last")
    )
    rows = overrides.join(keys, on=["dyad_id", "session", "rater"], how="left").join(span, on="series", how="left")
    unknown = rows.filter(pl.col("series").is_null()).sort("source_line").head(1)
    if unknown.height:
        r = unknown.row(0, named=True)
        raise DyadflowError(
            f"no accepted dial ratings for dyad {r['dyad_id']}, session {r['session']}, {r['rater']}",
            file=path,
            line=r["source_line"],
            column="dyad_id",
        )
    outside = (
        rows.filter((pl.col("start_s") < pl.col("_first")) | (pl.col("end_s") > pl.col("_last")))
        .sort("source_line")
        .head(1)
    )
    if outside.height:
        r = outside.row(0, named=True)
        raise DyadflowError(
            f"the segment {r['start_s']}–{r['end_s']} s is outside the rated seconds {r['_first']}–{r['_last']}",
            file=path,
            line=r["source_line"],
            column="start_s" if r["start_s"] < r["_first"] else "end_s",
        )
    at_end = smoothed.select("series", pl.col("second").alias("end_s"), pl.col("smoothed").alias("extreme_rating"))
    return (
        rows.join(at_end, on=["series", "end_s"], how="left")
        .sort("series", "kind", "start_s", "source_line")
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("series", "kind").alias("rank"),
            pl.when(pl.col("kind") == "repair").then("start_s").otherwise("end_s").alias("_anchor"),
        )
        .select(
            pl.col("series").cast(pl.Int32),
            "kind",
            "rank",
            "start_s",
            "end_s",
            "extreme_rating",
            pl.col("_anchor").cast(pl.Int32),
            pl.lit("manual").alias("source"),
        )
    )


def find(
    smoothed: pl.DataFrame, keys: pl.DataFrame, settings: dict, overrides: pl.DataFrame | None = None
) -> pl.DataFrame:
    """segments.csv rows for every series in ``smoothed`` (series, second, smoothed).

    ``overrides`` (from :func:`read_overrides`) replace the algorithm's segments of their
    kind for their rater and session (``source`` manual)."""
    n, rise, clip_s = settings["n_segments"], settings["repair_rise"], settings["clip_s"]
    ruptures = _choose(smoothed, settings, invert=False)
    fixed = repairs(rises(smoothed), ruptures, rise, n, keys.height)
    peaks = _choose(smoothed, settings, invert=True)
    # where each repair's rise begins: the lowest point between its rupture's minimum and its start
    spans = fixed.join(
        ruptures.select("series", "rank", pl.col("second").alias("_from")), on=["series", "rank"], how="left"
    ).with_columns(pl.col("start").alias("_to"))
    fixed = fixed.with_columns(rise_begins(smoothed, spans.select("series", "_from", "_to")).alias("_anchor"))
    last = smoothed.group_by("series").agg(
        pl.col("second").max().alias("_last"), pl.col("second").min().alias("_first")
    )
    rows = pl.concat(
        [
            ruptures.select(
                "series",
                pl.lit("rupture").alias("kind"),
                "rank",
                pl.col("onset").alias("start_s"),
                pl.col("second").alias("end_s"),
                pl.col("s").alias("extreme_rating"),
                pl.col("second").alias("_anchor"),
            ),
            fixed.select(
                "series",
                pl.lit("repair").alias("kind"),
                "rank",
                pl.col("start").alias("start_s"),
                pl.col("end").alias("end_s"),
                pl.col("value").alias("extreme_rating"),
                "_anchor",
            ),
            peaks.select(
                "series",
                pl.lit("peak").alias("kind"),
                "rank",
                pl.col("onset").alias("start_s"),
                pl.col("second").alias("end_s"),
                (-pl.col("s")).alias("extreme_rating"),
                pl.lit(None, dtype=pl.Int32).alias("_anchor"),
            ),
        ],
        how="vertical_relaxed",
    ).with_columns(pl.lit("algorithm").alias("source"))
    if overrides is not None and overrides.height:
        manual = manual_rows(overrides, smoothed, keys, settings.get("overrides") or "overrides")
        replaced = manual.select("series", "kind").unique()
        rows = pl.concat([rows.join(replaced, on=["series", "kind"], how="anti"), manual], how="vertical_relaxed")
    return (
        rows.join(last, on="series", how="left")
        .join(keys, on="series", how="left")
        .with_columns(
            clip_column(settings, clip_s).alias("clip"),
            pl.col("extreme_rating").round(2),
            pl.col("kind").replace_strict(KIND_ORDER, return_dtype=pl.Int8).alias("_k"),
        )
        .sort("dyad_id", "session", "rater", "_k", "rank")
        .select(list(SEGMENT_COLUMNS))
        .cast(SEGMENT_COLUMNS)
    )
