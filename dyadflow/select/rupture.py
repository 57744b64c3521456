"""``rupture_repair``: the sessions of each session-level rupture–repair sequence.

The sequences come from results/stats/ruptures.csv (dyadflow.stats.ruptures: a drop of
at least 1.5 × the dyad's own alliance SD, repaired when the alliance is back at the
pre-drop level within 3 sessions, by default). Each sequence gives its sessions before
the rupture (``pre``), of the rupture, and of the repair. With ``repaired_only`` (the
default) unrepaired ruptures are left out.
"""

from __future__ import annotations

import polars as pl

from dyadflow.select.common import DYAD, finish, with_defaults


def select(ruptures: pl.DataFrame, params: dict) -> tuple[pl.DataFrame, dict]:
    params = with_defaults("rupture_repair", params)
    seq = ruptures.with_columns(pl.col("repair_session").cast(pl.Int32, strict=False))
    if params["repaired_only"]:
        seq = seq.filter(pl.col("repair_session").is_not_null())
    if params["rater"]:
        seq = seq.filter(pl.col("rater") == params["rater"])
    seq = seq.sort(DYAD, "rupture_session", "rater").with_columns(
        pl.int_range(1, pl.len() + 1).over(DYAD).alias("_seq"),
        pl.format(
            "{}-rated drop of {} from session {} to {}",
            pl.col("rater"),
            pl.col("drop").round(2),
            pl.col("pre_session"),
            pl.col("rupture_session"),
        ).alias("_what"),
    )
    parts = []
    for role, col, text in (
        ("pre", "pre_session", "before the rupture"),
        ("rupture", "rupture_session", "the rupture"),
        ("repair", "repair_session", "the repair"),
    ):
        parts.append(
            seq.filter(pl.col(col).is_not_null()).select(
                DYAD,
                pl.col(col).cast(pl.Int32).alias("session"),
                pl.lit(role).alias("group"),
                pl.col("_seq").cast(pl.Int32).alias("rank"),
                pl.format("sequence {}: {} ({})", pl.col("_seq"), pl.lit(text), pl.col("_what")).alias("reason"),
            )
        )
    rows = pl.concat(parts).unique(subset=[DYAD, "session"], keep="first", maintain_order=True)
    summary = {
        "strategy": "rupture_repair",
        "source": "dyadflow's session-level rupture-repair rule (README, Statistics: ruptures.csv); a project default, not a published standard",
        "parameters": params,
        "sequences": seq.height,
        "dyads": seq.get_column(DYAD).n_unique(),
        "sessions": rows.height,
    }
    return finish(rows, ("dyad_id", "session", "rank")), summary
