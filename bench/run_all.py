"""Issue 18's quick benchmarks in one run, as one table (``make bench``).

    PYTHONPATH=. .venv/bin/python bench/run_all.py [--dyads 10000] [--dial-sessions 1000] [--results results]

Imports the bench modules and runs their quick sizes: ingest + validate + score in one
process (the canonical CSV, REDCap, Qualtrics and xlsx exports of one study, 10,000
dyads × 14 sessions), the pipeline through
Snakemake (10,000 dyads × 20 sessions, every stage but reports), the microprocess
analysis (1,000 sessions × 2 raters × 3,000 s = 6 M dial rows, from parquet and from the
raw CSV text) and a dyad report
against a bare render (from ``--results``, else from the pipeline run's results).
Prints each measure of issue 18's table with its floor, the ratio, the target and
whether it is met, and the load average before and after. The full sizes are commands
in bench/RESULTS.md. Figures vary with the machine's load: compare ratios, not times.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import ingest_validate_score  # noqa: E402  (bench/ on sys.path above)
import microprocess  # noqa: E402  (bench/ on sys.path above)
import pipeline  # noqa: E402  (bench/ on sys.path above)
import report_render  # noqa: E402  (bench/ on sys.path above)

ROWS: list[tuple[str, str, str, str, str, str]] = []


def row(
    measure: str,
    floor: float | None,
    value: float | None,
    target: float | None,
    unit: str = "s",
    ratio: bool = True,
    note: str = "",
) -> None:
    """One line of the table: the ratio value/floor against ``target`` (or the value itself when not ``ratio``)."""
    if value is None:
        ROWS.append(
            (
                measure,
                "—",
                "not measured",
                "—",
                f"{'≤ ' if ratio else '< '}{target:g}{'×' if ratio else ' ' + unit}" if target else "—",
                note or "not measured",
            )
        )
        return
    shown = value / floor if ratio else value
    met = "—" if target is None else ("met" if shown <= target else "not met")
    if "target is for" in note:  # measured at the quick size, the target is for the full size
        met = f"at this size {'within' if shown <= target else 'above'} it"
    ROWS.append(
        (
            measure,
            "—" if floor is None else f"{floor:.2f} {unit}",
            f"{value:.2f} {unit}" if unit == "s" else f"{value:,.0f} {unit}",
            f"{shown:.1f}×" if ratio else "—",
            "—" if target is None else (f"≤ {target:g}×" if ratio else f"< {target:g} {unit}"),
            met + (f" ({note})" if note else ""),
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dyads", type=int, default=10000)
    ap.add_argument("--dial-sessions", type=int, default=1000)
    ap.add_argument(
        "--results",
        default="results",
        help="a results folder with report tables (make demo); else the pipeline run's (step 3)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    load_before = os.getloadavg()

    print(f"[1/5] ingest + validate + score, canonical CSV, {args.dyads:,} dyads", flush=True)
    csv = ingest_validate_score.measure(args.dyads, 14, "canonical_csv", args.repeat)
    row(
        f"ingest + validate + score, canonical CSV, {args.dyads:,} dyads, one process, vs pl.read_csv",
        csv["floor"],
        csv["all"],
        4,
    )
    print("[2/5] the same, REDCap export", flush=True)
    red = ingest_validate_score.measure(args.dyads, 14, "redcap", args.repeat)
    row("REDCap export vs its plain read", red["floor"], red["all"], 6)
    print("[2/5] … the Qualtrics export (WAI-S) and the xlsx workbook (OQ-45) of the same study", flush=True)
    qua = ingest_validate_score.measure(args.dyads, 14, "qualtrics", args.repeat)
    row("Qualtrics export (WAI-S, choice text) vs pl.read_csv", qua["floor"], qua["all"], 6)
    xls = ingest_validate_score.measure(args.dyads, 14, "xlsx", args.repeat)
    row("xlsx workbook (OQ-45) vs pl.read_excel (calamine)", xls["floor"], xls["all"], 6)

    print(f"[3/5] pipeline through Snakemake, {args.dyads:,} dyads × 20 sessions", flush=True)
    pipe = pipeline.run_one(args.dyads, 20, nightly=True, quiet=True)  # and the nightlies
    note = "" if pipe["ok"] else "snakemake FAILED"
    row("the same through Snakemake (three jobs: the stages' own times)", pipe["floor"], pipe["ivs"], 6, note=note)
    row(
        f"{args.dyads:,} dyads × 20 sessions, every stage but reports, wall",
        None,
        pipe["wall"],
        60,
        ratio=False,
        note=f"target is for 100,000 dyads; {args.dyads:,} shown{'; ' + note if note else ''}",
    )
    row(
        f"peak memory of that run ({args.dyads:,} dyads)",
        None,
        pipe["peak_mb"],
        4000,
        unit="MB",
        ratio=False,
        note=f"target is for 100,000 dyads; {args.dyads:,} shown",
    )

    print("[4/5] dyad report vs a bare render", flush=True)
    results = Path(args.results)
    if not (results / "stats").exists():  # the pipeline run's own results (step 3) have the report tables
        results = Path(pipe["results"])
    if (results / "stats").exists():
        rep = report_render.measure(argparse.Namespace(results=str(results), dyads=10, repeat=3), verbose=False)
        row("a dyad case report vs a bare WeasyPrint render of the same page count", rep["floor"], rep["report"], 2)
    else:
        row(
            "a dyad case report vs a bare WeasyPrint render of the same page count",
            None,
            None,
            2,
            note=f"no {results}/ with report tables: run make demo first",
        )

    print(f"[5/5] microprocess, {args.dial_sessions:,} sessions × 2 raters × 3,000 s", flush=True)
    mp = microprocess.measure(args.dial_sessions, 3000)
    rows = mp["floor"]["rows"]
    row(
        f"dial ratings, {rows / 1e6:.0f} M rows, analysis vs pl.read_parquet",
        mp["floor"]["wall_s"],
        mp["analyse"]["wall_s"],
        3,
        note="floor is a parquet read; the issue's measure is the next row",
    )
    print("[5/5] … the same from the raw CSV text (read, validate, analyse, write)", flush=True)
    text = microprocess.measure(args.dial_sessions, 3000, from_csv=True)
    row(
        f"dial ratings from the raw CSV text to segments, {text['csv_floor']['rows'] / 1e6:.0f} M rows, "
        "vs a plain typed pl.read_csv",
        text["csv_floor"]["wall_s"],
        text["from_csv"]["wall_s"],
        3,
    )
    row(
        "full report build (research and clinician copies)",
        None,
        None,
        None,
        note="too long for the quick run: bench/report_build.py, figures in bench/RESULTS.md",
    )
    row(
        f"nightly after one dyad changed, {args.dyads:,} dyads (the whole export re-read, reports excluded)",
        None,
        pipe.get("one_dyad_nightly"),
        30,
        ratio=False,
        note=f"target is for 100,000 dyads; {args.dyads:,} shown",
    )

    load_after = os.getloadavg()
    print(
        f"\nissue 18, quick sizes; load average before {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f}, "
        f"after {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f} ({os.cpu_count()} cores)\n"
    )
    print("| measure | floor | measured | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
