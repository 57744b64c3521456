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
# the shard input tables the plan writes (only when their bytes change)
SHARD_TABLES = [
    "dyads",
    "sessions",
    "scores",
    "sudden_gains",
    "ruptures",
    "selection",
    "rejections",
    "consent",
    "feedback",
    "subscales",
]


def _produced(path):
    """Files other stages produce in this workflow (cohort.json, sudden_gains.csv, ...), as inputs when they exist as outputs."""
    return [path] if any(path in [str(o) for o in r.output] for r in workflow.rules) else []


def _microprocess_inputs(wildcards):
    """The microprocess tables the case reports' microprocess page reads, when the study has one."""
    if not config.get("microprocess"):
        return []
    files = [f"{RESULTS}/microprocess/sessions.csv", f"{RESULTS}/microprocess/segments.csv"]
    # the sessions' dial charts (microprocess/report.py)
    files.append(f"{RESULTS}/microprocess/series.parquet")
    return [p for f in files for p in _produced(f)]


def _optional_report_inputs(wildcards):
    files = [
        f"{RESULTS}/stats/sudden_gains.csv",
        f"{RESULTS}/stats/ruptures.csv",
        f"{RESULTS}/stats/cohort.json",
    ]
    files += [f"{RESULTS}/selection/{n}.csv" for n in SELECTION_NAMES]
    files += [f"{RESULTS}/selection/{n}_summary.json" for n in SELECTION_NAMES]
    return [p for f in files for p in _produced(f)]


def _cohort_report_inputs(wildcards):
    """The cohort report's own sections: the multilevel model and, when the study codes
    sessions (coding.smk), the coders' agreement and the unblinded comparison."""
    files = [f"{RESULTS}/stats/multilevel.json"]
    files += [f for f in (f"{RESULTS}/coding/agreement.csv", f"{RESULTS}/coding/comparison.csv") if f in CODING_OUTPUTS]
    return [p for f in files for p in _produced(f)]


def _shard_tables(wildcards):
    checkpoints.report_plan.get()
    return [f"{RESULTS}/reports/shards/{wildcards.shard}/{t}.parquet" for t in SHARD_TABLES]


def _shard_manifests(wildcards):
    with open(checkpoints.report_plan.get().output.plan, encoding="utf-8") as fh:
        n = _json.load(fh)["n_shards"]
    return [f"{RESULTS}/reports/shards/{k}.json" for k in range(n)]
