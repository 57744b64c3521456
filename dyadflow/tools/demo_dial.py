"""Deterministic demo dial data: a few demo dyads rating about 50 minutes each.

One CSV per dyad, session and rater, as a continuous-rating tool (CARMA-like) exports
it: ``data/demo/dial/D001_s03_patient.csv`` with the columns ``Time (s)`` and
``Rating`` (whole numbers from −50 to +50). The dyads are the demo study's (D001 …).

Each series is the rater's usual level plus slow AR(1) drift and planted events
(``EVENTS``): ruptures (a decline, a low plateau, a recovery) and helpful moments. The
therapist rates lower than the patient and sees the same ruptures, a little later.
Planted data problems, each with the rule that must reject or report it:

* D001 session 9, patient: a rating of 55 (``rating_range``);
* D002 session 5, therapist: second 1200 twice with different ratings (``duplicate_second``);
* D002 session 5, patient: a row at second 12.5 (``second_format``);
* D001 session 3, therapist: seconds 1800–1819 missing (a 20 s gap: reported, not interpolated);
* D002 session 5, patient: seconds 600–602 missing (a 3 s gap: interpolated);
* D003 session 4: only the patient rated (no dyad statistics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from dyadflow.core import atomic

SEED = 20230615
# dyad, session, rater, length (s), level, drift SD
SERIES = [
    ("D001", 3, "patient", 3000, 24.0, 2.0),
    ("D001", 3, "therapist", 3000, 10.0, 2.0),
    ("D001", 9, "patient", 2940, 30.0, 2.0),
    ("D001", 9, "therapist", 2940, 16.0, 2.0),
    ("D002", 5, "patient", 3060, 18.0, 2.0),
    ("D002", 5, "therapist", 3060, 6.0, 2.0),
    ("D003", 4, "patient", 2980, 20.0, 2.0),
]
# dyad, session, onset (s), change (points; negative = rupture), fall, hold, recover (s), therapist delay (s)
EVENTS = [
    ("D001", 3, 900, -35.0, 60, 90, 120, 20),
    ("D001", 3, 2100, -22.0, 40, 60, 90, 15),
    ("D001", 3, 1500, 15.0, 60, 60, 60, 0),
    ("D001", 9, 1320, -30.0, 45, 120, 150, 30),
    ("D001", 9, 2400, 12.0, 40, 60, 60, 0),
    ("D002", 5, 600, -28.0, 50, 80, 100, 25),
    ("D002", 5, 1900, -25.0, 40, 90, 120, 10),
    ("D002", 5, 2600, 14.0, 50, 60, 60, 0),
    ("D003", 4, 1100, -30.0, 60, 100, 120, 0),
]
TIME_COLUMN = "Time (s)"
RATING_COLUMN = "Rating"


def _trapezoid(t: np.ndarray, onset, change, fall, hold, recover) -> np.ndarray:
    """A change that builds over ``fall`` s, holds ``hold`` s, and recovers over ``recover`` s."""
    x = t[None, :] - onset[:, None]
    up = np.clip(x / fall[:, None], 0, 1)
    down = np.clip((x - fall[:, None] - hold[:, None]) / recover[:, None], 0, 1)
    return change[:, None] * (up - down)


def generate(seed: int = SEED) -> pl.DataFrame:
    """The demo dial ratings, long: dyad_id, session, rater, second, rating (clean)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    meta = pl.DataFrame(SERIES, schema=["dyad_id", "session", "rater", "length", "level", "drift"], orient="row")
    n, t_max = meta.height, int(meta.get_column("length").max())
    t = np.arange(t_max, dtype=float)
    drift = (
        lfilter([1.0], [1.0, -0.995], rng.normal(0, 1, (n, t_max)), axis=1)
        * 0.1
        * meta.get_column("drift").to_numpy()[:, None]
    )
    signal = meta.get_column("level").to_numpy()[:, None] + drift

    ev = pl.DataFrame(
        EVENTS, schema=["dyad_id", "session", "onset", "change", "fall", "hold", "recover", "delay"], orient="row"
    )
    hits = meta.with_row_index("_i").join(ev, on=["dyad_id", "session"], how="inner").sort("_i", "onset")
    is_th = (hits.get_column("rater") == "therapist").to_numpy()
    onset = hits.get_column("onset").to_numpy() + np.where(is_th, hits.get_column("delay").to_numpy(), 0)
    contrib = _trapezoid(
        t,
        onset,
        hits.get_column("change").to_numpy(),
        *(hits.get_column(c).to_numpy() for c in ("fall", "hold", "recover")),
    )
    np.add.at(signal, hits.get_column("_i").to_numpy(), contrib)
    signal += rng.normal(0, 1.0, signal.shape)  # hand jitter on the dial
    rating = np.clip(np.rint(signal), -50, 50).astype(np.int64)

    length = meta.get_column("length").to_numpy()
    ii, ss = np.nonzero(t[None, :] < length[:, None])
    return pl.DataFrame(
        {
            "dyad_id": meta.get_column("dyad_id").to_numpy()[ii],
            "session": meta.get_column("session").to_numpy()[ii].astype(np.int32),
            "rater": meta.get_column("rater").to_numpy()[ii],
            "second": ss.astype(np.int32),
            "rating": rating[ii, ss],
        }
    )


def with_problems(clean: pl.DataFrame) -> pl.DataFrame:
    """The export as written: the planted problems (module docstring) added, as strings."""
    key = ["dyad_id", "session", "rater"]

    def at(dyad, session, rater):
        return (pl.col("dyad_id") == dyad) & (pl.col("session") == session) & (pl.col("rater") == rater)

    t = clean.with_columns(
        pl.col("second").cast(pl.Float64).alias("_order"),
        pl.col("second").cast(pl.String),
        pl.col("rating").cast(pl.String),
    )
    t = t.filter(~(at("D001", 3, "therapist") & pl.col("_order").is_between(1800, 1819)))
    t = t.filter(~(at("D002", 5, "patient") & pl.col("_order").is_between(600, 602)))
    t = t.with_columns(
        pl.when(at("D001", 9, "patient") & (pl.col("_order") == 700))
        .then(pl.lit("55"))
        .otherwise("rating")
        .alias("rating")
    )
    dup = t.filter(at("D002", 5, "therapist") & (pl.col("_order") == 1200)).with_columns(
        pl.format("{}", pl.col("rating").cast(pl.Int64) - 7).alias("rating"), pl.lit(1200.5).alias("_order")
    )
    frac = t.filter(at("D002", 5, "patient") & (pl.col("_order") == 12)).with_columns(
        pl.lit("12.5").alias("second"), pl.lit(12.5).alias("_order")
    )
    return pl.concat([t, dup, frac]).sort(*key, "_order").drop("_order")


def file_name(dyad: str, session: int, rater: str) -> str:
    return f"{dyad}_s{session:02d}_{rater}.csv"


def write(out_dir: str | Path = "data/demo/dial", seed: int = SEED) -> list[Path]:
    """Write one CSV per dyad, session and rater; returns the paths."""
    table = with_problems(generate(seed))
    out = Path(out_dir)
    paths = []
    for (dyad, session, rater), part in table.group_by(
        "dyad_id", "session", "rater", maintain_order=True
    ):  # one file each
        path = out / file_name(dyad, session, rater)
        # an input file, written as the tool would: plain CSV (no spreadsheet-formula guard)
        data = part.select(pl.col("second").alias(TIME_COLUMN), pl.col("rating").alias(RATING_COLUMN)).write_csv(
            line_terminator="\n"
        )
        atomic.write_bytes(path, data.encode("utf-8"))
        paths.append(path)
    return paths
