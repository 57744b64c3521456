"""The instrument registry: one YAML file per questionnaire.

The files in ``dyadflow/schemas/instruments`` (and a study's own ``instruments_dir``) are the
single source of truth. Everything instrument-specific, the pandera schemas in
:mod:`dyadflow.validate.checks` and the scoring in :mod:`dyadflow.score`, is generated from
the :class:`Instrument` objects built here. Adding an instrument needs no code.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dyadflow.core.errors import DyadflowError

# package data (dyadflow/schemas/), found the same way in a checkout and in an installed dyadflow
SCHEMAS_DIR = Path(str(resources.files("dyadflow") / "schemas"))
BUILTIN_DIR = SCHEMAS_DIR / "instruments"
INSTRUMENT_SCHEMA = SCHEMAS_DIR / "instrument.schema.yaml"
CONFIG_SCHEMA = SCHEMAS_DIR / "config.schema.yaml"

RATERS = ("patient", "therapist", "observer")
# Separators between several answers recorded for one item ("1a|2b").
MULTI_ANSWER_SEPARATORS = "|/"


def item_column(n: int) -> str:
    """Canonical column name of item ``n``: item_01 … item_99, item_100 …"""
    return f"item_{n:02d}"


@dataclass(frozen=True)
class Band:
    label: str
    min: float
    max: float
    labels: dict[str, str] = field(default_factory=dict)  # the label per language (sv, nb), optional


@dataclass(frozen=True)
class RiskItem:
    item: int
    above: float
    label: str
    labels: dict[str, str] = field(default_factory=dict)  # the label per language (sv, nb), optional


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str
    raters: tuple[str, ...]
    n_items: int
    min_value: int
    max_value: int
    method: str  # "sum" or "mean"
    direction: str  # "lower_is_better" or "higher_is_better"
    max_missing_fraction: float = 0.2
    missing_rule: str = "prorate"  # "prorate" or "subscale_mean"
    subscale_score: str = "mean"  # sub_* as "sum" or "mean" of the subscale's items
    labels: dict[int, str] = field(default_factory=dict)
    item_codes: dict[int, dict[str, int]] = field(default_factory=dict)
    multiple_answers: str = "reject"
    reverse_keyed: tuple[int, ...] = ()
    subscales: dict[str, tuple[int, ...]] = field(default_factory=dict)
    bands: tuple[Band, ...] = ()
    reliability: float | None = None
    norms: dict[str, Any] = field(default_factory=dict)
    risk_items: tuple[RiskItem, ...] = ()
    construct: str = "other"
    source: str = ""
    path: str = ""
    input: str = "items"  # "items", or "total": rows carry a pre-scored total (column ``total``)
    total_min: float | None = None
    total_max: float | None = None
    names: dict[str, str] = field(default_factory=dict)  # the name per language (sv, nb), optional

    def name_in(self, language: str) -> str:
        """The instrument's name in ``language`` (the registry's ``names``), else its name."""
        return self.names.get(language) or self.name

    # response.type categorical: the allowed codes, stored as 1 … len(codes); not summed
    codes: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return bool(self.codes)

    def code_of(self, value: int) -> str:
        """The code a stored categorical value stands for (1 → the first code)."""
        return self.codes[value - 1]

    @property
    def total_only(self) -> bool:
        return self.input == "total"

    @property
    def items(self) -> list[str]:
        return [item_column(i) for i in range(1, self.n_items + 1)]

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower_is_better"

    @property
    def reverse_sum(self) -> int:
        """A reverse-keyed answer x is scored ``reverse_sum - x`` (8 - x on a 1–7 scale)."""
        return self.min_value + self.max_value

    @property
    def max_missing_items(self) -> int:
        """The most items that may be missing for the questionnaire to be scored."""
        return math.floor(self.n_items * self.max_missing_fraction + 1e-9)

    @property
    def score_min(self) -> float:
        if self.total_only:
            return self.total_min
        return self.min_value * (self.n_items if self.method == "sum" else 1)

    @property
    def score_max(self) -> float:
        if self.total_only:
            return self.total_max
        return self.max_value * (self.n_items if self.method == "sum" else 1)

    def token_map(self, item: int) -> dict[str, int]:
        """Every accepted (normalised, lower-case) answer for ``item``, with its value.

        Values are the answer as given, before reverse keying: numbers in the response
        range (also written ``3.0``), value labels, and the item's extra codes.
        """
        tokens: dict[str, int] = {}
        if self.categorical:  # only the codes themselves
            return {c.lower(): i for i, c in enumerate(self.codes, start=1)}
        for v in range(self.min_value, self.max_value + 1):
            tokens[str(v)] = v
            tokens[f"{v}.0"] = v
        for v, label in self.labels.items():
            tokens[label.strip().lower()] = v
        for code, v in self.item_codes.get(item, {}).items():
            tokens[code.strip().lower()] = v
        return tokens

    def describe_allowed(self, item: int) -> str:
        if self.categorical:
            return ", ".join(self.codes)
        codes = self.item_codes.get(item)
        text = f"{self.min_value}–{self.max_value}"
        if codes:
            text += " or " + ", ".join(sorted(codes))
        if self.labels:
            text += " or a value label"
        return text


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DyadflowError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path), line=line) from None
    except UnicodeDecodeError as exc:
        raise DyadflowError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None


@functools.lru_cache(maxsize=1)
def _instrument_validator():  # pragma: no cover - trivial
    import jsonschema

    schema = _load_yaml(INSTRUMENT_SCHEMA)
    return jsonschema.Draft202012Validator(schema)


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    elif error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(extra)
    return ".".join(p for p in parts if p) or "(top level)"


def parse_instrument(data: Any, path: Path) -> Instrument:
    """Check one instrument definition and build the :class:`Instrument`.

    Raises :class:`DyadflowError` naming the file and the offending key.
    """
    file = str(path)
    if not isinstance(data, dict):
        raise DyadflowError("an instrument file must be a mapping of keys to values", file=file)
    errors = sorted(_instrument_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        raise DyadflowError(err.message, file=file, key=_key_path(err))

    key = data["key"]
    if path.suffix in (".yaml", ".yml") and path.stem != key:
        raise DyadflowError(f"the key '{key}' must equal the file name '{path.stem}'", file=file, key="key")
    if data.get("input") == "total":
        return _total_only(data, file)
    n = data["n_items"]
    resp = data["response"]
    if resp.get("type") == "categorical":
        return _categorical(data, file)
    lo, hi = resp["min"], resp["max"]
    if lo >= hi:
        raise DyadflowError(f"min ({lo}) must be below max ({hi})", file=file, key="response")

    def check_items(items: list[int], where: str) -> tuple[int, ...]:
        bad = [i for i in items if i > n]
        if bad:
            raise DyadflowError(f"item {bad[0]} is beyond n_items ({n})", file=file, key=where)
        return tuple(items)

    labels: dict[int, str] = {}
    for k, v in (resp.get("labels") or {}).items():
        value = int(k)
        if not lo <= value <= hi:
            raise DyadflowError(f"label for {value} is outside {lo}–{hi}", file=file, key=f"response.labels.{k}")
        labels[value] = str(v)
    if len({v.strip().lower() for v in labels.values()}) != len(labels):
        raise DyadflowError("two values share a label", file=file, key="response.labels")

    item_codes: dict[int, dict[str, int]] = {}
    for i, block in enumerate(data.get("item_codes") or []):
        check_items(block["items"], f"item_codes.{i}.items")
        for code, value in block["codes"].items():
            if not lo <= value <= hi:
                raise DyadflowError(
                    f"code '{code}' scores {value}, outside {lo}–{hi}", file=file, key=f"item_codes.{i}.codes.{code}"
                )
            if any(sep in code for sep in MULTI_ANSWER_SEPARATORS):
                raise DyadflowError(f"code '{code}' contains a separator", file=file, key=f"item_codes.{i}.codes")
        for item in block["items"]:
            item_codes.setdefault(item, {}).update({str(c): int(v) for c, v in block["codes"].items()})

    subscales = {name: check_items(items, f"subscales.{name}") for name, items in (data.get("subscales") or {}).items()}
    reverse = check_items(data.get("reverse_keyed") or [], "reverse_keyed")

    bands = _bands(data, file)

    risk = tuple(
        RiskItem(r["item"], float(r["above"]), r["label"], dict(r.get("labels") or {}))
        for r in data.get("risk_items") or []
    )
    check_items([r.item for r in risk], "risk_items")

    scoring = data["scoring"]
    missing_rule = scoring.get("missing", "prorate")
    if missing_rule == "subscale_mean":
        owner: dict[int, str] = {}
        for name, items in subscales.items():
            for item in items:
                if item in owner:
                    raise DyadflowError(
                        f"item {item} is in subscales {owner[item]} and {name}; missing: subscale_mean needs each item in one subscale",
                        file=file,
                        key="scoring.missing",
                    )
                owner[item] = name
        lonely = [i for i in range(1, n + 1) if i not in owner]
        if lonely:
            raise DyadflowError(
                f"item {lonely[0]} is in no subscale; missing: subscale_mean needs every item in a subscale",
                file=file,
                key="scoring.missing",
            )
    return Instrument(
        key=key,
        name=data["name"],
        raters=tuple(data["raters"]),
        n_items=n,
        min_value=lo,
        max_value=hi,
        method=scoring["method"],
        direction=data["direction"],
        max_missing_fraction=float(scoring.get("max_missing_fraction", 0.2)),
        missing_rule=missing_rule,
        subscale_score=scoring.get("subscales", "mean"),
        labels=labels,
        item_codes=item_codes,
        multiple_answers=data.get("multiple_answers", "reject"),
        reverse_keyed=reverse,
        subscales=subscales,
        bands=bands,
        reliability=(data.get("reliability") or {}).get("value"),
        norms=dict(data.get("norms") or {}),
        risk_items=risk,
        construct=data.get("construct", "other"),
        source=data.get("source", ""),
        path=file,
        names=dict(data.get("names") or {}),
    )


def _bands(data: dict, file: str) -> tuple[Band, ...]:
    bands = tuple(
        Band(b["label"], float(b["min"]), float(b["max"]), dict(b.get("labels") or {})) for b in data.get("bands") or []
    )
    for i, band in enumerate(bands):
        if band.min > band.max:
            raise DyadflowError(f"band '{band.label}' has min above max", file=file, key=f"bands.{i}")
        if i and band.min < bands[i - 1].max:
            raise DyadflowError(
                f"band '{band.label}' overlaps '{bands[i - 1].label}'; list bands in increasing order",
                file=file,
                key=f"bands.{i}",
            )
    return bands


def _total_only(data: dict, file: str) -> Instrument:
    """An instrument whose rows carry a pre-scored total (``input: total``): no items."""
    rng = data["total_range"]
    lo, hi = float(rng["min"]), float(rng["max"])
    if lo >= hi:
        raise DyadflowError(f"min ({rng['min']}) must be below max ({rng['max']})", file=file, key="total_range")
    for unused in ("reverse_keyed", "subscales", "risk_items", "item_codes"):
        if data.get(unused):
            raise DyadflowError(f"an instrument with input: total has no items, so no {unused}", file=file, key=unused)
    return Instrument(
        key=data["key"],
        name=data["name"],
        raters=tuple(data["raters"]),
        n_items=0,
        min_value=0,
        max_value=0,
        method=data["scoring"]["method"],
        direction=data["direction"],
        bands=_bands(data, file),
        reliability=(data.get("reliability") or {}).get("value"),
        norms=dict(data.get("norms") or {}),
        construct=data.get("construct", "other"),
        source=data.get("source", ""),
        path=file,
        names=dict(data.get("names") or {}),
        input="total",
        total_min=lo,
        total_max=hi,
    )


def _categorical(data: dict, file: str) -> Instrument:
    """An instrument whose items take one of ``response.codes`` (stored 1 … k): coded, not scored."""
    codes = tuple(str(c) for c in data["response"]["codes"])
    if len({c.lower() for c in codes}) != len(codes):
        raise DyadflowError("two codes differ only in case", file=file, key="response.codes")
    for unused in ("reverse_keyed", "risk_items", "item_codes", "bands", "norms", "subscales"):
        if data.get(unused):
            raise DyadflowError(f"a categorical instrument is not scored, so no {unused}", file=file, key=unused)
    n = data["n_items"]
    return Instrument(
        key=data["key"],
        name=data["name"],
        raters=tuple(data["raters"]),
        n_items=n,
        min_value=1,
        max_value=len(codes),
        method=data["scoring"]["method"],
        direction=data["direction"],
        labels={i: c for i, c in enumerate(codes, start=1)},
        construct=data.get("construct", "other"),
        source=data.get("source", ""),
        path=file,
        codes=codes,
    )


def load_instrument(path: str | Path) -> Instrument:
    path = Path(path)
    return parse_instrument(_load_yaml(path), path)


def _load_dir(folder: Path) -> dict[str, Instrument]:
    if not folder.is_dir():
        raise DyadflowError("instrument folder not found", file=str(folder))
    found = {}
    for path in sorted(folder.glob("*.y*ml")):
        inst = load_instrument(path)
        found[inst.key] = inst
    return found


@functools.lru_cache(maxsize=8)
def _load_registry(dirs: tuple[str, ...]) -> dict[str, Instrument]:
    registry: dict[str, Instrument] = {}
    for d in dirs:
        registry.update(_load_dir(Path(d)))  # a study's file overrides a built-in one of the same key
    return registry


def load_registry(instruments_dir: str | Path | None = None) -> dict[str, Instrument]:
    """The built-in instruments, plus (and overridden by) those of a study's folder."""
    dirs = [str(BUILTIN_DIR)]
    if instruments_dir:
        dirs.append(str(Path(instruments_dir)))
    return dict(_load_registry(tuple(dirs)))
