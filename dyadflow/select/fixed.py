"""``fixed_sessions``: Lavik, McAleavey, Kvendseth & Moltu (2022).

The same sessions of every dyad (3 and 5 in the study), grouped post hoc from the
questionnaires, as a proxy for the study's interview-based grouping:

* ``settled``: both raters' alliance is at or above their threshold (each on its own
  instrument's scale) at both sessions, and neither rater's alliance falls from the first
  session to the second;
* ``troubled``: otherwise;
* ``missing``: a session or a rater's rating is missing, so the dyad cannot be grouped.
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish

DEFAULTS = {"sessions": [3, 5], "threshold": {"patient": 3.5, "therapist": 5.0}}
RATERS = ("patient", "therapist")


def select(sessions: pl.DataFrame, params: dict) -> tuple[pl.DataFrame, dict]:
    params = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    first, second = (int(s) for s in params["sessions"])
    cut = {**DEFAULTS["threshold"], **(params.get("threshold") or {})}
    dyads = sessions.select(DYAD).unique()
    wide = dyads
    for tag, s in (("a", first), ("b", second)):
        part = sessions.filter(pl.col("session") == s).select(
            DYAD, *[pl.col(f"alliance_{r}").alias(f"{r}_{tag}") for r in RATERS]
        )
        wide = wide.join(part, on=DYAD, how="left")
    missing = [
        pl.when(pl.col(f"{r}_{tag}").is_null()).then(pl.lit(f"no {r} rating at session {s}"))
        for tag, s in (("a", first), ("b", second)) for r in RATERS
    ]
    below = [
        pl.when(pl.col(f"{r}_{tag}") < cut[r]).then(pl.format(f"{r} {{}} < {cut[r]:g} at session {s}", pl.col(f"{r}_{tag}").round(2)))
        for tag, s in (("a", first), ("b", second)) for r in RATERS
    ]
    falls = [
        pl.when(pl.col(f"{r}_b") < pl.col(f"{r}_a")).then(
            pl.format(f"{r} fell {{}} → {{}}", pl.col(f"{r}_a").round(2), pl.col(f"{r}_b").round(2))
        )
        for r in RATERS
    ]
    judged = wide.with_columns(
        pl.concat_list(missing).list.drop_nulls().list.join("; ").alias("_missing"),
        pl.concat_list(below + falls).list.drop_nulls().list.join("; ").alias("_trouble"),
    ).with_columns(
        pl.when(pl.col("_missing") != "").then(pl.lit("missing"))
        .when(pl.col("_trouble") != "").then(pl.lit("troubled"))
        .otherwise(pl.lit("settled")).alias("group"),
    ).with_columns(
        pl.when(pl.col("group") == "missing").then(pl.col("_missing"))
        .when(pl.col("group") == "troubled").then(pl.col("_trouble"))
        .otherwise(pl.format(f"both raters at or above their thresholds at sessions {first} and {second}, no fall"))
        .alias("reason")
    )
    rows = pl.concat(
        [judged.with_columns(pl.lit(s).alias("session"), pl.lit(i + 1).alias("rank")) for i, s in enumerate((first, second))]
    )
    counts = judged.group_by("group").len().sort("group")
    summary = {
        "strategy": "fixed_sessions",
        "source": "Lavik, McAleavey, Kvendseth & Moltu (2022), Frontiers in Psychology 13:915932",
        "parameters": {"sessions": [first, second], "threshold": cut},
        "dyads": {g: n for g, n in counts.rows()},
    }
    return finish(rows, ("dyad_id", "rank", "session")), summary
