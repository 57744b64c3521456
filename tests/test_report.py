"""PDF reports: the figures in the text, safe rendering, identical bytes on re-render."""

from __future__ import annotations

import datetime as dt
import io as pyio

import polars as pl
import pytest
from pypdf import PdfReader

from dyadflow import report


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(pyio.BytesIO(data)).pages)


def test_stable_hash_is_fnv1a():
    # FNV-1a 64 test vectors
    h = report.stable_hash(pl.Series(["", "a", "foobar"]))
    assert [int(x) for x in h] == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]
    shards = report.shard_of(pl.Series(["D001", "D002", "D003", "D004"]), 4)
    assert shards.to_list() == [int(x) % 4 for x in report.stable_hash(pl.Series(["D001", "D002", "D003", "D004"]))]


def _rows():
    return [
        {"session": 0, "date": dt.date(2024, 1, 1), "instrument": "bdi_ii", "rater": "patient", "score": 31.0, "prorated": False,
         "n_answered": 21, "n_items": 21, "band": "severe", "risk_flag": True, "risk_items": "item 9 = 1"},
        {"session": 1, "date": dt.date(2024, 1, 8), "instrument": "wai_sr", "rater": "patient", "score": 3.75, "prorated": True,
         "n_answered": 11, "n_items": 12, "band": None, "risk_flag": None, "risk_items": None},
    ]


def _dyad():
    return {"dyad_id": "D042", "patient_id": "P042", "therapist_id": "T03", "arm": "CBT", "n_sessions": 1,
            "first_session": 1, "last_session": 1, "outcome_pre": 31.0, "outcome_post": 24.0}


def test_dyad_report_shows_the_figures():
    html = report.template_env().get_template("dyad.html.j2").render(**report.dyad_context("Trial <X>", _dyad(), _rows()))
    assert "Trial &lt;X&gt;" in html  # autoescaped
    text = pdf_text(report.render_pdf(html, report.epoch_of(dt.date(2024, 1, 8))))
    for expected in ("Case report: dyad D042", "P042", "T03", "CBT", "2024-01-01 to 2024-01-08", "31 → 24",
                     "3.75*", "11/12", "severe", "item 9 = 1", "CONFIDENTIAL", "Page 1 of 1"):
        assert expected in text, expected


def test_rendering_is_byte_identical_and_fetches_nothing_outside_assets():
    rows = _rows()
    rows[1]["risk_items"] = None
    ctx = report.dyad_context("Trial", _dyad(), rows)
    html = report.template_env().get_template("dyad.html.j2").render(**ctx)
    html = html.replace("</body>", '<img src="file:///etc/passwd"><img src="http://example.invalid/x.png"></body>')
    fetcher = report.make_fetcher()
    a = report.render_pdf(html, 1704672000, fetcher)
    b = report.render_pdf(html, 1704672000, report.make_fetcher())
    assert a == b
    assert fetcher.refused == ["file:///etc/passwd", "http://example.invalid/x.png"]
    assert report.render_pdf(html, 1704758400) != a  # the date is part of the document


def test_strict_undefined_catches_template_mistakes():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        report.template_env().from_string("{{ nope }}").render()
