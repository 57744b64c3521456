"""One arm of an A/B in CPU seconds: the floor, ingest alone, and ingest + validate + score.

    PYTHONPATH=/path/to/main   .venv/bin/python bench/ab_cpu.py --format qualtrics
    PYTHONPATH=/path/to/branch .venv/bin/python bench/ab_cpu.py --format qualtrics

Unlike bench/ingest_validate_score.py, this script does not put its own checkout first
on ``sys.path``: ``dyadflow`` comes from ``PYTHONPATH``, so the same script measures
two checkouts (run the arms alternately, in one load window). The export is the one
bench/ingest_validate_score.py writes (``--dyads``, ``--sessions``; written first if
missing), read with config/config.yaml's input of its format. After one warm-up
ingest + validate + score, each of ``--repeat`` rounds times the floor, ingest, and
ingest + validate + score once each (interleaved, so the floor and the stages see the
same load); the minimum over the rounds is printed, in CPU seconds of the process
(``time.process_time``: all threads, user and system) and wall seconds, as one Markdown
table row with the ratios and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import polars as pl
import yaml

import dyadflow
from dyadflow import ingest, score
from dyadflow.core.registry import load_registry
from dyadflow.validate import rules as validate

HERE = Path(__file__).resolve().parent
SUFFIX = {"canonical_csv": ".csv", "redcap": "_redcap.csv", "qualtrics": "_qualtrics.csv", "xlsx": "_oq45.xlsx"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=sorted(SUFFIX), default="qualtrics")
    ap.add_argument("--dyads", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    fmt = args.format
    path = Path(args.out) / f"export_{args.dyads}x{args.sessions}{SUFFIX[fmt]}"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        import ingest_validate_score  # noqa: PLC0415  (writes the export with the checkout it sits in)

        ingest_validate_score.measure(args.dyads, args.sessions, fmt, 1, args.out)
    config = yaml.safe_load((HERE.parent / "config" / "config.yaml").read_text(encoding="utf-8"))
    spec = {"path": str(path), "format": fmt}
    if fmt != "canonical_csv":
        spec = {**next(s for s in config["inputs"] if s["format"] == fmt), **spec}
    registry = load_registry()

    def floor():
        if fmt == "xlsx":
            header_row = int(spec["header_row"]) - 1
            return pl.read_excel(
                path, sheet_name=spec["sheet"], engine="calamine", read_options={"header_row": header_row}
            )
        return pl.read_csv(path, infer_schema=False)

    def stages():
        frame, meta = ingest.read_input(spec)
        result = validate.validate_frames([frame], [meta], registry)
        return score.score_frame(result.accepted, registry)

    def once(fn):
        t0, p0 = time.perf_counter(), time.process_time()
        fn()
        return time.process_time() - p0, time.perf_counter() - t0

    stages()  # warm-up
    rounds = [(once(floor), once(lambda: ingest.read_input(spec)), once(stages)) for _ in range(args.repeat)]
    f, i, a = ((min(r[k][0] for r in rounds), min(r[k][1] for r in rounds)) for k in range(3))
    arm = os.path.dirname(os.path.dirname(dyadflow.__file__))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(
        f"| {fmt} {time.strftime('%H:%M', time.gmtime())} {arm} | {f[0]:.2f} / {f[1]:.2f} | {i[0]:.2f} / {i[1]:.2f} "
        f"| {a[0]:.2f} / {a[1]:.2f} | {a[0] / f[0]:.1f}× | {a[1] / f[1]:.1f}× | {load} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
