"""The study, resolved once: the config with the schema's defaults, the instrument
registry, and the outcome and alliance instruments.

:func:`resolve` is called once per job (``dyadflow/stages.py`` builds it from the rule's
params); the stages take their instruments from it. :func:`instrument` is the one lookup
of a configured instrument key: an unknown key is one clear error naming the config key
and listing the known instruments (never a bare ``KeyError`` and never a silent
fallback). Standard library, PyYAML and jsonschema only until the registry is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dyadflow.core.config import fill_defaults, plain
from dyadflow.core.errors import DyadflowError
from dyadflow.core.registry import Instrument, load_registry

RATERS = ("patient", "therapist")


def instrument(registry: dict[str, Instrument], key: str, where: str) -> Instrument:
    """The instrument ``key`` that the config key ``where`` (``outcome``, ``alliance.patient``
    ...) names; an unknown key stops with the known ones listed."""
    if key not in registry:
        raise DyadflowError(
            f"'{key}' is not an instrument in the registry (known: {', '.join(sorted(registry))})", key=where
        )
    return registry[key]


@dataclass(frozen=True)
class Study:
    config: dict
    registry: dict[str, Instrument] = field(repr=False)
    outcome: Instrument
    alliance: dict[str, Instrument]

    @property
    def outcome_key(self) -> str:
        return self.outcome.key

    @property
    def alliance_keys(self) -> dict[str, str]:
        return {r: self.alliance[r].key for r in RATERS}


def resolve(config: dict) -> Study:
    """The study of ``config`` (a whole config, or the part a rule passes: ``outcome``,
    ``alliance``, ``instruments_dir``), with the schema's defaults filled in."""
    cfg = fill_defaults({k: plain(v) for k, v in config.items() if v is not None})
    registry = load_registry(cfg["instruments_dir"])
    return Study(
        config=cfg,
        registry=registry,
        outcome=instrument(registry, cfg["outcome"], "outcome"),
        alliance={r: instrument(registry, cfg["alliance"][r], f"alliance.{r}") for r in RATERS},
    )
