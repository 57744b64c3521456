"""Names derived from the configuration. Standard library only: the Snakefile imports
this at parse time, and every cluster job parses the Snakefile again."""

from __future__ import annotations

import os


def input_name(spec: dict) -> str:
    """The short name of an input, used for its intermediate files."""
    if spec.get("name"):
        return spec["name"]
    stem = os.path.basename(spec["path"]).split(".")[0]
    clean = "".join(c if c.isalnum() or c in "_-" else "_" for c in stem).strip("_-")
    return clean or "input"


def unsafe_paths(config: dict) -> str | None:
    """A message naming the config keys whose file paths contain ``{`` or ``}`` (Snakemake
    reads those as wildcards in a rule's input files), or None when there are none."""
    keys = []
    for i, spec in enumerate(config.get("inputs") or []):
        keys += [(f"inputs[{i}].{k}", spec.get(k)) for k in ("path", "dictionary")]
    keys.append(("instruments_dir", config.get("instruments_dir")))
    for i, spec in enumerate((config.get("microprocess") or {}).get("inputs") or []):
        keys.append((f"microprocess.inputs[{i}].path", spec.get("path")))
    bad = [(k, v) for k, v in keys if isinstance(v, str) and ("{" in v or "}" in v)]
    if not bad:
        return None
    listed = "; ".join(f"config key '{k}': {v!r}" for k, v in bad)
    return (
        f"{listed}: a file path cannot contain '{{' or '}}', which Snakemake reads as a wildcard; "
        "rename the file or folder (or use a symbolic link without them)"
    )


# The tables the report plan writes for each shard (results/reports/shards/tables/<k>/<name>.parquet),
# the inputs of that shard's report_shard job. Named once here, where the Snakefile can read
# them at parse time without importing polars; dyadflow.report.shards writes and reads them.
SHARD_TABLES = (
    "dyads",
    "sessions",
    "scores",
    "sudden_gains",
    "ruptures",
    "selection",
    "rejections",
    "consent",
    "feedback",
    "subscales",
)
