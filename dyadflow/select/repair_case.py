"""``repair_case``: a poor start followed by a repaired alliance and a good outcome.

After the Oslo process–outcome case study: both raters rated the alliance low for the
first sessions, it then rose to high, and the outcome changed reliably. A dyad
qualifies when

* both raters' alliance stays at or below ``low`` through the first ``first_k`` sessions
  where both rated it;
* both raters' last rating is at or above ``high``;
* the outcome's change category is one of ``outcome_categories`` (reliable improvement
  or recovery, from results/stats/dyads.parquet).

With ``scale: pomp`` (the default) ``low`` and ``high`` are on 0–1, each rating put there
with its instrument's response range ((x − min)/(max − min)): 0.5 and 0.75, today's
3.0/4.0 and 4.0/5.5 on WAI-SR 1–5 and WAI-S 1–7, so seven-point patient data (the Oslo
study's) work with the defaults. ``scale: own`` keeps them on each instrument's scale.

Only observed sessions count for qualifying, so sparse schedules (alliance at sessions 3,
6, 12, 20, 40) work as they are. Within each such dyad the selection is: the
lowest-alliance session, the onset of improvement (the first rated session after the
lowest whose alliance is ``onset_rise`` above the lowest, on the 0–1 metric of the
instrument ranges), every session between those two (``between``: rated or not, as the
Oslo authors analysed the sessions where the alliance was repaired), the highest
session, and the actual first and last treatment sessions (the first and last session
≥ 1 with any scored questionnaire, rated or not). A session with several roles is listed
once, with its roles joined by ``+``; ``reason`` says when a session is unrated.
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish, scaled_thresholds, with_defaults

LOW = {"pomp": {"patient": 0.5, "therapist": 0.5}, "own": {"patient": 3.0, "therapist": 4.0}}
HIGH = {"pomp": {"patient": 0.75, "therapist": 0.75}, "own": {"patient": 4.0, "therapist": 5.5}}
ROLES = ("first", "lowest", "between", "onset", "highest", "last")
EPS = 1e-9  # 0-1 values are fractions: 4.0 on 1-7 is at 0.5


def select(
    sessions: pl.DataFrame, dyads: pl.DataFrame, params: dict, scales: dict[str, tuple[float, float]]
) -> tuple[pl.DataFrame, dict]:
    """``scales`` gives each rater's instrument (min, max) for the common 0–1 metric."""
    params = with_defaults("repair_case", params)
    scale = params["scale"]
    low = scaled_thresholds(scale, LOW, params.get("low"), "low")
    high = scaled_thresholds(scale, HIGH, params.get("high"), "high")
    k = int(params["first_k"])
    norm = [
        ((pl.col(f"alliance_{r}") - scales[r][0]) / (scales[r][1] - scales[r][0])).alias(f"_n_{r}")
        for r in ("patient", "therapist")
    ]
    both = (
        sessions.filter(pl.col("alliance_patient").is_not_null() & pl.col("alliance_therapist").is_not_null())
        .select(DYAD, "session", "alliance_patient", "alliance_therapist")
        .with_columns(norm)
        .with_columns(((pl.col("_n_patient") + pl.col("_n_therapist")) / 2).alias("_level"))
        .sort(DYAD, "session")
        .with_columns(pl.int_range(1, pl.len() + 1).over(DYAD).alias("_i"), pl.len().over(DYAD).alias("_n"))
    )
    on = {r: pl.col(f"_n_{r}") if scale == "pomp" else pl.col(f"alliance_{r}") for r in ("patient", "therapist")}
    per_dyad = both.group_by(DYAD).agg(
        ((on["patient"] <= low["patient"] + EPS) & (on["therapist"] <= low["therapist"] + EPS))
        .filter(pl.col("_i") <= k)
        .all()
        .alias("low_start"),
        ((on["patient"].last() >= high["patient"] - EPS) & (on["therapist"].last() >= high["therapist"] - EPS)).alias(
            "high_end"
        ),
        pl.len().alias("n_rated"),
    )
    outcome = dyads.select(DYAD, "change_category", "outcome_pre", "outcome_post")
    judged = (
        per_dyad.join(outcome, on=DYAD, how="left")
        .with_columns(
            (pl.col("n_rated") > k).alias("enough"),
            pl.col("change_category").is_in(list(params["outcome_categories"])).fill_null(False).alias("good_outcome"),
        )
        .with_columns(
            (pl.col("enough") & pl.col("low_start") & pl.col("high_end") & pl.col("good_outcome")).alias("qualified")
        )
    )
    cases = both.join(judged.filter(pl.col("qualified")).select(DYAD), on=DYAD, how="semi")
    after = (pl.col("_i") > pl.col("_i").sort_by("_level", "_i").first()) & (
        pl.col("_level") >= pl.col("_level").min() + params["onset_rise"]
    )
    # per dyad, the session of each role among the rated sessions
    roles = cases.group_by(DYAD).agg(
        pl.col("session").sort_by("_level", "_i").first().alias("lowest"),
        pl.col("session").filter(after).min().alias("onset"),
        pl.col("session").sort_by(pl.col("_level"), pl.col("_i"), descending=[True, False]).first().alias("highest"),
    )
    # the actual first and last treatment sessions: any scored questionnaire, rated or not
    treated = (
        sessions.filter(pl.col("session") >= 1)
        .group_by(DYAD)
        .agg(pl.col("session").min().alias("first"), pl.col("session").max().alias("last"))
    )
    roles = roles.join(treated, on=DYAD, how="left")
    wanted = roles.select(
        DYAD,
        pl.concat_list(
            pl.concat_list(pl.col("first", "lowest", "onset", "highest", "last").cast(pl.Int64)),
            pl.int_ranges(
                pl.col("lowest").cast(pl.Int64) + 1,
                pl.col("onset").cast(pl.Int64).fill_null(pl.col("lowest").cast(pl.Int64) + 1),
            ),
        )
        .list.drop_nulls()
        .list.unique()
        .alias("session"),
    ).explode("session")
    rated = cases.select(DYAD, "session", "alliance_patient", "alliance_therapist")
    marked = (
        wanted.with_columns(pl.col("session").cast(sessions.schema["session"]))
        .join(roles, on=DYAD, how="left")
        .join(rated, on=[DYAD, "session"], how="left")
        .with_columns(
            *[
                (pl.col("session") == pl.col(r)).fill_null(False).alias(f"_{r}")
                for r in ("first", "lowest", "onset", "highest", "last")
            ],
            ((pl.col("session") > pl.col("lowest")) & (pl.col("session") < pl.col("onset")))
            .fill_null(False)
            .alias("_between"),
        )
    )
    names = {
        "first": "first treatment session",
        "lowest": "lowest alliance",
        "between": "between the lowest and the onset",
        "onset": "onset of improvement",
        "highest": "highest alliance",
        "last": "last treatment session",
    }
    labels = pl.concat_list([pl.when(pl.col(f"_{r}")).then(pl.lit(r)) for r in ROLES]).list.drop_nulls()
    words = (
        pl.concat_list([pl.when(pl.col(f"_{r}")).then(pl.lit(names[r])) for r in ROLES])
        .list.drop_nulls()
        .list.join(", ")
    )
    unrated = pl.col("alliance_patient").is_null()
    why = (
        pl.when(pl.col("_between"))
        .then(
            pl.format(
                ": unrated, included as a session where the alliance was repaired (after the lowest, session {}, before the onset, session {})",
                pl.col("lowest"),
                pl.col("onset"),
            )
        )
        .otherwise(pl.lit(": unrated (no alliance rating by both raters), included as the actual treatment session"))
    )
    rows = (
        marked.with_columns(labels.alias("_roles"))
        .sort(DYAD, "session")
        .with_columns(
            pl.col("_roles").list.join("+").alias("group"),
            pl.int_range(1, pl.len() + 1).over(DYAD).alias("rank"),
            pl.when(unrated)
            .then(pl.format("{}{}", words, why))
            .otherwise(
                pl.format(
                    "{} (patient {}, therapist {})",
                    words,
                    pl.col("alliance_patient").round(2),
                    pl.col("alliance_therapist").round(2),
                )
            )
            .alias("reason"),
        )
    )
    summary = {
        "strategy": "repair_case",
        "source": "the repair-case selection of the Oslo process-outcome case study (README, Session selection)",
        "parameters": {**params, "low": low, "high": high},
        "dyads_tested": judged.filter(pl.col("enough")).height,
        "dyads_qualified": int(judged.get_column("qualified").sum()),
        "qualified": judged.filter(pl.col("qualified"))
        .sort(DYAD)
        .select(DYAD, "change_category", "outcome_pre", "outcome_post")
        .to_dicts(),
        "sessions": rows.height,
        "unrated_sessions": int(rows.get_column("alliance_patient").is_null().sum()),
    }
    return finish(rows, ("dyad_id", "rank", "session")), summary
