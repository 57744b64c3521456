"""The glue between Snakemake rules and the stage modules.

Each rule's ``run:`` block calls :func:`run_stage` with its input, output, params and
log. The stage's messages go to the rule's log file; a :class:`DyadflowError` (a data
or configuration problem) is printed as one clear message, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from dyadflow.core.config import plain as _plain
from dyadflow.core.errors import DyadflowError

logger = logging.getLogger("dyadflow")


class StageFailed(Exception):
    """Raised to Snakemake after the message has been written to the log and stderr."""


def _ingest(input, output, params, **_):
    from dyadflow import ingest

    meta = ingest.run(dict(params.spec), output.table, output.meta, policy=params.get("policy", "strict"))
    if meta.get("file_error"):
        message = f"{meta['source_file']}: the whole file is quarantined (validation: quarantine), it cannot be read: {meta['file_error']}"
        logger.warning("%s", message)
        print(f"\ndyadflow ingest: WARNING: {message}\n", file=sys.stderr, flush=True)
        return
    logger.info(
        "read %s (%s): %d rows from %d records (%d blank rows skipped)",
        meta["source_file"],
        meta["format"],
        meta["rows_read"],
        meta["records_read"],
        meta.get("blank_rows", 0),
    )
    if meta.get("dropped_columns"):
        logger.info("columns not used: %s", ", ".join(meta["dropped_columns"]))
    for w in meta.get("warnings", []):
        if w["column"] is None:  # about the file (a hidden sheet, its encoding)
            logger.warning("%s (results/validation/warnings.csv)", w["warning"])
        else:
            logger.warning("column '%s': %s (results/validation/warnings.csv)", w["column"], w["warning"])


def data_freeze_date(value: str | None):
    """The configured data freeze date, or today (UTC) when none is set."""
    import datetime as dt

    if value:
        return dt.date.fromisoformat(str(value))
    return dt.datetime.now(dt.UTC).date()


def _study(params):
    """The study of this job, resolved once from the rule's params (dyadflow/core/study.py)."""
    from dyadflow.core.study import resolve

    return resolve({k: params.get(k) for k in ("outcome", "alliance", "instruments_dir")})


def _validate(input, output, params, log, **_):
    import datetime as dt

    from dyadflow.core import accounting
    from dyadflow.validate import rules as validate

    study = _study(params)
    result = validate.run(
        list(input.tables),
        list(input.metas),
        study.registry,
        params.policy,
        output.validated,
        output.rejections,
        output.accounting,
        strict_rejections=str(Path(str(log[0])).with_suffix(".rejections.csv")),
        out_warnings=output.get("warnings"),
        date_limit=data_freeze_date(params.data_freeze),
        alliance=study.alliance_keys,
        out_consent=output.get("consent"),
        earliest_date=dt.date.fromisoformat(str(params.earliest_date)),
    )
    n_warnings = sum(len(json.loads(Path(p).read_text(encoding="utf-8")).get("warnings", [])) for p in input.metas)
    if n_warnings:
        logger.warning("%d warning(s) about input files and columns: see %s", n_warnings, output.get("warnings"))
    n_consent = result.warnings.height - n_warnings - result.linking.height
    if n_consent:
        logger.warning(
            "%d consent cell(s) ignored (not the patient's row, or not true/false): see %s",
            n_consent,
            output.get("warnings"),
        )
    logger.info("%d consent decision(s) recorded (%s)", result.consent.height, output.get("consent"))
    for file, column, text in result.linking.iter_rows():
        # in the log and on the terminal (the log handler alone does not reach Snakemake's output)
        line = f"IDs ({column}{f', {file}' if file else ''}): {text}"
        logger.warning("%s", line)
        # (not "dyadflow validate: …", which the nightly summary would take for the failure of a later job)
        print(f"WARNING dyadflow validate: {line}", file=sys.stderr, flush=True)
    for row in result.accounting.iter_rows(named=True):
        logger.info(
            "%s: %d read, %d accepted, %d rejected (%d exact duplicates)",
            row["source_file"],
            row["rows_read"],
            row["rows_accepted"],
            row["rows_rejected"],
            row["rows_duplicate"],
        )
    if result.rejections.height:
        counts = result.rejections.group_by("rule").len().sort("rule")
        logger.info("rejections by rule: %s", ", ".join(f"{r} {n}" for r, n in counts.iter_rows()))
    for row in accounting.files_without_data(result.accounting).iter_rows(named=True):
        message = accounting.whole_file_message(row)
        logger.warning("%s", message)
        print(f"dyadflow validate: WARNING: {message}", file=sys.stderr, flush=True)


