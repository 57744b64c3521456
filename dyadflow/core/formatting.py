"""Numbers as the reports print them, in one place for every page of a PDF: the dash of a
missing value and p-values (APA style: no leading zero, three decimals, "< .001" below
.001). Standard library only."""

from __future__ import annotations

import math

DASH = "—"  # a missing value, on every page


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_p(value) -> str:
    """``.032``, ``.001``, ``< .001`` (below .001), or the dash when there is none."""
    if _missing(value):
        return DASH
    return "< .001" if value < 0.001 else f"{value:.3f}".lstrip("0")


def p_clause(value) -> str:
    """The p-value as a clause: ``p = .032``, ``p < .001`` (never "p = < .001"), ``p = —``."""
    text = fmt_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"
