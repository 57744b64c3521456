"""One home for defaults (issue 16, point 4): the config schema fills them, the study is
resolved once, and no module repeats a default the schema holds."""

from __future__ import annotations

import re

import polars as pl
import pytest
from conftest import REPO

from dyadflow import select, stats
from dyadflow.core import config as config_check
from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import CONFIG_SCHEMA, load_registry
from dyadflow.core.study import resolve

BASE = {"study": {"name": "x"}, "inputs": [{"path": "q.csv", "format": "canonical_csv"}]}
KNOWN = "known: bdi_ii, oq_45, phq_9, wai_s, wai_sr, wai_sr_7"


def _defaults(schema, out):
    """Every (property name, default) pair of the schema, anywhere in it."""
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict) and "default" in sub:
                out.add((key, repr(sub["default"])))
        for value in schema.values():
            _defaults(value, out)
    elif isinstance(schema, list):
        for value in schema:
            _defaults(value, out)
    return out


def _literals(default: str) -> list[str]:
    """The ways Python source spells a default: '2022', '"utf-8"', "'utf-8'", '100' for 100.0 ..."""
    spelled = {default, default.replace("'", '"')}
    if re.fullmatch(r"-?\d+\.0", default):
        spelled.add(default[:-2])
    return sorted(spelled)


def test_no_module_repeats_a_default_of_the_config_schema():
    pairs = _defaults(config_check.load_schema(), set())
    assert {
        ("seed", "2022"),
        ("delimiter", "','"),
        ("layout", "'long'"),
        ("min_observations", "20"),
        ("folds", "5"),
    } <= pairs
    found = []
    for path in sorted((REPO / "dyadflow").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for key, default in sorted(pairs):
            for literal in _literals(default):
                # spec.get("seed", 2022), spec.get('delimiter', ','), int(spec.get("header_row", 1)) ...
                if re.search(rf"""\.get\(["']{key}["'],\s*{re.escape(literal)}\s*\)""", text):
                    found.append(f"{path.relative_to(REPO)}: .get('{key}', {literal})")
        if re.search(r"^\s*DEFAULTS\s*(:[^=]*)?=", text, re.M):
            found.append(f"{path.relative_to(REPO)}: a DEFAULTS dict")
    assert found == []


def test_defaults_fill_nested_objects_lists_and_the_strategy_branch():
    config = {
        **BASE,
        "inputs": [{"path": "r.csv", "format": "redcap", "instruments": {"wai_sr": {"form": "wai"}}}],
        "selection": [
            {"name": "fx", "strategy": "fixed_sessions"},
            {"name": "rr", "strategy": "rupture_repair", "seed": 7},
        ],
        "stats": {"lag": {"detrend": True}},
        "microprocess": {"inputs": [{"path": "dial"}]},
    }
    filled = config_check.fill_defaults(config)
    assert filled is config
    assert config["inputs"][0]["delimiter"] == "," and config["inputs"][0]["complete"] == [2]
    assert config["inputs"][0]["instruments"]["wai_sr"] == {"form": "wai", "session": "event"}
    assert config["selection"][0] == {
        "name": "fx",
        "strategy": "fixed_sessions",
        "seed": 2022,
        "arms": None,
        "sessions": [3, 5],
        "scale": "pomp",
        "fall_tolerance": 0.05,
    }
    assert config["selection"][1] == {
        "name": "rr",
        "strategy": "rupture_repair",
        "seed": 7,
        "arms": None,
        "repaired_only": True,
        "rater": None,
    }
    assert config["stats"]["lag"] == {
        "detrend": True,
        "predictor": "composite",
        "covariate_outcome": False,
        "min_pairs": 3,
    }
    assert config["stats"]["multilevel"]["min_observations"] == 20
    assert config["feedback"]["folds"] == 5 and config["report"]["dyads_per_shard"] == 25
    assert config["microprocess"]["inputs"][0]["layout"] == "long"
    assert config["microprocess"]["range"] == {"min": -50, "max": 50}
    # each default is a copy: changing one filled config leaves the next untouched
    config["microprocess"]["range"]["min"] = -10
    config["selection"][0]["sessions"].append(9)
    again = config_check.fill_defaults(
        {**BASE, "selection": [{"name": "fx", "strategy": "fixed_sessions"}], "microprocess": {"inputs": []}}
    )
    assert again["microprocess"]["range"] == {"min": -50, "max": 50}
    assert again["selection"][0]["sessions"] == [3, 5]


def test_a_given_value_is_never_overwritten():
    assert config_check.section("stats", {"max_gap": 2, "lag": {"min_pairs": 4}})["lag"]["min_pairs"] == 4
    assert config_check.section("stats", {"max_gap": 2})["max_gap"] == 2
    assert config_check.selection_spec({"name": "h", "strategy": "high_low_alliance", "alpha": 0.1})["alpha"] == 0.1


def test_the_study_is_resolved_once_with_its_instruments():
    study = resolve({"outcome": "phq_9", "alliance": None, "instruments_dir": None})
    assert study.outcome_key == "phq_9"
    assert study.alliance_keys == {"patient": "wai_sr", "therapist": "wai_s"}
    assert study.config["stats"]["max_gap"] == 1
    assert set(study.registry) == set(KNOWN.removeprefix("known: ").split(", "))


def test_an_unknown_outcome_is_one_clear_error_in_every_stage():
    message = f"'bdi2' is not an instrument in the registry ({KNOWN})"
    with pytest.raises(DyadflowError) as err:
        resolve({"outcome": "bdi2"})
    assert (err.value.key, err.value.message) == ("outcome", message)
    registry = load_registry()
    alliance = {"patient": "wai_sr", "therapist": "wai_s"}
    with pytest.raises(DyadflowError) as err:
        stats.compute(pl.DataFrame(), registry, "bdi2", alliance)
    assert (err.value.key, err.value.message) == ("outcome", message)
    with pytest.raises(DyadflowError) as err:  # was a bare KeyError
        select.choose(
            {"name": "h", "strategy": "high_low_alliance"},
            pl.DataFrame(),
            pl.DataFrame(),
            None,
            registry,
            "bdi2",
            alliance,
        )
    assert (err.value.key, err.value.message) == ("outcome", message)
    with pytest.raises(DyadflowError) as err:
        select.choose(
            {"name": "f", "strategy": "fixed_sessions"},
            pl.DataFrame(),
            pl.DataFrame(),
            None,
            registry,
            "bdi_ii",
            {"patient": "wai_sr", "therapist": "wai_z"},
        )
    assert err.value.key == "alliance.therapist"
    assert err.value.message == f"'wai_z' is not an instrument in the registry ({KNOWN})"


def test_the_removed_report_shards_key_is_one_line_naming_dyads_per_shard():
    assert config_check.check({**BASE, "report": {"shards": 4}}, CONFIG_SCHEMA, REPO) == [
        "report.shards: this key was removed; set report.dyads_per_shard (dyads per report-rendering job) instead"
    ]
    assert config_check.check({**BASE, "report": {"shards": 4, "audience": "research"}}, CONFIG_SCHEMA, REPO) == [
        "report.shards: this key was removed; set report.dyads_per_shard (dyads per report-rendering job) instead"
    ]
