"""The cohort report (results/reports/cohort.pdf) and the validation report (results/reports/validation.pdf).

Both read small aggregate tables; anything a study did not produce (no selection, an
older stats stage without cohort.json) shows as "—" with a short explanation.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from dyadflow import __version__
from dyadflow.coding.agreement import AGREEMENT_SCHEMA
from dyadflow.coding.comparison import COMPARISON_SCHEMA
from dyadflow.core.accounting import AccountingModel, RejectionsModel, WarningsModel
from dyadflow.core.contract import read_table
from dyadflow.report import render
from dyadflow.stats.contract import DyadsModel, SessionsModel

FIRST_REJECTED = 200


def _latest_date(sessions: pl.DataFrame) -> dt.date | None:
    return sessions.get_column("date").max() if sessions.height else None


def _provenance(config_sha256: str | None, build_date) -> dict:
    return {"version": __version__, "config": (config_sha256 or "")[:8] or None, "build_date": str(build_date or "—")}


def _words(key: str) -> str:
    return str(key).replace("_", " ")


def _text(value) -> str:
    """A parameter or a count as a reader writes it: no JSON braces, no quotes."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{_words(k)} {_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
            return "; ".join(f"{_text(a)} ({_text(b)})" for a, b in value)  # (reason, count) pairs
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return _words(value) if isinstance(value, str) and value.isidentifier() else str(value)


def selection_view(name: str, summary: dict | None) -> dict:
    """One strategy's _summary.json as the cohort report shows it: the method and its
    source, the parameters in one line, the counts as labelled rows, and the groups as a
    table (one column per group, one row per figure) or as "group n" text."""
    if summary is None:
        return {"name": name, "missing": True}
    rest = {k: v for k, v in summary.items() if k not in ("name", "strategy", "source", "parameters", "groups")}
    groups = summary.get("groups") or {}
    table = None
    if groups and all(isinstance(v, dict) for v in groups.values()):
        # one column per group (a strategy has few groups) and one row per figure, so the
        # table fits the page however many figures a strategy reports
        figures = sorted({c for v in groups.values() for c in v})
        table = {
            "columns": list(groups),
            "rows": [[_words(f).capitalize()] + [_text(v.get(f)) for v in groups.values()] for f in figures],
        }
        groups_text = None
    else:
        groups_text = _text(groups) if groups else "none selected"
    return {
        "name": name,
        "missing": False,
        "strategy": _words(summary.get("strategy", "")),
        "source": summary.get("source"),
        "parameters": _text(summary.get("parameters") or {}),
        "facts": [(_words(k).capitalize(), _text(v)) for k, v in sorted(rest.items())],
        "groups_table": table,
        "groups_text": groups_text,
    }


# the coding stage's tables (results/coding/agreement.csv, comparison.csv), read with their writers' types
STATISTIC_NAMES = {
    "icc2_1": "ICC(2,1)",
    "icc2_k": "ICC(2,k)",
    "cohen_kappa": "Cohen's κ",
    "fleiss_kappa": "Fleiss' κ",
    "krippendorff_alpha": "Krippendorff's α",
}


def _exists(path) -> bool:
    return bool(path) and Path(path).exists()


def coding_view(agreement_path: str | None, comparison_path: str | None) -> dict:
    """The coding stage's agreement and (unblinded selections only) comparison tables, when the stage ran
    (results/coding/, docs/coding.md); read with their schemas, so an empty table is still typed."""
    agreement = pl.read_csv(agreement_path, schema=AGREEMENT_SCHEMA) if _exists(agreement_path) else None
    comparison = pl.read_csv(comparison_path, schema=COMPARISON_SCHEMA) if _exists(comparison_path) else None
    return {
        "ran": agreement is not None,
        "agreement": []
        if agreement is None
        else agreement.with_columns(pl.col("statistic").replace(STATISTIC_NAMES).alias("statistic")).to_dicts(),
        "comparison": [] if comparison is None else comparison.to_dicts(),
        "comparison_method": comparison.item(0, "method") if comparison is not None and comparison.height else None,
    }


