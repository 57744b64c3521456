"""Ruptures, repairs, peaks and clips of every rater's smoothed series, all at once.

Definitions (on the smoothed series; a second without a smoothed value splits the
series into pieces, and no shape is read across such a split):

* **Candidate minimum**: a second where the series has just fallen (or a piece
  starts) and the next change is a rise (or the piece ends). On a flat bottom the
  first second counts.
* **Onset**: where the decline into the minimum begins — the last second before the
  first fall of the uninterrupted non-increasing run that ends in the minimum (the
  end of the plateau at the top). A minimum at the start of a piece is its own onset.
* **Ruptures**: the ``n_segments`` lowest candidates, chosen greedily (lowest first;
  on ties the earlier), each segment ``[onset, minimum]`` at least
  ``min_separation_s`` seconds from every segment already chosen (so they never
  overlap). Rank 1 is the lowest. ``extreme_rating`` is the smoothed minimum.
* **Repairs**: for each rupture, the first second after its minimum where the
  smoothed rating is at least ``repair_rise`` points above that minimum (the series'
  later pieces count too). The repair ends where that rise levels off: the last
  second that rose before the next fall (or the end of the piece), i.e. the first
  second of the plateau at the top; ``extreme_rating`` is the smoothed rating there. A rupture without such a second has no repair row. A repair has the
  rank of its rupture.
* **Peaks** (helpful moments, after Swift et al. 2017): the same as ruptures on the
  negated series: the ``n_segments`` highest, onset where the rise into the peak
  begins, segment ``[onset, peak]``.
* **Clip**: ``clip_s`` seconds from the segment's start, cut at the series' last
  second, written ``mm:ss–mm:ss`` (minutes may exceed 59).
"""

from __future__ import annotations

import polars as pl

SEGMENT_COLUMNS = {
    "dyad_id": pl.String,
    "session": pl.Int32,
    "rater": pl.String,
    "kind": pl.String,
    "rank": pl.Int32,
    "start_s": pl.Int32,
    "end_s": pl.Int32,
    "clip": pl.String,
    "extreme_rating": pl.Float64,
}
KIND_ORDER = {"rupture": 0, "repair": 1, "peak": 2}


def shape(smoothed: pl.DataFrame, column: str = "smoothed") -> pl.LazyFrame:
    """Per second (non-empty smoothed values only): series, second, s, candidate (a
    minimum), onset (where the decline into it begins), top and top_s (where the rise
    through this second levels off, and the value there)."""
    s = pl.col("s")
    d = pl.col("d")
    start = pl.col("_piece_start")
    end = pl.col("_piece_end")
    lf = (
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
        .with_columns(
            # sign of the change; 0 (a boundary) at each piece start, empty on a flat step
            pl.when(start).then(0).when(d > 0).then(1).when(d < 0).then(-1).alias("_sgn"),
            (start | (d > 0)).alias("_run_start"),
        )
        .with_columns(
            pl.when(end).then(0).otherwise(pl.col("_sgn").shift(-1).backward_fill().fill_null(0)).alias("_next_sgn"),
            (d < 0).fill_null(False).cum_sum().alias("_falls"),
        )
        .with_columns(
            (start | (d < 0)).fill_null(False).alias("_fell"),
            pl.col("_falls") - pl.when("_run_start").then("_falls").forward_fill(),
        )
        .with_columns(
            pl.when((d < 0) & (pl.col("_falls") == 1)).then(pl.col("second") - 1).when("_run_start").then(-1).forward_fill().alias("_first_fall"),
            # the last second that rose: where a rise levels off (the start of the plateau at the top)
            pl.when(d > 0).then("second").when(start).then(-1).forward_fill().alias("_lr"),
            pl.when(d < 0).then(s.shift(1)).when(end).then(s).alias("_hv"),
        )
        .with_columns(pl.when(d < 0).then(pl.col("_lr").shift(1)).when(end).then("_lr").alias("_h"))
        .select(
            "series",
            "second",
            "s",
            (pl.col("_fell") & pl.col("_next_sgn").is_in([0, 1])).alias("candidate"),
            pl.when(pl.col("_first_fall") >= 0).then("_first_fall").otherwise("second").alias("onset"),
            pl.max_horizontal(
                "second",
                pl.when(end).then("_lr").otherwise(pl.col("_h").shift(-1).backward_fill()),
            ).alias("top"),
            pl.when(end).then("s").otherwise(pl.col("_hv").shift(-1).backward_fill()).alias("top_s"),
        )
    )
    return lf


