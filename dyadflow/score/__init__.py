"""Score: turn validated questionnaires into scores, as each instrument file says.

For every instrument the scoring expressions are generated from its registry entry:
reverse keying (``min + max - x``), the missing-item rule (``scoring.missing``: prorating,
or the subscale mean of the OQ-45 scoring sheet), the primary score (sum or mean),
severity bands, risk items and subscale scores (``scoring.subscales``: sum or mean). All dyads and
sessions of an instrument are scored in one polars pass.

The scores table also carries what the reports need of each questionnaire, so that no
later stage reads the validated rows: its ``note`` and ``consent_share_text``, the
patient's text consent that governs the row's session (the decision the clinician copy
applies to the note, :func:`dyadflow.validate.consent.governs`). Internal consistency
(Cronbach's alpha) is computed here, where the keyed items exist
(:mod:`dyadflow.score.reliability`).
"""

from __future__ import annotations

import polars as pl

from dyadflow.core import atomic
from dyadflow.core.contract import read_table
from dyadflow.core.performance import fast_path_enabled
from dyadflow.core.registry import Instrument, item_column
from dyadflow.score.contract import ScoresModel
from dyadflow.validate import consent as consent_rules
from dyadflow.validate.checks import ValidatedModel
from dyadflow.validate.consent import ConsentModel

ID_COLUMNS = ["dyad_id", "patient_id", "therapist_id", "session", "date", "rater", "instrument"]
SCORE_COLUMNS = ["total", "mean", "n_answered", "prorated", "band", "risk_flag"]
EXTRA_COLUMNS = [
    "arm",
    "score",
    "n_items",
    "risk_items",
    "score_missing_reason",
    "source_file",
    "source_line",
    "note",
]


def keyed(inst: Instrument, item: int) -> pl.Expr:
    """Item ``item`` as scored: reverse-keyed items become ``min + max - x``."""
    col = pl.col(item_column(item)).cast(pl.Float64)
    return (inst.reverse_sum - col) if item in inst.reverse_keyed else col


def scored_mean(inst: Instrument, items: list[int], max_missing: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(mean of answered keyed items or null, answered count, whether the missing rule allows scoring)."""
    exprs = [keyed(inst, i) for i in items]
    answered = pl.sum_horizontal([pl.col(item_column(i)).is_not_null().cast(pl.Int32) for i in items])
    ok = (len(items) - answered) <= max_missing
    mean = pl.when(ok & (answered > 0)).then(pl.mean_horizontal(exprs))
    return mean, answered, ok & (answered > 0)


def round_half_up(x: pl.Expr) -> pl.Expr:
    """Nearest whole number, .5 up (2.5 -> 3), as on a paper scoring sheet; not banker's rounding."""
    return (x + 0.5).floor()


def subscale_filled(inst: Instrument) -> dict[int, pl.Expr]:
    """Each item as scored, a missing one replaced by the mean of the answered scored
    items of its own subscale rounded to a whole number (``missing: subscale_mean``, the
    OQ-45 scoring sheet). Reverse-keyed items are imputed on the scored scale."""
    filled: dict[int, pl.Expr] = {}
    for sub_items in inst.subscales.values():
        fill = round_half_up(pl.mean_horizontal([keyed(inst, i) for i in sub_items]))
        for i in sub_items:
            filled[i] = pl.coalesce(keyed(inst, i), fill)
    return filled


def band_expr(inst: Instrument, score: pl.Expr) -> pl.Expr:
    """The label of the highest band whose lower bound the score reaches."""
    expr = pl.lit(None, dtype=pl.String)
    for band in inst.bands:
        expr = pl.when(score >= band.min).then(pl.lit(band.label)).otherwise(expr)
    return pl.when(score.is_not_null()).then(expr)


def risk_exprs(inst: Instrument) -> tuple[pl.Expr, pl.Expr]:
    """(risk_flag, risk_items): true when any risk item is above its threshold.

    The flag is null, not false, when no risk item is positive but one is unanswered.
    """
    if not inst.risk_items:
        return pl.lit(None, dtype=pl.Boolean), pl.lit(None, dtype=pl.String)
    hits = [
        pl.when(pl.col(item_column(r.item)) > r.above).then(
            pl.format("item {} = {}", pl.lit(r.item), pl.col(item_column(r.item)))
        )
        for r in inst.risk_items
    ]
    any_hit = pl.any_horizontal([pl.col(item_column(r.item)) > r.above for r in inst.risk_items])
    any_missing = pl.any_horizontal([pl.col(item_column(r.item)).is_null() for r in inst.risk_items])
    flag = pl.when(any_hit.fill_null(False)).then(True).when(any_missing).then(None).otherwise(False)
    listed = pl.concat_str(hits, separator="; ", ignore_nulls=True)
    return flag, pl.when(any_hit.fill_null(False)).then(listed)


TOTAL_ONLY = "total only"


def score_total_only(rows: pl.LazyFrame, inst: Instrument) -> pl.LazyFrame:
    """Rows of an instrument declared ``input: total``: the score is the pre-scored total
    (validated against ``total_range``); what needs items (``n_answered``, subscales,
    risk flags) is empty, with the reason "total only"."""
    value = pl.col("total").cast(pl.Float64)
    score = value.alias("score")
    return rows.with_columns(
        (value if inst.method == "sum" else pl.lit(None, dtype=pl.Float64)).alias("total"),
        (value if inst.method == "mean" else pl.lit(None, dtype=pl.Float64)).alias("mean"),
        pl.lit(None, dtype=pl.Int32).alias("n_answered"),
        pl.lit(None, dtype=pl.Boolean).alias("prorated"),
        score,
        pl.lit(None, dtype=pl.Int32).alias("n_items"),
        pl.lit(None, dtype=pl.Boolean).alias("risk_flag"),
        pl.lit(None, dtype=pl.String).alias("risk_items"),
        pl.lit(TOTAL_ONLY).alias("score_missing_reason"),
    ).with_columns(band_expr(inst, pl.col("score")).alias("band"))


CATEGORICAL = "categorical codes are not summed"


def score_categorical(rows: pl.LazyFrame, inst: Instrument) -> pl.LazyFrame:
    """Rows of a categorical instrument (``response.type: categorical``): its items are
    codes, not amounts, so nothing is summed; the codes stay in the validated table (and
    dyadflow.coding compares coders on them). Only the answered count is given."""
    answered = pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int32) for c in inst.items])
    return rows.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("total"),
        pl.lit(None, dtype=pl.Float64).alias("mean"),
        answered.alias("n_answered"),
        pl.lit(None, dtype=pl.Boolean).alias("prorated"),
        pl.lit(None, dtype=pl.Float64).alias("score"),
        pl.lit(inst.n_items).alias("n_items"),
        pl.lit(None, dtype=pl.Boolean).alias("risk_flag"),
        pl.lit(None, dtype=pl.String).alias("risk_items"),
        pl.lit(CATEGORICAL).alias("score_missing_reason"),
        pl.lit(None, dtype=pl.String).alias("band"),
    )


