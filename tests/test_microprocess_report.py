"""The case report's microprocess page: the context, the chart and the partial alone, as PDF."""

from __future__ import annotations

import shutil
import subprocess

import jinja2
import pytest
from conftest import REPO
from pypdf import PdfReader
from report_inputs import MICROPROCESS, paths_at

from dyadflow.microprocess import pipeline
from dyadflow.microprocess.report import DPI, dyad_context

TEMPLATES = REPO / "dyadflow" / "report" / "templates"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("mp")
    out = {
        k: str(root / "microprocess" / f"{k}.csv") for k in ("sessions", "segments", "gaps", "rejections", "accounting")
    }
    out["series"] = str(root / "microprocess" / "series.parquet")
    spec = {
        "path": str(REPO / "data" / "demo" / "dial"),
        "layout": "per_file",
        "time_column": "Time (s)",
        "rating_column": "Rating",
    }
    pipeline.run([spec], {}, out)
    return root


def test_context_has_every_session_with_stats_segments_clips_and_chart(results):
    ctx = dyad_context(["D001", "D003", "D077"], paths_at(results, MICROPROCESS))
    assert set(ctx) == {"D001", "D003", "D077"}
    assert ctx["D077"] == {"dyad_id": "D077", "available": False, "sessions": []}
    d1 = ctx["D001"]
    assert [s["session"] for s in d1["sessions"]] == [3, 9]
    s3 = d1["sessions"][0]
    assert s3["seconds_aligned"] == 2980 and s3["note"] is None
    assert s3["text"]["congruence_r"] == f"{s3['congruence_r']:.2f}"
    assert {(g["rater"], g["kind"]) for g in s3["segments"]} == {
        (r, k) for r in ("patient", "therapist") for k in ("rupture", "repair", "peak")
    }
    starts = [int(c["clip"][:2]) * 60 + int(c["clip"][3:5]) for c in s3["clips"]]
    assert starts == sorted(starts) and len(s3["clips"]) == len(s3["segments"])
    png = s3["chart_png"]
    assert png.startswith(b"\x89PNG") and s3["chart_uri"].startswith("data:image/png;base64,")
    # 7 × 3 inches at DPI
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (7 * DPI, 3 * DPI) and DPI >= 200
    assert (
        dyad_context(["D001"], paths_at(results, MICROPROCESS))["D001"]["sessions"][0]["chart_png"] == png
    )  # reproducible
    single = ctx["D003"]["sessions"][0]
    assert single["text"]["congruence_r"] == "—" and "only the patient" in single["note"]


def test_context_without_microprocess_results(tmp_path):
    assert dyad_context(["D001"], paths_at(tmp_path, MICROPROCESS)) == {
        "D001": {"dyad_id": "D001", "available": False, "sessions": []}
    }


def render(microprocess: dict) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    wrapper = env.from_string(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>@page { size: A4; margin: 15mm } '
        "body { font-family: 'DejaVu Sans'; font-size: 9pt } table { border-collapse: collapse } "
        "td, th { border: 0.5pt solid #999; padding: 1pt 4pt; text-align: left }</style></head>"
        '<body>{% include "partials/microprocess.html.j2" %}</body></html>'
    )
    return wrapper.render(microprocess=microprocess)


def test_partial_says_how_each_segment_was_found(results):
    entry = dyad_context(["D003"], paths_at(results, MICROPROCESS))["D003"]
    html = render(entry)
    assert "replacing the visual selection of the three lowest segments from a graph in Trusty (2023)" in html
    assert "<th>found by</th>" in html and "<td>algorithm</td>" in html
    entry["sessions"][0]["segments"][0]["source"] = "manual"
    assert "<td>manual</td>" in render(entry)


def test_partial_escapes_text(results):
    entry = dyad_context(["D003"], paths_at(results, MICROPROCESS))["D003"]
    entry["sessions"][0]["note"] = "<b>bold</b> & more"
    html = render(entry)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html and "<b>bold" not in html


def test_partial_renders_to_pdf(results, tmp_path):
    weasyprint = pytest.importorskip("weasyprint")
    entry = dyad_context(["D001"], paths_at(results, MICROPROCESS))["D001"]
    html = render(entry)
    pdf = tmp_path / "mp.pdf"

    from weasyprint.urls import URLFetcher

    class DataOnly(URLFetcher):  # the page needs nothing but its data: URIs
        def __init__(self):
            super().__init__(allowed_protocols=("data",))
            self.fetched = []

        def fetch(self, url, headers=None):
            self.fetched.append(url[:22])
            return super().fetch(url, headers)

    fetcher = DataOnly()
    weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf(pdf)
    assert fetcher.fetched == ["data:image/png;base64,"] * 2
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Moment-to-moment alliance ratings" in text and "Session 3" in text and "Session 9" in text
    for g in entry["sessions"][0]["segments"]:
        assert g["clip"] in text
    images = sum(len(page.images) for page in PdfReader(pdf).pages)
    assert images >= 2  # each chart (pypdf may list its alpha mask too)
    if shutil.which("pdftoppm"):  # a preview for a person to look at (kept in the test's tmp dir)
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True)
        assert list(tmp_path.glob("page*.png"))
