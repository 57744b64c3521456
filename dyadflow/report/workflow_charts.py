"""Small PNG charts for Snakemake's HTML report (``snakemake --report results/report.html``).

- validation_summary.png: rejected rows per rule;
- cohort_change_by_arm.png: change categories (RCI) per arm, from results/stats/cohort.json;
- cohort_completeness.png: fraction of dyads with each instrument at each session;
- cohort_alliance_outcome.png: alliance (within-dyad detrended z) against the next
  session's outcome (same), with the pooled slope from cohort.json.

Deterministic bytes (Agg, no 'Software' or date metadata, fixed size and dpi) and
readable in grayscale (black/greys, hatching and markers instead of colour alone).
"""

from __future__ import annotations

import json
from pathlib import Path

from dyadflow.core import atomic
from dyadflow.core.plotting import pyplot

DPI = 100
SIZE = (6.4, 3.6)
GREYS = ("0.15", "0.55", "0.8", "1.0", "0.35", "0.7")
HATCHES = ("", "//", "..", "xx", "\\\\", "--")
MARKERS = ("o", "s", "^", "D", "v", "x")


def _figure():
    plt = pyplot({"svg.hashsalt": "dyadflow", "font.size": 9})
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    return plt, fig, ax


def _save(plt, fig, path: str | Path) -> None:
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def validation_summary(rejections_csv: str | Path, out: str | Path) -> dict[str, int]:
    """Bar chart of rejected rows per rule; returns {rule: count}."""
    import polars as pl

    rej = pl.read_csv(rejections_csv, infer_schema=False, columns=["rule"])
    counts = dict(rej.group_by("rule").len().sort(["len", "rule"], descending=[True, False]).rows())
    plt, fig, ax = _figure()
    if counts:
        rules = list(counts)[::-1]
        ax.barh(rules, [counts[r] for r in rules], color="0.35", edgecolor="black")
        for y, r in enumerate(rules):
            ax.text(counts[r], y, f" {counts[r]}", va="center")
        ax.set_xlabel("rejected rows")
        ax.set_title("Rejected rows by rule (results/validation/rejections.csv)")
    else:
        _empty(ax, "No rows were rejected.")
    _save(plt, fig, out)
    return counts


def change_by_arm(cohort: dict, out: str | Path) -> None:
    cats = cohort.get("change_categories") or {}
    plt, fig, ax = _figure()
    arms = sorted(cats)
    names = sorted({c for a in arms for c in cats[a]})
    if arms and names:
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(arms))]
            ax.bar(
                xs,
                [cats[a].get(name, 0) for a in arms],
                width,
                label=name,
                color=GREYS[i % 6],
                hatch=HATCHES[i % 6],
                edgecolor="black",
            )
        ax.set_xticks(range(len(arms)), arms)
        ax.set_ylabel("dyads")
        ax.set_title(f"Change in {cohort.get('outcome', 'the outcome')} by arm (reliable change index)")
        ax.legend(frameon=False, fontsize=8)
    else:
        _empty(ax, "No change categories (no dyad has a pre and post outcome).")
    _save(plt, fig, out)


def completeness(cohort: dict, out: str | Path) -> None:
    rows = cohort.get("completeness") or []
    plt, fig, ax = _figure()
    instruments = sorted({r["instrument"] for r in rows})
    for i, inst in enumerate(instruments):
        pts = sorted((r["session"], r["fraction"]) for r in rows if r["instrument"] == inst)
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=MARKERS[i % 6],
            color=GREYS[i % 5],
            linestyle=("-", "--", ":", "-.")[i % 4],
            label=inst,
        )
    if instruments:
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("session")
        ax.set_ylabel("fraction of dyads with a score")
        ax.set_title("Completeness by session and instrument")
        ax.legend(frameon=False, fontsize=8)
    else:
        _empty(ax, "No scores.")
    _save(plt, fig, out)


def alliance_outcome(sessions_parquet: str | Path, cohort: dict, out: str | Path) -> None:
    import polars as pl

    eff = (cohort.get("pooled_effect") or {}).get("detrended") or {}
    x_col = (eff.get("x") or ["alliance_composite_dt"])[0]
    y_col = eff.get("y") or "outcome_next_dt"
    df = pl.read_parquet(sessions_parquet, columns=[x_col, y_col]).drop_nulls().drop_nans()
    if df.height > 5000:  # a fixed, evenly spaced sample keeps the chart light and deterministic
        df = df.gather_every(df.height // 5000 + 1)
    plt, fig, ax = _figure()
    if df.height:
        ax.scatter(df.get_column(x_col), df.get_column(y_col), s=6, color="0.4", alpha=0.5, linewidths=0)
        if eff.get("b") is not None:
            xs = [df.get_column(x_col).min(), df.get_column(x_col).max()]
            ax.plot(
                xs,
                [eff["b"] * x for x in xs],
                color="black",
                linewidth=1.5,
                label=f"pooled b = {eff['b']:.2f} (SE {eff['se']:.2f}), {eff['n_obs']} sessions, {eff['n_dyads']} dyads",
            )
            ax.legend(frameon=False, fontsize=8, loc="upper right")
        ax.set_xlabel(f"{x_col} (within-dyad, detrended, z)")
        ax.set_ylabel(f"{y_col} (within-dyad, detrended, z)")
        ax.set_title("Alliance and the next session's outcome")
    else:
        _empty(ax, "No session has both an alliance and a next-session outcome.")
    _save(plt, fig, out)


def run(rejections_csv, cohort_json, sessions_parquet, out: dict) -> None:
    cohort = json.loads(Path(cohort_json).read_text(encoding="utf-8"))
    validation_summary(rejections_csv, out["validation_summary"])
    change_by_arm(cohort, out["change_by_arm"])
    completeness(cohort, out["completeness"])
    alliance_outcome(sessions_parquet, cohort, out["alliance_outcome"])
