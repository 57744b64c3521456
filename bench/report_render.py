"""Report rendering benchmark (issue 7).

1. Chart format: WeasyPrint rendering a bare 2-page document, the same with the two
   inline matplotlib SVG charts, and with the two PNG charts at 200 dpi (chart making
   excluded: it is timed separately).
2. Dyad reports: median time per dyad report (charts → HTML → PDF), wall and CPU, as a
   ratio to a bare WeasyPrint render (``weasyprint.HTML(string=...).write_pdf()``) of a
   plain HTML document with the same page count (the floor, measured right after each
   report).
3. Clinician copies (issue 17), in English and Swedish, the same way.

    .venv/bin/python bench/report_render.py --results results --dyads 20 --repeat 5

Needs a results folder from a run (``make demo``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pypdf import PdfReader


def svg_bytes(fig) -> bytes:
    """SVG of a figure (the chart-format measure only; the package renders PNG)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_html(pages: int) -> str:
    para = "<p>" + "Plain report text, a sentence that fills the line. " * 12 + "</p>"
    body = "".join(f"<h2>Section {i}</h2>" + para * 9 + '<div style="break-after: page"></div>' for i in range(pages))
    return f'<!DOCTYPE html><html><head><link rel="stylesheet" href="report.css"></head><body>{body}</body></html>'


def page_count(pdf: bytes) -> int:
    import io

    return len(PdfReader(io.BytesIO(pdf)).pages)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="results")
    ap.add_argument("--dyads", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--profile-shard",
        type=int,
        default=None,
        metavar="K",
        help="instead: cProfile the rendering of report shard K (its tables from results/reports/shards/tables/K)",
    )
    ap.add_argument("--profile-out", default=None, help="with --profile-shard: write the pstats file here")
    ap.add_argument("--phases-only", action="store_true", help="with --profile-shard: the phase times, no cProfile")
    args = ap.parse_args()
    if args.profile_shard is not None:
        profile_shard(args)
    else:
        measure(args)


# where the time of a shard goes: (phase, functions whose cumulative time is the phase's)
PHASES = (
    ("contexts (polars, per shard)", ("dyad.py:shard_contexts", "clinician.py:contexts", "shards.py:read_shard")),
    ("charts (matplotlib → PNG)", ("dyad.py:add_charts", "clinician.py:add_charts")),
    ("HTML (Jinja2)", ("environment.py:render",)),
    ("WeasyPrint: parse, style, layout", ("__init__.py:render",)),
    ("WeasyPrint: PDF writing", ("document.py:write_pdf",)),
)


