"""Benchmark: the microprocess analysis over every session at once.

    .venv/bin/python bench/microprocess.py --sessions 10000 --seconds 3000

Writes synthetic dial data (sessions × 2 raters × seconds rows, AR(1) around a level,
whole-number ratings; validated form: dyad_id, session, rater, second, rating) to
bench/out/dial_<sessions>x<seconds>.parquet once, then, each phase in its own process
so that each peak RSS is its own:

* floor: ``pl.read_parquet`` of that file;
* analyse: read the same file + ``dyadflow.microprocess.pipeline.analyse`` (gaps,
  interpolation, smoothing, congruence and discrepancy per session, ruptures, repairs
  and peaks per rater) + ``write_series`` (the per-second table for the reports,
  streamed to parquet).

Prints one line per phase: wall time, peak RSS, rows, and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def generate(path: Path, sessions: int, seconds: int, seed: int = 1) -> None:
    import numpy as np
    import polars as pl
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = sessions * 2
    level = rng.normal(15, 10, n)[:, None]
    parts = []
    chunk = 1000  # series per chunk, to bound the generator's memory
    for lo in range(0, n, chunk):  # the generator only; the analysis has no such loop
        hi = min(n, lo + chunk)
        walk = lfilter([1.0], [1.0, -0.995], rng.normal(0, 1.0, (hi - lo, seconds)), axis=1)
        rating = np.clip(np.rint(level[lo:hi] + 0.3 * walk), -50, 50).astype(np.int8)
        idx = np.arange(lo, hi)
        parts.append(
            pl.DataFrame(
                {
                    "dyad_id": np.repeat([f"B{i // 2 // 4:05d}" for i in idx], seconds),
                    "session": np.repeat((idx // 2 % 4 + 1).astype(np.int32), seconds),
                    "rater": np.repeat(np.where(idx % 2 == 0, "patient", "therapist"), seconds),
                    "second": np.tile(np.arange(seconds, dtype=np.int32), hi - lo),
                    "rating": rating.reshape(-1).astype(np.float64),
                }
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.concat(parts).sort("dyad_id", "session", "rater", "second").write_parquet(path, compression="zstd")


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


TYPED = {"dyad_id": "String", "session": "Int32", "rater": "String", "second": "Int32", "rating": "Float64"}


def write_csv(parquet: Path, csv: Path) -> None:
    """The dial ratings as the raw export a study delivers (layout long, whole-number ratings)."""
    import polars as pl

    pl.read_parquet(parquet).with_columns(pl.col("rating").cast(pl.Int32)).write_csv(csv)


def phase(name: str, path: Path) -> dict:
    import polars as pl

    start, cpu = time.perf_counter(), time.process_time()
    if name == "floor":
        df = pl.read_parquet(path)
        rows = df.height
        extra = {}
    elif name == "csv_floor":  # a plain typed read of the CSV text
        df = pl.read_csv(path, schema={c: getattr(pl, t) for c, t in TYPED.items()})
        rows = df.height
        extra = {}
    elif name == "from_csv":  # the stage itself: read the text, validate, analyse, write every output
        from dyadflow.microprocess import pipeline

        tmp = OUT / "dial_from_csv"
        tmp.mkdir(parents=True, exist_ok=True)
        names = ("rejections", "accounting", "sessions", "segments", "gaps")
        out = {n: str(tmp / f"{n}.csv") for n in names} | {"series": str(tmp / "series.parquet")}
        result = pipeline.run([{"path": str(path), "layout": "long"}], {}, out)
        rows = int(pl.read_csv(out["accounting"]).get_column("rows_read").sum())
        extra = {"sessions": result.sessions.height, "segments": result.segments.height, "gaps": result.gaps.height}
    else:
        from dyadflow.microprocess import pipeline

        df = pl.read_parquet(path)
        result = pipeline.analyse(df)
        result.write_series(OUT / "series.parquet")
        rows = df.height
        extra = {"sessions": result.sessions.height, "segments": result.segments.height, "gaps": result.gaps.height}
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_mb = _peak_rss_mb()
    return {
        "phase": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # all threads of the process
        "peak_rss_mb": round(peak_mb),
        "rows": rows,
        **extra,
    }


def measure(sessions: int, seconds: int, from_csv: bool = False) -> dict:
    """Each phase in its own process (its own peak RSS): {"floor": {...}, "analyse": {...}};
    ``from_csv``: {"csv_floor": {...}, "from_csv": {...}} from the CSV text instead."""
    path = OUT / f"dial_{sessions}x{seconds}.parquet"
    if not path.exists():
        t = time.perf_counter()
        generate(path, sessions, seconds)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    if from_csv and not path.with_suffix(".csv").exists():
        write_csv(path, path.with_suffix(".csv"))
    results = {}
    for name in ("csv_floor", "from_csv") if from_csv else ("floor", "analyse"):
        proc = subprocess.run(
            [sys.executable, __file__, "--sessions", str(sessions), "--seconds", str(seconds), "--phase", name],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--seconds", type=int, default=3000)
    ap.add_argument(
        "--from-csv",
        action="store_true",
        help="start from the ratings as CSV text (layout long): the stage's read, validation and analysis "
        "against a plain typed pl.read_csv of the same file",
    )
    ap.add_argument("--phase", choices=["floor", "analyse", "csv_floor", "from_csv"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = OUT / f"dial_{args.sessions}x{args.seconds}.parquet"
    if args.phase:
        print(json.dumps(phase(args.phase, path.with_suffix(".csv") if "csv" in args.phase else path)))
        return 0
    results = measure(args.sessions, args.seconds, args.from_csv)
    floor = results["csv_floor" if args.from_csv else "floor"]["wall_s"]
    for name, r in results.items():
        print(
            f"{name:8s} {r['wall_s']:8.2f} s  peak RSS {r['peak_rss_mb']:6d} MB  ratio {r['wall_s'] / floor:6.1f}  {r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