def _score(input, output, params, **_):
    from dyadflow import score

    scores = score.run(
        input.validated, _study(params).registry, output.parquet, output.csv, input.consent, output.reliability
    )
    logger.info("scored %d questionnaires", scores.height)


def _stats(input, output, params, **_):
    from dyadflow import stats

    study = _study(params)
    names = (
        "sessions",
        "dyads",
        "dyads_csv",
        "sudden_gains",
        "ruptures",
        "cohort",
        "feedback",
        "feedback_csv",
        "subscales",
    )
    out = {k: getattr(output, k) for k in names if hasattr(output, k)}
    res = stats.run(
        input.scores,
        study.registry,
        study.outcome_key,
        study.alliance_keys,
        _plain(params.stats),
        out,
        reliability_path=input.reliability,
        feedback_cfg=_plain(params.get("feedback")),
    )
    flow = res.cohort["flow"]
    logger.info(
        "%d dyads, %d dyad-sessions; lagged regression for %d dyads; %d sudden gains/losses; %d ruptures",
        flow["dyads"],
        flow["dyad_sessions"],
        flow["dyads_with_lag"],
        res.gains.height,
        res.ruptures.height,
    )
    if res.feedback is not None:
        counts = res.feedback.group_by("signal_rule").len().sort("signal_rule")
        logger.info("feedback signals by rule: %s", ", ".join(f"{r} {n}" for r, n in counts.iter_rows()))
    for note, n in res.dyads.group_by("stats_note").len().drop_nulls().sort("len", descending=True).head(5).iter_rows():
        logger.info("%d dyad(s): %s", n, note)


def _multilevel(input, output, params, **_):
    import polars as pl

    from dyadflow.core import atomic
    from dyadflow.stats import multilevel

    res = multilevel.run(
        pl.read_parquet(input.sessions), pl.read_parquet(input.dyads), _plain(params.multilevel), int(params.max_gap)
    )
    atomic.write_json(output.multilevel, res)
    logger.info(
        "multilevel model: %d observations, %d dyads, %d therapists; converged: %s",
        res["n_observations"],
        res["n_dyads"],
        res["n_therapists"],
        res["converged"],
    )
    if res["message"]:
        logger.warning("multilevel model: %s", res["message"])


def _coding_ratings(input, output, params, **_):
    from dyadflow.coding import pipeline
    from dyadflow.core.registry import load_registry

    coding = _plain(params.coding)
    # results/selection/<name>_key.csv of the coded selections that are configured under selection:
    current = {Path(str(p)).name[: -len("_key.csv")]: str(p) for p in input.current_keys}
    res = pipeline.run_ratings(
        coding,
        load_registry(params.instruments_dir),
        params.policy,
        current,
        {k: output[k] for k in ("ratings", "accounting", "rejections", "warnings")},
    )
    acc = res.accounting
    logger.info(
        "coded rows: %d read, %d accepted, %d rejected (results/coding/rejections.csv)",
        acc.get_column("rows_read").sum(),
        acc.get_column("rows_accepted").sum(),
        acc.get_column("rows_rejected").sum(),
    )
    for w in res.warnings.iter_rows(named=True):
        logger.warning(
            "%s%s (results/coding/warnings.csv)",
            f"{w['selection']} code {w['code']}: " if w["code"] else "",
            w["warning"],
        )


