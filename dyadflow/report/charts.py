"""Report charts with matplotlib: print-resolution PNG, readable in grayscale, same bytes every time.

PNG at 200 dpi was chosen by measurement (bench/RESULTS.md): inline SVG makes
WeasyPrint 3× slower, a PNG costs little more than the bare document. Every series
differs by line style and marker as well as by colour, bands are hatched, and the PNG
carries no Software or time metadata, so identical data give identical bytes.

Each chart's figure and axes are made once per process and chart kind (and size) and
reused for every dyad (:func:`_canvas`): what is the same for every dyad of a study (the
size, margins, severity bands, the y axis and its tick labels) is drawn once, what belongs
to one dyad (lines, spans, labels, legend, the session axis) is removed before the next
dyad's are added. matplotlib spent much of a chart's time making axes and ticks: this
cut the charts' CPU time by ~40 % (bench/RESULTS.md); the bytes do not depend on which
dyads were drawn before (``tests/test_report_dyad.py``).
"""

from __future__ import annotations

from dyadflow.core.plotting import data_uri, pyplot  # noqa: F401  (data_uri: the dyad report's)

DPI = 200
WIDTH_IN = 6.7  # 170 mm: the text width of an A4 page with 18 mm margins
PATIENT = {"color": "#1f3b73", "linestyle": "-", "marker": "o", "markersize": 4, "linewidth": 1.4}
THERAPIST = {"color": "#8c3b00", "linestyle": "--", "marker": "s", "markersize": 4, "linewidth": 1.4}
BAND_STYLES = [("#ffffff", ""), ("#eeeeee", "...."), ("#dddddd", "////"), ("#c8c8c8", "xxxx"), ("#b4b4b4", "\\\\\\\\")]


RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "hatch.linewidth": 0.4,
    "hatch.color": "#888888",
    "svg.hashsalt": "dyadflow",
    "path.simplify": True,
}


def _plt():
    return pyplot(RC)


_CANVASES: dict[tuple, object] = {}


def reset_canvases() -> None:
    """Forget the reused figures (the next chart of each kind starts from a new figure)."""
    _CANVASES.clear()


def _canvas(key: tuple, size: tuple[float, float], adjust: dict, setup=None):
    """The axes of a reused figure for chart ``key``, cleared of the previous dyad's artists.

    A new figure (``size`` in inches, ``adjust`` its margins) is made at the first call per
    key; ``setup(ax)`` then draws the parts every dyad shares, which stay. Everything added
    later (lines, spans, texts, the legend) is removed at the next call, and the colour
    cycle is reset, so a chart depends only on its own arguments. The first call also
    renders the chart's background once (:func:`_background`).
    """
    _plt()  # the rc settings (read when artists are made and drawn)
    canvas = _CANVASES.get(key)
    if canvas is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=DPI)
        FigureCanvasAgg(fig)
        fig.dyadflow_reused = True  # png_bytes leaves it open
        ax = fig.add_subplot()
        fig.subplots_adjust(**adjust)
        if setup is not None:
            setup(ax)
        static = {id(a) for a in (*ax.lines, *ax.patches, *ax.collections, *ax.texts)}
        _background(ax)
        canvas = _CANVASES[key] = (ax, static)
    ax, static = canvas
    for artist in [*ax.lines, *ax.patches, *ax.collections, *ax.texts]:
        if id(artist) not in static:
            artist.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_prop_cycle(None)
    return ax