def phase_times(run) -> None:
    """Run ``run()`` with each phase's function wrapped in a CPU-seconds timer (no profiler,
    so no per-call overhead skews the shares) and print the phases."""
    import jinja2
    import weasyprint
    from weasyprint.document import Document

    from dyadflow.report import clinician, dyad

    spent: dict[str, float] = {}
    patches = [
        (dyad, "add_charts", "charts (matplotlib → PNG)"),
        (clinician, "add_charts", "charts (matplotlib → PNG)"),
        (jinja2.Template, "render", "HTML (Jinja2)"),
        (weasyprint.HTML, "render", "WeasyPrint: parse, style, layout"),
        (Document, "write_pdf", "WeasyPrint: PDF writing"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]

    def timed(fn, phase):
        def wrapper(*a, **k):
            c0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.process_time() - c0

        return wrapper

    for (owner, name, phase), (_o, _n, fn) in zip(patches, originals, strict=True):
        setattr(owner, name, timed(fn, phase))
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        reports = run()
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    n = 2 * len(reports)
    print(f"without the profiler: {n} PDFs, {wall:.2f} s wall, {cpu:.2f} CPU s ({cpu / n * 1000:.0f} ms CPU per PDF)")
    for phase in dict.fromkeys(p for _o, _n, p in patches):
        sec = spent.get(phase, 0.0)
        print(f"  {phase:40s} {sec:7.2f} s {sec / cpu:6.0%} {sec / n * 1000:7.0f} ms/PDF")
    rest = cpu - sum(spent.values())
    print(f"  {'the rest (contexts, tables, writing files)':40s} {rest:7.2f} s {rest / cpu:6.0%}")


def profile_shard(args) -> None:
    """cProfile of ``shards.render_shard`` on one shard of a results folder (the demo study's
    config: research copies and clinician copies, no microprocess page), and the time per phase."""
    import cProfile
    import pstats
    import tempfile

    import yaml

    from dyadflow.core.study import resolve
    from dyadflow.report import render, shards

    root = Path(args.results)
    tables = {
        n: str(root / "reports" / "shards" / "tables" / str(args.profile_shard) / f"{n}.parquet")
        for n in shards.SHARD_TABLES
    }
    study = resolve(yaml.safe_load(Path("config/config.yaml").read_text(encoding="utf-8")))
    cfg = study.config
    render.render_pdf(plain_html(1), 0)  # warm-up (imports, fonts, Pango)
    with tempfile.TemporaryDirectory() as out:

        def run():
            return shards.render_shard(
                tables,
                f"{out}/m.json",
                f"{out}/pdf",
                study="Bench",
                audience="research",
                outcome=study.outcome_key,
                alliance=study.alliance_keys,
                config_sha256="0" * 64,
                registry=study.registry,
                report_cfg=cfg["report"],
            )

        phase_times(run)  # once without the profiler: the phases' CPU seconds, unskewed
        if args.phases_only:
            return
        prof = cProfile.Profile(time.process_time)  # CPU seconds: steadier than wall time on a shared machine
        t0 = time.perf_counter()
        prof.enable()
        reports = run()
        prof.disable()
        wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    if args.profile_out:
        stats.dump_stats(args.profile_out)
    cum = {}
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        key = f"{Path(file).name}:{name}"
        cum[key] = cum.get(key, 0.0) + ct
    n = 2 * len(reports)
    total = stats.total_tt
    print(
        f"shard {args.profile_shard}: {len(reports)} dyads, {n} PDFs, {wall:.2f} s wall, "
        f"{total:.2f} CPU s under the profiler"
    )
    print(f"{'phase (CPU)':40s} {'s':>7s} {'share':>6s} {'ms/PDF':>7s}")
    for phase, funcs in PHASES:
        sec = sum(cum.get(f, 0.0) for f in funcs)
        print(f"{phase:40s} {sec:7.2f} {sec / total:6.0%} {sec / n * 1000:7.0f}")
    stats.sort_stats("cumulative").print_stats(args.repeat * 10)


def measure(args, verbose: bool = True) -> dict:
    """The chart-format figures and the dyad report's median against its floor (``args``:
    results, dyads, repeat)."""
    print_ = print if verbose else (lambda *a, **k: None)
    from dyadflow.core.registry import load_registry
    from dyadflow.report import charts, dyad, render
    from dyadflow.report.tables import read_report_tables

    root = Path(args.results)
    t = read_report_tables(
        {
            "dyads": root / "stats" / "dyads.parquet",
            "sessions": root / "stats" / "sessions.parquet",
            "scores": root / "scores" / "questionnaires.parquet",
            "sudden_gains": root / "stats" / "sudden_gains.csv",
            "ruptures": root / "stats" / "ruptures.csv",
            "rejections": root / "validation" / "rejections.csv",
            "consent": root / "validated" / "consent.parquet",
            "feedback": root / "stats" / "feedback.parquet",
            "validated": root / "validated" / "questionnaires.parquet",
            "subscales": root / "stats" / "subscales.csv",
        }
    )
    t.dyads = t.dyads.sort("dyad_id").head(args.dyads)
    ctxs = dyad.shard_contexts(
        t,
        study="Bench",
        audience="research",
        outcome="bdi_ii",
        alliance={"patient": "wai_sr", "therapist": "wai_s"},
        registry=load_registry(),
        provenance={"version": "bench", "config": "00000000", "build_date": "—"},
    )
    for c in ctxs:
        c["selection_configured"] = False
        c["provenance"] = {**c["provenance"], "build_date": str(c["epoch_date"])}
    template = render.template_env().get_template("dyad.html.j2")
    fetcher = render.make_fetcher()
    render.render_pdf(plain_html(1), 0, fetcher)  # warm-up (fonts, Pango)

    # 1. chart formats
    sample = ctxs[0]
    figs = lambda: [  # noqa: E731
        charts.outcome_figure(sample["sessions"], sample["outcome"]["bands"], [], "BDI-II", (0, 63)),
        charts.alliance_figure(sample["sessions"], [], [], (0.8, 7.2), ("Patient", "Therapist")),
    ]
    chart_png = _median_time(lambda: [charts.png_bytes(f) for f in figs()], args.repeat)
    chart_svg = _median_time(lambda: [svg_bytes(f) for f in figs()], args.repeat)
    pngs = [charts.data_uri(charts.png_bytes(f)) for f in figs()]
    svgs = [svg_bytes(f).decode() for f in figs()]
    bare = plain_html(2)
    with_png = bare.replace(
        "<h2>Section 1</h2>", "".join(f'<img style="width:100%" src="{u}">' for u in pngs) + "<h2>Section 1</h2>"
    )
    with_svg = bare.replace("<h2>Section 1</h2>", "".join(s.split("?>", 1)[-1] for s in svgs) + "<h2>Section 1</h2>")
    fmt = {
        name: _median_time(lambda h=h: render.render_pdf(h, 0, fetcher), args.repeat)
        for name, h in (("bare 2-page", bare), ("2 inline SVG", with_svg), ("2 PNG@200dpi", with_png))
    }
    print_("chart format (WeasyPrint render only, median of", args.repeat, "):")
    for name, sec in fmt.items():
        print_(f"  {name:14s} {sec * 1000:7.0f} ms   {sec / fmt['bare 2-page']:.2f}× bare")
    print_(f"  making 2 charts: PNG {chart_png * 1000:.0f} ms, SVG {chart_svg * 1000:.0f} ms")

    # 2. dyad reports vs a plain document of the same page count
    out = {"formats": fmt}
    out["research"] = versus_floor(
        "dyad report (research)",
        ctxs,
        lambda c: render.render_pdf(template.render(**dyad.add_charts(c)), render.epoch_of(c["epoch_date"]), fetcher),
        print_,
    )
    out.update(report=out["research"]["report"], floor=out["research"]["floor"], pages=out["research"]["pages"])

    # 3. clinician copies (issue 17; context → 2 charts → HTML in the copy's language → PDF)
    from dyadflow.report import clinician

    for language in ("en", "sv"):
        cctx = clinician.contexts(
            t,
            t.feedback,
            study="Bench",
            outcome="bdi_ii",
            alliance={"patient": "wai_sr", "therapist": "wai_s"},
            registry=load_registry(),
            report_cfg={"language": language, "clinician": {"patient_ratings": "always"}},
        )
        clinician.render_html(cctx[0])  # warm-up (catalogue, fonts)
        out[f"clinician_{language}"] = versus_floor(
            f"clinician copy ({language})",
            cctx,
            lambda c: render.render_pdf(clinician.render_html(c), render.epoch_of(c["epoch_date"]), fetcher),
            print_,
        )
    return out


def bare_pdf(html: str) -> bytes:
    """The floor: a bare WeasyPrint render (its own defaults: a new font configuration,
    its own URL fetcher), the page's stylesheet from the report assets."""
    import weasyprint

    from dyadflow.report import render

    return weasyprint.HTML(string=html, base_url=render.ASSETS.as_uri() + "/").write_pdf()


def versus_floor(name: str, contexts: list[dict], pdf_of, print_) -> dict:
    """Median wall and CPU seconds per report (``pdf_of(context)``: context → charts → HTML
    → PDF) and of a bare render of a plain document with the same page count, each floor
    measured right after its report."""
    wall, cpu, fwall, fcpu, pages = [], [], [], [], []
    for c in contexts:
        t0, c0 = time.perf_counter(), time.process_time()
        pdf = pdf_of(c)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        pages.append(page_count(pdf))
        plain = plain_html(pages[-1])
        t0, c0 = time.perf_counter(), time.process_time()
        bare_pdf(plain)
        fwall.append(time.perf_counter() - t0)
        fcpu.append(time.process_time() - c0)
    m = {k: statistics.median(v) for k, v in (("report", wall), ("floor", fwall), ("cpu", cpu), ("fcpu", fcpu))}
    m["pages"] = statistics.median(pages)
    print_(
        f"{name}: median {m['report'] * 1000:.0f} ms wall, {m['cpu'] * 1000:.0f} ms CPU over {len(wall)} dyads "
        f"({m['pages']:.0f} pages); bare render of a plain document of the same page count "
        f"{m['floor'] * 1000:.0f} ms wall, {m['fcpu'] * 1000:.0f} ms CPU; ratio {m['report'] / m['floor']:.2f}× wall, "
        f"{m['cpu'] / m['fcpu']:.2f}× CPU (target 2×)"
    )
    return m


if __name__ == "__main__":
    main()
