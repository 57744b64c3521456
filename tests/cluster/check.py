"""Checks for tests/cluster/run.sh, after the demo study ran on SLURM and locally.

1. Every file under results/ is byte-identical between the two runs (PDFs included);
   files missing on one side or differing are listed, and the check fails.
2. Every job of the SLURM run that is not a localrule went through sbatch:
   - the Snakemake log names its SLURM job id (a single job or an array task);
   - squeue shows that SLURM job COMPLETED, under the run's dyadflow_ job name;
   - slurmctld logged the batch submission and the job's start (by its main or its
     backfill scheduler), and squeue shows it was allocated as many CPUs as the
     profile gives the rule threads;
   - its SLURM log file holds the job's own Snakemake run, which finished the rule;
   - the rule's own log (logs/...) says it ran in that SLURM job (and, for single
     jobs, that polars was limited to the job's CPUs).
   The rules the profile submits as array jobs went as one array job.
3. results/manifest.json is there, and every dyad report's footer refers to it with the
   manifest's config hash and git commit.

Exit status 0 when everything holds; otherwise each problem is printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Under results/ but different in any two runs by design: per-run records that carry
# their own time stamp and wall time (results/runs/<timestamp>.json, issue 8).
EXCLUDED = ("runs/",)

# a checkpoint is announced as "checkpoint name:" (or "localcheckpoint name:"), not "rule"
RULE = re.compile(r"^(local)?(rule|checkpoint) (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
THREADS = re.compile(r"^\s+threads: (\d+)$")
LOG = re.compile(r"^\s+log: (.*)$")
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$")
ARRAY = re.compile(
    r"^Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\. "
    r"The individual task IDs are (\d+)-(\d+)\.$"
)
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


@dataclass
class Job:
    jobid: int
    rule: str
    local: bool
    kind: str = "rule"  # or "checkpoint"
    wildcards: str = ""
    threads: int = 1
    log: str = ""  # the rule's own log file (dyadflow's stage log)
    slurm_id: str | None = None  # "12" or, for an array task, "12_3"
    slurm_log: Path | None = None
    array: bool = False
    finished: bool = False


@dataclass
class Run:
    jobs: dict[int, Job] = field(default_factory=dict)
    arrays: list[tuple[str, list[int]]] = field(default_factory=list)


def result_files(root: Path) -> dict[str, Path]:
    results = root / "results"
    out = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results).as_posix()
        if path.is_file() and not rel.startswith(EXCLUDED):
            out[rel] = path
    return out


def compare_results(local: Path, cluster: Path) -> list[str]:
    a, b = result_files(local), result_files(cluster)
    problems = []
    if not a:
        problems.append(f"the local run wrote nothing under {local / 'results'}")
    for rel in sorted(set(a) - set(b)):
        problems.append(f"only in the local run: results/{rel}")
    for rel in sorted(set(b) - set(a)):
        problems.append(f"only in the SLURM run: results/{rel}")
    differ = [rel for rel in sorted(set(a) & set(b)) if a[rel].read_bytes() != b[rel].read_bytes()]
    for rel in differ:
        problems.append(f"differs between the runs: results/{rel}")
    for rel in sorted(set(a) | set(b)):
        if rel.endswith(".tmp"):
            problems.append(f"a temporary file was left behind: results/{rel}")
    same = sorted(set(a) & set(b) - set(differ))
    pdfs = sum(rel.endswith(".pdf") for rel in same)
    size = sum(a[rel].stat().st_size for rel in same)
    print(f"outputs: {len(same)} files under results/ are byte-identical ({pdfs} PDFs, {size:,} bytes)")
    return problems


def parse_log(text: str) -> Run:
    run = Run()
    pending: Job | None = None
    for line in text.splitlines():
        if m := RULE.match(line):
            pending = Job(jobid=-1, rule=m.group(3), local=bool(m.group(1)), kind=m.group(2))
            continue
        if line[:1] not in (" ", "\t"):
            pending = None  # the job's block ended: a later "jobid:" is another job's
        if pending and (m := JOBID.match(line)):
            pending.jobid = int(m.group(1))
            run.jobs.setdefault(pending.jobid, pending)
        elif pending and (m := WILDCARDS.match(line)):
            pending.wildcards = m.group(1)
        elif pending and (m := THREADS.match(line)):
            pending.threads = int(m.group(1))
        elif pending and (m := LOG.match(line)):
            pending.log = m.group(1).split(", ")[0]
        elif m := SUBMITTED.match(line):
            job = run.jobs[int(m.group(1))]
            job.slurm_id, job.slurm_log = m.group(2), Path(m.group(3))
        elif m := ARRAY.match(line):
            ids = [int(x) for x in m.group(1).split(",")]
            first = int(m.group(3))
            for offset, jid in enumerate(ids):
                job = run.jobs[jid]
                job.slurm_id, job.array = f"{m.group(2)}_{first + offset}", True
            run.arrays.append((m.group(2), ids))
        elif m := FINISHED.match(line):
            run.jobs[int(m.group(1))].finished = True
    return run


def squeue_states(ids: set[str]) -> dict[str, tuple[str, str, int]]:
    """SLURM job id (array tasks as 12_3) → (state, job name, CPUs allocated), from squeue."""
    base = sorted({i.split("_")[0] for i in ids}, key=int)
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%C|%j", "--jobs", ",".join(base)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = {}
    for line in out.splitlines():
        jid, state, cpus, name = line.strip().split("|", 3)
        states[jid] = (state, name, int(cpus))
    return states


def job_log_runs_rule(path: Path, job: Job) -> str | None:
    """Whether a SLURM log holds the job's own Snakemake run finishing the rule; else why not."""
    if not path.is_file():
        return f"no SLURM log file {path}"
    text = path.read_text(encoding="utf-8", errors="replace")
    # the executor's jobstep runs the job under srun as a local job of a nested Snakemake
    inner = text.rfind(f"local{job.kind} {job.rule}:")
    if inner < 0:
        return f"{path} does not show rule {job.rule} running inside the SLURM job"
    tail = text[inner:]
    if job.wildcards and f"wildcards: {job.wildcards}" not in tail.split("\n\n")[0]:
        return f"{path} ran {job.rule} with other wildcards than {job.wildcards}"
    if f"Finished jobid: 0 (Rule: {job.rule})" not in tail:
        return f"{path} does not show rule {job.rule} finishing"
    return None