def _background(ax) -> None:
    """Render once what every dyad's chart shares and that no dyad's artist touches, and
    leave the figure drawing only the rest (:func:`png_bytes` restores the background and
    draws over it).

    The background is the figure and axes faces, the shared artists of ``setup`` (the
    severity bands and their labels, the shaded lower half), and the y axis's tick labels
    and label, in matplotlib's own order. What a dyad's artists may overlap is drawn for
    each dyad, in its place in that order: the y grid lines and tick marks (the expected
    band, rupture spans and session axis lie under or next to them), the session axis and
    the spines. The y tick labels and label lie left of the axes, the band labels right of
    them, where no dyad's artist reaches; so the picture is the same as drawn whole
    (tested: the same pixels, bench/RESULTS.md), at the cost of a copy of the buffer
    instead of the text of ~15 labels.
    """
    fig = ax.figure
    ticks = ax.yaxis.get_major_ticks(len(ax.yaxis.get_majorticklocs()))
    per_dyad = [ax.xaxis, *ax.spines.values()]
    marks = [a for t in ticks for a in (t.gridline, t.tick1line, t.tick2line)]
    shown = [a.get_visible() for a in marks]
    for a in per_dyad:
        a.set_animated(True)  # Axes.draw skips animated artists (outside savefig)
    for a in marks:
        a.set_visible(False)
    fig.canvas.draw()
    fig.dyadflow_background = fig.canvas.copy_from_bbox(fig.bbox)
    for a in per_dyad:
        a.set_animated(False)
    for a, visible in zip(marks, shown, strict=True):
        a.set_visible(visible)
    # drawn in the background: hidden from now on
    for a in (fig.patch, ax.patch, ax.yaxis.label, *ax.patches, *ax.collections, *ax.texts, *ax.lines):
        a.set_visible(False)
    for t in ticks:
        t.label1.set_visible(False)
        t.label2.set_visible(False)


def _fixed_y(ax, y_range: tuple[float, float], label=None) -> None:
    """The y limits, and their ticks and tick labels fixed once (no locator or formatter
    at every draw); ``label(v)`` formats a tick (the default: matplotlib's)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    ax.set_ylim(*y_range)
    ticks = [v for v in ax.get_yticks() if y_range[0] <= v <= y_range[1]]
    texts = [label(v) for v in ticks] if label else ax.yaxis.get_major_formatter().format_ticks(ticks)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FixedFormatter(texts))


def png_bytes(fig) -> bytes:
    """The figure as a 200-dpi RGB (or greyscale) PNG, no alpha channel, without metadata chunks.

    WeasyPrint splits an RGBA PNG into colour and alpha and compresses both again for
    the PDF; an RGB image halves that work (bench/RESULTS.md). WeasyPrint decodes the
    PNG and compresses its pixels again for the PDF, so the PNG is written as cheaply as
    it decodes (:func:`_png`). Identical data give identical bytes. A reused figure
    (:func:`_canvas`) is drawn over its background.
    """
    import numpy as np

    if fig.get_dpi() != DPI:
        fig.set_dpi(DPI)
    background = getattr(fig, "dyadflow_background", None)
    if background is None:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        rgba = np.asarray(renderer.buffer_rgba())
    else:
        renderer = fig.canvas.get_renderer()
        renderer.restore_region(background)
        legend = fig.axes[0].get_legend()
        if legend is not None:
            legend.set_animated(True)  # drawn last, below (it is the axes' last artist)
        fig.draw(renderer)
        rgba = np.asarray(renderer.buffer_rgba())
        if legend is not None:
            _draw_legend(fig, legend, renderer, rgba)
    if not getattr(fig, "dyadflow_reused", False):
        _plt().close(fig)
    return _png(rgba[:, :, :3])


def _legend_key(legend) -> tuple:
    """What a legend's picture depends on besides its place: its labels, and each entry's
    kind and style."""
    key = []
    for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
        style = [type(handle).__name__, text.get_text()]
        for prop in (
            "color",
            "linestyle",
            "linewidth",
            "marker",
            "markersize",
            "markeredgecolor",
            "markeredgewidth",
            "markerfacecolor",
            "facecolor",
            "edgecolor",
            "hatch",
            "alpha",
        ):
            getter = getattr(handle, "get_" + prop, None)
            if getter is not None:
                value = getter()
                style.append(repr(value.tolist() if hasattr(value, "tolist") else value))
        key.append(tuple(style))
    return tuple(key)


def _draw_legend(fig, legend, renderer, rgba) -> None:
    """Draw ``legend`` over the rest of the chart (already drawn into ``rgba``), or paste
    its pixels from the last chart of this figure whose legend was the same and whose
    pixels under it were the same: drawing is deterministic, so the result is the one
    drawing would give. A chart's legend (4–6 entries) is mostly the same from one dyad
    to the next and cost ~40 % of a clinician chart's drawing."""
    box = legend.get_window_extent(renderer)
    height, width = rgba.shape[:2]
    pad = 4  # anti-aliasing may touch a pixel or two beyond the box
    x0, x1 = max(0, int(box.x0) - pad), min(width, int(box.x1) + 1 + pad)
    y0, y1 = max(0, height - int(box.y1) - 1 - pad), min(height, height - int(box.y0) + pad)
    region = (slice(y0, y1), slice(x0, x1))
    key = (_legend_key(legend), x0, x1, y0, y1)
    under = rgba[region].copy()
    cached = getattr(fig, "dyadflow_legend", None)
    if cached is not None and cached[0] == key and _same(cached[1], under):
        rgba[region] = cached[2]
        return
    legend.draw(renderer)
    fig.dyadflow_legend = (key, under, rgba[region].copy())


