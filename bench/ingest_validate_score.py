"""Benchmark: ingest + validate + score against the floor, polars' plain read_csv.

    .venv/bin/python bench/ingest_validate_score.py --dyads 2000 [--sessions 14] [--format redcap] [--profile 30]

Generates a synthetic export with the demo model (no bad rows), then times, in one
process and one run: (a) pl.read_csv of the file, (b) dyadflow's ingest, validate and
score stages. Prints wall times, the ratio b/a, and peak memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dyadflow import ingest, score  # noqa: E402
from dyadflow.core import atomic
from dyadflow.core.registry import load_registry  # noqa: E402
from dyadflow.tools import demo_study as demo
from dyadflow.validate import rules as validate


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _spec(path: str, fmt: str) -> dict:
    """The input spec of the export (a REDCap export: the config of config/config.yaml)."""
    spec = {"path": path, "format": fmt}
    if fmt == "redcap":
        import yaml

        config = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("config", "config.yaml").read_text())
        spec = {**next(s for s in config["inputs"] if s["format"] == "redcap"), **spec}
    return spec


def measure(
    dyads: int = 2000, sessions: int = 14, fmt: str = "canonical_csv", repeat: int = 3, out: str = "bench/out"
) -> dict:
    """Wall times (best of ``repeat``) of the floor, ingest and ingest + validate + score, in one process."""
    path = Path(out) / f"export_{dyads}x{sessions}{'_redcap' if fmt == 'redcap' else ''}.csv"
    if not path.exists():
        table = demo.generate(n_dyads=dyads, n_sessions=sessions, bad_rows=False)
        data = demo.redcap_table(table) if fmt == "redcap" else table
        atomic.write_bytes(path, atomic.csv_bytes(data))
    registry = load_registry()
    spec = _spec(str(path), fmt)

    floor, raw = best_of(lambda: pl.read_csv(path, infer_schema=False), repeat)

    def stages():
        frame, meta = ingest.read_input(spec)
        res = validate.validate_frames([frame], [meta], registry)
        return score.score_frame(res.accepted, registry)

    t_ingest, _ = best_of(lambda: ingest.read_input(spec), repeat)
    t_all, scores = best_of(stages, repeat)
    return {
        "path": str(path),
        "mb": path.stat().st_size / 1e6,
        "rows": raw.height,
        "floor": floor,
        "ingest": t_ingest,
        "all": t_all,
        "scored": scores.height,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument(
        "--format",
        choices=["canonical_csv", "redcap"],
        default="canonical_csv",
        help="redcap: the BDI-II and WAI-SR of the study as a REDCap export (config as in config/config.yaml)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="after the timings, profile one more ingest + validate + score (cProfile) and print the N "
        "dyadflow functions with the most cumulative time; CPU seconds of the process are printed too",
    )
    args = ap.parse_args()
    m = measure(args.dyads, args.sessions, args.format, args.repeat, args.out)
    floor, t_ingest, t_all = m["floor"], m["ingest"], m["all"]
    print(f"file: {m['path']} ({m['mb']:.1f} MB, {m['rows']} rows, {args.dyads} dyads x {args.sessions} sessions)")
    print(f"plain pl.read_csv:          {floor:8.3f} s")
    print(f"ingest only:                {t_ingest:8.3f} s  ({t_ingest / floor:.1f}x the floor)")
    print(f"ingest + validate + score:  {t_all:8.3f} s  ({t_all / floor:.1f}x the floor)")
    print(f"scored questionnaires: {m['scored']}; peak RSS {m['peak_mb']:.0f} MB")
    print(f"CPU seconds of the process (all threads, set-up and every repeat): {time.process_time():.2f} s")
    if args.profile:
        profile(m["path"], args.format, args.profile)


def profile(path: str, fmt: str, top: int) -> None:
    """cProfile of one ingest + validate + score of ``path``: the ``top`` dyadflow functions
    by cumulative time (pure-Python code is inflated by the profiler, polars calls are not)."""
    import cProfile
    import pstats

    spec = _spec(path, fmt)
    registry = load_registry()
    prof = cProfile.Profile()
    prof.enable()
    frame, meta = ingest.read_input(spec)
    res = validate.validate_frames([frame], [meta], registry)
    score.score_frame(res.accepted, registry)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats("dyadflow", top)


if __name__ == "__main__":
    main()