def score_instrument(rows: pl.LazyFrame, inst: Instrument) -> pl.LazyFrame:
    """Score the rows of one instrument (all dyads and sessions at once)."""
    if inst.total_only:
        return score_total_only(rows, inst)
    if inst.categorical:
        return score_categorical(rows, inst)
    items = list(range(1, inst.n_items + 1))
    mean, answered, ok = scored_mean(inst, items, inst.max_missing_items)
    flag, listed = risk_exprs(inst)
    by_subscale = inst.missing_rule == "subscale_mean"
    if by_subscale:
        filled = subscale_filled(inst)
        complete = pl.all_horizontal([filled[i].is_not_null() for i in items])  # every subscale has an answer
        total = pl.when(ok & complete).then(pl.sum_horizontal([filled[i] for i in items]))
        mean = total / inst.n_items
    else:
        exact_sum = pl.sum_horizontal([keyed(inst, i) for i in items])
        total = pl.when(ok & (answered == inst.n_items)).then(exact_sum).when(ok).then(mean * inst.n_items)
    score = total if inst.method == "sum" else mean
    subscales = []
    for name, sub_items in inst.subscales.items():
        sub = list(sub_items)
        sub_mean, _, sub_ok = scored_mean(inst, sub, int(len(sub) * inst.max_missing_fraction + 1e-9))
        if by_subscale:
            sub_mean = pl.when(sub_ok).then(pl.mean_horizontal([filled[i] for i in sub]))
        subscales.append((sub_mean * len(sub) if inst.subscale_score == "sum" else sub_mean).alias(f"sub_{name}"))
    reason = pl.when(~ok).then(
        pl.format(
            "{} of {} items missing; at most {} may be missing",
            pl.lit(inst.n_items) - answered,
            pl.lit(inst.n_items),
            pl.lit(inst.max_missing_items),
        )
    )
    if by_subscale:
        reason = reason.when(total.is_null()).then(
            pl.lit("a subscale has no answered item to impute its missing items from")
        )
    return rows.with_columns(
        total.alias("total"),
        mean.alias("mean"),
        answered.alias("n_answered"),
        (total.is_not_null() & (answered < inst.n_items)).alias("prorated"),
        score.alias("score"),
        pl.lit(inst.n_items).alias("n_items"),
        flag.alias("risk_flag"),
        listed.alias("risk_items"),
        reason.alias("score_missing_reason"),
        *subscales,
    ).with_columns(band_expr(inst, pl.col("score")).alias("band"))