def _same(a, b) -> bool:
    """Two pixel arrays alike in shape and every value."""
    return a.shape == b.shape and bool((a == b).all())


def _png(rgb) -> bytes:
    """An 8-bit PNG of the pixels ``rgb`` (height × width × 3): no row filter, zlib level 3,
    and the 200-dpi pHYs chunk. PIL's encoder tries five row filters on every row (~4× the
    time for a chart); WeasyPrint decodes the PNG and compresses the pixels again for the
    PDF, so the PDF's image is the same whatever the PNG's compression (only its name in
    the PDF, a hash of the ``data:`` URI, follows the PNG's bytes).

    A chart whose every pixel is a grey (red = green = blue: the research report's
    outcome chart) is written as a greyscale PNG, the same pixel values in one channel
    instead of three; WeasyPrint then embeds a DeviceGray image, a third of the pixels to
    decode and compress again (bench/RESULTS.md)."""
    import struct
    import zlib

    import numpy as np

    height, width, _ = rgb.shape
    grey = bool((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all())
    channels = 1 if grey else 3
    raw = np.zeros((height, 1 + channels * width), dtype=np.uint8)  # each row: filter type 0, its pixels
    raw[:, 1:].reshape(height, width, channels)[:] = rgb[:, :, :1] if grey else rgb

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + tag + data + struct.pack("!I", zlib.crc32(tag + data))

    per_metre = round(DPI / 0.0254)
    colour_type = 0 if grey else 2
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack("!IIBBBBB", width, height, 8, colour_type, 0, 0, 0)),
            chunk(b"pHYs", struct.pack("!IIB", per_metre, per_metre, 1)),
            chunk(b"IDAT", zlib.compress(raw.tobytes(), 3)),
            chunk(b"IEND", b""),
        )
    )


