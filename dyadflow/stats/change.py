"""Reliable and clinically significant change (Jacobson & Truax 1991).

    S_diff = SD_pre · √2 · √(1 − r)          RCI = (post − pre) / S_diff

``r`` is the instrument's reliability and ``SD_pre`` its normative SD
(``norms.sd``), or, when the instrument file gives none, the SD of the sample's
pre-treatment scores. An instrument with a published reliable-change value in points
(``norms.reliable_change_points``, e.g. PHQ-9 6, OQ-45 14) and no reliability uses it:
``S_diff = RC / 1.96``, and a change of at least RC points is reliable.

Cut-off (the functional side is below it when lower is better, above it otherwise):

- a: ``M_dys ∓ 2·SD_dys`` from ``norms.clinical`` (else the sample's pre distribution);
- b: ``M_func ± 2·SD_func`` from ``norms.functional``;
- c: ``(SD_dys·M_func + SD_func·M_dys) / (SD_dys + SD_func)``;
- fixed: ``stats.change.cutoff`` from the config, else ``norms.cutoff``.

Categories: ``recovered`` (reliable improvement from a clinical start to the functional
side of the cut-off), ``improved`` (reliable improvement otherwise, also one that starts
on the functional side), ``deteriorated`` (reliable worsening), ``unchanged``.

"Past the cut-off" is strict: a score equal to the cut-off is on the clinical side
(``clinical_at_pre`` true, and a post score there is not recovered). The registry states
cut-offs between two whole scores (OQ-45 63.5 for "63/64"), so integer scores never
equal them; a study-set cut-off such as 64 counts 64 as clinical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import Instrument

Z = 1.96


@dataclass(frozen=True)
class ChangeRule:
    s_diff: float | None  # standard error of the difference
    fixed_points: float | None  # reliable when |change| >= this (published RC value)
    cutoff: float | None
    criterion: str
    lower_is_better: bool
    sd_source: str

    @property
    def reliable_points(self) -> float | None:
        """The smallest reliable change in score points (the sudden-gain cut-off default)."""
        if self.fixed_points is not None:
            return self.fixed_points
        return None if self.s_diff is None else Z * self.s_diff


def _sd(values: pl.Series) -> float | None:
    v = values.drop_nulls()
    sd = v.std() if v.len() >= 2 else None
    return float(sd) if sd is not None and sd > 0 else None


def change_rule(inst: Instrument, pre: pl.Series, criterion: str = "auto", cutoff: float | None = None) -> ChangeRule:
    """Work out S_diff and the cut-off for ``inst`` from its file (and the sample's pre scores)."""
    norms = inst.norms or {}
    lower = inst.lower_is_better
    r = inst.reliability
    sd_source = "norms.sd"
    sd = norms.get("sd")
    if sd is None:
        sd, sd_source = _sd(pre), "sample pre-treatment SD"
    fixed_points = norms.get("reliable_change_points")
    if r is not None and sd is not None:
        s_diff, fixed_points = sd * math.sqrt(2) * math.sqrt(1 - r), None
    elif fixed_points is not None:
        s_diff, sd_source = fixed_points / Z, "norms.reliable_change_points"
    else:
        s_diff = None

    clinical, functional = norms.get("clinical"), norms.get("functional")
    sign = -1 if lower else 1  # the functional side of a cut-off
    fixed = cutoff if cutoff is not None else norms.get("cutoff")
    if criterion == "auto":
        criterion = "fixed" if fixed is not None else "c" if clinical and functional else "a"
    if criterion == "fixed":
        value = fixed
    elif criterion == "a":
        if clinical:
            m, s = clinical["mean"], clinical["sd"]
        else:
            v = pre.drop_nulls()
            m, s = (float(v.mean()), _sd(v)) if v.len() else (None, None)
        value = None if m is None or s is None else m + sign * 2 * s
    elif criterion == "b":
        value = functional["mean"] - sign * 2 * functional["sd"] if functional else None
    elif criterion == "c":
        if clinical and functional:
            value = (clinical["sd"] * functional["mean"] + functional["sd"] * clinical["mean"]) / (
                clinical["sd"] + functional["sd"]
            )
        else:
            value = None
    else:
        raise DyadflowError(
            f"unknown change criterion '{criterion}' (a, b, c, fixed or auto)", key="stats.change.criterion"
        )
    if criterion in ("b", "c") and value is None:
        raise DyadflowError(
            f"criterion {criterion} needs norms.clinical and norms.functional in the instrument file",
            file=inst.path,
            key="norms",
        )
    return ChangeRule(s_diff, fixed_points, value, criterion, lower, sd_source)


def functional_side(rule: ChangeRule, score: pl.Expr) -> pl.Expr:
    """True when ``score`` is strictly past the cut-off on the functional side (null
    when there is no cut-off or no score); a score equal to the cut-off is clinical."""
    if rule.cutoff is None:
        return pl.lit(None, dtype=pl.Boolean)
    return score < rule.cutoff if rule.lower_is_better else score > rule.cutoff


def change_columns(rule: ChangeRule, pre: str = "outcome_pre", post: str = "outcome_post") -> list[pl.Expr]:
    """``rci``, ``reliable``, ``change_category`` and ``clinical_at_pre`` for the pre/post columns."""
    diff = pl.col(post) - pl.col(pre)
    better = -diff if rule.lower_is_better else diff  # positive = improvement
    clinical_at_pre = (~functional_side(rule, pl.col(pre))).alias("clinical_at_pre")
    if rule.s_diff is None:
        return [
            pl.lit(None, dtype=pl.Float64).alias("rci"),
            pl.lit(None, dtype=pl.Boolean).alias("reliable"),
            pl.lit(None, dtype=pl.String).alias("change_category"),
            clinical_at_pre,
        ]
    rci = diff / rule.s_diff
    if rule.fixed_points is not None:
        reliable = diff.abs() >= rule.fixed_points
    else:
        reliable = rci.abs() > Z
    # recovered (Jacobson & Truax 1991): from the dysfunctional side (at pre) to the
    # functional side (at post); without a cut-off nobody is recovered
    recovered = (~functional_side(rule, pl.col(pre)) & functional_side(rule, pl.col(post))).fill_null(False)
    category = (
        pl.when(diff.is_null())
        .then(None)
        .when(reliable & (better > 0) & recovered)
        .then(pl.lit("recovered"))
        .when(reliable & (better > 0))
        .then(pl.lit("improved"))
        .when(reliable & (better < 0))
        .then(pl.lit("deteriorated"))
        .otherwise(pl.lit("unchanged"))
    )
    return [rci.alias("rci"), reliable.alias("reliable"), category.alias("change_category"), clinical_at_pre]
