"""The start-up check of a study config: every mistake in one short line, before any data is read.

``workflow/rules/common.smk`` runs :func:`check` when the Snakefile loads the config,
so it stays cheap: the standard library, jsonschema and PyYAML only (no polars). It
checks the config against ``dyadflow/schemas/config.schema.yaml`` (unknown keys at every level,
types, allowed values) and against the instrument registry (the built-in instruments
plus the study's ``instruments_dir``): the REDCap ``instruments`` keys, ``outcome``,
``alliance``, the ``instrument`` constants and value maps. It also refuses the ``'?'``
placeholders that ``dyadflow inspect`` writes into a suggested config.

Each mistake is one line: the key path, what is wrong, and "did you mean ..." when a
known key or value is close (difflib).

The schema is the one home of the config's defaults: :func:`fill_defaults` fills a whole
config (the Snakefile, right after the check) and :func:`section` / :func:`selection_spec`
one part of it (Python callers and tests that pass a partial config). No module of the
package repeats a default the schema holds (tests/test_config_defaults.py).
"""

from __future__ import annotations

import copy
import difflib
import functools
import glob
import json
import os
import re
import sys
from pathlib import Path

from dyadflow.core.registry import BUILTIN_DIR, CONFIG_SCHEMA

PLACEHOLDER = "?"
PREFIX = "dyadflow config: "


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(the whole config)"


def _close(word, options) -> list[str]:
    return difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)


def _suggest(word, options, list_all: bool = True) -> str:
    match = _close(word, options)
    if match:
        return f"; did you mean '{match[0]}'?"
    if list_all and options:
        return f" (known: {', '.join(sorted(map(str, options)))})"
    return ""


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= limit else text[: limit - 1] + "…"


JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "a number",
    float: "a number",
    type(None): "empty",
}
SCHEMA_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def _describe(err) -> list[str]:
    """One line per problem of a jsonschema error (never the schema itself)."""
    where = list(err.absolute_path)
    kind = err.validator
    if kind == "additionalProperties" and isinstance(err.instance, dict) and err.validator_value is False:
        allowed = list(err.schema.get("properties", {}))
        patterns = list(err.schema.get("patternProperties", {}))
        lines = []
        for key in err.instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            lines.append(f"{_path(where + [key])}: unknown key{_suggest(key, allowed, list_all=len(allowed) <= 15)}")
        return lines
    if kind == "required":
        missing = [k for k in err.validator_value if isinstance(err.instance, dict) and k not in err.instance]
        return [f"{_path(where)}: the key '{k}' is missing" for k in missing]
    if kind == "enum":
        options = err.validator_value
        return [
            f"{_path(where)}: {_short(err.instance)} is not one of: {', '.join(map(str, options))}"
            + (_suggest(err.instance, options, list_all=False) if isinstance(err.instance, str) else "")
        ]
    if kind == "propertyNames":
        return [f"{_path(where)}: {_short(err.instance)} is not allowed as a key here"]
    if kind == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        got = JSON_TYPES.get(type(err.instance), type(err.instance).__name__)
        return [
            f"{_path(where)}: must be {' or '.join(SCHEMA_TYPES.get(w, w) for w in want)}, not {got} ({_short(err.instance)})"
        ]
    message = err.message
    if len(message) > 160:
        message = message[:159] + "…"
    return [f"{_path(where)}: {message}"]


