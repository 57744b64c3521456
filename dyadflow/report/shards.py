"""Sharded, incremental rendering of the dyad reports.

* ``report_plan`` (a Snakemake checkpoint) assigns each dyad to a shard by a stable
  FNV-1a hash of its ID, with ``ceil(n_dyads / report.dyads_per_shard)`` shards, and writes each shard's input tables to
  ``results/reports/shards/<k>/*.parquet`` only when their bytes change. A shard whose
  dyads did not change keeps its files, so Snakemake does not run it again.
* ``report_shard`` renders the dyads of one shard. A dyad whose fingerprint (its data,
  audience, provenance, templates and code version) equals the one recorded at the
  last render keeps its PDF untouched; PDFs are written only when their bytes differ.
* ``report_index`` lists every report and removes those of dyads that left the data.
"""

from __future__ import annotations

import io as pyio
import json
import logging
import math
import shutil
from pathlib import Path

import polars as pl

from dyadflow import __version__
from dyadflow.core import atomic
from dyadflow.core.contract import read_table
from dyadflow.report import clinician, render
from dyadflow.report import dyad as dyad_report
from dyadflow.report.tables import CONTRACTS, ReportTables, read_report_tables, with_note, with_selection_columns

log = logging.getLogger(__name__)

SHARD_TABLES = (
    "dyads",
    "sessions",
    "scores",
    "sudden_gains",
    "ruptures",
    "selection",
    "rejections",
    "consent",
    "feedback",
    "subscales",
)
STATE = "rendered.json"


def n_shards_for(n_dyads: int, dyads_per_shard: int) -> int:
    return max(1, math.ceil(n_dyads / max(1, dyads_per_shard)))


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = pyio.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=False)
    return buf.getvalue()


def plan(results_dir: str, strategies: list[str], dyads_per_shard: int, out_plan: str) -> dict:
    """Write each shard's input tables (if changed) and the plan: which shards exist."""
    t = read_report_tables(results_dir, strategies)
    n = n_shards_for(t.dyads.height, dyads_per_shard)
    assign = t.dyads.select("dyad_id").with_columns(render.shard_of(t.dyads.get_column("dyad_id"), n).alias("shard"))
    root = Path(results_dir) / "reports" / "shards"
    written = 0
    for name in SHARD_TABLES:
        frame = getattr(t, name).join(assign, on="dyad_id", how="inner")
        parts = {k[0]: p.drop("shard") for k, p in frame.group_by("shard")} if frame.height else {}
        empty = frame.drop("shard").clear()
        for k in range(n):  # one file per shard and table, also when empty
            part = parts.get(k, empty).sort(pl.all())
            written += atomic.write_bytes_if_changed(root / str(k) / f"{name}.parquet", parquet_bytes(part))
    if root.is_dir():  # shards beyond the new count
        for old in root.iterdir():
            if old.is_dir() and old.name.isdigit() and int(old.name) >= n:
                shutil.rmtree(old)
    counts = assign.group_by("shard").len().sort("shard")
    sizes = dict(counts.iter_rows())
    data = {
        "n_shards": n,
        "dyads_per_shard": dyads_per_shard,
        "n_dyads": t.dyads.height,
        "shards": [{"shard": k, "n_dyads": int(sizes.get(k, 0))} for k in range(n)],
    }
    atomic.write_bytes_if_changed(out_plan, atomic.json_bytes(data))
    log.info("%d dyads in %d shard(s); %d shard table(s) rewritten", t.dyads.height, n, written)
    return data


def read_shard(shard_dir: str | Path) -> ReportTables:
    d = Path(shard_dir)
    frames = {k: read_table(d / f"{k}.parquet", model) for k, model in CONTRACTS.items()}
    frames["scores"] = with_note(frames["scores"])
    sel = d / "selection.parquet"
    selection = with_selection_columns(
        pl.read_parquet(sel) if sel.exists() else pl.DataFrame(schema={"strategy": pl.String})
    )
    return ReportTables(selection=selection, **frames)


def microprocess_contexts(config: dict, dyad_ids: list[str], results_dir: str) -> dict | None:
    """The microprocess page's context per dyad, when the study configures ``microprocess``;
    otherwise None (the page is left out)."""
    if not config.get("microprocess"):
        return None
    from dyadflow.microprocess.report import dyad_context

    contexts = dyad_context(dyad_ids, results_dir)
    return contexts if isinstance(contexts, dict) and contexts else None


def _render_one(template, ctx: dict, path: Path, fetcher) -> str:
    if ctx.get("kind") == "clinician":  # the clinician copy: its own template, in the therapist's language
        html = clinician.render_html(ctx)
    else:
        html = template.render(**dyad_report.add_charts(ctx))
    pdf = render.render_pdf(html, render.epoch_of(ctx["epoch_date"]), fetcher)
    atomic.write_bytes_if_changed(path, pdf)
    return render.sha256_bytes(pdf)


