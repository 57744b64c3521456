"""The per-second series of every dyad, session and rater: gaps, interpolation, smoothing.

Everything works on all series at once. Rows are sorted by series and second; a series
is numbered by ``series`` (an integer), and its keys live in a small table.

* **Grid.** Each series covers every second from its first to its last rated second,
  which validation bounds by ``max_session_s`` (rule ``second_range``): a series' grid
  never has more than ``max_session_s + 1`` rows.
* **Gaps.** A run of unrated seconds between two rated ones. Gaps of at most
  ``max_gap_s`` seconds are filled by linear interpolation between the two rated
  neighbours; longer gaps stay empty (never interpolated). Every gap is reported.
* **Smoothing.** A centred rolling mean over ``smoothing_s`` seconds (polars
  ``rolling_mean(center=True)`` per series): the window of second *t* covers
  *t − ⌊w/2⌋ … t + ⌊(w−1)/2⌋* (30 s: 15 before, 14 after), cut at the series' ends; the
  mean of the values present in it. An empty second (in a long gap) has no smoothed
  value.
"""

from __future__ import annotations

import polars as pl

from dyadflow.microprocess import KEY

GAP_COLUMNS = {
    "dyad_id": pl.String,
    "session": pl.Int32,
    "rater": pl.String,
    "from_s": pl.Int32,
    "to_s": pl.Int32,
    "missing_s": pl.Int32,
    "interpolated": pl.Boolean,
}


def number_series(accepted: pl.DataFrame | pl.LazyFrame, in_order: bool = False) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Rows sorted by series and second, with ``series`` (an integer), and the keys table
    (series → dyad_id, session, rater), sorted by series.

    Validated ratings arrive sorted; that is checked (cheaply: on the first row of each
    series) and the sort is skipped, because sorting 60 million rows by three text
    columns is the most expensive step otherwise. ``in_order``: the caller knows they are
    (validation's accepted rows always are), so not even that check runs."""
    df = accepted.lazy().select(*KEY, pl.col("second").cast(pl.Int32), pl.col("rating").cast(pl.Float64)).collect()
    if not in_order and not in_key_order(df):
        df = df.sort(*KEY, "second")
    new = pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in KEY]).fill_null(True)
    df = df.with_columns((new.cum_sum() - 1).cast(pl.Int32).alias("series"))
    keys = df.filter(new).select("series", *KEY)
    return df.lazy().select("series", "second", "rating"), keys


def in_key_order(df: pl.DataFrame) -> bool:
    """Whether ``df`` is sorted by KEY and second, with each key's rows together and no
    second twice (so it has no duplicate second either)."""
    if df.height < 2:
        return True
    new = pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in KEY]).fill_null(True)
    within = df.select(((pl.col("second").diff() > 0) | new).all()).item()
    if not within:
        return False
    firsts = df.filter(new).select(*KEY)
    return firsts.height == firsts.unique().height and firsts.equals(firsts.sort(*KEY))


def gaps(rows: pl.LazyFrame, max_gap_s: int) -> pl.LazyFrame:
    """One row per gap: series, from_s, to_s (the unrated seconds), missing_s, interpolated,
    and the rated neighbours (prev_s, prev_rating, next_s, next_rating)."""
    same = pl.col("series") == pl.col("series").shift(1)
    return (
        rows.with_columns(
            pl.col("second").shift(1).alias("prev_s"),
            pl.col("rating").shift(1).alias("prev_rating"),
        )
        .filter(same & (pl.col("second") - pl.col("prev_s") > 1))
        .select(
            "series",
            (pl.col("prev_s") + 1).alias("from_s"),
            (pl.col("second") - 1).alias("to_s"),
            (pl.col("second") - pl.col("prev_s") - 1).alias("missing_s"),
            (pl.col("second") - pl.col("prev_s") - 1 <= max_gap_s).alias("interpolated"),
            "prev_s",
            "prev_rating",
            pl.col("second").alias("next_s"),
            pl.col("rating").alias("next_rating"),
        )
    )


def fill(rows: pl.LazyFrame, gap_table: pl.DataFrame) -> pl.DataFrame:
    """The complete per-second grid: ``series, second, rating, observed``.

    Seconds in short gaps get the linear interpolation of their neighbours; seconds in
    long gaps are present with an empty rating."""
    missing = (
        gap_table.lazy()
        .with_columns(pl.int_ranges("from_s", pl.col("to_s") + 1, dtype=pl.Int32).alias("second"))
        .explode("second")
        .select(
            "series",
            pl.col("second").cast(pl.Int32),
            pl.when("interpolated")
            .then(
                pl.col("prev_rating")
                + (pl.col("next_rating") - pl.col("prev_rating"))
                * (pl.col("second") - pl.col("prev_s")).cast(pl.Float64)
                / (pl.col("next_s") - pl.col("prev_s")).cast(pl.Float64)
            )
            .alias("rating"),
            pl.lit(False).alias("observed"),
        )
    )
    observed = rows.with_columns(pl.lit(True).alias("observed"))
    order = (pl.col("series").cast(pl.Int64) * (1 << 32) + pl.col("second")).alias("_k")
    merged = observed.with_columns(order).merge_sorted(missing.with_columns(order).sort("_k"), key="_k")
    return merged.drop("_k").collect()


def smooth(grid: pl.DataFrame, window_s: int) -> pl.DataFrame:
    """Add ``smoothed``: the centred rolling mean (see the module docstring)."""
    v = pl.col("rating")
    return grid.with_columns(
        pl.when(v.is_not_null())
        .then(v.rolling_mean(window_size=window_s, min_samples=1, center=True).over("series"))
        .alias("smoothed")
    )
