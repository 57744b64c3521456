"""results/manifest.json: what produced the results, in bytes that do not depend on where or when."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import io as pyio
import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import DEMO_FILES, REPO, copy_built, snakemake
from pypdf import PdfReader

from dyadflow import __version__
from dyadflow.core import cluster, manifest

SHA_EMPTY_OBJECT = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256(b"{}")
SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256(b"abc"), FIPS 180-2


def test_canonical_json_sorts_keys_drops_whitespace_keeps_utf8():
    assert manifest.canonical_json({"b": 1, "a": [1, "å"], "c": {"y": None, "x": True}}) == (
        '{"a":[1,"å"],"b":1,"c":{"x":true,"y":null}}'.encode()
    )
    # a YAML date has no JSON type: it is hashed as its ISO text
    assert manifest.canonical_json({"start": dt.date(2024, 3, 18)}) == b'{"start":"2024-03-18"}'


def test_config_hash_is_sha256_of_the_canonical_json():
    assert manifest.config_hash({}) == SHA_EMPTY_OBJECT
    assert manifest.config_hash({"a": 1, "b": [2, 3]}) == hashlib.sha256(b'{"a":1,"b":[2,3]}').hexdigest()
    # key order does not matter, values do
    assert manifest.config_hash({"b": [2, 3], "a": 1}) == manifest.config_hash({"a": 1, "b": [2, 3]})
    assert manifest.config_hash({"a": 1, "b": [3, 2]}) != manifest.config_hash({"a": 1, "b": [2, 3]})


def test_sha256_file(tmp_path):
    (tmp_path / "abc.txt").write_bytes(b"abc")
    assert manifest.sha256_file(tmp_path / "abc.txt") == SHA_ABC


@pytest.mark.parametrize(
    "requirement, name",
    [
        ("polars==2.1.0", "polars"),
        ("pandera[polars]==0.35.0", "pandera"),
        ("snakemake-executor-plugin-slurm==2.8.0", "snakemake-executor-plugin-slurm"),
        ("PyYAML>=6 ; python_version >= '3.8'", "PyYAML"),
        ('pytest==9.2.0; extra == "test"', None),
    ],
)
def test_requirement_name(requirement, name):
    assert manifest.requirement_name(requirement) == name


def test_direct_dependencies_are_the_pinned_ones_of_pyproject():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    expected = sorted({manifest.requirement_name(p) for p in pins}, key=str.lower)
    assert manifest.direct_dependencies() == expected
    assert "pytest" not in expected  # test extras are not run-time dependencies
    versions = manifest.package_versions(expected + ["surely-not-installed-pkg"])
    for pin in pins:
        name, version = manifest.requirement_name(pin), pin.split("==")[1]
        assert versions[name] == version, pin  # the environment is the pinned one
    assert versions["surely-not-installed-pkg"] is None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_git_state(tmp_path):
    assert manifest.git_state(tmp_path) == {"commit": None, "dirty": None}
    git(tmp_path, "init", "-q")
    assert manifest.git_state(tmp_path) == {"commit": None, "dirty": None}  # no commit yet
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert manifest.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "untracked.txt").write_text("not part of the checkout\n")
    assert manifest.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("two\n")
    assert manifest.git_state(tmp_path) == {"commit": head, "dirty": True}


ENV = {
    "dyadflow_version": "0.1.0",
    "python": "3.11.7",
    "packages": {"polars": "2.1.0", "Jinja2": "3.1.6"},
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
}


def test_build_records_versions_config_and_checksums(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("exports").mkdir()
    Path("exports/q.csv").write_bytes(b"abc")
    Path("inst.yaml").write_bytes(b"")
    config = {"study": {"name": "S"}, "inputs": [{"path": "exports/q.csv", "format": "canonical_csv"}]}
    inputs = [{"name": "q", "path": "exports/q.csv", "format": "canonical_csv"}]
    got = manifest.build(config, inputs, {"dyadflow/schemas/instruments/x.yaml": "inst.yaml"}, ENV)
    assert got == {
        "manifest_version": 1,
        "dyadflow_version": "0.1.0",
        "python": "3.11.7",
        "packages": {"Jinja2": "3.1.6", "polars": "2.1.0"},
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": False,
        "config_sha256": hashlib.sha256(
            b'{"inputs":[{"format":"canonical_csv","path":"exports/q.csv"}],"study":{"name":"S"}}'
        ).hexdigest(),
        "config": config,
        "inputs": [{"name": "q", "path": "exports/q.csv", "format": "canonical_csv", "bytes": 3, "sha256": SHA_ABC}],
        "instruments": [
            {"path": "dyadflow/schemas/instruments/x.yaml", "sha256": hashlib.sha256(b"").hexdigest()},
        ],
    }


def test_written_manifest_is_deterministic_and_loads_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("q.csv").write_bytes(b"abc")
    data = manifest.build({"z": 1, "a": 2}, [{"name": "q", "path": "q.csv", "format": "canonical_csv"}], {}, ENV)
    manifest.write("one/manifest.json", data)
    manifest.write(
        "two/manifest.json",
        manifest.build({"a": 2, "z": 1}, [{"name": "q", "path": "q.csv", "format": "canonical_csv"}], {}, ENV),
    )
    one, two = Path("one/manifest.json").read_bytes(), Path("two/manifest.json").read_bytes()
    assert one == two
    assert one.endswith(b"}\n") and one.index(b'"config"') < one.index(b'"dyadflow_version"')  # sorted keys
    assert manifest.load("one/manifest.json") == data
    assert str(tmp_path).encode() not in one  # no absolute paths


def test_summary_for_the_report_footer():
    data = {
        "dyadflow_version": "0.1.0",
        "config_sha256": "f4b6f1d69cf60c59" + "0" * 48,
        "git_commit": "673c2864" + "a" * 32,
        "git_dirty": True,
    }
    assert manifest.summary(data) == {"version": "0.1.0", "config": "f4b6f1d6", "commit": "673c2864", "dirty": True}
    assert manifest.summary({**data, "git_commit": None, "git_dirty": None}) == {
        "version": "0.1.0",
        "config": "f4b6f1d6",
        "commit": None,
        "dirty": False,
    }
    assert manifest.summary(None) == {"version": __version__, "config": None, "commit": None, "dirty": False}


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pyio.BytesIO(data)).pages)


def test_slurm_job_id():
    assert cluster.slurm_job_id({}) is None
    assert cluster.slurm_job_id({"SLURM_JOB_ID": "17"}) == "17"
    assert cluster.slurm_job_id({"SLURM_JOB_ID": "19", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3"}) == "7_3"


def test_polars_threads_follow_the_slurm_allocation():
    env = {"SLURM_CPUS_PER_TASK": "2"}
    assert cluster.limit_threads_to_allocation(env, {}) == "2" and env["POLARS_MAX_THREADS"] == "2"
    env = {"SLURM_CPUS_PER_TASK": "2", "POLARS_MAX_THREADS": "8"}  # the user's own choice wins
    assert cluster.limit_threads_to_allocation(env, {}) is None and env["POLARS_MAX_THREADS"] == "8"
    env = {"SLURM_CPUS_PER_TASK": "2"}  # too late once polars is loaded
    assert cluster.limit_threads_to_allocation(env, {"polars": object()}) is None and "POLARS_MAX_THREADS" not in env
    env = {}  # not in SLURM
    assert cluster.limit_threads_to_allocation(env, {}) is None and env == {}


# --- in the workflow ----------------------------------------------------------------


@pytest.mark.e2e
def test_workflow_writes_the_manifest_and_reports_refer_to_it(demo_built, tmp_path):
    """On a copy of the session's demo build (conftest.demo_built): the targets are up to date."""
    copy_built(demo_built, tmp_path)
    cfg = tmp_path / "study.yaml"
    assert cfg.read_text() == (REPO / "config" / "config.yaml").read_text()
    proc = snakemake(
        tmp_path, "results/manifest.json", "results/reports/shards/0.json", "--cores", "2", "--configfile", str(cfg)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    path = tmp_path / "results" / "manifest.json"
    data = manifest.load(path)
    assert data["dyadflow_version"] == __version__
    assert data["packages"]["polars"] == importlib.metadata.version("polars")
    assert data["config"]["study"]["name"] == "Demo trial (synthetic data)"
    assert data["config"]["report"]["dyads_per_shard"] == 25  # the validated config, defaults filled in
    assert "shards" not in data["config"]["report"]  # the deprecated key is gone from the schema
    assert data["config_sha256"] == manifest.config_hash(data["config"])
    assert data["inputs"] == [
        {
            "name": name,
            "path": path,
            "format": fmt,
            "bytes": (tmp_path / path).stat().st_size,
            "sha256": hashlib.sha256((tmp_path / path).read_bytes()).hexdigest(),
        }
        for name, path, fmt in sorted(  # sorted by name; the dial rating files are inputs too
            [
                ("oq45_clinic", DEMO_FILES[2], "xlsx"),
                ("redcap_export", DEMO_FILES[0], "redcap"),
                ("wai_s_qualtrics", DEMO_FILES[1], "qualtrics"),
            ]
            + [
                (f"dial:{p}", p, "dial")
                for p in sorted(f"data/demo/dial/{f.name}" for f in (tmp_path / "data/demo/dial").glob("*.csv"))
            ]
            # the coded file and the frozen key of the demo's coding (issue 19)
            + [
                ("coding:coded_high_low", "data/demo/coded_high_low.csv", "canonical_csv"),
                ("coding_key:high_low", "data/demo/high_low_key_frozen.csv", "blinding_key"),
            ]
        )
    ]
    assert len([i for i in data["inputs"] if i["format"] == "dial"]) == 7
    assert [i["path"] for i in data["instruments"]] == sorted(
        [
            f"dyadflow/schemas/instruments/{p.name}"
            for p in (REPO / "dyadflow" / "schemas" / "instruments").glob("*.yaml")
        ]
        + [
            f"data/demo/instruments/{p.name}" for p in (REPO / "data" / "demo" / "instruments").glob("*.yaml")
        ]  # instruments_dir
    )
    head = manifest.git_state(REPO)
    assert (data["git_commit"], data["git_dirty"]) == (head["commit"], head["dirty"])

    # every report of the shard shows the manifest's config hash and points to the manifest
    # (not the commit: a new commit must not re-render unchanged dyads' reports)
    shard = json.loads((tmp_path / "results" / "reports" / "shards" / "0.json").read_text())
    assert shard["reports"]
    footer = f"dyadflow {__version__} · config {data['config_sha256'][:8]} · data "
    for rep in shard["reports"]:
        text = _pdf_text((tmp_path / rep["path"]).read_bytes())
        assert footer in text and "results/manifest.json" in text, rep["path"]

    # nothing to do on a rerun; a forced rerun writes the same bytes
    before = path.read_bytes()
    proc = snakemake(tmp_path, "results/manifest.json", "-n", "--configfile", str(cfg))
    assert "Nothing to be done" in proc.stdout + proc.stderr
    proc = snakemake(
        tmp_path, "results/manifest.json", "--cores", "1", "--forcerun", "manifest", "--configfile", str(cfg)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert path.read_bytes() == before

    # another config: the manifest is rebuilt (params changed) and its hash changes
    cfg.write_text(cfg.read_text().replace("dyads_per_shard: 25", "dyads_per_shard: 40"))
    proc = snakemake(tmp_path, "results/manifest.json", "--cores", "1", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    changed = manifest.load(path)
    assert changed["config"]["report"]["dyads_per_shard"] == 40
    assert changed["config_sha256"] != data["config_sha256"]
    assert changed["inputs"] == data["inputs"]
