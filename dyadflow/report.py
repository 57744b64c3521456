"""Report: PDF case reports from Jinja2 templates, rendered with WeasyPrint.

Rendering is safe and reproducible:

* Jinja2 autoescapes everything and fails on undefined names (StrictUndefined), so a
  note holding HTML renders as text.
* WeasyPrint fetches nothing but the files under ``reports/assets`` and ``data:`` URLs;
  every other URL (http, https, file paths elsewhere) is refused.
* ``SOURCE_DATE_EPOCH`` and the PDF dates come from the dyad's own data (its last
  questionnaire date), so the same inputs give the same bytes.

Dyads are rendered in shards: dyad ``d`` belongs to shard ``hash(d) mod n_shards``, so
10,000 dyads are a handful of jobs, and a new dyad does not move the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import mimetypes
import os
from pathlib import Path

import jinja2
import numpy as np
import polars as pl

from dyadflow import __version__, io
from dyadflow import manifest as run_manifest

REPORTS_DIR = Path(__file__).resolve().parent.parent / "reports"
TEMPLATES = REPORTS_DIR / "templates"
ASSETS = REPORTS_DIR / "assets"

log = logging.getLogger(__name__)


def _weasyprint():
    import weasyprint  # imported late: it loads Pango, which the other stages never need

    return weasyprint


def make_fetcher(assets: Path = ASSETS):
    """A WeasyPrint URL fetcher that serves only ``assets`` and ``data:`` URLs."""
    from urllib.parse import unquote, urlparse

    weasyprint = _weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = assets.resolve()

    class AssetFetcher(URLFetcher):
        refused: list[str]

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data", "file"))
            self.refused = []

        def fetch(self, url, headers=None):
            if url.startswith("data:"):
                return super().fetch(url, headers)
            parsed = urlparse(url)
            if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
                path = Path(unquote(parsed.path)).resolve()
                if path.is_relative_to(root) and path.is_file():
                    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})
            self.refused.append(url)
            raise ValueError(f"dyadflow reports fetch only their own assets; refused {url}")

    del weasyprint
    return AssetFetcher()


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_number
    return env


def _fmt_number(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if value.is_integer():
            return f"{value:.0f}"
        return f"{value:.{digits}f}"
    return str(value)


@contextlib.contextmanager
def _source_date_epoch(epoch: int):
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def render_pdf(html: str, epoch: int, fetcher=None) -> bytes:
    """Render ``html`` to PDF bytes, reproducibly for a given ``epoch``."""
    weasyprint = _weasyprint()
    fetcher = fetcher or make_fetcher()
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with _source_date_epoch(epoch):
        doc = weasyprint.HTML(string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=fetcher).render()
        doc.metadata.created = stamp
        doc.metadata.modified = stamp
        return doc.write_pdf()


def epoch_of(day: dt.date | None) -> int:
    if day is None:
        return 0
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def stable_hash(ids: pl.Series) -> np.ndarray:
    """64-bit FNV-1a hash of each string, stable across machines and library versions.

    Vectorised over the strings; the loop runs over character positions (at most 64
    for an ID), never over dyads.
    """
    raw = np.array(ids.to_list(), dtype="S")
    width = raw.dtype.itemsize
    codes = raw.view(np.uint8).reshape(raw.size, width) if raw.size else np.zeros((0, width), np.uint8)
    lengths = np.char.str_len(raw)
    h = np.full(raw.size, 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for pos in range(width):
            live = lengths > pos
            h = np.where(live, (h ^ codes[:, pos].astype(np.uint64)) * prime, h)
    return h


def shard_of(dyad_ids: pl.Series, n_shards: int) -> pl.Series:
    """The report shard of each dyad: a stable hash of its ID, modulo the shard count."""
    return pl.Series(dyad_ids.name, (stable_hash(dyad_ids) % np.uint64(n_shards)).astype(np.int32))


def dyad_context(study: str, dyad: dict, rows: list[dict], provenance: dict | None = None) -> dict:
    """Template variables of a dyad report; ``provenance`` is the run's manifest (results/manifest.json)."""
    dates = [r["date"] for r in rows if r["date"] is not None]
    return {
        "study": study,
        "dyad": dyad,
        "rows": rows,
        "period": (min(dates), max(dates)) if dates else None,
        "version": __version__,
        "provenance": run_manifest.summary(provenance),
    }


def render_shard(
    scores_path: str,
    dyads_path: str,
    study: str,
    shard: int,
    n_shards: int,
    out_dir: str,
    out_manifest: str,
    provenance_path: str | None = None,
) -> list[dict]:
    provenance = run_manifest.load(provenance_path) if provenance_path else None
    dyads = pl.read_parquet(dyads_path)
    dyads = dyads.filter(shard_of(dyads.get_column("dyad_id"), n_shards) == shard)
    scores = pl.read_parquet(scores_path).join(dyads.select("dyad_id"), on="dyad_id", how="semi")
    env = template_env()
    template = env.get_template("dyad.html.j2")
    fetcher = make_fetcher()
    groups = {key[0]: frame for key, frame in scores.sort("session", "instrument", "rater").group_by("dyad_id")}
    manifest = []
    for dyad in dyads.sort("dyad_id").iter_rows(named=True):
        rows = groups[dyad["dyad_id"]].to_dicts()
        ctx = dyad_context(study, dyad, rows, provenance)
        html = template.render(**ctx)
        last = max((r["date"] for r in rows if r["date"] is not None), default=None)
        pdf = render_pdf(html, epoch_of(last), fetcher)
        path = Path(out_dir) / f"{dyad['dyad_id']}.pdf"
        io.write_bytes_if_changed(path, pdf)
        manifest.append({"dyad_id": dyad["dyad_id"], "path": str(path), "sha256": _sha(pdf)})
    io.write_json(out_manifest, {"shard": shard, "n_shards": n_shards, "reports": manifest})
    if fetcher.refused:
        log.warning("refused to fetch %d URL(s) while rendering: %s", len(fetcher.refused), fetcher.refused[:5])
    return manifest


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