def render_shard(
    shard_dir: str,
    out_manifest: str,
    *,
    results_dir: str,
    study: str,
    audience: str,
    outcome: str,
    alliance: dict[str, str],
    config_sha256: str,
    instruments_dir: str | None = None,
    config: dict | None = None,
    strategies: list[str] = (),
    max_note_chars: int = dyad_report.MAX_NOTE_CHARS,
    report_cfg: dict | None = None,
    prompts_path: str | None = None,
) -> list[dict]:
    """Render the research (or configured audience) report and the clinician bundle copy of every dyad in a shard.

    The clinician copy (:mod:`dyadflow.report.clinician`) follows ``report_cfg`` (``language``,
    ``clinician.patient_ratings``, ``clinician.languages``) and the study's prompt catalogue
    ``prompts_path`` (``feedback.prompts``)."""
    from dyadflow.core.registry import load_registry

    t = read_shard(shard_dir)
    registry = load_registry(instruments_dir)
    provenance = {
        "version": __version__,
        "config": config_sha256[:8] if config_sha256 else None,
        "templates": render.templates_fingerprint()[:8],
    }
    micro = microprocess_contexts(config or {}, t.dyads.get_column("dyad_id").to_list(), results_dir)
    common = dict(
        study=study,
        outcome=outcome,
        alliance=alliance,
        registry=registry,
        provenance=provenance,
        microprocess=micro,
        max_note_chars=max_note_chars,
    )
    clin = clinician.contexts(
        t,
        t.feedback,
        study=study,
        outcome=outcome,
        alliance=alliance,
        registry=registry,
        report_cfg=report_cfg,
        prompts=clinician.load_prompts(prompts_path),
        microprocess=micro,
        max_note_chars=max_note_chars,
    )
    for c in clin:
        c["kind"] = "clinician"
    main = clin if audience == "clinician" else dyad_report.shard_contexts(t, audience=audience, **common)
    state_path = Path(shard_dir) / STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    env = render.template_env()
    template = env.get_template("dyad.html.j2")
    fetcher = render.make_fetcher()
    reports_dir = Path(results_dir) / "reports"
    out, new_state, rendered = [], {}, 0
    for ctx, cctx in zip(main, clin, strict=False):
        d, therapist = ctx["dyad"]["dyad_id"], ctx["dyad"]["therapist_id"]
        if cctx is not ctx:
            ctx["provenance"] = {**ctx["provenance"], "build_date": str(ctx["epoch_date"] or "—")}
            ctx["selection_configured"] = bool(strategies)
        path = reports_dir / "dyads" / f"{d}.pdf"
        bundle = reports_dir / "by_therapist" / str(therapist) / f"{d}.pdf"
        old = state.get(d, {})
        if old.get("fingerprint") == ctx["fingerprint"] and path.exists():
            sha = old["sha256"]
        else:
            sha = _render_one(template, ctx, path, fetcher)
            rendered += 1
        if cctx is ctx:
            if not (old.get("bundle_fingerprint") == ctx["fingerprint"] and bundle.exists()):
                atomic.write_bytes_if_changed(bundle, path.read_bytes())
            bsha = sha
        elif old.get("bundle_fingerprint") == cctx["fingerprint"] and bundle.exists():
            bsha = old["bundle_sha256"]
        else:
            bsha = _render_one(template, cctx, bundle, fetcher)
            rendered += 1
        new_state[d] = {
            "fingerprint": ctx["fingerprint"],
            "sha256": sha,
            "bundle_fingerprint": cctx["fingerprint"],
            "bundle_sha256": bsha,
        }
        shown = Path(Path(results_dir).name)  # "results/reports/...", wherever the run directory is
        out.append(
            {
                "dyad_id": d,
                "therapist_id": therapist,
                "path": (shown / path.relative_to(results_dir)).as_posix(),
                "sha256": sha,
                "bundle_path": (shown / bundle.relative_to(results_dir)).as_posix(),
                "bundle_sha256": bsha,
            }
        )
    atomic.write_bytes_if_changed(state_path, atomic.json_bytes(new_state))
    atomic.write_json(out_manifest, {"reports": out})
    if fetcher.refused:
        log.warning("refused to fetch %d URL(s) while rendering: %s", len(fetcher.refused), fetcher.refused[:5])
    log.info("%d dyads; %d PDF(s) rendered, the others unchanged", len(out), rendered)
    return out


def index(manifests: list[str], reports_dir: str, out_index: str) -> pl.DataFrame:
    """results/reports/index.csv, and removal of reports of dyads that are gone.

    ``kind`` says what a row lists: ``dyad`` (a dyad's report and its therapist-bundle copy)
    or ``caseload`` (a therapist's caseload page, ``by_therapist/<T>/_caseload.pdf``, in
    ``bundle_path``; no dyad, no ``path``), listed after the dyads."""
    rows = []
    for path in manifests:
        rows.extend(json.loads(Path(path).read_text(encoding="utf-8"))["reports"])
    schema = {
        "dyad_id": pl.String,
        "therapist_id": pl.String,
        "path": pl.String,
        "sha256": pl.String,
        "bundle_path": pl.String,
        "bundle_sha256": pl.String,
    }
    table = (
        pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)
        .with_columns(
            pl.when(pl.col("dyad_id").is_null()).then(pl.lit("caseload")).otherwise(pl.lit("dyad")).alias("kind")
        )
        .sort(["kind", "dyad_id", "therapist_id"], descending=[True, False, False], nulls_last=True)
    )
    listed = table.get_column("path").drop_nulls().to_list() + table.get_column("bundle_path").drop_nulls().to_list()
    keep = {p.split("/reports/", 1)[1] for p in listed}  # relative to the reports folder
    root = Path(reports_dir)
    for pdf in [*root.glob("dyads/*.pdf"), *root.glob("by_therapist/*/*.pdf")]:
        if pdf.relative_to(root).as_posix() not in keep:  # the dyad left the data (or changed therapist)
            pdf.unlink()
    for folder in root.glob("by_therapist/*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    atomic.write_bytes_if_changed(out_index, atomic.csv_bytes(table))
    return table