def schema_problems(config, schema: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    lines: list[str] = []
    for err in errors:
        for line in _describe(err):
            if line not in lines:
                lines.append(line)
    return lines


# keys a study config may still hold from older dyadflow versions: one line saying what replaces them
REMOVED = {
    ("report", "shards"): "report.shards: this key was removed; set report.dyads_per_shard "
    "(dyads per report-rendering job) instead",
}


def removed_keys(config) -> list[str]:
    lines = []
    for (section_name, key), line in REMOVED.items():
        part = config.get(section_name) if isinstance(config, dict) else None
        if isinstance(part, dict) and key in part:
            lines.append(line)
    return lines


def registry_keys(basedir: str | os.PathLike[str], instruments_dir: str | None) -> set[str]:
    """The instrument keys (an instrument file's key is its file name, see dyadflow/core/registry.py)."""
    files = glob.glob(os.path.join(BUILTIN_DIR, "*.y*ml"))
    if instruments_dir and os.path.isdir(instruments_dir):
        files += glob.glob(os.path.join(instruments_dir, "*.y*ml"))
    return {Path(f).stem for f in files}


def _instrument(where: str, value, keys: set[str]) -> list[str]:
    if not isinstance(value, str) or value == PLACEHOLDER or value in keys:
        return []
    return [f"{where}: '{value}' is not an instrument in the registry{_suggest(value, keys)}"]


def _placeholders(where: str, constants) -> list[str]:
    if not isinstance(constants, dict):
        return []
    return [
        f"{where}.{field}: '?' is a placeholder left from `dyadflow inspect`: give the value, "
        f"or map a column under 'columns'"
        for field, value in constants.items()
        if isinstance(value, str) and value.strip() == PLACEHOLDER
    ]


def registry_problems(config: dict, basedir: str | os.PathLike[str]) -> list[str]:
    lines = []
    inst_dir = config.get("instruments_dir")
    if isinstance(inst_dir, str) and inst_dir and not os.path.isdir(inst_dir):
        lines.append(f"instruments_dir: the folder '{inst_dir}' does not exist")
    keys = registry_keys(basedir, inst_dir if isinstance(inst_dir, str) else None)
    lines += _instrument("outcome", config.get("outcome"), keys)
    alliance = config.get("alliance")
    if isinstance(alliance, dict):
        for rater in ("patient", "therapist"):
            lines += _instrument(f"alliance.{rater}", alliance.get(rater), keys)
    inputs = config.get("inputs")
    for i, spec in enumerate(inputs if isinstance(inputs, list) else []):
        if not isinstance(spec, dict):
            continue
        where = f"inputs[{i}]"
        constants = spec.get("constants")
        lines += _placeholders(f"{where}.constants", constants)
        if isinstance(constants, dict):
            lines += _instrument(f"{where}.constants.instrument", constants.get("instrument"), keys)
        values = spec.get("values")
        if isinstance(values, dict) and isinstance(values.get("instrument"), dict):
            for raw, target in values["instrument"].items():
                lines += _instrument(f"{where}.values.instrument.{raw}", target, keys)
        forms = spec.get("instruments")
        if isinstance(forms, dict):
            for key, form in forms.items():
                if key not in keys:
                    lines.append(
                        f"{where}.instruments.{key}: '{key}' is not an instrument in the registry{_suggest(key, keys)}"
                    )
                if isinstance(form, dict):
                    lines += _placeholders(f"{where}.instruments.{key}.constants", form.get("constants"))
    return lines


def check(config, schema_path: str | os.PathLike[str], basedir: str | os.PathLike[str]) -> list[str]:
    """Every mistake in ``config``, one line each (no prefix); an empty list when it is fine.

    The config is checked as given, before the schema's defaults are filled in.
    """
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    removed = removed_keys(config)
    lines = removed + [
        line
        for line in schema_problems(config, schema)
        if not any(line.startswith(old.split(":")[0] + ":") for old in removed)
    ]
    if isinstance(config, dict):
        lines += [line for line in registry_problems(config, basedir) if line not in lines]
    return lines


def stop_if_wrong(config, schema_path, basedir, configfiles=()) -> None:
    """Print every mistake (``dyadflow config: <key path>: <what>``) and end Snakemake with
    status 1 before any rule runs; return quietly when the config is fine."""
    lines = check(dict(config) if hasattr(config, "items") else config, schema_path, basedir)
    if not lines:
        return
    where = ", ".join(str(f) for f in configfiles) or "the study config"
    for line in lines:
        print(PREFIX + line, file=sys.stderr)
    print(f"{PREFIX}{len(lines)} mistake(s) in {where}; nothing was read or run.", file=sys.stderr, flush=True)
    raise SystemExit(1)


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return Path(CONFIG_SCHEMA).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _parsed_schema() -> dict:
    import yaml

    return yaml.safe_load(_schema_text())


def load_schema() -> dict:
    """The config schema (a fresh copy: callers may change it). Parsed once per process:
    parsing the YAML took ~0.2 s CPU, twice for every input a stage reads (issue 18)."""
    return copy.deepcopy(_parsed_schema())


def _filling_validator(schema: dict):
    """A jsonschema validator that fills in every ``default`` of the properties it visits:
    nested objects (once their own default ``{}`` is in place), array items (``inputs[*]``,
    ``selection[*]``, ``microprocess.inputs[*]``) and the strategy branch (``if``/``then``)
    a selection matches. Each default is a copy, never the schema's own object."""
    from jsonschema import Draft202012Validator, validators

    visit = Draft202012Validator.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from visit(validator, props, instance, subschema)

    return validators.extend(Draft202012Validator, {"properties": properties})(schema)


def fill_defaults(config: dict, schema: dict | None = None) -> dict:
    """Fill the schema's defaults into ``config`` in place (and return it). Mistakes are
    :func:`check`'s business: this only fills."""
    for _ in _filling_validator(schema or load_schema()).iter_errors(config):
        pass
    return config


def plain(obj):
    """Snakemake's config mappings (and any mapping) as plain dicts and lists."""
    if hasattr(obj, "items"):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def _part(subschema: dict, value) -> dict:
    root = _parsed_schema()  # read only: fill_defaults copies every default it fills in
    out = plain(value) if value is not None else {}
    fill_defaults(out, {**subschema, "$defs": root.get("$defs", {})})
    return out


def section(name: str, value: dict | None = None) -> dict:
    """The top-level section ``name`` (``stats``, ``feedback``, ``microprocess``, ``report``
    ...) with the schema's defaults filled in; ``value`` is not changed."""
    return _part(_parsed_schema()["properties"][name], value)


def selection_spec(spec: dict) -> dict:
    """One ``selection`` entry with its strategy's defaults filled in."""
    return _part(_parsed_schema()["properties"]["selection"]["items"], spec)


def input_spec(spec: dict) -> dict:
    """One ``inputs`` entry with its format's defaults filled in."""
    return _part(_parsed_schema()["properties"]["inputs"]["items"], spec)
