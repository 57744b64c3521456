"""What a dyad's case report needs for its moment-to-moment page.

:func:`dyad_context` reads the microprocess stage's ``sessions.csv``, ``segments.csv`` and
``series.parquet`` (the report rule's declared inputs, passed by name) and returns, per dyad, a plain dict for the Jinja2 partial
``dyadflow/report/templates/partials/microprocess.html.j2`` (which renders the variable
``microprocess``). Numbers come pre-formatted as text, so the partial needs no filters;
charts come as PNG bytes and as ``data:`` URIs (WeasyPrint fetches nothing).

The chart of a session shows both raters' smoothed series (patient: solid black line;
therapist: dashed grey line; the per-second ratings faintly behind) on −50 … +50,
with each segment marked by a marker and its rank: ruptures ▼ at the minimum (their
decline shaded), repairs ▲ where the repair starts, peaks ● at the peak. Markers are
filled for the patient and open for the therapist, so the chart reads in grayscale.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from dyadflow.core.contract import read_table
from dyadflow.core.formatting import DASH, p_clause
from dyadflow.core.plotting import data_uri, pyplot
from dyadflow.microprocess.congruence import MicroSessionsModel
from dyadflow.microprocess.segments import SegmentsModel

DPI = 200
RATER_STYLE = {
    "patient": {"color": "black", "linestyle": "-", "raw": "0.75", "face": "black", "label": "patient"},
    "therapist": {"color": "0.45", "linestyle": "--", "raw": "0.85", "face": "white", "label": "therapist"},
}
KIND_MARKER = {"rupture": "v", "repair": "^", "peak": "o"}
KIND_LABEL = {"rupture": "rupture", "repair": "repair", "peak": "peak (helpful moment)"}


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def _clip_start(clip: str) -> int:
    """The first second of a clip written ``mm:ss–mm:ss`` (clips are in order of this)."""
    minutes, seconds = clip.split("–", 1)[0].split(":")
    return int(minutes) * 60 + int(seconds)


def _mmss(s: int) -> str:
    return f"{s // 60:02d}:{s % 60:02d}"


def chart_png(session_series: pl.DataFrame, segments: list[dict], title: str, lo: float = -50, hi: float = 50) -> bytes:
    """A session's chart as PNG bytes (matplotlib, Agg, ``DPI`` dots per inch, reproducible)."""
    from matplotlib.lines import Line2D

    plt = pyplot()

    with plt.rc_context({"font.family": "DejaVu Sans", "font.size": 8, "svg.hashsalt": "dyadflow"}):
        fig, ax = plt.subplots(figsize=(7.0, 3.0))
        handles = []
        for rater, style in RATER_STYLE.items():
            part = session_series.filter(pl.col("rater") == rater)
            if not part.height:
                continue
            minutes = part.get_column("second").to_numpy() / 60.0
            raw = part.get_column("rating").fill_null(np.nan).to_numpy()
            smooth = part.get_column("smoothed").fill_null(np.nan).to_numpy()
            ax.plot(minutes, raw, color=style["raw"], linewidth=0.4, linestyle=style["linestyle"], zorder=1)
            ax.plot(minutes, smooth, color=style["color"], linewidth=1.3, linestyle=style["linestyle"], zorder=2)
            handles.append(
                Line2D(
                    [],
                    [],
                    color=style["color"],
                    linestyle=style["linestyle"],
                    linewidth=1.3,
                    label=f"{style['label']} (smoothed)",
                )
            )
            by_second = dict(zip(part.get_column("second").to_list(), smooth.tolist(), strict=False))
            for seg in (s for s in segments if s["rater"] == rater):
                at = seg["end_s"] if seg["kind"] != "repair" else seg["start_s"]
                y = by_second.get(at, seg["extreme_rating"])
                if seg["kind"] == "rupture":
                    ax.axvspan(
                        seg["start_s"] / 60.0, seg["end_s"] / 60.0, color="0.5", alpha=0.12, linewidth=0, zorder=0
                    )
                ax.plot(
                    [at / 60.0],
                    [y],
                    marker=KIND_MARKER[seg["kind"]],
                    markersize=6,
                    markerfacecolor=style["face"],
                    markeredgecolor="black",
                    markeredgewidth=0.9,
                    linestyle="none",
                    zorder=3,
                )
                ax.annotate(
                    str(seg["rank"]),
                    (at / 60.0, y),
                    xytext=(0, -11 if seg["kind"] == "rupture" else 6),
                    textcoords="offset points",
                    ha="center",
                    fontsize=6.5,
                    zorder=4,
                )
        for kind, marker in KIND_MARKER.items():
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=marker,
                    color="black",
                    markerfacecolor="0.6",
                    linestyle="none",
                    label=KIND_LABEL[kind],
                )
            )
        ax.axhline(0, color="0.6", linewidth=0.6, linestyle=":")
        ax.set_ylim(lo, hi)
        ax.set_xlim(left=0)
        ax.set_xlabel("minutes into the session")
        ax.set_ylabel("alliance (dial)")
        ax.set_title(title, fontsize=9)
        ax.legend(handles=handles, loc="lower left", fontsize=6.5, ncol=3, frameon=True, framealpha=0.9)
        ax.grid(axis="y", color="0.9", linewidth=0.5)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue()


