"""p-values, the missing-value dash and matplotlib's set-up live once (issue 16, point 6)."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from dyadflow.core.formatting import DASH, fmt_p, p_clause


@pytest.mark.parametrize(
    ("value", "text", "clause"),
    [
        (0.001, ".001", "p = .001"),  # exactly at the boundary: printed
        (0.0009999, "< .001", "p < .001"),  # just below it (rounds to .001, but is below)
        (0.0010001, ".001", "p = .001"),
        (0.05, ".050", "p = .050"),
        (0.0499, ".050", "p = .050"),
        (0.0501, ".050", "p = .050"),
        (0.5, ".500", "p = .500"),
        (1.0, "1.000", "p = 1.000"),
        (None, DASH, f"p = {DASH}"),
        (float("nan"), DASH, f"p = {DASH}"),
    ],
)
def test_fmt_p_and_the_p_clause(value, text, clause):
    assert fmt_p(value) == text
    assert p_clause(value) == clause


def test_one_dash_and_never_p_equals_less_than():
    assert DASH == "—"
    from dyadflow.microprocess.report import _fmt
    from dyadflow.report import render

    assert _fmt(None) == DASH and render.fmt_number(None) == DASH
    assert render.template_env().filters["p"] is fmt_p
    template = (REPO / "dyadflow" / "report" / "templates" / "partials" / "microprocess.html.j2").read_text(
        encoding="utf-8"
    )
    assert "p = {{ s.text.congruence_p }}" not in template


def test_matplotlib_data_uri_and_fmt_p_are_defined_once():
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO / "dyadflow").rglob("*.py")}
    for pattern in (r"matplotlib\.use\(", r"^def data_uri\(", r"^def fmt_p\(", r"^def _fmt_p\("):
        where = sorted(str(p.relative_to(REPO)) for p, text in sources.items() if re.search(pattern, text, re.M))
        assert len(where) <= 1, (pattern, where)
    assert [str(p.relative_to(REPO)) for p, t in sources.items() if re.search(r"matplotlib\.use\(", t)] == [
        "dyadflow/core/plotting.py"
    ]
