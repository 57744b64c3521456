"""The ``dyadflow`` command: helpers around the Snakemake workflow.

    dyadflow demo-data [--out data/demo]     write the synthetic demo study (REDCap, Qualtrics, xlsx)
    dyadflow demo-dial [--out data/demo/dial] write the demo moment-to-moment (dial) ratings
    dyadflow check-instruments [DIR ...]     check instrument files, list what they define
    dyadflow outputs [--results results]     say where a finished run put its outputs
    dyadflow nightly --configfile study.yaml [--cores 2] [snakemake args ...]
                                             an unattended build with a lock and a run summary
    dyadflow inspect FILE [--sheet S] [--header-row N]
                                             what an export is, and a config block to paste
    dyadflow --version                       the version; `dyadflow COMMAND --help` explains each command

The pipeline itself runs with ``snakemake --cores N --configfile study.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dyadflow.core.errors import DyadflowError


def _demo_data(args) -> int:
    from dyadflow.tools import demo_study as demo

    out = demo.write(args.out, seed=args.seed)
    for name in demo.FILES:
        print(f"wrote {out / name}")
    return 0


def _demo_dial(args) -> int:
    from dyadflow.tools import demo_dial as demo

    paths = demo.write(args.out)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _check_instruments(args) -> int:
    from dyadflow.core.registry import BUILTIN_DIR, load_instrument

    folders = [Path(d) for d in args.dirs] or [BUILTIN_DIR]
    n = 0
    for folder in folders:
        files = sorted(folder.glob("*.y*ml")) if folder.is_dir() else [folder]
        for path in files:
            inst = load_instrument(path)
            subs = ", ".join(f"{k} ({len(v)})" for k, v in inst.subscales.items()) or "none"
            if inst.total_only:
                print(
                    f"{path}: {inst.key}: pre-scored total {inst.total_min:g}–{inst.total_max:g}, rated by {'/'.join(inst.raters)}"
                )
                n += 1
                continue
            print(
                f"{path}: {inst.key}: {inst.n_items} items {inst.min_value}–{inst.max_value}, "
                f"{inst.method} score, rated by {'/'.join(inst.raters)}, "
                f"reverse-keyed {list(inst.reverse_keyed) or 'none'}, subscales {subs}"
            )
            n += 1
    print(f"{n} instrument file(s) OK")
    return 0


def _outputs(args) -> int:
    results = Path(args.results)
    groups = [
        ("Validated data", ["validated/questionnaires.parquet", "validated/consent.parquet"]),
        ("Validation", ["validation/accounting.csv", "validation/rejections.csv", "validation/warnings.csv"]),
        ("Scores", ["scores/questionnaires.csv", "scores/questionnaires.parquet", "scores/reliability.csv"]),
        (
            "Statistics",
            [
                "stats/dyads.csv",
                "stats/dyads.parquet",
                "stats/sessions.parquet",
                "stats/sudden_gains.csv",
                "stats/ruptures.csv",
                "stats/subscales.csv",
                "stats/cohort.json",
                "stats/feedback.parquet",
                "stats/feedback.csv",
                "stats/multilevel.json",
            ],
        ),
        ("Selection", ["selection/index.json"]),
        (
            "Reports",
            [
                "reports/index.csv",
                "reports/dyads/",
                "reports/by_therapist/",
                "reports/cohort.pdf",
                "reports/validation.pdf",
            ],
        ),
        (
            "Moment-to-moment ratings",
            [
                "microprocess/sessions.csv",
                "microprocess/segments.csv",
                "microprocess/gaps.csv",
                "microprocess/accounting.csv",
                "microprocess/rejections.csv",
            ],
        ),
        ("Provenance", ["manifest.json"]),
    ]
    if not (results / "microprocess").is_dir():  # the stage runs only when the config asks for it
        groups = [g for g in groups if g[0] != "Moment-to-moment ratings"]
    if (results / "coding").is_dir():  # the coding stage runs when coding.inputs lists coded files
        groups.insert(
            -1,
            (
                "Coding",
                [
                    f"coding/{n}"
                    for n in (
                        "ratings.parquet",
                        "accounting.csv",
                        "rejections.csv",
                        "warnings.csv",
                        "agreement.csv",
                        "consensus.csv",
                        "to_discuss.csv",
                        "comparison.csv",
                    )
                ],
            ),
        )
    # each configured selection strategy's files, in the order of the config
    index = results / "selection" / "index.json"
    if index.is_file():
        import json

        names = [s["name"] for s in json.loads(index.read_text(encoding="utf-8")).get("strategies", [])]
        selection = [
            f"selection/{n}{suffix}" for n in names for suffix in (".csv", "_summary.json", "_blinded.csv", "_key.csv")
        ]
        groups = [(t, p + selection if t == "Selection" else p) for t, p in groups]
    charts = sorted((results / "charts").glob("*.png"))
    if charts:
        groups.insert(-1, ("Charts", [c.relative_to(results).as_posix() for c in charts]))
    print(f"dyadflow outputs in {results}/:")
    for title, paths in groups:
        print(f"  {title}:")
        for p in paths:
            full = results / p
            if full.is_dir():
                count = len(list(full.rglob("*.pdf")))
                print(f"    {full}  ({count} PDF reports)")
            elif full.exists():
                print(f"    {full}")
            else:
                print(f"    {full}  (missing)")
    accounting = results / "validation" / "accounting.csv"
    if accounting.exists():
        import polars as pl

        acc = pl.read_csv(accounting)
        total = acc.select(pl.col("rows_read", "rows_accepted", "rows_rejected").sum()).row(0)
        print(
            f"  Rows: {total[0]} read, {total[1]} accepted, {total[2]} rejected (see {results}/validation/rejections.csv)"
        )
    return 0


def _inspect(args) -> int:
    from dyadflow.tools import inspect_export as inspect

    sheet = int(args.sheet) if args.sheet is not None and args.sheet.isdigit() else args.sheet
    return inspect.main(args.file, sheet=sheet, header_row=args.header_row)


def _nightly(args) -> int:
    from dyadflow.tools import nightly

    return nightly.run(args.configfile, cores=args.cores, workdir=args.directory, extra=args.snakemake_args)


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    from importlib import metadata

    from dyadflow import __version__

    try:
        return metadata.version("dyadflow")
    except metadata.PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``dyadflow`` command line: every command and option has a help text."""
    parser = argparse.ArgumentParser(
        prog="dyadflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"dyadflow {version()}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "demo-data",
        help="write the synthetic demo study",
        description="Writes the synthetic demo study "
        "(a REDCap export, a Qualtrics export and an Excel workbook) with pseudonymous IDs only.",
    )
    p.add_argument("--out", default="data/demo", help="the folder to write to (default: data/demo)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the seed of the bundled demo data)")
    p.set_defaults(func=_demo_data)
    p = sub.add_parser(
        "demo-dial",
        help="write the demo moment-to-moment (dial) ratings",
        description="Writes the demo moment-to-moment (dial) rating files, one per dyad, session and rater.",
    )
    p.add_argument("--out", default="data/demo/dial", help="the folder to write to (default: data/demo/dial)")
    p.set_defaults(func=_demo_dial)
    p = sub.add_parser(
        "check-instruments",
        help="check instrument definition files",
        description="Checks instrument YAML files against dyadflow/schemas/instrument.schema.yaml and lists what each defines.",
    )
    p.add_argument("dirs", nargs="*", help="folders or files (default: the built-in registry)")
    p.set_defaults(func=_check_instruments)
    p = sub.add_parser(
        "inspect",
        help="show an export's format, encoding, delimiter and columns, and suggest its config mapping",
        description="Detects the format (canonical CSV, REDCap, Qualtrics, xlsx, sav), the encoding and delimiter, "
        "lists the columns with example values, and prints an 'inputs:' entry to paste into the study config.",
    )
    p.add_argument("file", help="the export to look at (csv, xlsx, sav, a REDCap or Qualtrics export)")
    p.add_argument("--sheet", default=None, help="xlsx: the sheet name or 0-based index (default: the first)")
    p.add_argument(
        "--header-row", type=int, default=None, help="xlsx: the row with the column names (default: guessed)"
    )
    p.set_defaults(func=_inspect)
    p = sub.add_parser(
        "outputs",
        help="list the outputs of a finished run",
        description="Lists where a finished run put its outputs, and the row accounting.",
    )
    p.add_argument("--results", default="results", help="the results folder of the run (default: results)")
    p.set_defaults(func=_outputs)
    p = sub.add_parser(
        "nightly",
        help="one unattended build (cron): lock, clean-up after a killed run, snakemake, run summary",
        description="Runs the workflow with profiles/nightly and writes results/runs/<timestamp>.json and .txt. "
        "Exit status: 0 OK; 1 the build failed (a job, a config mistake, a full or read-only disk); 2 a usage problem; "
        "3 the build finished but no row of some input file was accepted; 75 another nightly or a live snakemake run "
        "works in the directory. "
        "Arguments after the options (targets, e.g. results/stats/cohort.json, or snakemake options after --) go to snakemake.",
    )
    p.add_argument("--configfile", default=None, help="the study config (default: the bundled demo config)")
    p.add_argument("--cores", type=int, default=2, help="CPU cores snakemake may use (default: 2)")
    p.add_argument("--directory", default=".", help="the study's working directory (results/ and logs/ go there)")
    p.add_argument(
        "snakemake_args",
        nargs=argparse.REMAINDER,
        help="targets or snakemake options, passed on to snakemake (options after --)",
    )
    p.set_defaults(func=_nightly)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "seed", 0) is None:
        from dyadflow.tools.demo_study import SEED

        args.seed = SEED
    try:
        return args.func(args)
    except DyadflowError as exc:
        print(f"dyadflow: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
