"""Benchmark: ingest + validate + score against the floor, polars' plain read_csv.

    .venv/bin/python bench/ingest_validate_score.py --dyads 2000 [--sessions 14] [--format redcap]

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
from dyadflow.tools import demo_study as demo
from dyadflow.core import atomic
from dyadflow.validate import rules as validate
from dyadflow.core.registry import load_registry  # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--format", choices=["canonical_csv", "redcap"], default="canonical_csv",
                    help="redcap: the BDI-II and WAI-SR of the study as a REDCap export (config as in config/config.yaml)")
    args = ap.parse_args()

    path = Path(args.out) / f"export_{args.dyads}x{args.sessions}{'_redcap' if args.format == 'redcap' else ''}.csv"
    if not path.exists():
        table = demo.generate(n_dyads=args.dyads, n_sessions=args.sessions, bad_rows=False)
        data = demo.redcap_table(table) if args.format == "redcap" else table
        atomic.write_bytes(path, atomic.csv_bytes(data))
    registry = load_registry()
    spec = {"path": str(path), "format": args.format}
    if args.format == "redcap":
        import yaml

        config = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("config", "config.yaml").read_text())
        spec = {**next(s for s in config["inputs"] if s["format"] == "redcap"), **spec}

    floor, raw = best_of(lambda: pl.read_csv(path, infer_schema=False), args.repeat)

    def stages():
        frame, meta = ingest.read_input(spec)
        res = validate.validate_frames([frame], [meta], registry)
        return score.score_frame(res.accepted, registry)

    t_ingest, (frame, meta) = best_of(lambda: ingest.read_input(spec), args.repeat)
    t_all, scores = best_of(stages, args.repeat)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB, {raw.height} rows, {args.dyads} dyads x {args.sessions} sessions)")
    print(f"plain pl.read_csv:          {floor:8.3f} s")
    print(f"ingest only:                {t_ingest:8.3f} s  ({t_ingest / floor:.1f}x the floor)")
    print(f"ingest + validate + score:  {t_all:8.3f} s  ({t_all / floor:.1f}x the floor)")
    print(f"scored questionnaires: {scores.height}; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
