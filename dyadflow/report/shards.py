"""Sharded rendering of the dyad reports.

Every stage reads the files its rule names and writes only its declared outputs
(docs/reports.md, "Incremental rendering"):

* ``report_plan`` (a Snakemake checkpoint) assigns each dyad to a shard by a stable
  FNV-1a hash of its ID, with ``ceil(n_dyads / report.dyads_per_shard)`` shards, and writes
  each shard's input tables into its declared directory (``<tables>/<k>/<table>.parquet``),
  deterministically: a shard whose dyads did not change gets the same bytes, and Snakemake
  (which compares the checksum recorded at a job's last run) does not run it again.
* ``report_shard`` renders the dyads of one shard into its declared directory
  (``<pdf>/dyads/<D>.pdf`` and ``<pdf>/by_therapist/<T>/<D>.pdf``) and lists them in its
  manifest.
* ``report_index`` publishes them: it fills its declared directories (``dyads/``,
  ``by_therapist/``) with hard links to the shards' PDFs and the caseload pages (a copy
  where a link cannot be made) and writes ``index.csv``. A dyad that left the data is
  simply not published again.
"""

from __future__ import annotations

import io as pyio
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from dyadflow import __version__
from dyadflow.core import atomic
from dyadflow.core.contract import conform, dtypes, read_table
from dyadflow.core.naming import SHARD_TABLES
from dyadflow.report import clinician, render
from dyadflow.report import dyad as dyad_report
from dyadflow.report.contract import ReportIndexModel
from dyadflow.report.tables import CONTRACTS, ReportTables, read_report_tables, with_selection_columns

log = logging.getLogger(__name__)


def n_shards_for(n_dyads: int, dyads_per_shard: int) -> int:
    return max(1, math.ceil(n_dyads / max(1, dyads_per_shard)))


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = pyio.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=False)
    return buf.getvalue()


def plan(
    files: Mapping[str, str | None],
    selections: Mapping[str, str],
    dyads_per_shard: int,
    out_plan: str,
    out_tables: str,
) -> dict:
    """Write each shard's input tables (``out_tables/<k>/<table>.parquet``) and the plan: which shards exist."""
    t = read_report_tables(files, selections)
    n = n_shards_for(t.dyads.height, dyads_per_shard)
    assign = t.dyads.select("dyad_id").with_columns(render.shard_of(t.dyads.get_column("dyad_id"), n).alias("shard"))
    root = Path(out_tables)
    written = 0
    for name in SHARD_TABLES:
        frame = getattr(t, name).join(assign, on="dyad_id", how="inner")
        parts = {k[0]: p.drop("shard") for k, p in frame.group_by("shard")} if frame.height else {}
        empty = frame.drop("shard").clear()
        for k in range(n):  # one file per shard and table, also when empty
            part = parts.get(k, empty).sort(pl.all())
            written += atomic.write_bytes_if_changed(root / str(k) / f"{name}.parquet", parquet_bytes(part))
    if root.is_dir():  # shards beyond the new count (Snakemake empties the folder first; a direct call may not)
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


def read_shard(tables: Mapping[str, str]) -> ReportTables:
    """A shard's tables, from the files the plan wrote (one path per name of ``SHARD_TABLES``)."""
    frames = {k: read_table(tables[k], model) for k, model in CONTRACTS.items()}
    sel = tables.get("selection")
    selection = with_selection_columns(
        pl.read_parquet(sel) if sel and Path(sel).exists() else pl.DataFrame(schema={"strategy": pl.String})
    )
    return ReportTables(selection=selection, **frames)


