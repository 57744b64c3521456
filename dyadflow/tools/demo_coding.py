"""The demo study's coding (issue 19.7): three coders' ratings of the ``high_low``
selection's blinded sessions, and the frozen key handed to them.

The key is computed in-process by the pipeline's own code (validation, scoring, stats,
the ``high_low`` strategy of config/config.yaml and its blinding), so the demo stays
deterministic: ``data/demo/high_low_key_frozen.csv`` is byte for byte the
``results/selection/high_low_key.csv`` a build of the demo writes.

The coders rate the demo study's own coding sheets (``data/demo/instruments``): rupture
markers (withdrawal, confrontation, resolution, 0–5) and the dominant rupture type
(categorical). Each session has a true level, higher markers and less resolution in the
low-alliance sessions; each coder adds a fixed bias and seeded noise. One row names a
code that was never handed out, which validation rejects (``code_unknown``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from dyadflow.core import atomic
from dyadflow.core.config import fill_defaults, selection_spec
from dyadflow.core.registry import load_registry

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout: the demo study's config and instruments
CONFIG = REPO_ROOT / "config" / "config.yaml"
SELECTION = "high_low"
CODED_FILE = "coded_high_low.csv"
KEY_FILE = "high_low_key_frozen.csv"
FILES = (CODED_FILE, KEY_FILE)
CODERS = ("C1", "C2", "C3")
BIAS = {"C1": 0.0, "C2": 0.4, "C3": -0.3}  # a lenient and a strict coder
# true session levels (withdrawal, confrontation, resolution) by group
LEVELS = {"high": (1.0, 0.5, 3.5), "low": (2.8, 2.0, 1.5)}
TYPES = ("none", "withdrawal", "confrontation", "mixed")


def demo_config() -> dict:
    """config/config.yaml with the schema's defaults filled in, as the workflow sees it."""
    return fill_defaults(copy.deepcopy(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))))


def frozen_key(export_dir: Path) -> pl.DataFrame:
    """The blinding key of the demo's high_low selection, from the exports in ``export_dir``."""
    from dyadflow import score, select, stats
    from dyadflow.ingest import read_or_quarantine
    from dyadflow.select import blinding
    from dyadflow.validate import rules as validate

    cfg = demo_config()
    registry = load_registry(REPO_ROOT / cfg["instruments_dir"] if cfg.get("instruments_dir") else None)
    specs = [{**s, "path": str(export_dir / Path(s["path"]).name)} for s in cfg["inputs"]]
    read = [read_or_quarantine(s, cfg["validation"]) for s in specs]
    checked = validate.validate_frames([f for f, _ in read], [m for _, m in read], registry)
    scores = score.score_frame(checked.accepted, registry)
    res = stats.compute(scores, registry, cfg["outcome"], cfg["alliance"], cfg["stats"])
    spec = selection_spec(next(s for s in cfg["selection"] if s["name"] == SELECTION))
    chosen, _ = select.choose(
        spec,
        res.sessions,
        res.dyads,
        res.ruptures,
        registry,
        cfg["outcome"],
        cfg["alliance"],
        stats.settings(cfg["stats"])["composite"],
    )
    return blinding.blind(chosen, SELECTION, int(spec["seed"]))[1]


def coded_table(key: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Three coders' ratings of every code in ``key`` (both coding sheets), plus one row for
    a code never handed out. Coders see codes only: the group drives the true level."""
    rng = np.random.default_rng(seed + 19)
    codes = key.get_column("code").to_list()
    groups = key.get_column("group").to_list()
    n = len(codes)
    true = np.array([LEVELS[g] for g in groups]) + rng.normal(0, 0.7, size=(n, 3))  # sessions differ within a group
    rows = []
    for coder in CODERS:
        rating = np.clip(np.rint(true + BIAS[coder] + rng.normal(0, 0.5, size=(n, 3))), 0, 5).astype(int)
        w, c = rating[:, 0], rating[:, 1]
        kind = np.where((w <= 1) & (c <= 1), 0, np.where(np.abs(w - c) <= 0, 3, np.where(w > c, 1, 2)))
        for i, code in enumerate(codes):
            rows.append((SELECTION, code, coder, "rupture_markers", str(w[i]), str(c[i]), str(rating[i, 2])))
            rows.append((SELECTION, code, coder, "rupture_type", TYPES[kind[i]], "", ""))
    rows.append((SELECTION, "ZZ", "C3", "rupture_markers", "2", "1", "3"))  # never handed out: code_unknown
    return pl.DataFrame(
        rows, schema=["selection", "code", "coder_id", "instrument", "item_01", "item_02", "item_03"], orient="row"
    ).with_columns(pl.col("item_01", "item_02", "item_03").replace("", None))


def write(out_dir: str | Path, seed: int) -> list[Path]:
    """Write the frozen key and the coded file next to the demo's exports in ``out_dir``."""
    out = Path(out_dir)
    key = frozen_key(out)
    atomic.write_csv(out / KEY_FILE, key)
    atomic.write_csv(out / CODED_FILE, coded_table(key, seed))
    return [out / name for name in FILES]