MULTILEVEL_TERMS = {
    "intercept": "Intercept",
    "alliance_within": "Alliance, within patient (lagged)",
    "alliance_between": "Alliance, between patients (person mean)",
    "outcome_within": "Outcome at t, within patient",
}


def multilevel_view(path: str | None) -> dict | None:
    """results/stats/multilevel.json as the cohort report shows it; None when not produced."""
    if not _exists(path):
        return None
    m = json.loads(Path(path).read_text(encoding="utf-8"))
    return {
        "model": m.get("model"),
        "random_effects": m.get("random_effects"),
        "method": m.get("method"),
        "converged": m.get("converged"),
        "fitted": bool(m.get("fixed_effects")),
        "message": m.get("message"),
        "counts": [
            ("Observations (session pairs)", m.get("n_observations")),
            ("Patients", m.get("n_patients")),
            ("Dyads", m.get("n_dyads")),
            ("Therapists", m.get("n_therapists")),
        ],
        # the model's terms in their order (multilevel.json is written with sorted keys)
        "fixed": [
            {"term": MULTILEVEL_TERMS.get(k, _words(k)), **v}
            for k, v in sorted(
                (m.get("fixed_effects") or {}).items(),
                key=lambda kv: list(MULTILEVEL_TERMS).index(kv[0]) if kv[0] in MULTILEVEL_TERMS else 99,
            )
        ],
        "variance": [(_words(k), v) for k, v in (m.get("variance_components") or {}).items()],
    }


def cohort_context(files: Mapping, study: str, summaries: Mapping[str, str], config_sha256: str | None) -> dict:
    """``files``: the rule's named inputs (``dyads``, ``sessions``, and when produced ``cohort``,
    ``multilevel``, ``agreement``, ``comparison``); ``summaries``: each configured selection's
    name and its ``<name>_summary.json``."""
    dyads = read_table(files["dyads"], DyadsModel)
    sessions = read_table(files["sessions"], SessionsModel)
    cohort_path = files.get("cohort")
    cohort = json.loads(Path(cohort_path).read_text(encoding="utf-8")) if _exists(cohort_path) else {}
    # the flow table as the stats stage counted it (cohort.json's ``arms``), and its own flow counts
    arms = cohort.get("arms") or {"dyads": "—", "sessions": "—", "per_arm": []}
    flow = {
        "dyads": arms["dyads"],
        "sessions": arms["sessions"],
        "per_arm": [{**a, "arm": "—" if a["arm"] is None else a["arm"]} for a in arms["per_arm"]],
        "reported": cohort.get("flow") or {},
    }
    categories = cohort.get("change_categories") or {}
    cat_names = sorted({c for arm in categories.values() for c in arm})
    completeness = cohort.get("completeness") or []
    instruments = sorted({c["instrument"] for c in completeness})
    sessions_seen = sorted({c["session"] for c in completeness})
    grid = {(c["instrument"], c["session"]): c for c in completeness}
    views = []
    for name, p in summaries.items():
        views.append(selection_view(name, json.loads(Path(p).read_text(encoding="utf-8")) if _exists(p) else None))
    last = _latest_date(sessions)
    return {
        "study": study,
        "flow": flow,
        "categories": categories,
        "cat_names": cat_names,
        "completeness": {"instruments": instruments, "sessions": sessions_seen, "grid": grid},
        "pooled": cohort.get("pooled_effect") or {},
        "outcome": cohort.get("outcome"),
        "reliability": cohort.get("reliability") or {},
        "summaries": views,
        "supervisor": supervisor_table(dyads),
        "has_cohort": bool(cohort),
        "multilevel": multilevel_view(files.get("multilevel")),
        "coding": coding_view(files.get("agreement"), files.get("comparison")),
        "provenance": _provenance(config_sha256, last),
        "epoch_date": last,
    }


