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
