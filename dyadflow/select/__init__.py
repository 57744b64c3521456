"""Select: sessions and cases for qualitative study (one module per strategy).

Each strategy listed under ``selection:`` in the config writes, for its ``name``:

* ``results/selection/<name>.csv``: ``dyad_id, session, group, rank, reason``;
* ``results/selection/<name>_summary.json``: what was selected, from how many, with
  the parameters used;
* ``results/selection/<name>_blinded.csv`` and ``<name>_key.csv`` (:mod:`.blinding`).

``results/selection/index.json`` lists the strategies that ran.

Every strategy takes ``arms`` (a list of arm names; null = all arms): only the dyads of
those arms (``arm`` of results/stats/dyads.parquet) are considered, and the summary says
so (``arm_filter``).
"""

from __future__ import annotations

import polars as pl

from dyadflow.core import atomic
from dyadflow.core.config import selection_spec
from dyadflow.core.contract import read_table
from dyadflow.core.errors import DyadflowError
from dyadflow.core.study import instrument
from dyadflow.select import blinding, fixed, high_low, repair_case, rupture
from dyadflow.select.common import COMMON, SelectionModel
from dyadflow.stats.contract import DyadsModel, RupturesModel, SessionsModel

# what each strategy needs scores of; without them it selects nothing and its summary says why
NEEDS = {
    "high_low_alliance": ("alliance", "outcome"),
    "repair_case": ("alliance", "outcome"),
    "rupture_repair": ("alliance",),
}


def missing_data_note(strategy: str, sessions: pl.DataFrame, outcome: str, alliance: dict) -> str | None:
    """Why a strategy can select nothing in this study (an outcome-only or alliance-only
    trial), or None when the scores it needs are there."""
    has = {
        "alliance": sessions.select(pl.col("alliance_patient", "alliance_therapist").is_not_null().any()).row(0)
        != (False, False),
        "outcome": sessions.select(pl.col("outcome").is_not_null().any()).item(),
    }
    names = {
        "alliance": f"alliance ({alliance['patient']}, {alliance['therapist']})",
        "outcome": f"outcome ({outcome})",
    }
    lacking = [names[k] for k in NEEDS.get(strategy, ()) if not has[k]]
    if not lacking:
        return None
    needs = " and ".join(NEEDS[strategy])
    return f"no {' or '.join(lacking)} scores in this study: {strategy} needs {needs} scores, so nothing is selected"


def filter_arms(spec: dict, sessions: pl.DataFrame, dyads: pl.DataFrame, ruptures: pl.DataFrame | None):
    """(sessions, dyads, ruptures, arm_filter text) restricted to the dyads of ``spec['arms']``."""
    arms = spec["arms"]
    total = dyads.height
    if arms is None:
        return sessions, dyads, ruptures, f"all arms ({total} dyad(s))"
    arms = [str(a) for a in arms]
    present = sorted(dyads.get_column("arm").drop_nulls().unique().to_list())
    unknown = [a for a in arms if a not in present]
    if unknown:
        raise DyadflowError(
            f"arm '{unknown[0]}' is not in the data (arms: {', '.join(present) or 'none'})",
            key=f"selection.{spec['name']}.arms",
        )
    dyads = dyads.filter(pl.col("arm").is_in(arms))
    keep = dyads.select("dyad_id")
    sessions = sessions.join(keep, on="dyad_id", how="semi")
    if ruptures is not None:
        ruptures = ruptures.join(keep, on="dyad_id", how="semi")
    return sessions, dyads, ruptures, f"arms {', '.join(arms)} only ({dyads.height} of {total} dyad(s))"


def choose(
    spec: dict,
    sessions: pl.DataFrame,
    dyads: pl.DataFrame,
    ruptures: pl.DataFrame | None,
    registry: dict,
    outcome: str,
    alliance: dict,
    composite: str | None = None,
) -> tuple[pl.DataFrame, dict]:
    """The selection and summary of one configured strategy (``composite``: ``stats.composite``, for the summary).

    ``spec`` was checked against the config schema at start-up (dyadflow/core/config.py);
    its defaults come from there too."""
    spec = selection_spec(spec)
    sessions, dyads, ruptures, arm_filter = filter_arms(spec, sessions, dyads, ruptures)
    selection, summary = _choose(spec, sessions, dyads, ruptures, registry, outcome, alliance, composite)
    return selection, {**summary, "arms": spec["arms"], "arm_filter": arm_filter}


def _choose(spec, sessions, dyads, ruptures, registry, outcome, alliance, composite):
    params = {k: v for k, v in spec.items() if k not in COMMON}
    strategy = spec["strategy"]
    insts = {r: instrument(registry, alliance[r], f"alliance.{r}") for r in ("patient", "therapist")}
    scales = {r: (insts[r].score_min, insts[r].score_max) for r in ("patient", "therapist")}
    lower_is_better = instrument(registry, outcome, "outcome").lower_is_better
    try:
        if strategy == "high_low_alliance":
            return high_low.select(sessions, dyads, params, lower_is_better, composite)
        if strategy == "fixed_sessions":
            return fixed.select(sessions, params, scales)
        if strategy == "repair_case":
            return repair_case.select(sessions, dyads, params, scales)
    except DyadflowError as err:
        if err.key and not err.key.startswith("selection."):
            err = DyadflowError(err.message, key=f"selection.{spec['name']}.{err.key}")
        raise err from None
    if ruptures is None:
        raise DyadflowError("rupture_repair needs results/stats/ruptures.csv", key=f"selection.{spec['name']}")
    return rupture.select(ruptures, params)


def run(
    spec: dict,
    sessions_path: str,
    dyads_path: str,
    ruptures_path: str | None,
    registry: dict,
    outcome: str,
    alliance: dict,
    out: dict,
    composite: str | None = None,
) -> pl.DataFrame:
    sessions = read_table(sessions_path, SessionsModel)
    dyads = read_table(dyads_path, DyadsModel)
    # with the contract's types: a study without alliance ratings has an empty ruptures.csv
    ruptures = read_table(ruptures_path, RupturesModel) if ruptures_path else None
    spec = selection_spec(spec)
    selection, summary = choose(spec, sessions, dyads, ruptures, registry, outcome, alliance, composite)
    blinded, key = blinding.blind(selection, spec["name"], int(spec["seed"]))
    summary = {
        "name": spec["name"],
        **summary,
        "selected_sessions": selection.height,
        "groups": summary.get("groups") or {g: n for g, n in selection.group_by("group").len().sort("group").rows()},
    }
    note = missing_data_note(spec["strategy"], sessions, outcome, alliance)
    if note:
        summary["note"] = note
    atomic.write_table(out["selection"], selection, SelectionModel, "csv")
    atomic.write_json(out["summary"], summary)
    atomic.write_csv(out["blinded"], blinded)
    atomic.write_csv(out["key"], key)
    return selection


def write_index(strategies: list[dict], out_index: str) -> None:
    atomic.write_json(out_index, {"strategies": [{"name": s["name"], "strategy": s["strategy"]} for s in strategies]})