def score_frame(validated: pl.DataFrame, registry: dict[str, Instrument]) -> pl.DataFrame:
    present = sorted(validated.get_column("instrument").unique().to_list())
    subs = sorted({f"sub_{n}" for k in present for n in registry[k].subscales})
    columns = ID_COLUMNS + SCORE_COLUMNS + subs + EXTRA_COLUMNS
    if "coder_id" in validated.columns:  # observer rows: one score per coder
        columns = [*columns, "coder_id"]
    if "note" not in validated.columns:
        validated = validated.with_columns(pl.lit(None, dtype=pl.String).alias("note"))
    if not present:
        return pl.DataFrame(schema={**{c: validated.schema.get(c, pl.String) for c in ID_COLUMNS}})
    if fast_path_enabled() and _in_score_order(validated):
        return _score_in_place(validated, registry, present, columns, subs)
    lazy = validated.lazy()
    parts = [score_instrument(lazy.filter(pl.col("instrument") == k), registry[k]) for k in present]
    scored = pl.concat(parts, how="diagonal_relaxed")
    for c in subs:
        if c not in scored.collect_schema().names():
            scored = scored.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    return (
        scored.select(columns)
        .with_columns(pl.col("n_answered", "n_items").cast(pl.Int32))
        .sort("dyad_id", "session", "instrument", "rater")
        .collect()
    )


SCORE_ORDER = ["dyad_id", "session", "instrument", "rater"]
# what score_instrument computes (the other output columns are the validated row's own)
COMPUTED = frozenset(
    (
        "total",
        "mean",
        "n_answered",
        "prorated",
        "score",
        "n_items",
        "risk_flag",
        "risk_items",
        "score_missing_reason",
        "band",
    )
)


def _in_score_order(validated: pl.DataFrame) -> bool:
    """Whether the rows are strictly increasing in the scores' order (dyad, session,
    instrument, rater) with no empty key: then sorting the scores gives the rows' own
    order, whatever the sort does with ties (there are none). The validated table is
    sorted so (plus source file and line), so this holds unless a dyad's session has one
    instrument twice (several coders)."""
    ahead = None
    for c in reversed(SCORE_ORDER):
        later = pl.col(c).shift(-1)
        ahead = (pl.col(c) < later) if ahead is None else ((pl.col(c) < later) | ((pl.col(c) == later) & ahead))
    no_null = pl.all_horizontal(pl.col(SCORE_ORDER).null_count() == 0)
    return bool(validated.select(ahead.head(validated.height - 1).all() & no_null).item())


def _score_in_place(
    validated: pl.DataFrame, registry: dict[str, Instrument], present: list[str], columns: list[str], subs: list[str]
) -> pl.DataFrame:
    """score_frame's fast path, for rows already in the scores' order: each instrument's
    rows give only the computed columns, put back in row order by their row number (an
    integer sort, not the four-column sort of every column); the other columns are the
    validated table's own."""
    lazy = validated.lazy().with_row_index("_i")
    parts = []
    for k in present:
        part = score_instrument(lazy.filter(pl.col("instrument") == k), registry[k])
        parts.append(part.select("_i", *(c for c in part.collect_schema().names() if c in COMPUTED or c in subs)))
    scored = pl.concat(parts, how="diagonal_relaxed").sort("_i").collect()
    return (
        validated.select(c for c in columns if c not in COMPUTED and c not in subs)
        .with_columns(
            scored.get_column(c) if c in scored.columns else pl.lit(None, dtype=pl.Float64).alias(c)
            for c in columns
            if c in COMPUTED or c in subs
        )
        .select(columns)
        .with_columns(pl.col("n_answered", "n_items").cast(pl.Int32))
    )


def with_text_consent(scores: pl.DataFrame, consent: pl.DataFrame) -> pl.DataFrame:
    """``scores`` with ``consent_share_text``: the patient's text consent that governs each
    row's session (latest decision at or before it; none = false), from the consent
    decisions of ``results/validated/consent.parquet``."""
    frame = scores.drop("consent_share_text", strict=False)
    return consent_rules.governs(frame, consent, "share_text", alias="consent_share_text")


def run(
    validated_path: str,
    registry: dict[str, Instrument],
    out_parquet: str,
    out_csv: str,
    consent_path: str | None = None,
    out_reliability: str | None = None,
) -> pl.DataFrame:
    """Score the validated questionnaires; write the scores (with each row's note and text
    consent) and, when ``out_reliability`` is given, the reliability table."""
    from dyadflow.score import reliability

    validated = read_table(validated_path, ValidatedModel)
    # (memory) the small reliability table first, so its item arrays and the scores are
    # never in memory together
    alphas = reliability.table(validated, registry) if out_reliability else None
    scores = with_text_consent(score_frame(validated, registry), read_table(consent_path, ConsentModel))
    del validated
    written = atomic.write_table(out_parquet, scores, ScoresModel, "parquet")
    atomic.write_csv(out_csv, written)  # the same table: checked against its contract once
    if out_reliability:
        atomic.write_table(out_reliability, alphas, reliability.ReliabilityModel, "csv")
    return scores
