"""Benchmark: ``snakemake -n`` with the report DAG of a 10,000-dyad study (issue 16, point 2).

    PYTHONPATH=. .venv/bin/python bench/dry_run.py [--shards 400] [--repeat 3]

What a dry run costs is the DAG: at 10,000 dyads and the default ``dyads_per_shard`` 25
there are 400 report_shard jobs, each with its shard's tables as inputs. Building 10,000
dyads through every stage takes many minutes, so this script builds a generated study of
50 dyads (2 shards) for real, then gives the report checkpoint 400 shards: ``plan.json``
says 400 and every file of shard 0 (its tables, its manifest and, where the layout has
them, its PDFs) is copied to shards 1…399, whatever the layout of ``results/reports/shards``
is; ``snakemake --touch`` then marks the copied jobs as done, and shard 0's Snakemake records
(.snakemake/metadata) are copied to the others where none was written, so every shard
job is checked as after a real build. Timed: ``snakemake -n``
(nothing to do), best and median of ``--repeat`` runs, with the load average.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline import study_config  # noqa: E402  (bench/ is the script's folder)

CONFIG = study_config(dyads_per_shard=25)


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "study.yaml"]
    proc = subprocess.run([*cmd, *args], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def inflate(shards: Path, n: int) -> None:
    """Copy every file of shard 0 to shards 1 … n-1 (a path part "0" or "0.json" becomes k)."""
    zero = [p for p in sorted(shards.rglob("*")) if p.is_file() and ("0" in p.parts or p.name == "0.json")]
    for k in range(1, n):
        for p in zero:
            rel = p.relative_to(shards).parts
            parts = [str(k) if s == "0" else f"{k}.json" if s == "0.json" else s for s in rel]
            dest = shards.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dest)


def _b64(path: str) -> str:
    return base64.urlsafe_b64encode(path.encode()).decode()


def copy_metadata(work: Path, n: int) -> int:
    """Snakemake's record of each job of shard 0 (.snakemake/metadata) copied to shards 1 … n-1
    where ``--touch`` left none, so every shard job is checked as after a real build."""
    meta = work / ".snakemake" / "metadata"
    copied = 0
    for rec in sorted(meta.iterdir()):
        path = base64.urlsafe_b64decode(rec.name).decode()
        if not path.startswith("results/reports/shards/") or not ("/0/" in path + "/" or path.endswith("/0.json")):
            continue
        text = rec.read_text(encoding="utf-8")
        for k in range(1, n):
            new = path.replace("/0/", f"/{k}/").replace("/0.json", f"/{k}.json")
            if new.endswith("/0"):
                new = new[:-1] + str(k)
            dest = meta / _b64(new)
            if not dest.exists():
                data = json.loads(text)
                data["input"] = [
                    p.replace("/0/", f"/{k}/").replace("/0.json", f"/{k}.json") for p in data.get("input") or []
                ]
                dest.write_text(json.dumps(data), encoding="utf-8")
                copied += 1
    return copied


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="build in this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    from dyadflow.tools import demo_study as demo

    work = Path(args.keep or tempfile.mkdtemp(prefix="dyadflow_dry_"))
    work.mkdir(parents=True, exist_ok=True)
    demo.write_canonical(work / "data", n_dyads=50, n_sessions=6, bad_rows=False)
    (work / "study.yaml").write_text(CONFIG, encoding="utf-8")
    snakemake(work, "--cores", "2", "results/reports/index.csv")
    plan_path = work / "results" / "reports" / "plan.json"
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    plan["n_shards"] = args.shards
    plan["shards"] = [{"shard": k, "n_dyads": 25} for k in range(args.shards)]
    plan_path.write_text(json.dumps(plan, sort_keys=True), encoding="utf-8")
    inflate(work / "results" / "reports" / "shards", args.shards)
    snakemake(work, "--cores", "1", "--touch", "results/reports/index.csv")
    copy_metadata(work, args.shards)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        proc = snakemake(work, "-n", "results/reports/index.csv")
        times.append(time.perf_counter() - t0)
    jobs = proc.stdout.count("\nrule ") + proc.stdout.count("\ncheckpoint ")
    print(
        f"snakemake -n, {args.shards} report shards: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
        f"({args.repeat} runs; {jobs} job(s) to run; load {os.getloadavg()[0]:.1f})"
    )
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