def _coding_agreement(input, output, params, **_):
    from dyadflow.coding import pipeline
    from dyadflow.core.registry import load_registry

    pipeline.run_agreement(
        input.ratings,
        load_registry(params.instruments_dir),
        float(params.discuss_distance),
        {k: output[k] for k in ("agreement", "consensus", "to_discuss")},
    )


def _coding_comparison(input, output, params, **_):
    from dyadflow.coding import pipeline

    res = pipeline.run_comparison(input.consensus, _plain(params.selections), input.dyads, output.comparison)
    logger.info(
        "comparison: %d row(s) (unblinded: %s)",
        res.height,
        ", ".join(s["name"] for s in _plain(params.selections) if s.get("unblind")) or "none",
    )


def _select(input, output, params, **_):
    from dyadflow import select

    select.write_index([dict(s) for s in params.strategies], output.index)


def _select_strategy(input, output, params, **_):
    from dyadflow import select, stats

    study = _study(params)
    spec = _plain(params.spec)
    chosen = select.run(
        spec,
        input.sessions,
        input.dyads,
        input.ruptures,
        study.registry,
        study.outcome_key,
        study.alliance_keys,
        {k: output[k] for k in ("selection", "summary", "blinded", "key")},
        composite=stats.settings(_plain(params.stats))["composite"],
    )
    counts = chosen.group_by("group").len().sort("group").rows()
    logger.info(
        "%s (%s): %d session(s) selected: %s",
        spec["name"],
        spec["strategy"],
        chosen.height,
        ", ".join(f"{g} {n}" for g, n in counts) or "none",
    )


def _named(files, names) -> dict:
    """The rule's named inputs among ``names`` (a name the rule does not declare is left out)."""
    return {k: files[k] for k in names if k in files.keys()}


def _report_plan(input, output, params, **_):
    from dyadflow.report import shards, tables

    selections = dict(zip(params.strategies, input.selections, strict=True))
    files = _named(input, tables.CONTRACTS)
    shards.plan(files, selections, int(params.dyads_per_shard), output.plan, output.tables)


def _report_shard(input, output, params, wildcards, **_):
    from dyadflow.report import shards

    study = _study(params)  # outcome, alliance and instruments resolved once (one clear error for an unknown key)
    micro = {
        k: input[f"microprocess_{k}"] for k in ("sessions", "segments", "series") if f"microprocess_{k}" in input.keys()
    }
    shards.render_shard(
        _named(input, shards.SHARD_TABLES),
        output.manifest,
        output.pdf,
        study=params.study,
        audience=params.audience,
        outcome=study.outcome_key,
        alliance=study.alliance_keys,
        config_sha256=params.config_sha256,
        microprocess=micro,
        registry=study.registry,
        config=dict(params.config_flags),
        strategies=list(params.strategies),
        max_note_chars=int(params.max_note_chars),
        report_cfg=_plain(params.report_cfg),
        prompts_path=input.prompts or None,
    )


def _report_caseload(input, output, params, **_):
    from dyadflow.report import clinician, tables

    study = _study(params)
    pages = clinician.write_caseloads(
        _named(input, tables.CONTRACTS),
        output.manifest,
        output.pages,
        study=params.study,
        outcome=study.outcome_key,
        registry=study.registry,
        report_cfg=_plain(params.report_cfg),
        feedback_path=input.feedback,
    )
    logger.info("%d caseload page(s)", len(pages))


def _report_index(input, output, **_):
    from dyadflow.report import shards

    # the shards' dyad reports, and the caseload pages (by_therapist/<T>/_caseload.pdf)
    shards.index([*input.manifests, input.caseload], output.index, output.dyads, output.by_therapist)


def _report_cohort(input, output, params, **_):
    from dyadflow.report import cohort

    files = _named(input, ("dyads", "sessions", "cohort", "multilevel", "agreement", "comparison"))
    summaries = dict(zip(params.strategies, input.summaries, strict=True))
    cohort.run_cohort(files, params.study, summaries, params.config_sha256, output.pdf)