def pick(candidates: pl.DataFrame, n: int, separation: int) -> pl.DataFrame:
    """Greedy choice of the n lowest candidates per series, segments [onset, second] at
    least ``separation`` seconds apart. Returns series, rank, onset, second, s.

    The loop runs over ranks (n, 3 by default), each step over every series at once."""
    pool = candidates.select("series", "onset", "second", "s")
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
        return pl.DataFrame(schema={"series": pl.Int32, "rank": pl.Int32, "onset": pl.Int32, "second": pl.Int32, "s": pl.Float64})
    return pl.concat(chosen).select("series", "rank", "onset", "second", "s")


def repairs(shaped: pl.DataFrame, ruptures: pl.DataFrame, rise: float, n: int) -> pl.DataFrame:
    """For each rupture, the first second after its minimum with s ≥ minimum + rise (one pass)."""
    wide = ruptures.pivot(on="rank", index="series", values=["second", "s"], aggregate_function=None)
    present = [k for k in range(1, n + 1) if f"second_{k}" in wide.columns]
    if not present:
        return pl.DataFrame(schema={"series": pl.Int32, "rank": pl.Int32, "start": pl.Int32, "end": pl.Int32, "value": pl.Float64})
    aggs = []
    for k in present:
        hit = (pl.col("second") > pl.col(f"second_{k}")) & (pl.col("s") >= pl.col(f"s_{k}") + rise)
        aggs += [
            pl.col("second").filter(hit).first().alias(f"start_{k}"),
            pl.col("top").filter(hit).first().alias(f"end_{k}"),
            pl.col("top_s").filter(hit).first().alias(f"value_{k}"),
        ]
    found = (
        shaped.lazy()
        .join(wide.lazy().select("series", *[c for k in present for c in (f"second_{k}", f"s_{k}")]), on="series", how="inner")
        .group_by("series")
        .agg(aggs)
        .collect()
    )
    parts = [
        found.select(
            "series",
            pl.lit(k, dtype=pl.Int32).alias("rank"),
            pl.col(f"start_{k}").alias("start"),
            pl.col(f"end_{k}").alias("end"),
            pl.col(f"value_{k}").alias("value"),
        ).filter(pl.col("start").is_not_null())
        for k in present
    ]
    return pl.concat(parts)


def mmss(seconds: pl.Expr) -> pl.Expr:
    return pl.format(
        "{}:{}",
        (seconds // 60).cast(pl.String).str.zfill(2),
        (seconds % 60).cast(pl.String).str.zfill(2),
    )


def clip(start: pl.Expr, last: pl.Expr, clip_s: int) -> pl.Expr:
    return pl.concat_str(mmss(start), pl.lit("–"), mmss(pl.min_horizontal(start + clip_s, last)))


def find(smoothed: pl.DataFrame, keys: pl.DataFrame, settings: dict) -> pl.DataFrame:
    """segments.csv rows for every series in ``smoothed`` (series, second, smoothed)."""
    n, sep, rise, clip_s = settings["n_segments"], settings["min_separation_s"], settings["repair_rise"], settings["clip_s"]
    low = shape(smoothed).collect()
    high = shape(smoothed.with_columns(-pl.col("smoothed")), "smoothed").collect()
    ruptures = pick(low.filter("candidate"), n, sep)
    peaks = pick(high.filter("candidate"), n, sep)
    fixed = repairs(low, ruptures, rise, n)
    last = smoothed.group_by("series").agg(pl.col("second").max().alias("_last"))
    rows = pl.concat(
        [
            ruptures.select("series", pl.lit("rupture").alias("kind"), "rank", pl.col("onset").alias("start_s"), pl.col("second").alias("end_s"), pl.col("s").alias("extreme_rating")),
            fixed.select("series", pl.lit("repair").alias("kind"), "rank", pl.col("start").alias("start_s"), pl.col("end").alias("end_s"), pl.col("value").alias("extreme_rating")),
            peaks.select("series", pl.lit("peak").alias("kind"), "rank", pl.col("onset").alias("start_s"), pl.col("second").alias("end_s"), (-pl.col("s")).alias("extreme_rating")),
        ],
        how="vertical_relaxed",
    )
    return (
        rows.join(last, on="series", how="left")
        .join(keys, on="series", how="left")
        .with_columns(
            clip(pl.col("start_s"), pl.col("_last"), clip_s).alias("clip"),
            pl.col("extreme_rating").round(2),
            pl.col("kind").replace_strict(KIND_ORDER, return_dtype=pl.Int8).alias("_k"),
        )
        .sort("dyad_id", "session", "rater", "_k", "rank")
        .select(list(SEGMENT_COLUMNS))
        .cast(SEGMENT_COLUMNS)
    )
