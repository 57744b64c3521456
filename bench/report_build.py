"""Benchmark: the full report build of a study at N dyads (issue 18), locally or on SLURM.

    PYTHONPATH=. .venv/bin/python bench/report_build.py --dyads 1000 [--sessions 12] [--cores 2]
    # on the one-node SLURM cluster of the cluster test (root), the shards as one array job:
    DYADFLOW_CLUSTER_BENCH="env PYTHONPATH=$PWD .venv/bin/python bench/report_build.py --dyads 1000 --executor slurm" \\
        tests/cluster/run.sh

Generates N dyads × S sessions with the demo model (canonical CSV, the demo study's
report settings: research copies, clinician copies for the therapist bundles, caseload
pages), builds every stage before the reports (timed, not part of the figure), then
times the report build itself: the report_plan checkpoint, every report_shard job (the
research copy in reports/dyads/ and the clinician copy in reports/by_therapist/ of each
dyad), the caseload pages and report_index, in one Snakemake call under
/usr/bin/time -v. The figure is that call's wall time per PDF, and the shard jobs' own
times (their logs) per PDF, next to a bare WeasyPrint render of a plain document with the
median page count of the dyad reports, measured in the same run (the floor of
bench/report_render.py).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PY = sys.executable
SNAKEMAKE = str(Path(PY).parent / "snakemake")

from bench.pipeline import study_config, timed  # noqa: E402  (the benchmark study; clinician copies are the default)

REPORT_TARGETS = ["results/reports/index.csv", "results/reports/caseload.json"]


def shard_seconds(logs: Path) -> list[float]:
    """Each report_shard job's own time, from its log ("... finished in X s")."""
    out = []
    for log in sorted(logs.glob("report/shard_*.log")) + sorted(logs.glob("report/shards/*.log")):
        m = re.findall(r"finished in ([0-9.]+) s", log.read_text(encoding="utf-8", errors="replace"))
        if m:
            out.append(float(m[-1]))
    return out


def floor_seconds(pages: int, repeat: int = 3) -> float:
    """A bare WeasyPrint render of a plain document of ``pages`` pages, as in bench/report_render.py."""
    from bench.report_render import _median_time, plain_html
    from dyadflow.report import render

    fetcher = render.make_fetcher()
    render.render_pdf(plain_html(1), 0, fetcher)  # warm-up (fonts, Pango)
    html = plain_html(pages)
    return _median_time(lambda: render.render_pdf(html, 0, fetcher), repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dyads-per-shard", type=int, default=25)
    ap.add_argument("--executor", choices=["local", "slurm"], default="local")
    ap.add_argument("--out", default="bench/out/report_build")
    args = ap.parse_args()

    from pypdf import PdfReader

    from dyadflow.core import atomic
    from dyadflow.tools import demo_study as demo

    work = Path(args.out).resolve() / f"{args.dyads}x{args.sessions}_{args.executor}"
    export = work / "data" / "questionnaires.csv"
    if not export.exists():
        atomic.write_bytes(
            export, atomic.csv_bytes(demo.generate(n_dyads=args.dyads, n_sessions=args.sessions, bad_rows=False))
        )
    (work / "study.yaml").write_text(study_config(args.dyads_per_shard), encoding="utf-8")
    subprocess.run(["rm", "-rf", "results", "logs", ".snakemake"], cwd=work, check=True)
    if args.executor == "slurm":
        if not os.environ.get("SLURM_CONF"):
            sys.exit("--executor slurm runs inside tests/cluster/run.sh (DYADFLOW_CLUSTER_BENCH): no SLURM_CONF")
        run_opts = [
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--seconds-between-status-checks",
            "1",
        ]
    else:
        run_opts = ["--cores", str(args.cores)]
    # targets first: --quiet and --configfile take several values
    opts = ["--snakefile", str(REPO / "Snakefile"), *run_opts, "--quiet", "all", "--configfile", "study.yaml"]

    print(f"## Report build, {args.dyads:,} dyads × {args.sessions} sessions, {args.executor}", flush=True)
    load = os.getloadavg()
    pre_wall, _, code = timed([SNAKEMAKE, "results/stats/cohort.json", *opts], work)
    print(f"stages before the reports: {pre_wall:.1f} s (exit {code}); load average before {load[0]:.1f}", flush=True)
    if code:
        sys.exit(1)
    load = os.getloadavg()
    wall, peak, code = timed([SNAKEMAKE, *REPORT_TARGETS, *opts], work)
    load_after = os.getloadavg()
    if code:
        sys.exit(f"the report build failed (exit {code})")
    reports = work / "results" / "reports"
    research = sorted((reports / "dyads").glob("*.pdf"))
    clinician = sorted(p for p in (reports / "by_therapist").glob("*/*.pdf") if not p.name.startswith("_"))
    caseload = sorted((reports / "by_therapist").glob("*/_caseload.pdf"))
    n_pdf = len(research) + len(clinician) + len(caseload)
    pages = [len(PdfReader(p).pages) for p in research[:50]]
    median_pages = int(statistics.median(pages)) if pages else 1
    floor = floor_seconds(median_pages)
    shards = shard_seconds(work / "logs")
    shard_total = sum(shards)
    print(
        f"| PDFs | {len(research):,} research copies, {len(clinician):,} clinician copies, {len(caseload):,} caseload pages |\n"
        f"| report build (plan, {len(shards)} shards, caseload, index), wall | {wall:.1f} s, peak RSS {peak:,.0f} MB |\n"
        f"| wall per PDF ({args.cores if args.executor == 'local' else 'SLURM'} cores) | {wall / n_pdf:.3f} s |\n"
        f"| report_shard jobs' own time, summed, per dyad PDF | {shard_total / max(1, len(research) + len(clinician)):.3f} s |\n"
        f"| floor: bare WeasyPrint render of {median_pages} plain pages | {floor:.3f} s |\n"
        f"| shard time per dyad PDF / floor | {shard_total / max(1, len(research) + len(clinician)) / floor:.1f}× |\n"
        + "".join(
            f"| {n:,} dyads, **extrapolated** (linear in dyads, same cores) | wall ≈ {wall * n / args.dyads:,.0f} s |\n"
            for n in (1000, 10000)
            if n != args.dyads
        )
        + f"| load average (1/5/15 min) before / after | {' '.join(f'{x:.1f}' for x in load)} / "
        f"{' '.join(f'{x:.1f}' for x in load_after)} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
