"""``fixed_sessions``: Lavik, McAleavey, Kvendseth & Moltu (2022).

The same sessions of every dyad (3 and 5 in the study), grouped post hoc from the
questionnaires, as a proxy for the study's interview-based grouping:

* ``settled``: both raters' alliance is at or above their threshold at both sessions, and
  neither rater's alliance falls by more than ``fall_tolerance`` from the first session to
  the second;
* ``troubled``: otherwise;
* ``missing``: a session or a rater's rating is missing, so the dyad cannot be grouped.

With ``scale: pomp`` (the default) the thresholds are on 0–1, each rating put there with
its instrument's response range ((x − min)/(max − min)), so one setting works on 1–5 and
1–7 data; the defaults 0.625 and 2/3 are today's 3.5 on WAI-SR 1–5 and 5.0 on WAI-S 1–7.
With ``scale: own`` they are on each instrument's own scale (defaults 3.5 and 5.0).
``fall_tolerance`` is always on 0–1 (0.05: a 0.2-point dip on 1–5, 0.3 on 1–7).
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish, scaled_thresholds, with_defaults

THRESHOLDS = {"pomp": {"patient": 0.625, "therapist": 2 / 3}, "own": {"patient": 3.5, "therapist": 5.0}}
RATERS = ("patient", "therapist")
EPS = (
    1e-9  # 0-1 values are differences of fractions: 5.0 on 1-7 meets 2/3, a fall of exactly the tolerance is within it
)


def select(
    sessions: pl.DataFrame, params: dict, scales: dict[str, tuple[float, float]] | None = None
) -> tuple[pl.DataFrame, dict]:
    """``scales`` gives each rater's instrument (min, max) for the 0-1 metric (WAI-SR 1-5, WAI-S 1-7 if not given)."""
    params = with_defaults("fixed_sessions", params)
    scales = scales or {"patient": (1, 5), "therapist": (1, 7)}
    first, second = (int(s) for s in params["sessions"])
    scale = params["scale"]
    cut = scaled_thresholds(scale, THRESHOLDS, params.get("threshold"), "threshold")
    tol = float(params["fall_tolerance"])
    dyads = sessions.select(DYAD).unique()
    wide = dyads
    for tag, s in (("a", first), ("b", second)):
        part = sessions.filter(pl.col("session") == s).select(
            DYAD, *[pl.col(f"alliance_{r}").alias(f"{r}_{tag}") for r in RATERS]
        )
        wide = wide.join(part, on=DYAD, how="left")
    unit = {
        (r, tag): (pl.col(f"{r}_{tag}") - scales[r][0]) / (scales[r][1] - scales[r][0])
        for r in RATERS
        for tag in ("a", "b")
    }
    level = unit if scale == "pomp" else {(r, tag): pl.col(f"{r}_{tag}") for r in RATERS for tag in ("a", "b")}
    # the rating as entered, and under pomp also on 0-1: "therapist 4.92 (0.653 on 0-1) < 0.667"
    shown = {
        (r, tag): pl.format("{} ({} on 0-1)", pl.col(f"{r}_{tag}").round(2), unit[(r, tag)].round(3))
        if scale == "pomp"
        else pl.col(f"{r}_{tag}").round(2).cast(pl.String)
        for r in RATERS
        for tag in ("a", "b")
    }
    missing = [
        pl.when(pl.col(f"{r}_{tag}").is_null()).then(pl.lit(f"no {r} rating at session {s}"))
        for tag, s in (("a", first), ("b", second))
        for r in RATERS
    ]
    below = [
        pl.when(level[(r, tag)] < cut[r] - EPS).then(
            pl.format(f"{r} {{}} < {cut[r]:.3g} at session {s}", shown[(r, tag)])
        )
        for tag, s in (("a", first), ("b", second))
        for r in RATERS
    ]
    falls = [
        pl.when(unit[(r, "a")] - unit[(r, "b")] > tol + EPS).then(
            pl.format(
                f"{r} fell {{}} → {{}} (more than {tol:g} on 0-1)", pl.col(f"{r}_a").round(2), pl.col(f"{r}_b").round(2)
            )
        )
        for r in RATERS
    ]
    judged = (
        wide.with_columns(
            pl.concat_list(missing).list.drop_nulls().list.join("; ").alias("_missing"),
            pl.concat_list(below + falls).list.drop_nulls().list.join("; ").alias("_trouble"),
        )
        .with_columns(
            pl.when(pl.col("_missing") != "")
            .then(pl.lit("missing"))
            .when(pl.col("_trouble") != "")
            .then(pl.lit("troubled"))
            .otherwise(pl.lit("settled"))
            .alias("group"),
        )
        .with_columns(
            pl.when(pl.col("group") == "missing")
            .then(pl.col("_missing"))
            .when(pl.col("group") == "troubled")
            .then(pl.col("_trouble"))
            .otherwise(
                pl.format(
                    f"both raters at or above their thresholds at sessions {first} and {second}, no fall beyond the tolerance"
                )
            )
            .alias("reason")
        )
    )
    rows = pl.concat(
        [
            judged.with_columns(pl.lit(s).alias("session"), pl.lit(i + 1).alias("rank"))
            for i, s in enumerate((first, second))
        ]
    )
    counts = judged.group_by("group").len().sort("group")
    summary = {
        "strategy": "fixed_sessions",
        "source": "Lavik, McAleavey, Kvendseth & Moltu (2022), Frontiers in Psychology 13:915932",
        "parameters": {"sessions": [first, second], "scale": scale, "threshold": cut, "fall_tolerance": tol},
        "dyads": {g: n for g, n in counts.rows()},
    }
    return finish(rows, ("dyad_id", "rank", "session")), summary
