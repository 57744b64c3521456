"""profiles/slurm: every cluster job has its resources, site settings stay out of the rules,
and parsing the Snakefile (which every cluster job does again) loads no heavy library.

The profile is exercised on a real SLURM cluster by `make test-cluster` (tests/cluster/).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"


@pytest.fixture(scope="module")
def profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("study")
    shutil.copytree(REPO / "data" / "demo", tmp / "data" / "demo")
    shutil.copytree(REPO / "config", tmp / "config")
    return tmp


def localrules() -> set[str]:
    """The rules named in the workflow's ``localrules:`` directives."""
    names: set[str] = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for block in re.findall(r"^localrules:\s*\n((?:[ \t]+\w+,?[ \t]*\n?)+)", path.read_text(), re.M):
            names |= set(re.findall(r"\w+", block))
    return names


@pytest.fixture(scope="module")
def dry_run(study) -> dict[str, dict]:
    """Each job of a dry run with the SLURM profile: rule → {local, threads, resources}."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(study),
            "--configfile",
            str(study / "config" / "config.yaml"),
            "--profile",
            str(PROFILE.parent),
            "-n",
            "-F",
            "--cores",
            "64",
        ],  # a dry run caps threads at --cores
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs: dict[str, dict] = {}
    local = localrules()
    current = None
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(local)?(?:rule|checkpoint) (\w+):$", line):
            current = jobs.setdefault(m.group(2), {"local": m.group(2) in local, "threads": 1, "resources": {}})
        elif current is not None and (m := re.match(r"^\s+threads: (\d+)$", line)):
            current["threads"] = int(m.group(1))
        elif current is not None and (m := re.match(r"^\s+resources: (.*)$", line)):
            current["resources"] = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
    return jobs


def test_profile_uses_the_slurm_executor_with_squeue_status(profile):
    assert profile["executor"] == "slurm"
    # no accounting database needed: job states come from squeue
    assert profile["slurm-status-command"] == "squeue"
    assert profile["retries"] >= 1 and profile["rerun-incomplete"] is True


def test_every_cluster_job_has_memory_runtime_and_threads(profile, dry_run):
    remote = {rule for rule, job in dry_run.items() if not job["local"]}
    # report_shard jobs follow the report_plan checkpoint: a dry run cannot list them yet
    assert remote >= {"ingest", "validate", "score", "stats", "report_plan", "report_cohort", "report_validation"}
    assert {rule for rule, job in dry_run.items() if job["local"]} >= {"all", "manifest", "report_index"}
    for rule in sorted(remote):
        res = dry_run[rule]["resources"]
        # memory follows the input size, unknown (<TBD>) until upstream outputs exist
        assert res["mem_mb"] == "<TBD>" or int(res["mem_mb"]) >= 1000, (rule, res)
        assert int(res["runtime"]) >= 10, (rule, res)
        assert dry_run[rule]["threads"] == profile["set-threads"][rule], rule
    assert dry_run["ingest"]["resources"]["mem_mb"] == "2000"  # max(2000, 10 × 0.3 MB)
    assert dry_run["validate"]["threads"] == 2 and dry_run["validate"]["resources"]["runtime"] == "60"


def test_profile_names_only_rules_that_exist(profile, study):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(study),
            "--configfile",
            str(study / "config" / "config.yaml"),
            "--list-rules",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rules = set(proc.stdout.split())
    assert {"report_plan", "report_shard", "report_index"} <= rules
    for key in ("set-resources", "set-threads"):
        assert set(profile[key]) <= rules, key  # a renamed rule would silently lose its resources
    for rule in str(profile["slurm-array-jobs"]).split(","):
        assert rule.strip() in rules


def test_partition_and_account_are_not_set_in_the_rules():
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"slurm_partition|slurm_account|partition\s*=|account\s*=", text), path


def test_parsing_the_snakefile_loads_no_heavy_library(study):
    """Every cluster job parses the Snakefile and builds its job graph again: that must not
    import polars, pandera, WeasyPrint, matplotlib or scipy (Snakemake itself loads numpy)."""
    code = (
        "import json, sys\n"
        "from snakemake.cli import main\n"
        "code = 0\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = {'polars', 'pandera', 'weasyprint', 'matplotlib', 'scipy', 'pyarrow'}\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in heavy)]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(study),
            "--configfile",
            str(study / "config" / "config.yaml"),
            "-n",
            "-F",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code in (0, None), proc.stderr[-2000:]  # the dry run built the whole job graph
    assert heavy == [], heavy


# Two jobs announced together, the second a checkpoint, as Snakemake printed them in a CI
# run where the check mistook the checkpoint's job for the rule before it.
SNAKEMAKE_LOG = """\
rule report_cohort:
    output: results/reports/cohort.pdf
    log: logs/report/cohort.log
    jobid: 14
    resources: tmpdir=<TBD>, runtime=15
[Mon Nov 23 09:00:04 2026]
checkpoint report_plan:
    output: results/reports/plan.json
    log: logs/report/plan.log
    jobid: 13
    threads: 2
DAG of jobs will be updated after completion.
Job 14 has been submitted with SLURM jobid 15 (log: /w/slurm_logs/rule_report_cohort/15.log).
Job 13 has been submitted with SLURM jobid 16 (log: /w/slurm_logs/rule_report_plan/16.log).
Finished jobid: 14 (Rule: report_cohort)
localrule manifest:
    jobid: 16
Finished jobid: 13 (Rule: report_plan)
"""


def test_cluster_check_parses_checkpoint_jobs_as_their_own_jobs():
    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    try:
        import check
    finally:
        sys.path.pop(0)
    run = check.parse_log(SNAKEMAKE_LOG)
    got = {
        jid: (j.rule, j.kind, j.local, j.threads, j.log, j.slurm_id, j.slurm_log and j.slurm_log.name, j.finished)
        for jid, j in run.jobs.items()
    }
    assert got == {
        14: ("report_cohort", "rule", False, 1, "logs/report/cohort.log", "15", "15.log", True),
        13: ("report_plan", "checkpoint", False, 2, "logs/report/plan.log", "16", "16.log", True),
        16: ("manifest", "rule", True, 1, "", None, None, False),
    }