def microprocess_contexts(config: dict, dyad_ids: list[str], files: Mapping[str, str | None] | None) -> dict | None:
    """The microprocess page's context per dyad, when the study configures ``microprocess``
    (``files``: the microprocess stage's ``sessions``, ``segments`` and ``series``);
    otherwise None (the page is left out)."""
    if not config.get("microprocess"):
        return None
    from dyadflow.microprocess.report import dyad_context

    contexts = dyad_context(dyad_ids, files)
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
    tables: Mapping[str, str],
    out_manifest: str,
    out_pdf: str,
    *,
    study: str,
    audience: str,
    outcome: str,
    alliance: dict[str, str],
    config_sha256: str,
    microprocess: Mapping[str, str | None] | None = None,
    registry: dict | None = None,
    config: dict | None = None,
    strategies: list[str] = (),
    max_note_chars: int = dyad_report.MAX_NOTE_CHARS,
    report_cfg: dict | None = None,
    prompts_path: str | None = None,
) -> list[dict]:
    """Render the research (or configured audience) report and the clinician bundle copy of every dyad in a shard.

    ``tables`` are the shard's tables (:func:`plan`); the PDFs go into ``out_pdf``
    (``dyads/<D>.pdf``, ``by_therapist/<T>/<D>.pdf``) and are listed in ``out_manifest``.
    The clinician copy (:mod:`dyadflow.report.clinician`) follows ``report_cfg`` (``language``,
    ``clinician.patient_ratings``, ``clinician.languages``) and the study's prompt catalogue
    ``prompts_path`` (``feedback.prompts``). ``registry``: the study's instruments
    (:class:`dyadflow.core.study.Study`, resolved once per job); the built-in ones when not given."""
    from dyadflow.core.registry import load_registry

    t = read_shard(tables)
    registry = registry if registry is not None else load_registry()
    provenance = {
        "version": __version__,
        "config": config_sha256[:8] if config_sha256 else None,
        "templates": render.templates_fingerprint()[:8],
    }
    micro = microprocess_contexts(config or {}, t.dyads.get_column("dyad_id").to_list(), microprocess)
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
    env = render.template_env()
    template = env.get_template("dyad.html.j2")
    fetcher = render.make_fetcher()
    root = Path(out_pdf)
    out = []
    for ctx, cctx in zip(main, clin, strict=False):
        d, therapist = ctx["dyad"]["dyad_id"], ctx["dyad"]["therapist_id"]
        if cctx is not ctx:
            ctx["provenance"] = {**ctx["provenance"], "build_date": str(ctx["epoch_date"] or "—")}
            ctx["selection_configured"] = bool(strategies)
        path = root / "dyads" / f"{d}.pdf"
        bundle = root / "by_therapist" / str(therapist) / f"{d}.pdf"
        sha = _render_one(template, ctx, path, fetcher)
        if cctx is ctx:  # the clinician audience: the bundle copy is the same report
            atomic.write_bytes_if_changed(bundle, path.read_bytes())
            bsha = sha
        else:
            bsha = _render_one(template, cctx, bundle, fetcher)
        out.append(
            {
                "dyad_id": d,
                "therapist_id": therapist,
                "path": path.as_posix(),
                "sha256": sha,
                "bundle_path": bundle.as_posix(),
                "bundle_sha256": bsha,
            }
        )
    atomic.write_json(out_manifest, {"reports": out})
    if fetcher.refused:
        log.warning("refused to fetch %d URL(s) while rendering: %s", len(fetcher.refused), fetcher.refused[:5])
    log.info("%d dyads rendered", len(out))
    return out


def publish(src: str | Path, dest: Path) -> None:
    """``dest`` as a hard link to ``src`` (no second copy on disk), or a copy where the
    file system cannot link (another device, no hard links)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def index(manifests: list[str], out_index: str, out_dyads: str, out_by_therapist: str) -> pl.DataFrame:
    """Publish the reports and write results/reports/index.csv.

    ``manifests`` are the shards' manifests and the caseload manifest; each PDF they list is
    published into this rule's own folders: a dyad's report as ``out_dyads/<D>.pdf``, its
    bundle copy and the caseload pages as ``out_by_therapist/<T>/<file>``. ``kind`` says
    what a row lists: ``dyad`` (a dyad's report and its therapist-bundle copy) or
    ``caseload`` (a therapist's caseload page, ``by_therapist/<T>/_caseload.pdf``, in
    ``bundle_path``; no dyad, no ``path``), listed after the dyads. The folders are filled
    from scratch (Snakemake empties them before the job), so a dyad that left the data (or
    changed therapist) has no report any more."""
    rows = []
    for path in manifests:
        rows.extend(json.loads(Path(path).read_text(encoding="utf-8"))["reports"])
    for folder in (out_dyads, out_by_therapist):
        if Path(folder).exists():
            shutil.rmtree(folder)
        Path(folder).mkdir(parents=True)
    for r in rows:
        if r.get("path"):
            dest = f"{out_dyads}/{Path(r['path']).name}"
            publish(r["path"], Path(dest))
            r["path"] = dest
        dest = f"{out_by_therapist}/{r['therapist_id']}/{Path(r['bundle_path']).name}"
        publish(r["bundle_path"], Path(dest))
        r["bundle_path"] = dest
    schema = {c: t for c, t in dtypes(ReportIndexModel).items() if c != "kind"}
    table = (
        pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)
        .with_columns(
            pl.when(pl.col("dyad_id").is_null()).then(pl.lit("caseload")).otherwise(pl.lit("dyad")).alias("kind")
        )
        .sort(["kind", "dyad_id", "therapist_id"], descending=[True, False, False], nulls_last=True)
    )
    table = conform(table, ReportIndexModel, name=out_index)
    atomic.write_bytes_if_changed(out_index, atomic.csv_bytes(table))
    return table
