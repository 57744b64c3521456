"""The documentation site (issue 16.7): it builds strictly, its generated reference pages
list every key of the config schema and every built-in instrument, and the README stays
short with links that resolve."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

ROW = re.compile(r"<tr[^>]*><td><code>([^<]*)</code></td>(.*?)</tr>", re.S)


def schema_folder():
    """The schemas' folder: package data in the new layout, else the old top-level folder."""
    for folder in (REPO / "dyadflow" / "schemas", REPO / "schemas"):
        if (folder / "config.schema.yaml").is_file():
            return folder
    raise AssertionError("no config.schema.yaml")


def schema_keys(node, root, prefix=""):
    """Every key of the schema as a dotted path (list entries `key[].child`, free-form
    mappings `key.<name>.child`), walked here independently of the docs hook."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    keys = []
    for name, sub in node.get("properties", {}).items():
        if sub == {}:
            continue
        keys.append(prefix + name)
        keys += schema_keys(sub, root, f"{prefix}{name}.")
        if isinstance(sub.get("items"), dict):
            keys += schema_keys(sub["items"], root, f"{prefix}{name}[].")
        if isinstance(sub.get("additionalProperties"), dict):
            keys += schema_keys(sub["additionalProperties"], root, f"{prefix}{name}.<name>.")
    for branch in node.get("allOf", []):
        keys += schema_keys(branch.get("then", {}), root, prefix)
    return keys


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def config_rows(site):
    text = (site / "reference" / "config" / "index.html").read_text(encoding="utf-8")
    return [(html.unescape(key), cells) for key, cells in ROW.findall(text)]


def test_config_reference_lists_every_key_of_the_schema(site):
    root = yaml.safe_load((schema_folder() / "config.schema.yaml").read_text(encoding="utf-8"))
    expected = set(schema_keys(root, root))
    listed = {key for key, _ in config_rows(site)}
    assert len(expected) > 150  # the walk reached the nested keys
    assert sorted(expected - listed) == []
    assert sorted(listed - expected) == []


def test_config_reference_rows_carry_type_default_and_allowed_values(site):
    rows = dict(config_rows(site))
    assert "<td>integer</td><td><code>25</code></td><td>≥ 1</td>" in rows["report.dyads_per_shard"]
    assert "one of <code>quarantine</code>, <code>strict</code>" in rows["validation"]
    assert "<code>quarantine</code></td>" in rows["validation"]
    assert "Only with <code>strategy: high_low_alliance</code>" in rows["selection[].alpha"]
    assert "<code>event</code>" in rows["inputs[].instruments.<name>.session"]
    assert "case-sensitively" in rows["inputs[].ids.dyad_id.strip_prefix"]  # through $defs/id_rule


def test_instrument_page_lists_every_builtin_instrument(site):
    text = (site / "reference" / "instruments" / "index.html").read_text(encoding="utf-8")
    builtins = {}
    for path in sorted((schema_folder() / "instruments").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        builtins[data["key"]] = data["name"]
    assert {"wai_sr", "wai_s", "bdi_ii", "phq_9", "oq_45", "wai_sr_7"} <= set(builtins)
    for key, name in builtins.items():
        assert f'id="{key}"' in text, key
        assert html.escape(name, quote=False) in text, name
    assert "<td>reliable change</td>\n<td>14 points" in text  # OQ-45.2 manual
    assert "item 9 above 0: suicidal thoughts or wishes" in text  # BDI-II risk item


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150
    first_section = "\n".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("## "))])
    assert "make demo" in first_section and "make test" in first_section


def test_readme_links_resolve(site):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    docs_links = [link for link in links if link.startswith("docs/")]
    assert len(docs_links) >= 20
    missing = []
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        if link.startswith("docs/") and link.endswith(".md"):
            page = link[len("docs/") : -len(".md")]
            built = site / ("index.html" if page == "index" else f"{page}/index.html")
            if not built.is_file():
                missing.append(link)
        elif not (REPO / link).exists():
            missing.append(link)
    assert missing == []


KEYWORDS = {
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "default",
    "enum",
    "const",
    "required",
    "properties",
    "additionalProperties",
    "propertyNames",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "if",
    "then",
}


def test_config_schema_descriptions_are_whole():
    """A description in a YAML flow mapping that holds ', ' is cut there, and the rest becomes a
    stray key (`{description: Path to the export, relative to ...}`): the reference page would
    show half a sentence. Every key of a schema node must be a JSON Schema keyword."""
    root = yaml.safe_load((schema_folder() / "config.schema.yaml").read_text(encoding="utf-8"))
    stray = []

    def walk(node, path):
        if isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")
            return
        if not isinstance(node, dict):
            return
        for key, sub in node.items():
            if key not in KEYWORDS:
                stray.append(f"{path}: {key!r}")
            if key in ("properties", "$defs"):
                for name, child in sub.items():
                    walk(child, f"{path}/{key}/{name}")
            elif key not in ("default", "enum", "const", "required", "description", "title"):
                walk(sub, f"{path}/{key}")

    walk(root, "")
    assert stray == []