def _report_validation(input, output, params, **_):
    from dyadflow.report import cohort

    files = _named(input, ("accounting", "rejections", "warnings", "sessions"))
    cohort.run_validation(files, params.study, params.config_sha256, output.pdf)


def _microprocess(input, output, params, **_):
    from dyadflow.microprocess import pipeline

    pipeline.run([dict(s) for s in params.inputs], dict(params.settings), dict(output.items()))


def _manifest(input, output, params, **_):
    from dyadflow.core import manifest

    names = dict(zip(params.instrument_names, input.instruments, strict=False))
    data = manifest.build(dict(params.config), [dict(s) for s in params.inputs], names, dict(params.environment))
    manifest.write(output.manifest, data)
    logger.info(
        "dyadflow %s, config %s, git %s%s, %d input file(s)",
        data["dyadflow_version"],
        data["config_sha256"][:12],
        data["git_commit"] or "none",
        " (uncommitted changes)" if data["git_dirty"] else "",
        len(data["inputs"]),
    )


def _charts(input, output, **_):
    from dyadflow.report import workflow_charts as charts

    charts.run(
        input.rejections,
        input.cohort,
        input.sessions,
        {k: getattr(output, k) for k in ("validation_summary", "change_by_arm", "completeness", "alliance_outcome")},
    )
    logger.info("wrote 4 charts for the Snakemake report")


STAGES = {
    "ingest": _ingest,
    "validate": _validate,
    "score": _score,
    "stats": _stats,
    "multilevel": _multilevel,
    "select": _select,
    "report_plan": _report_plan,
    "select_strategy": _select_strategy,
    "report_shard": _report_shard,
    "report_index": _report_index,
    "report_caseload": _report_caseload,
    "report_cohort": _report_cohort,
    "report_validation": _report_validation,
    "manifest": _manifest,
    "microprocess": _microprocess,
    "charts": _charts,
    "coding_ratings": _coding_ratings,
    "coding_agreement": _coding_agreement,
    "coding_comparison": _coding_comparison,
}


def _note_slurm_job() -> None:
    """Inside a SLURM job: keep polars to the job's CPUs, and say which job this is."""
    from dyadflow.core import cluster

    job = cluster.slurm_job_id()
    if job:
        threads = cluster.limit_threads_to_allocation()
        logger.info("running in SLURM job %s%s", job, f", polars limited to {threads} thread(s)" if threads else "")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_snakemake_job_process() -> bool:
    """True in the process Snakemake starts for one job (``--mode subprocess``, or
    ``--mode remote`` on a cluster node); False in the scheduler itself and in tests."""
    argv = sys.argv
    return "--mode" in argv[:-1] and argv[argv.index("--mode") + 1] in ("subprocess", "remote")


def run_stage(name: str, *, log, input=None, output=None, params=None, wildcards=None) -> None:
    log_path = Path(str(log[0]) if not isinstance(log, str) else log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries: warnings only
    logging.getLogger("dyadflow").setLevel(logging.INFO)
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    start = time.perf_counter()
    try:
        _note_slurm_job()
        STAGES[name](input=input, output=output, params=params, wildcards=wildcards, log=log)
        logger.info(
            "%s finished in %.2f s (peak RSS of the process so far %.0f MB)",
            name,
            time.perf_counter() - start,
            _peak_rss_mb(),
        )
    except DyadflowError as exc:
        logger.error("%s", exc)
        print(f"\ndyadflow {name}: {exc}\n", file=sys.stderr, flush=True)
        if _in_snakemake_job_process():
            # Snakemake would print this as a RuleException with fragments of a traceback
            # (common.smk, stages.py); the job's own process ends here instead, with the
            # message above as its last word. Snakemake reports the failed job and cleans up.
            handler.flush()
            handler.close()
            sys.stdout.flush()
            os._exit(1)
        raise StageFailed(f"dyadflow {name} stopped: see the message above or {log_path}") from None
    except Exception:
        logger.exception("%s failed with an unexpected error (a bug in dyadflow; please report it)", name)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
