"""Per-dyad alliance summaries, all dyads at once (batched numpy over the sorted sessions).

- mean per rater over the rated sessions;
- early alliance: mean of the sessions in ``early`` (3–5 by default);
- slope per rater: OLS slope of the score on session number (score points per session);
- agreement: Pearson r of the two raters' scores across the sessions both rated
  (``agreement_n`` sessions; at least ``min_agreement`` needed);
- discrepancy: mean of patient − therapist after putting each score on 0–1 with the
  instrument's score range from the registry ((score − min) / (max − min)), because the
  scales differ (WAI-SR 1–5, WAI-S 1–7).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.contract import empty
from dyadflow.stats import grouped
from dyadflow.stats.contract import SubscalesModel

DYAD = "dyad_id"


def _slope(y: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    """Per group: OLS slope of y on t over the rows where y is observed; NaN without t variance."""
    t = np.where(np.isnan(y), np.nan, t)
    tc = t - grouped.group_mean(t, g, n)[0][g]
    yc = y - grouped.group_mean(y, g, n)[0][g]
    sxx = grouped.group_sum(tc * tc, g, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sxx > 0, grouped.group_sum(tc * yc, g, n) / sxx, np.nan)


def _pearson(a: np.ndarray, b: np.ndarray, g: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (Pearson r over rows where both are observed, number of such rows)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    ac = a - grouped.group_mean(a, g, n)[0][g]
    bc = b - grouped.group_mean(b, g, n)[0][g]
    saa, sbb = grouped.group_sum(ac * ac, g, n), grouped.group_sum(bc * bc, g, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((saa > 0) & (sbb > 0), grouped.group_sum(ac * bc, g, n) / np.sqrt(saa * sbb), np.nan)
    return r, np.bincount(g, weights=both.astype(np.float64), minlength=n)


def unit(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (x - lo) / (hi - lo)


def alliance_summary(
    sessions: pl.DataFrame,
    ranges: dict[str, tuple[float, float]],
    early: tuple[int, int] = (3, 5),
    min_agreement: int = 3,
) -> pl.DataFrame:
    """One row per dyad; ``ranges`` maps ``patient``/``therapist`` to the instrument's (min, max)."""
    t = grouped.sort_by(sessions, DYAD, "session")
    g, n = grouped.group_index(t, DYAD)
    session = grouped.values(t, "session")
    pat, th = grouped.values(t, "alliance_patient"), grouped.values(t, "alliance_therapist")
    early_rows = (session >= early[0]) & (session <= early[1])
    r, n_both = _pearson(pat, th, g, n)
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if g.size else np.zeros(0, dtype=np.int64)
    out = (
        t[first]
        .select(DYAD)
        .with_columns(
            grouped.column("alliance_patient_mean", grouped.group_mean(pat, g, n)[0]),
            grouped.column("alliance_therapist_mean", grouped.group_mean(th, g, n)[0]),
            grouped.column("alliance_patient_early", grouped.group_mean(np.where(early_rows, pat, np.nan), g, n)[0]),
            grouped.column("alliance_therapist_early", grouped.group_mean(np.where(early_rows, th, np.nan), g, n)[0]),
            grouped.column("alliance_patient_slope", _slope(pat, session, g, n)),
            grouped.column("alliance_therapist_slope", _slope(th, session, g, n)),
            grouped.column("_r", r),
            pl.Series("agreement_n", n_both.astype(np.int32)),
            grouped.column(
                "discrepancy_mean",
                grouped.group_mean(unit(pat, *ranges["patient"]) - unit(th, *ranges["therapist"]), g, n)[0],
            ),
            pl.Series("_n_pat", grouped.group_count(pat, g, n).astype(np.int32)),
            pl.Series("_n_th", grouped.group_count(th, g, n).astype(np.int32)),
        )
    )
    notes = []
    for rater, n in (("patient", "_n_pat"), ("therapist", "_n_th")):
        notes.append(
            pl.when(pl.col(n) == 0)
            .then(pl.lit(f"alliance {rater}: no rated session"))
            .when(pl.col(f"alliance_{rater}_slope").is_null())
            .then(pl.lit(f"alliance {rater} slope: fewer than 2 rated sessions"))
        )
        notes.append(
            pl.when((pl.col(n) > 0) & pl.col(f"alliance_{rater}_early").is_null()).then(
                pl.lit(f"alliance {rater} early: no rating in sessions {early[0]}-{early[1]}")
            )
        )
    notes.append(
        pl.when(pl.col("agreement_n") < min_agreement)
        .then(
            pl.format("agreement: {} session(s) rated by both, needs {}", pl.col("agreement_n"), pl.lit(min_agreement))
        )
        .when(pl.col("_r").is_null())
        .then(pl.lit("agreement: a rater's scores do not vary"))
    )
    return (
        out.with_columns(pl.when(pl.col("agreement_n") >= min_agreement).then(pl.col("_r")).alias("agreement_r"))
        .with_columns(pl.concat_str(notes, separator="; ", ignore_nulls=True).alias("_note_alliance"))
        .with_columns(pl.when(pl.col("_note_alliance") != "").then(pl.col("_note_alliance")).alias("_note_alliance"))
        .select(
            DYAD,
            "alliance_patient_mean",
            "alliance_therapist_mean",
            "alliance_patient_early",
            "alliance_therapist_early",
            "alliance_patient_slope",
            "alliance_therapist_slope",
            "agreement_r",
            "agreement_n",
            "discrepancy_mean",
            "_note_alliance",
        )
        .sort(DYAD)
    )


def subscale_profile(scores: pl.DataFrame, alliance: dict[str, str]) -> pl.DataFrame:
    """The mean of each ``sub_*`` column of the alliance instruments over sessions, per dyad
    and rater (a :class:`SubscalesModel` table, sorted; the case report's subscale profile)."""
    subs = [c for c in scores.columns if c.startswith("sub_")]
    if not subs:
        return empty(SubscalesModel)
    keep = pl.any_horizontal(
        *[(pl.col("rater") == rater) & (pl.col("instrument") == inst) for rater, inst in alliance.items()]
    )
    return (
        scores.filter(keep)
        .group_by("dyad_id", "rater")
        .agg([pl.col(c).cast(pl.Float64).mean().alias(c) for c in subs])
        .unpivot(index=["dyad_id", "rater"], variable_name="subscale", value_name="value")
        .filter(pl.col("value").is_not_null())
        .with_columns(pl.col("subscale").str.strip_prefix("sub_"))
        .sort("dyad_id", "rater", "subscale")
    )
