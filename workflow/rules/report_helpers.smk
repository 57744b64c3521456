# Helpers of the report rules (report.smk). Standard library only at parse time.
import json as _json

from dyadflow.core.manifest import config_hash as _config_hash  # standard library only

REPORT_CFG = config["report"]
REPORT_CONFIG_SHA = _config_hash(config)
SELECTION_NAMES = [s["name"] for s in config["selection"]]
# feedback.prompts: the study's own support prompts (a declared input of the clinician copies)
FEEDBACK_PROMPTS = config["feedback"]["prompts"] or []
# templates, assets, message catalogues and the report code: a change re-runs the report jobs (and, through
# the dyad fingerprint, re-renders the reports)
REPORT_TEMPLATES = sorted(
    p
    for p in _glob.glob(_os.path.join(workflow.basedir, "dyadflow", "report", "templates", "**", "*"), recursive=True)
    + _glob.glob(_os.path.join(workflow.basedir, "dyadflow", "report", "assets", "**", "*"), recursive=True)
    + _glob.glob(_os.path.join(workflow.basedir, "dyadflow", "report", "locale", "**", "*.po"), recursive=True)
    if _os.path.isfile(p)
) + sorted(_glob.glob(_os.path.join(workflow.basedir, "dyadflow", "report", "*.py")))
# the tables the case reports read (dyadflow/report/tables.py), by name: the inputs of the
# report plan and of the caseload pages
REPORT_TABLES = dict(
    dyads=rules.stats.output.dyads,
    sessions=rules.stats.output.sessions,
    scores=rules.score.output.parquet,
    sudden_gains=rules.stats.output.sudden_gains,
    ruptures=rules.stats.output.ruptures,
    rejections=rules.validate.output.rejections,
    consent=rules.validate.output.consent,
    feedback=rules.stats.output.feedback,
    # the subscale profile (stats), a shard table of the dyad reports
    subscales=rules.stats.output.subscales,
)
SELECTION_CSVS = [f"{RESULTS}/selection/{n}.csv" for n in SELECTION_NAMES]
SELECTION_SUMMARIES = [f"{RESULTS}/selection/{n}_summary.json" for n in SELECTION_NAMES]


def _produced(path):
    """Files other stages produce in this workflow (cohort.json, sudden_gains.csv, ...), as inputs when they exist as outputs."""
    return [path] if any(path in [str(o) for o in r.output] for r in workflow.rules) else []


def _microprocess_inputs(wildcards):
    """The microprocess tables the case reports' microprocess page reads (the dial charts
    from series.parquet), by name, when the study has one."""
    if not config.get("microprocess"):
        return {}
    files = {
        "microprocess_sessions": f"{RESULTS}/microprocess/sessions.csv",
        "microprocess_segments": f"{RESULTS}/microprocess/segments.csv",
        "microprocess_series": f"{RESULTS}/microprocess/series.parquet",
    }
    return {k: f for k, f in files.items() if _produced(f)}


def _cohort_report_inputs(wildcards):
    """The cohort report's own sections, by name: cohort.json, the multilevel model and, when
    the study codes sessions (coding.smk), the coders' agreement and the unblinded comparison."""
    files = {"cohort": f"{RESULTS}/stats/cohort.json", "multilevel": f"{RESULTS}/stats/multilevel.json"}
    for name in ("agreement", "comparison"):
        if f"{RESULTS}/coding/{name}.csv" in CODING_OUTPUTS:
            files[name] = f"{RESULTS}/coding/{name}.csv"
    return {k: f for k, f in files.items() if _produced(f)}


def _shard_tables(wildcards):
    """The shard's tables, by name, inside the plan's directory output."""
    tables = checkpoints.report_plan.get().output.tables
    return {t: f"{tables}/{wildcards.shard}/{t}.parquet" for t in SHARD_TABLES}


def _n_shards():
    with open(checkpoints.report_plan.get().output.plan, encoding="utf-8") as fh:
        return _json.load(fh)["n_shards"]


def _shard_manifests(wildcards):
    return [f"{RESULTS}/reports/shards/{k}.json" for k in range(_n_shards())]


def _shard_pdf_dirs(wildcards):
    return [f"{RESULTS}/reports/shards/pdf/{k}" for k in range(_n_shards())]
