"""Benchmark: the whole pipeline through Snakemake at N dyads (issue 8).

    .venv/bin/python bench/pipeline.py --dyads 1000 10000 [100000] [--sessions 20] [--cores 2]

For each N: generates N dyads × S sessions with the demo model (canonical CSV, no bad
rows), then runs the pipeline stage by stage with Snakemake targets (ingest, validate,
score, stats, select, charts; report rendering excluded) in one Snakemake call under
/usr/bin/time -v (total wall time, and peak RSS of the largest process). Each job runs
in its own Python process, so each stage's own time and peak RSS come from its log
("<stage> finished in X s (peak RSS of the process so far Y MB)").
Then, at every N, a no-op `dyadflow nightly` rerun, timed. The floor for
ingest + validate + score is polars' plain ``read_csv`` of the same file, timed in the
same run; the stages' own times come from their logs ("<stage> finished in X s").
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PY = sys.executable


def study_config(dyads_per_shard: int = 100000) -> str:
    """The benchmark study's config (also bench/dry_run.py's, with its own shard size)."""
    return f"""\
study: {{name: "Benchmark (synthetic)"}}
inputs:
  - path: data/questionnaires.csv
    format: canonical_csv
validation: quarantine
outcome: bdi_ii
alliance: {{patient: wai_sr, therapist: wai_s}}
selection: []
report: {{audience: research, dyads_per_shard: {dyads_per_shard}}}
"""


CONFIG = study_config()
STAGES = [
    ("ingest", ["results/ingest/questionnaires.parquet"], "logs/ingest/questionnaires.log"),
    ("validate", ["results/validated/questionnaires.parquet"], "logs/validate.log"),
    ("score", ["results/scores/questionnaires.parquet"], "logs/score.log"),
    ("stats", ["results/stats/cohort.json"], "logs/stats.log"),
    ("select", ["results/selection/index.json"], "logs/select.log"),
    ("charts", ["results/charts/validation_summary.png"], "logs/charts.log"),
]
ALL_TARGETS = [t for _, ts, _ in STAGES for t in ts]


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of ``cmd`` under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
    return wall, (int(m.group(1)) / 1024 if m else float("nan")), proc.returncode


def stage_figures(log: Path, stage: str) -> tuple[float, float]:
    m = re.search(
        rf"{stage} finished in ([0-9.]+) s \(peak RSS of the process so far ([0-9]+) MB\)",
        log.read_text(encoding="utf-8") if log.exists() else "",
    )
    return (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))


def run_one(
    n: int,
    sessions: int = 20,
    cores: int = 2,
    out: str = "bench/out/pipeline",
    nightly: bool = True,
    quiet: bool = False,
) -> dict:
    """Build every stage but reports for ``n`` dyads through Snakemake; the figures as a dict."""
    import polars as pl

    from dyadflow.core import atomic
    from dyadflow.tools import demo_study as demo

    say = (lambda *a, **k: None) if quiet else print
    work = Path(out).resolve() / f"{n}x{sessions}"
    export = work / "data" / "questionnaires.csv"
    if not export.exists():
        t0 = time.perf_counter()
        atomic.write_bytes(export, atomic.csv_bytes(demo.generate(n_dyads=n, n_sessions=sessions, bad_rows=False)))
        say(f"[{n}] generated {export} in {time.perf_counter() - t0:.1f} s", flush=True)
    (work / "study.yaml").write_text(CONFIG, encoding="utf-8")
    subprocess.run(["rm", "-rf", "results", "logs", ".snakemake"], cwd=work, check=True)
    t0 = time.perf_counter()
    raw = pl.read_csv(export, infer_schema=False)
    floor = time.perf_counter() - t0
    size_mb, rows = export.stat().st_size / 1e6, raw.height
    del raw
    load = os.getloadavg()
    opts = [
        "--snakefile",
        str(REPO / "Snakefile"),
        "--cores",
        str(cores),
        "--quiet",
        "all",
        "--configfile",
        "study.yaml",
    ]  # last: --quiet and --configfile take several values
    say(
        f"\n## {n:,} dyads × {sessions} sessions: {size_mb:.0f} MB, {rows:,} rows; load average before {load[0]:.1f}",
        flush=True,
    )
    total_wall, peak, code = timed([PY, "-m", "snakemake", *ALL_TARGETS, *opts], work)
    say("| stage | stage's own time (its log) | process peak RSS when it finished |\n|---|---|---|")
    own, rss = {}, {}
    for stage, _targets, log in STAGES:
        own[stage], rss[stage] = stage_figures(work / log, stage)
        say(f"| {stage} | {own[stage]:.2f} s | {rss[stage]:,.0f} MB |")
    say(
        f"| **whole snakemake call, all stages but reports** | **{total_wall:.1f} s** wall | **{peak:,.0f} MB** peak |"
        + ("" if code == 0 else " FAILED")
    )
    ivs = own["ingest"] + own["validate"] + own["score"]
    say(
        f"\nplain pl.read_csv (floor) {floor:.2f} s; ingest + validate + score {ivs:.2f} s = {ivs / floor:.1f}× the floor"
    )
    result = {
        "n": n,
        "floor": floor,
        "own": own,
        "rss": rss,
        "wall": total_wall,
        "peak_mb": peak,
        "ok": code == 0,
        "ivs": ivs,
        "load_before": load[0],
        "results": str(work / "results"),
    }
    if nightly:
        wall, _rss, code = timed(
            [PY, "-m", "dyadflow", "nightly", "--configfile", "study.yaml", "--cores", str(cores), *ALL_TARGETS], work
        )
        wall2, rss2, code2 = timed(
            [PY, "-m", "dyadflow", "nightly", "--configfile", "study.yaml", "--cores", str(cores), *ALL_TARGETS], work
        )
        say(
            f"first dyadflow nightly after the build (fingerprints, state): {wall:.1f} s (exit {code}); "
            f"no-op nightly rerun: {wall2:.1f} s, peak {rss2:,.0f} MB (exit {code2}); "
            f"load average after {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        result["noop_nightly"] = wall2
        changed = change_one_dyad(export)
        wall3, rss3, code3 = timed(
            [PY, "-m", "dyadflow", "nightly", "--configfile", "study.yaml", "--cores", str(cores), *ALL_TARGETS], work
        )
        say(
            f"nightly after one dyad changed ({changed}; the whole export re-read, reports excluded): "
            f"{wall3:.1f} s, peak {rss3:,.0f} MB (exit {code3}); load average after {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        result["one_dyad_nightly"] = wall3
        result["one_dyad_nightly_peak_mb"] = rss3
    return result


def change_one_dyad(export: Path) -> str:
    """Change one item answer of the export's first BDI-II row in place (1 → 2 or else → 1),
    the rest of the file byte for byte as it was: what a nightly sees when one dyad's
    questionnaire was corrected. Returns what changed."""
    import polars as pl

    from dyadflow.core import atomic

    raw = pl.read_csv(export, infer_schema=False)
    line = raw.with_row_index().filter(pl.col("instrument") == "bdi_ii").row(0, named=True)
    old = line["item_01"]
    new = "2" if old == "1" else "1"
    raw = raw.with_columns(
        pl.when(pl.int_range(pl.len()) == line["index"]).then(pl.lit(new)).otherwise(pl.col("item_01")).alias("item_01")
    )
    atomic.write_bytes(export, atomic.csv_bytes(raw))
    return f"dyad {line['dyad_id']}, session {line['session']}, BDI-II item 1: {old} → {new}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default="bench/out/pipeline")
    args = ap.parse_args()
    for n in args.dyads:
        run_one(n, args.sessions, args.cores, args.out)


if __name__ == "__main__":
    main()