def profile_array_rules(profile: Path) -> set[str]:
    import yaml

    value = (yaml.safe_load(profile.read_text()) or {}).get("slurm-array-jobs") or ""
    return {r.strip() for r in str(value).replace(";", ",").split(",") if r.strip()}


def check_sbatch(cluster: Path, slurmctld_log: Path, profile: Path) -> list[str]:
    logs = sorted((cluster / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        return [f"no Snakemake log in {cluster / '.snakemake' / 'log'}"]
    run = parse_log(logs[-1].read_text(encoding="utf-8"))
    problems = []
    remote = [j for j in run.jobs.values() if not j.local]
    local = [j for j in run.jobs.values() if j.local]
    if not remote:
        problems.append("no job of the SLURM run was a cluster job")
    for job in run.jobs.values():
        if not job.finished:
            problems.append(f"job {job.jobid} ({job.rule}) did not finish")
        if job.local and job.slurm_id:
            problems.append(f"localrule {job.rule} (job {job.jobid}) was submitted to SLURM")
        if not job.local and not job.slurm_id:
            problems.append(f"rule {job.rule} (job {job.jobid}) has no SLURM job id in the Snakemake log")
    submitted = {j.slurm_id for j in remote if j.slurm_id}
    if not submitted:
        return problems
    states = squeue_states(submitted)
    ctld = slurmctld_log.read_text(encoding="utf-8", errors="replace")
    for job in sorted(remote, key=lambda j: j.jobid):
        if not job.slurm_id:
            continue
        state, name, cpus = states.get(job.slurm_id, ("not in squeue", "", 0))
        if state != "COMPLETED":
            problems.append(f"SLURM job {job.slurm_id} ({job.rule}) is {state}, not COMPLETED")
        if not name.startswith("dyadflow_"):
            problems.append(f"SLURM job {job.slurm_id} has the name {name!r}, not the profile's dyadflow_ prefix")
        base = job.slurm_id.split("_")[0]
        if not re.search(rf"_slurm_rpc_submit_batch_job: JobId={base}\b", ctld):
            problems.append(f"slurmctld did not log the submission of job {base}")
        log = job.slurm_log
        if job.array:
            log = cluster / ".snakemake" / "slurm_logs" / f"rule_{job.rule}" / f"{job.slurm_id}.log"
        if why := job_log_runs_rule(log, job):
            problems.append(why)
        # slurmctld started it: the main scheduler logs "sched: Allocate JobId=..", the
        # backfill scheduler "sched/backfill: _start_job: Started JobId=.."; which one picks
        # a job depends on timing, so either counts
        sid = re.escape(job.slurm_id)
        if not re.search(rf"(sched: Allocate|_start_job: Started) JobId={sid}(?:\(\d+\))? ", ctld):
            problems.append(f"slurmctld did not log the start of job {job.slurm_id}")
        # SLURM gave the job the CPUs of the profile's set-threads (squeue's allocated count)
        if state == "COMPLETED" and cpus != job.threads:
            problems.append(f"job {job.slurm_id} ({job.rule}) got {cpus} CPUs, not its {job.threads} threads")
        # the rule's own code ran inside that SLURM job, within its CPUs (dyadflow.core.cluster).
        # The first task of an array job runs without srun and with the SLURM_* variables
        # scrubbed by the jobstep plugin (0.6.1), so its CPU count is not visible to it.
        stage_log = cluster / job.log if job.log else None
        note = f"running in SLURM job {job.slurm_id}"
        if not job.array:
            note += f", polars limited to {job.threads} thread(s)"
        if stage_log is None or not stage_log.is_file() or note not in stage_log.read_text(encoding="utf-8"):
            problems.append(f"the stage log {job.log or '(none)'} of {job.rule} does not say '{note}'")
    for rule in sorted(profile_array_rules(profile)):
        jobs = [j for j in remote if j.rule == rule]
        if len(jobs) > 1 and not all(j.array for j in jobs):
            problems.append(f"the profile submits {rule} as an array job, but its jobs went one by one")
    print(
        f"sbatch: {len(remote)} cluster jobs, {len(run.arrays)} array job(s); localrules {sorted({j.rule for j in local})}"
    )
    for job in sorted(
        remote, key=lambda j: (j.slurm_id.split("_")[0].zfill(9) if j.slurm_id else "", j.slurm_id or "")
    ):
        wc = f" [{job.wildcards}]" if job.wildcards else ""
        state = states.get(job.slurm_id or "", ("-",))[0]
        print(f"  SLURM job {job.slurm_id or '-':>6} {state:<10} {job.threads} CPU(s)  {job.rule}{wc}")
    return problems


def check_manifest(root: Path) -> list[str]:
    import io
    import json

    from pypdf import PdfReader

    path = root / "results" / "manifest.json"
    if not path.is_file():
        return [f"no {path}"]
    manifest = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for key in ("dyadflow_version", "packages", "config_sha256", "inputs", "git_commit"):
        if key not in manifest:
            problems.append(f"manifest.json has no {key}")
    config = manifest.get("config_sha256", "")[:8]
    commit = (manifest.get("git_commit") or "–")[:8]
    pdfs = sorted((root / "results" / "reports" / "dyads").glob("*.pdf"))
    if not pdfs:
        problems.append("no dyad reports")
    for pdf in pdfs:
        reader = PdfReader(io.BytesIO(pdf.read_bytes()))
        text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
        # the footer names the config hash and points to the manifest; the commit is in the
        # manifest only (a new commit must not re-render every unchanged dyad's report)
        for needle in ("results/manifest.json", f"config {config}"):
            if needle not in text:
                problems.append(f"{pdf.name} does not show '{needle}'")
                break
    print(f"manifest: results/manifest.json (config {config}, git {commit}), referenced in {len(pdfs)} dyad reports")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--local", type=Path, required=True)
    ap.add_argument("--cluster", type=Path, required=True)
    ap.add_argument("--slurmctld-log", type=Path, required=True)
    ap.add_argument("--profile", type=Path, required=True)
    args = ap.parse_args(argv)
    problems = compare_results(args.local, args.cluster)
    problems += check_sbatch(args.cluster, args.slurmctld_log, args.profile)
    problems += check_manifest(args.cluster)
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
