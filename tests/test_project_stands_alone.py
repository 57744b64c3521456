"""The project stands alone: no tracked file outside tests/ points at the developers'
shared folder or its methods file (a user's clone has neither)."""

import subprocess

from conftest import REPO


def test_no_file_points_outside_the_project():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    hits = []
    for name in files:
        if name.startswith("tests/"):
            continue
        path = REPO / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        hits += [f"{name}: {w}" for w in ("../shared", "METHODS.md") if w in text]
    assert hits == []
