"""``repair_case``: a poor start followed by a repaired alliance and a good outcome.

After the Oslo case study in METHODS.md: both raters rated the alliance low for the
first sessions, it then rose to high, and the outcome changed reliably. A dyad
qualifies when

* both raters' alliance stays at or below ``low`` (each on its own instrument's scale)
  through the first ``first_k`` sessions where both rated it;
* both raters' last rating is at or above ``high``;
* the outcome's change category is one of ``outcome_categories`` (reliable improvement
  or recovery, from results/stats/dyads.parquet).

Only observed sessions count, so sparse schedules (alliance at sessions 3, 6, 12, 20,
40) work as they are. Within each such dyad the selection is: the lowest-alliance
session, the onset of improvement (the first session after the lowest whose alliance is
``onset_rise`` above the lowest, on the 0–1 metric of the instrument ranges), the
highest session, and the first and last sessions. A session with several roles is
listed once, with its roles joined by ``+``.
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish

DEFAULTS = {
    "first_k": 3,
    "low": {"patient": 3.0, "therapist": 4.0},
    "high": {"patient": 4.0, "therapist": 5.5},
    "onset_rise": 0.1,
    "outcome_categories": ["improved", "recovered"],
}
ROLES = ("first", "lowest", "onset", "highest", "last")


def select(sessions: pl.DataFrame, dyads: pl.DataFrame, params: dict, scales: dict[str, tuple[float, float]]) -> tuple[pl.DataFrame, dict]:
    """``scales`` gives each rater's instrument (min, max) for the common 0–1 metric."""
    params = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    low = {**DEFAULTS["low"], **(params.get("low") or {})}
    high = {**DEFAULTS["high"], **(params.get("high") or {})}
    k = int(params["first_k"])
    norm = [
        ((pl.col(f"alliance_{r}") - scales[r][0]) / (scales[r][1] - scales[r][0])).alias(f"_n_{r}") for r in ("patient", "therapist")
    ]
    both = (
        sessions.filter(pl.col("alliance_patient").is_not_null() & pl.col("alliance_therapist").is_not_null())
        .select(DYAD, "session", "alliance_patient", "alliance_therapist")
        .with_columns(norm)
        .with_columns(((pl.col("_n_patient") + pl.col("_n_therapist")) / 2).alias("_level"))
        .sort(DYAD, "session")
        .with_columns(pl.int_range(1, pl.len() + 1).over(DYAD).alias("_i"), pl.len().over(DYAD).alias("_n"))
    )
    per_dyad = both.group_by(DYAD).agg(
        pl.len().alias("n_rated"),
        ((pl.col("alliance_patient") <= low["patient"]) & (pl.col("alliance_therapist") <= low["therapist"]))
        .filter(pl.col("_i") <= k).all().alias("low_start"),
        ((pl.col("alliance_patient").last() >= high["patient"]) & (pl.col("alliance_therapist").last() >= high["therapist"])).alias("high_end"),
    )
    outcome = dyads.select(DYAD, "change_category", "outcome_pre", "outcome_post")
    judged = per_dyad.join(outcome, on=DYAD, how="left").with_columns(
        (pl.col("n_rated") > k).alias("enough"),
        pl.col("change_category").is_in(list(params["outcome_categories"])).fill_null(False).alias("good_outcome"),
    ).with_columns((pl.col("enough") & pl.col("low_start") & pl.col("high_end") & pl.col("good_outcome")).alias("qualified"))
    cases = both.join(judged.filter(pl.col("qualified")).select(DYAD), on=DYAD, how="semi")
    lowest_i = pl.col("_i").sort_by("_level", "_i").first().over(DYAD)
    low_level = pl.col("_level").min().over(DYAD)
    after = (pl.col("_i") > lowest_i) & (pl.col("_level") >= low_level + params["onset_rise"])
    marked = cases.with_columns(
        (pl.col("_i") == 1).alias("first"),
        (pl.col("_i") == lowest_i).alias("lowest"),
        (pl.col("_i") == pl.when(after).then(pl.col("_i")).min().over(DYAD)).fill_null(False).alias("onset"),
        (pl.col("_i") == pl.col("_i").sort_by(pl.col("_level"), pl.col("_i"), descending=[True, False]).first().over(DYAD)).alias("highest"),
        (pl.col("_i") == pl.col("_n")).alias("last"),
    )
    roles = pl.concat_list([pl.when(pl.col(r)).then(pl.lit(r)) for r in ROLES]).list.drop_nulls()
    rows = (
        marked.with_columns(roles.alias("_roles"))
        .filter(pl.col("_roles").list.len() > 0)
        .with_columns(
            pl.col("_roles").list.join("+").alias("group"),
            pl.int_range(1, pl.len() + 1).over(DYAD).alias("rank"),
            pl.format("{} (patient {}, therapist {})", pl.col("_roles").list.join(", "),
                      pl.col("alliance_patient").round(2), pl.col("alliance_therapist").round(2)).alias("reason"),
        )
    )
    summary = {
        "strategy": "repair_case",
        "source": "the repair-case selection of the Oslo process-outcome case study (METHODS.md)",
        "parameters": {**params, "low": low, "high": high},
        "dyads_tested": judged.filter(pl.col("enough")).height,
        "dyads_qualified": int(judged.get_column("qualified").sum()),
        "qualified": judged.filter(pl.col("qualified")).sort(DYAD).select(DYAD, "change_category", "outcome_pre", "outcome_post").to_dicts(),
        "sessions": rows.height,
    }
    return finish(rows, ("dyad_id", "rank", "session")), summary
