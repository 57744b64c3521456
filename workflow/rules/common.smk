# Helpers shared by the rules. Only the standard library is used at parse time.
import glob as _glob
import os as _os

from snakemake.utils import validate

from snakemake.exceptions import WorkflowError

from dyadflow.core.config import fill_defaults, stop_if_wrong
from dyadflow.core.naming import SHARD_TABLES, input_name, unsafe_paths
from dyadflow.core.registry import BUILTIN_DIR, CONFIG_SCHEMA

# Every mistake in the config, one line each, before any data is read (docs, "Running a study")
stop_if_wrong(
    config,
    str(CONFIG_SCHEMA),
    workflow.basedir,
    getattr(workflow, "configfiles", ()),
)
validate(config, str(CONFIG_SCHEMA), set_default=False)
# the schema is the one home of the defaults: filled here, nested objects and lists too
fill_defaults(config)

# Snakemake reads { and } in file paths as wildcards: a path with them cannot be an
# input, so the build stops here with one message naming the config key.
_unsafe = unsafe_paths(config)
if _unsafe:
    raise WorkflowError(_unsafe)

RESULTS = "results"
LOGS = "logs"
INSTRUMENT_FILES = sorted(
    _glob.glob(_os.path.join(BUILTIN_DIR, "*.yaml"))
    + (_glob.glob(_os.path.join(config["instruments_dir"], "*.y*ml")) if config.get("instruments_dir") else [])
)


INPUTS = {}
for _spec in config["inputs"]:
    _name = input_name(_spec)
    if _name in INPUTS:
        raise ValueError(f"two inputs share the name '{_name}': give one of them a 'name' in the config")
    INPUTS[_name] = _spec


wildcard_constraints:
    shard=r"\d+",
    name=r"[A-Za-z0-9][A-Za-z0-9_-]*",


def input_path(wildcards):
    spec = INPUTS[wildcards.name]
    lookups = [r["lookup"] for r in (spec.get("ids") or {}).values() if r and r.get("lookup")]
    return [spec["path"]] + ([spec["dictionary"]] if spec.get("dictionary") else []) + sorted(set(lookups))


def config_value(key):
    """A config value as a rule parameter. Through a function, because Snakemake reads
    { and } in a string parameter as wildcards (a study named 'Pilot {2024} study')."""
    return lambda wildcards: config.get(key)


def study_name(wildcards):
    return config["study"]["name"]


def input_spec(wildcards):
    return INPUTS[wildcards.name]


def stage(name, **kwargs):
    """Run one stage of the dyadflow package, with its log and clean error messages."""
    from dyadflow.stages import run_stage

    run_stage(name, **kwargs)


def final_outputs():
    return [
        f"{RESULTS}/validated/questionnaires.parquet",
        f"{RESULTS}/validation/rejections.csv",
        f"{RESULTS}/validation/accounting.csv",
        f"{RESULTS}/validation/warnings.csv",
        f"{RESULTS}/validated/consent.parquet",
        f"{RESULTS}/scores/questionnaires.parquet",
        f"{RESULTS}/scores/questionnaires.csv",
        f"{RESULTS}/stats/sessions.parquet",
        f"{RESULTS}/stats/dyads.parquet",
        f"{RESULTS}/stats/dyads.csv",
        f"{RESULTS}/stats/sudden_gains.csv",
        f"{RESULTS}/stats/ruptures.csv",
        f"{RESULTS}/stats/cohort.json",
        f"{RESULTS}/stats/feedback.parquet",
        f"{RESULTS}/stats/feedback.csv",
        f"{RESULTS}/stats/multilevel.json",
        f"{RESULTS}/selection/index.json",
        f"{RESULTS}/reports/index.csv",
        f"{RESULTS}/reports/cohort.pdf",
        f"{RESULTS}/reports/validation.pdf",
    ]


def microprocess_overrides(wildcards):
    """The researcher's segment overrides, an input only when configured."""
    path = (config.get("microprocess") or {}).get("overrides")
    return [path] if path else []
