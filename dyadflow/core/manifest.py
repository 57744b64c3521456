"""Provenance: what produced a set of results (``results/manifest.json``).

The manifest records the dyadflow version, the versions of its direct dependencies
(from ``importlib.metadata``), the validated configuration and its hash, the sha256 of
every configured input file and instrument file, and the git commit of the dyadflow
checkout that ran the workflow. It holds no time stamps, host names or absolute
paths, so the same code, environment, config and inputs give the same bytes: a run on
a laptop and a run on a SLURM cluster from the same checkout write identical manifests.

Standard library only at import time: the workflow calls :func:`environment` while it
builds the job graph, and that must stay cheap.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from pathlib import Path

from dyadflow import __version__

#: Bumped when a key changes meaning; adding keys keeps the number.
MANIFEST_VERSION = 1
PACKAGE = "dyadflow"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_json(obj) -> bytes:
    """The canonical JSON encoding hashed for the config: sorted keys, no whitespace, UTF-8.

    Values JSON has no type for (a YAML date) are written as their text.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def config_hash(config: dict) -> str:
    """sha256 (hex) of the canonical JSON of a validated configuration."""
    return hashlib.sha256(canonical_json(config)).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def requirement_name(requirement: str) -> str | None:
    """The distribution name of a requirement string, or None for optional extras.

    ``"pandera[polars]==0.35.0"`` → ``"pandera"``; ``'pytest==9.2.0; extra == "test"'`` → None.
    """
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    m = _NAME.match(requirement)
    return m.group(1) if m else None


def direct_dependencies(dist: str = PACKAGE) -> list[str]:
    """Names of the direct (non-optional) dependencies of an installed distribution."""
    try:
        requires = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = {requirement_name(r) for r in requires}
    return sorted((n for n in names if n), key=str.lower)


def package_versions(names: list[str]) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(path: str | os.PathLike[str]) -> dict:
    """The commit checked out at ``path`` and whether tracked files differ from it.

    ``{"commit": None, "dirty": None}`` when ``path`` is not in a git checkout or git
    is not installed.
    """
    none = {"commit": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if commit is None or not re.fullmatch(r"[0-9a-f]{40,64}", commit.strip()):
        return none
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def environment(workflow_dir: str | os.PathLike[str]) -> dict:
    """What the code and environment contribute: version, packages, Python, git state.

    Cheap (no data reads); the workflow passes it to the manifest rule as a parameter,
    so a new commit or an upgraded package writes a new manifest.
    """
    return {
        "dyadflow_version": __version__,
        "python": platform.python_version(),
        "packages": package_versions(direct_dependencies()),
        "git": git_state(workflow_dir),
    }


def build(config: dict, inputs: list[dict], instruments: dict[str, str], env: dict) -> dict:
    """The manifest as a dict.

    ``inputs`` are the configured input specs (``name``, ``path``, ``format``), with
    paths as configured (relative to the working directory); ``instruments`` maps the
    name shown for each instrument file in use (built-in ones relative to the
    workflow) to the file to hash; ``env`` is :func:`environment`.
    """
    files = []
    for spec in sorted(inputs, key=lambda s: (s["name"], s["path"])):
        path = spec["path"]
        files.append(
            {
                "name": spec["name"],
                "path": Path(path).as_posix(),
                "format": spec["format"],
                "bytes": os.path.getsize(path),
                "sha256": sha256_file(path),
            }
        )
    return {
        "manifest_version": MANIFEST_VERSION,
        "dyadflow_version": env["dyadflow_version"],
        "python": env["python"],
        "packages": dict(sorted(env["packages"].items(), key=lambda kv: kv[0].lower())),
        "git_commit": env["git"]["commit"],
        "git_dirty": env["git"]["dirty"],
        "config_sha256": config_hash(config),
        "config": config,
        "inputs": files,
        "instruments": [{"path": name, "sha256": sha256_file(instruments[name])} for name in sorted(instruments)],
    }


def write(path: str | os.PathLike[str], manifest: dict) -> None:
    from dyadflow.core import atomic  # polars comes with it; only needed when the job runs

    atomic.write_json(path, manifest)


def load(path: str | os.PathLike[str]) -> dict:
    """Read a manifest written by :func:`write`."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def summary(manifest: dict | None) -> dict:
    """The short provenance shown in report footers: version, config hash and git commit
    (8 hex digits each), and whether the checkout had uncommitted changes."""
    if not manifest:
        return {"version": __version__, "config": None, "commit": None, "dirty": False}
    commit = manifest.get("git_commit")
    return {
        "version": manifest.get("dyadflow_version"),
        "config": (manifest.get("config_sha256") or "")[:8] or None,
        "commit": commit[:8] if commit else None,
        "dirty": bool(manifest.get("git_dirty")),
    }
