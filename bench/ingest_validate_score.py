"""Benchmark: ingest + validate + score against the floor, polars' plain read_csv.

    .venv/bin/python bench/ingest_validate_score.py --dyads 2000 [--sessions 14] [--format redcap] [--profile 30]

Generates a synthetic export with the demo model (no bad rows), then times, in one
process and one run: (a) the plain read of the file, (b) dyadflow's ingest, validate and
score stages. Prints wall times, the ratio b/a, and peak memory (ru_maxrss).

Formats (``--format``), all from the same generated study, as the demo study writes them
(dyadflow/tools/demo_study.py) and read with config/config.yaml's input spec:
canonical_csv (every questionnaire; floor ``pl.read_csv``), redcap (BDI-II and WAI-SR;
``pl.read_csv``), qualtrics (the therapists' WAI-S with choice text, its three header
rows, previews, a test and unfinished responses; ``pl.read_csv`` of the file) and xlsx
(the clinic's OQ-45 workbook: every 5th dyad at sessions 0, 4, 8, 12; floor
``pl.read_excel`` of its sheet with the engine dyadflow uses, calamine via fastexcel).
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


FORMATS = ("canonical_csv", "redcap", "qualtrics", "xlsx")
SUFFIX = {"canonical_csv": ".csv", "redcap": "_redcap.csv", "qualtrics": "_qualtrics.csv", "xlsx": "_oq45.xlsx"}


def _spec(path: str, fmt: str) -> dict:
    """The input spec of the export (an export format: its input in config/config.yaml)."""
    spec = {"path": path, "format": fmt}
    if fmt != "canonical_csv":
        import yaml

        config = yaml.safe_load(Path(__file__).resolve().parent.parent.joinpath("config", "config.yaml").read_text())
        spec = {**next(s for s in config["inputs"] if s["format"] == fmt), **spec}
    return spec


def _export_bytes(table: pl.DataFrame, fmt: str) -> bytes:
    """The generated study in the demo's export format ``fmt``."""
    if fmt == "redcap":
        return atomic.csv_bytes(demo.redcap_table(table))
    if fmt == "qualtrics":
        return demo.qualtrics_bytes(demo.qualtrics_table(table))
    if fmt == "xlsx":
        return demo.oq45_workbook_bytes(demo.generate_oq45(table))
    return atomic.csv_bytes(table)


def plain_read(path: Path, spec: dict) -> pl.DataFrame:
    """The floor: the file read by polars (or calamine) with no checks, every cell as it comes."""
    if spec["format"] == "xlsx":
        return pl.read_excel(
            path, sheet_name=spec["sheet"], engine="calamine", read_options={"header_row": int(spec["header_row"]) - 1}
        )
    return pl.read_csv(path, infer_schema=False)


def measure(
    dyads: int = 2000, sessions: int = 14, fmt: str = "canonical_csv", repeat: int = 3, out: str = "bench/out"
) -> dict:
    """Wall times (best of ``repeat``) of the floor, ingest and ingest + validate + score, in one process."""
    path = Path(out) / f"export_{dyads}x{sessions}{SUFFIX[fmt]}"
    if not path.exists():
        table = demo.generate(n_dyads=dyads, n_sessions=sessions, bad_rows=False)
        atomic.write_bytes(path, _export_bytes(table, fmt))
    registry = load_registry()
    spec = _spec(str(path), fmt)

    floor, raw = best_of(lambda: plain_read(path, spec), repeat)

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
        choices=FORMATS,
        default="canonical_csv",
        help="redcap: the BDI-II and WAI-SR of the study as a REDCap export; qualtrics: the WAI-S as a Qualtrics "
        "export; xlsx: the OQ-45 workbook (each as the demo study writes it, config as in config/config.yaml)",
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
    plain = "pl.read_excel:" if args.format == "xlsx" else "pl.read_csv:"
    print(f"plain {plain:22s}{floor:8.3f} s")
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