def _empty(dyad_id: str) -> dict:
    return {"dyad_id": dyad_id, "available": False, "sessions": []}


def dyad_context(dyad_ids, files: Mapping[str, str | Path | None] | None, charts: bool = True) -> dict[str, dict]:
    """Per dyad: everything the microprocess page shows.

    ``{dyad_id: {"dyad_id", "available", "sessions": [{"session", "seconds_patient",
    "seconds_therapist", "seconds_aligned", "congruence_r", "congruence_p", "n_effective",
    "discrepancy_mean", "discrepancy_sd", "note", "text": {same keys as display text},
    "segments": [rows of segments.csv + "start", "end" as mm:ss], "clips": [{"rater",
    "kind", "rank", "clip"}], "chart_png": bytes, "chart_uri": "data:image/png;base64,…"}]}}``

    ``files`` names the microprocess stage's tables: ``sessions`` (sessions.csv), ``segments``
    (segments.csv) and ``series`` (series.parquet, for the charts). A dyad without dial data
    (or a run without the microprocess stage: no ``sessions`` file) gets ``available: False``
    and no sessions.
    """
    ids = [str(d) for d in dyad_ids]
    out = {d: _empty(d) for d in ids}
    files = files or {}
    sessions_path, segments_path, series_path = (files.get(k) for k in ("sessions", "segments", "series"))
    if not sessions_path or not Path(sessions_path).exists():
        return out
    wanted = pl.Series("dyad_id", ids, dtype=pl.String).implode()
    sessions = read_table(sessions_path, MicroSessionsModel).filter(pl.col("dyad_id").is_in(wanted))
    segments = read_table(segments_path, SegmentsModel).filter(pl.col("dyad_id").is_in(wanted))
    series = (
        pl.scan_parquet(series_path).filter(pl.col("dyad_id").is_in(wanted)).collect()
        if charts and series_path and Path(series_path).exists()
        else None
    )
    seg_by = {k: g for k, g in segments.sort("session", "rater", "kind", "rank").group_by("dyad_id", "session")}
    ser_by = (
        {k: g for k, g in series.sort("rater", "second").group_by("dyad_id", "session")} if series is not None else {}
    )
    kind_order = {"rupture": 0, "repair": 1, "peak": 2}
    rater_order = {"patient": 0, "therapist": 1}
    for row in sessions.sort("dyad_id", "session").iter_rows(named=True):  # one page section per session
        key = (row["dyad_id"], row["session"])
        segs = seg_by.get(key)
        seg_rows = (
            sorted(segs.to_dicts(), key=lambda s: (rater_order.get(s["rater"], 9), kind_order[s["kind"]], s["rank"]))
            if segs is not None
            else []
        )
        for s in seg_rows:
            s["start"], s["end"] = _mmss(s["start_s"]), _mmss(s["end_s"])
            s["extreme_text"] = _fmt(s["extreme_rating"], 1)
        entry = {
            **{
                k: row[k]
                for k in (
                    "session",
                    "seconds_patient",
                    "seconds_therapist",
                    "seconds_aligned",
                    "congruence_r",
                    "congruence_p",
                    "n_effective",
                    "discrepancy_mean",
                    "discrepancy_sd",
                    "note",
                )
            },
            "text": {
                "congruence_r": _fmt(row["congruence_r"]),
                "congruence_p": p_clause(row["congruence_p"]),
                "n_effective": _fmt(row["n_effective"], 0),
                "discrepancy_mean": _fmt(row["discrepancy_mean"], 1),
                "discrepancy_sd": _fmt(row["discrepancy_sd"], 1),
                "minutes_aligned": f"{row['seconds_aligned'] / 60:.1f}",
            },
            "segments": seg_rows,
            "clips": [
                {k: s[k] for k in ("rater", "kind", "rank", "clip")}
                for s in sorted(
                    seg_rows,
                    key=lambda s: (_clip_start(s["clip"]), rater_order.get(s["rater"], 9), kind_order[s["kind"]]),
                )
            ],
            "chart_png": None,
            "chart_uri": None,
        }
        if key in ser_by:
            png = chart_png(ser_by[key], seg_rows, f"{row['dyad_id']}, session {row['session']}")
            entry["chart_png"], entry["chart_uri"] = png, data_uri(png)
        out[row["dyad_id"]]["available"] = True
        out[row["dyad_id"]]["sessions"].append(entry)
    return out
