# Reports (dyadflow/report/): dyad case reports in shards, the cohort and validation
# reports. Standard library only at parse time.
import json as _json

from dyadflow.manifest import config_hash as _config_hash  # standard library only

REPORT_CFG = config["report"]
REPORT_CONFIG_SHA = _config_hash(config)
SELECTION_NAMES = [s["name"] for s in config.get("selection", [])]
REPORT_TEMPLATES = sorted(
    p for p in _glob.glob(_os.path.join(workflow.basedir, "reports", "**", "*"), recursive=True) if _os.path.isfile(p)
)
# the shard input tables the plan writes (only when their bytes change)
SHARD_TABLES = ["dyads", "sessions", "scores", "sudden_gains", "ruptures", "selection", "rejections"]


def _produced(path):
    """Files other stages produce in this workflow (cohort.json, sudden_gains.csv, ...), as inputs when they exist as outputs."""
    return [path] if any(path in [str(o) for o in r.output] for r in workflow.rules) else []


def _optional_report_inputs(wildcards):
    files = [
        f"{RESULTS}/stats/sudden_gains.csv",
        f"{RESULTS}/stats/ruptures.csv",
        f"{RESULTS}/stats/cohort.json",
        f"{RESULTS}/validation/rejections.parquet",
    ]
    files += [f"{RESULTS}/selection/{n}.csv" for n in SELECTION_NAMES]
    files += [f"{RESULTS}/selection/{n}_summary.json" for n in SELECTION_NAMES]
    return [p for f in files for p in _produced(f)]


checkpoint report_plan:
    input:
        scores=rules.score.output.parquet,
        validated=rules.validate.output.validated,
        rejections=rules.validate.output.rejections,
        sessions=rules.stats.output.sessions,
        dyads=rules.stats.output.dyads,
        selection=rules.select.output.index,
        optional=_optional_report_inputs,
    output:
        plan=f"{RESULTS}/reports/plan.json",
    params:
        results=RESULTS,
        strategies=SELECTION_NAMES,
        dyads_per_shard=REPORT_CFG["dyads_per_shard"],
        fixed_shards=REPORT_CFG.get("shards"),
    log:
        f"{LOGS}/report/plan.log",
    run:
        stage("report_plan", input=input, output=output, params=params, log=log)


def _shard_tables(wildcards):
    checkpoints.report_plan.get()
    return [f"{RESULTS}/reports/shards/{wildcards.shard}/{t}.parquet" for t in SHARD_TABLES]


def _shard_manifests(wildcards):
    with open(checkpoints.report_plan.get().output.plan, encoding="utf-8") as fh:
        n = _json.load(fh)["n_shards"]
    return [f"{RESULTS}/reports/shards/{k}.json" for k in range(n)]


rule report_shard:
    input:
        tables=_shard_tables,
        templates=REPORT_TEMPLATES,
    output:
        manifest=f"{RESULTS}/reports/shards/{{shard}}.json",
    params:
        results=RESULTS,
        shard_dir=lambda wildcards: f"{RESULTS}/reports/shards/{wildcards.shard}",
        study=config["study"]["name"],
        audience=REPORT_CFG["audience"],
        outcome=config["outcome"],
        alliance=config["alliance"],
        config_sha256=REPORT_CONFIG_SHA,
        instruments_dir=config.get("instruments_dir"),
        config_flags={"microprocess": bool(config.get("microprocess"))},
        strategies=SELECTION_NAMES,
    log:
        f"{LOGS}/report/shard_{{shard}}.log",
    run:
        stage("report_shard", input=input, output=output, params=params, log=log, wildcards=wildcards)


rule report_index:
    input:
        manifests=_shard_manifests,
    output:
        index=f"{RESULTS}/reports/index.csv",
    params:
        reports_dir=f"{RESULTS}/reports",
    log:
        f"{LOGS}/report/index.log",
    run:
        stage("report_index", input=input, output=output, params=params, log=log)


rule report_cohort:
    input:
        dyads=rules.stats.output.dyads,
        sessions=rules.stats.output.sessions,
        selection=rules.select.output.index,
        optional=_optional_report_inputs,
        templates=REPORT_TEMPLATES,
    output:
        pdf=f"{RESULTS}/reports/cohort.pdf",
    params:
        results=RESULTS,
        study=config["study"]["name"],
        strategies=SELECTION_NAMES,
        config_sha256=REPORT_CONFIG_SHA,
    log:
        f"{LOGS}/report/cohort.log",
    run:
        stage("report_cohort", input=input, output=output, params=params, log=log)


rule report_validation:
    input:
        accounting=rules.validate.output.accounting,
        rejections=rules.validate.output.rejections,
        sessions=rules.stats.output.sessions,
        templates=REPORT_TEMPLATES,
    output:
        pdf=f"{RESULTS}/reports/validation.pdf",
    params:
        results=RESULTS,
        study=config["study"]["name"],
        config_sha256=REPORT_CONFIG_SHA,
    log:
        f"{LOGS}/report/validation.log",
    run:
        stage("report_validation", input=input, output=output, params=params, log=log)
