"""matplotlib, set up in one place for every chart dyadflow draws (the case reports'
charts, the moment-to-moment page and the charts of Snakemake's report), and charts as
``data:`` URIs for the PDFs (WeasyPrint fetches nothing). matplotlib is imported only
when a chart is drawn."""

from __future__ import annotations

import base64


def pyplot(rc: dict | None = None):
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display, reproducible
    bytes), with ``rc`` applied to its settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if rc:
        plt.rcParams.update(rc)
    return plt


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
