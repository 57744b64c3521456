"""MkDocs hook: the reference pages that must not drift from the code.

At every build it generates

- ``reference/config.md`` from the config schema (every key, nested keys as dotted paths,
  with type, default, allowed values and description), and
- ``reference/instruments.md`` from the built-in instrument registry (items, response
  range, scoring, subscales, severity bands, cut-offs, risk items, sources).

Nothing generated is committed: the pages exist only in the built site.
"""

from __future__ import annotations

import html
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
CONFIG_PAGE = "reference/config.md"
INSTRUMENTS_PAGE = "reference/instruments.md"


def schemas_dir() -> Path:
    """The folder holding config.schema.yaml and instruments/ (package data, ``dyadflow/schemas``)."""
    return REPO / "dyadflow" / "schemas"


def load_builtin_registry() -> dict:
    """The built-in instruments, loaded by this checkout's own registry."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    module = importlib.import_module("dyadflow.core.registry")
    if not Path(module.__file__).resolve().is_relative_to(REPO):
        raise ImportError(f"{module.__name__} was imported from {module.__file__}, not from {REPO}")
    return module.load_registry()


# ------------------------------------------------------------------ the config schema


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def schema_rows(node: dict, root: dict, path: str = "", condition: str = "") -> list[dict]:
    """One row per key of the schema, depth first, in the schema's order. Array items are
    ``key[].child``, free-form mappings ``key.<name>.child``; the keys of a conditional
    branch (``if``/``then``) carry its condition."""
    node = _resolve(node, root)
    rows: list[dict] = []
    for name, child in (node.get("properties") or {}).items():
        if not child:  # ``name: {}`` in a branch: declared above
            continue
        child = _resolve(child, root)
        key = f"{path}.{name}" if path else name
        rows.append({"key": key, "schema": child, "condition": condition})
        rows += _children(child, root, key, condition)
    for branch in node.get("allOf") or ():
        then = branch.get("then")
        if then:
            const = {k: v.get("const") for k, v in (branch.get("if", {}).get("properties") or {}).items()}
            cond = ", ".join(f"{k}: {v}" for k, v in const.items())
            rows += schema_rows(then, root, path, cond)
    return rows


def _children(child: dict, root: dict, key: str, condition: str) -> list[dict]:
    rows = schema_rows(child, root, key, condition)
    items = child.get("items")
    if isinstance(items, dict) and (_resolve(items, root).get("properties") or items.get("allOf")):
        rows += schema_rows(items, root, f"{key}[]", condition)
    extra = child.get("additionalProperties")
    if isinstance(extra, dict) and _resolve(extra, root).get("properties"):
        rows += schema_rows(extra, root, f"{key}.<name>", condition)
    return rows


def _type(schema: dict) -> str:
    kind = schema.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    words = []
    for k in kinds:
        if k == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type"):
            words.append(f"list of {_type(schema['items'])}")
        else:
            words.append(str(k))
    return " or ".join(words) or "any"


def _allowed(schema: dict) -> list[str]:
    out = []
    items = schema.get("items")
    enum = schema.get("enum") or (items.get("enum") if isinstance(items, dict) else None)
    if enum:
        out.append("one of " + ", ".join(_literal(v) for v in enum))
    for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if word in schema:
            out.append(f"{sign} {schema[word]}")
    for word, label in (
        ("minLength", "at least {} character(s)"),
        ("maxLength", "at most {} character(s)"),
        ("minItems", "at least {} item(s)"),
        ("maxItems", "at most {} item(s)"),
    ):
        if word in schema:
            out.append(label.format(schema[word]))
    if "pattern" in schema:
        out.append(f"matches `{schema['pattern']}`")
    return out


def _literal(value: Any) -> str:
    return "`" + (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)) + "`"


def _cell(text: str) -> str:
    """Escaped HTML of plain text with `code` spans."""
    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def config_reference() -> str:
    path = schemas_dir() / "config.schema.yaml"
    root = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = schema_rows(root, root)
    required_top = set(root.get("required", ()))
    out = [
        "# Configuration reference",
        "",
        "Every key of the study configuration, generated from the config schema "
        f"(`{path.relative_to(REPO)}`) when the site is built, so it always matches the code. "
        "Keys of a list's entries are written `key[].child` (`inputs[].path`), keys under a name "
        "of your choice `key.<name>.child`. A default is filled in when the config is loaded; "
        "a key the schema does not know stops the run at start-up "
        "(see [Configuration](../configuration.md)).",
        "",
        f"Required at the top level: {', '.join(f'`{k}`' for k in sorted(required_top))}.",
        "",
    ]
    sections: dict[str, list[dict]] = {}
    for row in rows:
        sections.setdefault(row["key"].split(".")[0].split("[")[0], []).append(row)
    seen: set[str] = set()
    for top, group in sections.items():
        out += [
            f"## `{top}`",
            "",
            '<table class="config-reference">',
            "<thead><tr><th>key</th><th>type</th><th>default</th><th>allowed</th><th>description</th></tr></thead>",
            "<tbody>",
        ]
        for row in group:
            schema = row["schema"]
            default = _literal(schema["default"]) if "default" in schema else "—"
            description = " ".join(str(schema.get("description", "")).split())
            if row["condition"]:
                description = f"Only with `{row['condition']}`. {description}".strip()
            anchor = "" if row["key"] in seen else f' id="{html.escape(row["key"])}"'
            seen.add(row["key"])
            out.append(
                f"<tr{anchor}><td><code>{html.escape(row['key'])}</code></td>"
                f"<td>{_cell(_type(schema))}</td><td>{_cell(default)}</td>"
                f"<td>{_cell('; '.join(_allowed(schema)))}</td><td>{_cell(description)}</td></tr>"
            )
        out += ["</tbody>", "</table>", ""]
    return "\n".join(out)


# ------------------------------------------------------------------ the instrument registry


def _md(text: Any) -> str:
    return html.escape(str(text)).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _items(numbers) -> str:
    return ", ".join(str(n) for n in numbers) or "—"


def instrument_reference() -> str:
    registry = load_builtin_registry()
    folder = schemas_dir() / "instruments"
    out = [
        "# Instruments",
        "",
        "The built-in instrument registry, generated from "
        f"`{folder.relative_to(REPO)}/*.yaml` when the site is built. A study adds or overrides "
        "instruments with its own files (`instruments_dir`; see "
        "[Scoring and instruments](../scoring.md)).",
        "",
        "| key | name | raters | items | response range | scoring | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, inst in sorted(registry.items()):
        items = "pre-scored total" if inst.total_only else str(inst.n_items)
        scale = (
            f"total {_num(inst.total_min)}–{_num(inst.total_max)}"
            if inst.total_only
            else f"{inst.min_value}–{inst.max_value}"
        )
        out.append(
            f"| [`{key}`](#{key}) | {_md(inst.name)} | {', '.join(inst.raters)} | {items} | {scale} "
            f"| {inst.method} | {_md(inst.source) or '—'} |"
        )
    for key, inst in sorted(registry.items()):
        out += ["", f"## {_md(inst.name)} (`{key}`) {{#{key}}}", "", "| | |", "|---|---|"]
        rows = [("key", f"`{key}`"), ("raters", ", ".join(inst.raters)), ("construct", inst.construct)]
        if inst.total_only:
            rows.append(("input", f"pre-scored total, {_num(inst.total_min)}–{_num(inst.total_max)}"))
        else:
            labels = "; ".join(f"{v} = {_md(t)}" for v, t in sorted(inst.labels.items()))
            rows += [
                ("items", str(inst.n_items)),
                ("response range", f"{inst.min_value}–{inst.max_value}" + (f" ({labels})" if labels else "")),
                ("reverse-keyed items", _items(inst.reverse_keyed)),
            ]
        scoring = f"{inst.method} of the keyed items; direction: {inst.direction.replace('_', ' ')}"
        if not inst.total_only:
            scoring += (
                f"; at most {inst.max_missing_fraction:.0%} of items missing ({inst.max_missing_items} of "
                f"{inst.n_items}), missing items: {inst.missing_rule.replace('_', ' ')}"
            )
        rows.append(("scoring", scoring))
        if inst.subscales:
            rows.append(
                (
                    "subscales",
                    f"scored as the {inst.subscale_score}: "
                    + "; ".join(f"`{name}`: items {_items(nums)}" for name, nums in inst.subscales.items()),
                )
            )
        rows.append(
            ("severity bands", "; ".join(f"{_md(b.label)} {_num(b.min)}–{_num(b.max)}" for b in inst.bands) or "—")
        )
        norms = {k: v for k, v in (inst.norms or {}).items() if v is not None}
        if "cutoff" in norms:
            rows.append(
                (
                    "clinical cut-off",
                    f"{_num(norms['cutoff'])}"
                    + (f" ({_md(norms['cutoff_source'])})" if norms.get("cutoff_source") else ""),
                )
            )
        for group in ("clinical", "functional"):
            if isinstance(norms.get(group), dict):
                rows.append((f"{group} norms", ", ".join(f"{k} {_md(_num(v))}" for k, v in norms[group].items())))
        if "sd" in norms:
            rows.append(("norm SD", _num(norms["sd"])))
        if inst.reliability is not None:
            rows.append(("reliability (for the RCI)", _num(inst.reliability)))
        if "reliable_change_points" in norms:
            rows.append(
                (
                    "reliable change",
                    f"{_num(norms['reliable_change_points'])} points"
                    + (f" ({_md(norms['reliable_change_source'])})" if norms.get("reliable_change_source") else ""),
                )
            )
        rows.append(
            (
                "risk items",
                "; ".join(f"item {r.item} above {_num(r.above)}: {_md(r.label)}" for r in inst.risk_items) or "—",
            )
        )
        rows.append(("source", _md(inst.source) or "—"))
        rows.append(("file", f"`{Path(inst.path).name}`" if inst.path else "—"))
        out += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ MkDocs events


def on_files(files: Files, config) -> Files:
    for src, make in ((CONFIG_PAGE, config_reference), (INSTRUMENTS_PAGE, instrument_reference)):
        files.append(File.generated(config, src, content=make()))
    return files


def on_serve(server, config, builder):
    """`mkdocs serve` rebuilds the reference pages when the schema or an instrument changes."""
    server.watch(str(schemas_dir()))
    return server