def _session_axis(ax, sessions: list[int], xlabel: str = "Session") -> None:
    """The session axis of one dyad: its sessions, each labelled (every n-th beyond 20)."""
    lo, hi = (min(sessions), max(sessions)) if sessions else (1, 1)
    ax.set_xlim(lo - 0.5, hi + 0.5)
    step = 1 if hi - lo <= 20 else max(1, (hi - lo) // 15)
    ticks = list(range(lo, hi + 1, step))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel(xlabel)


def _grid(ax) -> None:
    ax.grid(axis="y", color="#cccccc", linewidth=0.4)


def outcome_figure(points: list[dict], bands: list[dict], gains: list[dict], label: str, y_range: tuple[float, float]):
    """Outcome per session over the instrument's severity bands; sudden gains/losses marked.

    ``points``: {session, outcome}; ``bands``: {label, min, max}; ``gains``: {kind,
    pregain_session, postgain_session, pregain_score, postgain_score}.
    """

    def setup(ax):  # the same for every dyad of a study: the bands, their labels, the y axis
        for i, band in enumerate(bands):
            color, hatch = BAND_STYLES[i % len(BAND_STYLES)]
            ax.axhspan(
                band["min"] - 0.5 if i else band["min"],
                band["max"] + 0.5,
                facecolor=color,
                hatch=hatch,
                edgecolor="#999999",
                linewidth=0,
                zorder=0,
            )
            ax.text(
                1.01,
                (band["min"] + band["max"]) / 2,
                band["label"],
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=7,
                color="#333333",
            )
        _fixed_y(ax, y_range)
        ax.set_ylabel(label)
        _grid(ax)

    key = ("outcome", tuple((b["label"], b["min"], b["max"]) for b in bands), label, tuple(y_range))
    ax = _canvas(key, (WIDTH_IN, 2.5), {"left": 0.08, "right": 0.83, "bottom": 0.18, "top": 0.95}, setup)
    xs = [p["session"] for p in points if p["outcome"] is not None]
    ys = [p["outcome"] for p in points if p["outcome"] is not None]
    ax.plot(xs, ys, color="black", linestyle="-", marker="o", markersize=4, linewidth=1.4, zorder=3, label=label)
    for g in gains:
        gain = g["kind"] == "gain"
        ax.annotate(
            "",
            xy=(g["postgain_session"], g["postgain_score"]),
            xytext=(g["pregain_session"], g["pregain_score"]),
            arrowprops={"arrowstyle": "-|>", "linestyle": "-" if gain else ":", "linewidth": 2.2, "color": "black"},
            zorder=4,
        )
        ax.text(
            g["postgain_session"] + 0.15,
            g["postgain_score"],
            "sudden gain" if gain else "sudden loss",
            fontsize=7,
            fontweight="bold",
            va="bottom",
        )
    _session_axis(ax, xs)
    return ax.figure


LABEL_PT = 6.5


def _label_rows(marks: list[dict], sessions: list[int]) -> list[tuple[int, str, int]]:
    """(session, label, row) for the selected-session labels above the alliance chart.

    Labels of one session are joined; each label goes to the lowest row where it does not
    overlap a label already there (its width estimated from its length), so labels of
    neighbouring sessions stack instead of printing over each other.
    """
    by_session: dict[int, list[str]] = {}
    for m in marks:
        labels = by_session.setdefault(m["session"], [])
        if m["label"] not in labels:
            labels.append(m["label"])
    span = max(sessions + list(by_session), default=1) - min(sessions + list(by_session), default=0) + 1
    axes_in = WIDTH_IN * 0.90  # the axes' share of the figure width
    per_char = LABEL_PT * 0.6 / 72 / axes_in * span  # sessions per character, a generous estimate
    right_edges: list[float] = []  # per row, where its last label ends
    out = []
    for session in sorted(by_session):
        text = "; ".join(by_session[session])
        half = len(text) * per_char / 2
        row = next((r for r, edge in enumerate(right_edges) if session - half > edge), len(right_edges))
        if row == len(right_edges):
            right_edges.append(session + half)
        else:
            right_edges[row] = session + half
        out.append((session, text, row))
    return out


def alliance_figure(
    points: list[dict], marks: list[dict], ruptures: list[dict], y_range: tuple[float, float], labels: tuple[str, str]
):
    """Patient and therapist alliance per session; selected sessions and rupture–repair marked.

    ``marks``: {session, label} (selected sessions); ``ruptures``: {rater, pre_session,
    rupture_session, repair_session}.
    """
    placed = _label_rows(marks, [p["session"] for p in points])
    rows = 1 + max((row for _, _, row in placed), default=-1)
    # fixed axes height and margins in inches; each row of labels adds its height on top
    bottom_in, axes_in, top_in = 0.68, 1.9, 0.14 + 0.16 * rows
    height_in = bottom_in + axes_in + top_in

    def setup(ax):
        _fixed_y(ax, y_range)
        ax.set_ylabel("Alliance (mean item)")
        _grid(ax)

    adjust = {"left": 0.08, "right": 0.98, "bottom": bottom_in / height_in, "top": 1 - top_in / height_in}
    ax = _canvas(("alliance", rows, tuple(y_range)), (WIDTH_IN, height_in), adjust, setup)
    row_step = 0.16 / axes_in  # one label row, in axes fractions
    for key, style, label in (("alliance_patient", PATIENT, labels[0]), ("alliance_therapist", THERAPIST, labels[1])):
        pts = [(p["session"], p[key]) for p in points if p[key] is not None]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], label=label, zorder=3, **style)
    for r in ruptures:
        end = r["repair_session"] if r["repair_session"] is not None else r["rupture_session"]
        ax.axvspan(
            r["rupture_session"] - 0.35,
            end + 0.35,
            facecolor="#dddddd",
            hatch="////",
            edgecolor="#888888",
            linewidth=0,
            zorder=0,
        )
    for session, text, row in placed:
        ax.axvline(session, color="#444444", linestyle=":", linewidth=1.0, zorder=1)
        ax.text(
            session,
            1.0 + 0.01 + row_step * row,
            text,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=LABEL_PT,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
        )
    _session_axis(ax, [p["session"] for p in points])
    handles, names = ax.get_legend_handles_labels()
    if ruptures:
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor="#dddddd", hatch="////", edgecolor="#888888", linewidth=0))
        names.append("rupture → repair")
    if marks:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="#444444", linestyle=":"))
        names.append("selected session")
    if handles:
        ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, frameon=False, fontsize=7)
    return ax.figure


