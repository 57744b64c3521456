"""Per-dyad alliance summaries, all dyads in one ``group_by``.

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

import polars as pl

DYAD = "dyad_id"


def slope(y: pl.Expr, x: pl.Expr) -> pl.Expr:
    """OLS slope of y on x over the rows where y is observed (an aggregation); null without x variance."""
    xs = pl.when(y.is_not_null()).then(x.cast(pl.Float64))
    xc = xs - xs.mean()
    sxx = (xc * xc).sum()
    return pl.when(sxx > 0).then((xc * (y - y.mean())).sum() / sxx)


def pearson(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Pearson r over rows where both are observed (an aggregation); null without variance."""
    both = a.is_not_null() & b.is_not_null()
    a2, b2 = pl.when(both).then(a), pl.when(both).then(b)
    ac, bc = a2 - a2.mean(), b2 - b2.mean()
    saa, sbb = (ac * ac).sum(), (bc * bc).sum()
    return pl.when((saa > 0) & (sbb > 0)).then((ac * bc).sum() / (saa * sbb).sqrt())


def unit(expr: pl.Expr, lo: float, hi: float) -> pl.Expr:
    return (expr - lo) / (hi - lo)


def alliance_summary(
    sessions: pl.DataFrame,
    ranges: dict[str, tuple[float, float]],
    early: tuple[int, int] = (3, 5),
    min_agreement: int = 3,
) -> pl.DataFrame:
    """One row per dyad; ``ranges`` maps ``patient``/``therapist`` to the instrument's (min, max)."""
    pat, th = pl.col("alliance_patient"), pl.col("alliance_therapist")
    in_early = pl.col("session").is_between(early[0], early[1])
    both = pat.is_not_null() & th.is_not_null()
    disc = unit(pat, *ranges["patient"]) - unit(th, *ranges["therapist"])
    out = sessions.group_by(DYAD).agg(
        pat.mean().alias("alliance_patient_mean"),
        th.mean().alias("alliance_therapist_mean"),
        pat.filter(in_early).mean().alias("alliance_patient_early"),
        th.filter(in_early).mean().alias("alliance_therapist_early"),
        slope(pat, pl.col("session")).alias("alliance_patient_slope"),
        slope(th, pl.col("session")).alias("alliance_therapist_slope"),
        pearson(pat, th).alias("_r"),
        both.sum().cast(pl.Int32).alias("agreement_n"),
        disc.mean().alias("discrepancy_mean"),
        pat.count().alias("_n_pat"),
        th.count().alias("_n_th"),
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
        .then(pl.format("agreement: {} session(s) rated by both, needs {}", pl.col("agreement_n"), pl.lit(min_agreement)))
        .when(pl.col("_r").is_null())
        .then(pl.lit("agreement: a rater's scores do not vary"))
    )
    return (
        out.with_columns(pl.when(pl.col("agreement_n") >= min_agreement).then(pl.col("_r")).alias("agreement_r"))
        .with_columns(pl.concat_str(notes, separator="; ", ignore_nulls=True).alias("_note_alliance"))
        .with_columns(pl.when(pl.col("_note_alliance") != "").then(pl.col("_note_alliance")).alias("_note_alliance"))
        .select(
            DYAD, "alliance_patient_mean", "alliance_therapist_mean", "alliance_patient_early", "alliance_therapist_early",
            "alliance_patient_slope", "alliance_therapist_slope", "agreement_r", "agreement_n", "discrepancy_mean", "_note_alliance",
        )
        .sort(DYAD)
    )