SIGNALS = ("red", "yellow", "green", "recovered")


def supervisor_table(dyads: pl.DataFrame) -> list[dict]:
    """Per therapist: dyads, the latest feedback signal counted per colour (and without one),
    alliance alerts and dyads whose latest risk-bearing questionnaire has a risk item
    (issue 17; from the dyads table's signal, alliance_alert and risk_latest)."""
    if not dyads.height:
        return []
    return (
        dyads.group_by(pl.col("therapist_id").fill_null("—"))
        .agg(
            pl.len().alias("dyads"),
            *[(pl.col("signal") == s).sum().alias(s) for s in SIGNALS],
            pl.col("signal").is_null().sum().alias("none"),
            pl.col("alliance_alert").fill_null(False).sum().alias("alliance_alerts"),
            pl.col("risk_latest").fill_null(False).sum().alias("risk"),
        )
        .sort("therapist_id")
        .to_dicts()
    )


ID_WARNING_COLUMNS = ("dyad_id", "rater", "therapist_id")  # the columns of dyadflow.validate.linking's warnings


def validation_context(files: Mapping, study: str, config_sha256: str | None) -> dict:
    """``files``: the rule's named inputs ``accounting``, ``rejections``, ``warnings`` and ``sessions``."""
    accounting = read_table(files["accounting"], AccountingModel)
    rejections = read_table(files["rejections"], RejectionsModel)
    by_rule = (
        rejections.group_by("rule").agg(pl.len().alias("n"), pl.col("dyad_id").n_unique().alias("dyads")).sort("rule")
    )
    first = rejections.sort("source_file", "source_line", "column").head(FIRST_REJECTED)
    warnings = read_table(files.get("warnings"), WarningsModel).to_dicts()
    # warnings about IDs not linked across sources (dyadflow.validate.linking) have their own section
    id_warnings = [w for w in warnings if w["column"] in ID_WARNING_COLUMNS]
    warnings = [w for w in warnings if w["column"] not in ID_WARNING_COLUMNS]
    sessions = read_table(files["sessions"], SessionsModel)
    last = _latest_date(sessions)
    # files no row of which was accepted (all rejected, or quarantined): highlighted
    no_data = accounting.filter(
        pl.col("file_error").is_not_null() | ((pl.col("rows_read") > 0) & (pl.col("rows_accepted") == 0))
    ).sort("source_file")
    return {
        "study": study,
        # a file read by two inputs (two instruments in one wide CSV) has a row per input
        "accounting": accounting.sort("source_file", "input", maintain_order=True)
        .with_columns(
            (pl.len().over("source_file") > 1).alias("shared"),
            pl.col("source_file").is_in(no_data.get_column("source_file").implode()).alias("no_data"),
        )
        .to_dicts(),
        "files_without_data": [
            f"{r['source_file']}: the whole file was quarantined, it cannot be read: {r['file_error']}"
            if r["file_error"]
            else f"{r['source_file']}: all {r['rows_read']} row(s) were rejected: no data from this file is used"
            for r in no_data.iter_rows(named=True)
        ],
        "by_rule": by_rule.to_dicts(),
        "first": first.to_dicts(),
        "n_rejections": rejections.height,
        "warnings": warnings,
        "id_warnings": id_warnings,
        "first_limit": FIRST_REJECTED,
        "provenance": _provenance(config_sha256, last),
        "epoch_date": last,
    }


def render_report(template: str, ctx: dict, out: str) -> None:
    html = render.template_env().get_template(template).render(**ctx)
    render.write_pdf(out, html, render.epoch_of(ctx["epoch_date"]))


def run_cohort(files, study, summaries, config_sha256, out):
    render_report("cohort.html.j2", cohort_context(files, study, summaries, config_sha256), out)


def run_validation(files, study, config_sha256, out):
    render_report("validation.html.j2", validation_context(files, study, config_sha256), out)