# ---------------------------------------------------------------- the clinician copy (issue 17)
SIGNAL_MARKERS = {  # colour and a marker shape, so the signal reads in grayscale too
    "red": ("#c0392b", "X", 7),
    "yellow": ("#d4a017", "^", 6),
    "green": ("#2e8b57", "o", 5),
    "recovered": ("#1f5fa8", "*", 8),
}


def _decimal_y(ax, y_range: tuple[float, float], language: str, digits: int = 1) -> None:
    """The y axis with tick labels formatted for the locale (a decimal comma in sv and nb)."""
    from dyadflow.report.i18n import fmt_decimal

    _fixed_y(ax, y_range, lambda v: fmt_decimal(float(v), digits if v != int(v) else 0, language))


def feedback_figure(
    points: list[dict], label: str, y_range: tuple[float, float], lower_is_better: bool, _, language: str
):
    """The outcome per session over the expected band (p10–p90 light, p25–p75 darker, median
    dotted), each session's signal as colour and marker shape; ``_`` translates the labels.

    ``points``: {session, outcome, expected_p10 … expected_p90, signal}.
    """
    ylabel = _("Score") + " (" + (_("lower is better") if lower_is_better else _("higher is better")) + ")"

    def setup(ax):
        _decimal_y(ax, y_range, language)
        ax.set_ylabel(ylabel, fontsize=7)
        _grid(ax)

    adjust = {"left": 0.09, "right": 0.98, "bottom": 0.30, "top": 0.95}
    ax = _canvas(("feedback", language, ylabel, tuple(y_range)), (WIDTH_IN, 2.6), adjust, setup)
    band = [p for p in points if p["expected_p10"] is not None and p["expected_p90"] is not None]
    if band:
        xs = [p["session"] for p in band]
        ax.fill_between(
            xs,
            [p["expected_p10"] for p in band],
            [p["expected_p90"] for p in band],
            facecolor="#e6e6e6",
            edgecolor="#bbbbbb",
            linewidth=0.4,
            zorder=0,
            label=_("expected range (10th–90th percentile)"),
        )
        ax.fill_between(
            xs,
            [p["expected_p25"] for p in band],
            [p["expected_p75"] for p in band],
            facecolor="#c4c4c4",
            hatch="....",
            edgecolor="#999999",
            linewidth=0,
            zorder=1,
            label=_("middle half (25th–75th percentile)"),
        )
        ax.plot(
            xs,
            [p["expected_p50"] for p in band],
            color="#555555",
            linestyle=":",
            linewidth=1.0,
            zorder=2,
            label=_("expected course (median)"),
        )
    shown = [p for p in points if p["outcome"] is not None]
    ax.plot(
        [p["session"] for p in shown],
        [p["outcome"] for p in shown],
        color="black",
        linewidth=1.4,
        zorder=3,
        label=label,
    )
    for sig, (color, marker, size) in SIGNAL_MARKERS.items():
        pts = [p for p in shown if p.get("signal") == sig]
        if pts:
            ax.plot(
                [p["session"] for p in pts],
                [p["outcome"] for p in pts],
                linestyle="none",
                marker=marker,
                markersize=size,
                color=color,
                markeredgecolor="black",
                markeredgewidth=0.5,
                zorder=4,
            )
    rest = [p for p in shown if p.get("signal") not in SIGNAL_MARKERS]
    if rest:
        ax.plot(
            [p["session"] for p in rest],
            [p["outcome"] for p in rest],
            linestyle="none",
            marker="o",
            markersize=4,
            color="white",
            markeredgecolor="black",
            zorder=4,
        )
    _session_axis(ax, [p["session"] for p in points], _("Session"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, fontsize=6.5)
    return ax.figure


def alliance01_figure(points: list[dict], _, language: str):
    """Both raters' alliance on the 0–1 scale ((x − min)/(max − min)), the lower half shaded,
    sessions with an alliance alert marked ▼ at the top. ``points``: {session, patient,
    therapist, alliance_alert}."""
    ylabel = _("Alliance (0–1)")

    def setup(ax):
        ax.axhspan(0, 0.5, facecolor="#f0f0f0", hatch="////", edgecolor="#cccccc", linewidth=0, zorder=0)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        _decimal_y(ax, (0, 1.0), language, digits=2)
        ax.set_ylabel(ylabel, fontsize=7)
        _grid(ax)

    adjust = {"left": 0.09, "right": 0.98, "bottom": 0.30, "top": 0.90}
    ax = _canvas(("alliance01", language, ylabel), (WIDTH_IN, 2.2), adjust, setup)
    for key, style, label in (("patient", PATIENT, _("Patient")), ("therapist", THERAPIST, _("Therapist"))):
        pts = [(p["session"], p[key]) for p in points if p[key] is not None]
        if pts:
            ax.plot([x for x, _y in pts], [y for _x, y in pts], label=label, zorder=3, **style)
    alerts = [p["session"] for p in points if p.get("alliance_alert")]
    if alerts:
        ax.plot(
            alerts,
            [1.06] * len(alerts),
            linestyle="none",
            marker="v",
            markersize=6,
            color="#c0392b",
            markeredgecolor="black",
            markeredgewidth=0.5,
            clip_on=False,
            zorder=5,
            label=_("alliance alert"),
        )
    _session_axis(ax, [p["session"] for p in points], _("Session"))
    from matplotlib.patches import Patch

    handles, names = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="#f0f0f0", hatch="////", edgecolor="#cccccc", linewidth=0))
    names.append(_("lower half of the scale"))
    # below the session axis's label: this chart's axes are shorter than the outcome chart's,
    # so the offset (a fraction of the axes' height) is larger for the same distance
    ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, frameon=False, fontsize=6.5)
    return ax.figure
