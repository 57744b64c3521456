"""Safe, reproducible HTML → PDF rendering (Jinja2 + WeasyPrint).

* Jinja2 autoescapes everything and fails on undefined names (StrictUndefined), so a
  note holding HTML, CSS or a URL renders as text.
* WeasyPrint fetches nothing but files under ``dyadflow/report/assets`` and ``data:`` URLs;
  every other URL (http, https, file paths elsewhere) is refused and logged.
* ``SOURCE_DATE_EPOCH`` and the PDF dates come from the inputs (the latest date in
  the data shown), so the same inputs give the same bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import mimetypes
import os
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.core.formatting import DASH, fmt_p
from dyadflow.core.hashing import stable_hash  # noqa: F401 (re-exported: report.stable_hash)

# package data (dyadflow/report/templates, dyadflow/report/assets), found with importlib.resources
REPORTS_DIR = Path(str(resources.files("dyadflow.report")))
TEMPLATES = REPORTS_DIR / "templates"
ASSETS = REPORTS_DIR / "assets"

log = logging.getLogger(__name__)


def _weasyprint():
    import weasyprint  # imported late: it loads Pango, which the other stages never need

    return weasyprint


def make_fetcher(assets: Path = ASSETS):
    """A WeasyPrint URL fetcher that serves only ``assets`` and ``data:`` URLs.

    Every refused URL is kept in ``fetcher.refused`` and logged as a warning; every
    URL asked for is kept in ``fetcher.requested``.
    """
    from urllib.parse import unquote, urlparse

    _weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = assets.resolve()

    class AssetFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data", "file"))
            self.refused: list[str] = []
            self.requested: list[str] = []

        def fetch(self, url, headers=None):
            self.requested.append(url)
            if url.startswith("data:"):
                return super().fetch(url, headers)
            parsed = urlparse(url)
            if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
                path = Path(unquote(parsed.path)).resolve()
                if path.is_relative_to(root) and path.is_file():
                    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})
            self.refused.append(url)
            log.warning(
                "report rendering refused to fetch %s (only dyadflow/report/assets and data: URLs are served)",
                url[:200],
            )
            raise ValueError(f"dyadflow reports fetch only their own assets; refused {url}")

    return AssetFetcher()


def fmt_number(value, digits: int = 1) -> str:
    """How every number appears in a report: fixed ``digits`` decimals, ``—`` when missing."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return DASH
        return f"{value:.{digits}f}".replace("-", "\u2212")  # a true minus sign
    return str(value).replace("-", "\u2212") if isinstance(value, int) else str(value)


def fmt_signed(value, digits: int = 1) -> str:
    text = fmt_number(value, digits)
    if text != DASH and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return "+" + text
    return text


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["signed"] = fmt_signed
    env.filters["p"] = fmt_p
    return env


def templates_fingerprint() -> str:
    """sha256 over the templates, assets, message catalogues and the report code (dyadflow/report/*.py): a
    change in any of them renders every report again."""
    h = hashlib.sha256()
    code = sorted(Path(__file__).resolve().parent.glob("*.py"))
    catalogues = (REPORTS_DIR / "locale").rglob("*.po")
    for path in [*sorted([*TEMPLATES.rglob("*"), *ASSETS.rglob("*"), *catalogues]), *code]:
        if path.is_file():
            h.update(path.name.encode() if path in code else path.relative_to(REPORTS_DIR).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def source_date_epoch(epoch: int):
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


_FONT_CONFIG: list = []


def font_config():
    """One WeasyPrint font configuration per process. WeasyPrint makes a new one for every
    document unless given one: fontconfig loads its configuration and font list again and
    Pango starts with an empty font cache each time. The PDF's fonts are named by a hash
    of their data, so sharing it changes no byte."""
    if not _FONT_CONFIG:
        from weasyprint.text.fonts import FontConfiguration

        _FONT_CONFIG.append(FontConfiguration())
    return _FONT_CONFIG[0]


_STYLESHEETS: dict[str, object] = {}
# how the templates link a stylesheet of dyadflow/report/assets (base.html.j2, clinician_head.html.j2)
LINK = '<link rel="stylesheet" href="{}">'


def _parsed_stylesheets(html: str) -> tuple[str, list]:
    """``html`` without the links to the report's own stylesheets, and those stylesheets
    parsed once per process. WeasyPrint parses a linked stylesheet again for every
    document (tens of milliseconds for report.css); a parsed one is given to it as a user
    stylesheet instead, which the cascade ranks the same here (above the user agent's
    rules; the reports have no other author styles). User text cannot hold the link:
    Jinja2 escapes its ``<``."""
    linked = sorted((html.find(LINK.format(a.name)), a.name) for a in ASSETS.glob("*.css"))
    names = [name for at, name in linked if at >= 0]  # in the order the HTML links them
    for name in names:
        html = html.replace(LINK.format(name), "", 1)
        if name not in _STYLESHEETS:
            _STYLESHEETS[name] = _weasyprint().CSS(
                string=(ASSETS / name).read_text(encoding="utf-8"),
                base_url=ASSETS.as_uri() + "/",
                font_config=font_config(),
            )
    return html, [_STYLESHEETS[name] for name in names]


def render_pdf(html: str, epoch: int, fetcher=None) -> bytes:
    """Render ``html`` to PDF bytes, reproducibly for a given ``epoch``."""
    weasyprint = _weasyprint()
    fetcher = fetcher or make_fetcher()
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    html, sheets = _parsed_stylesheets(html)
    with source_date_epoch(epoch):
        doc = weasyprint.HTML(string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=fetcher).render(
            stylesheets=sheets, font_config=font_config()
        )
        doc.metadata.created = stamp
        doc.metadata.modified = stamp
        return doc.write_pdf()


def write_pdf(path: str | os.PathLike[str], html: str, epoch: int, fetcher=None) -> bool:
    """Render and write atomically, only when the bytes differ. Returns True if written."""
    return atomic.write_bytes_if_changed(path, render_pdf(html, epoch, fetcher))


def epoch_of(day: dt.date | None) -> int:
    """Seconds since 1970 of midnight UTC of ``day`` (0 when there is no date)."""
    if day is None:
        return 0
    if isinstance(day, dt.datetime):
        day = day.date()
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def shard_of(dyad_ids: pl.Series, n_shards: int) -> pl.Series:
    """The report shard of each dyad: a stable hash of its ID, modulo the shard count."""
    return pl.Series(dyad_ids.name, (stable_hash(dyad_ids) % np.uint64(n_shards)).astype(np.int32))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
