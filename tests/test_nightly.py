"""dyadflow nightly (issue 8): lock, run summary, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import SMALL_STUDY_CONFIG, make_small_study, run_nightly

from dyadflow.tools import nightly

# ---------------------------------------------------------------- per-dyad fingerprints


def _validated(rows):
    return pl.DataFrame(
        rows,
        schema={"dyad_id": pl.String, "session": pl.Int64, "total": pl.Float64, "source_line": pl.Int64},
        orient="row",
    )


def test_fingerprints_ignore_line_numbers_and_row_order(tmp_path):
    a = _validated([("D1", 1, 10.0, 2), ("D1", 2, 12.0, 3), ("D2", 1, 7.0, 4)])
    # the same rows, further down the file and in another order
    b = _validated([("D2", 1, 7.0, 40), ("D1", 2, 12.0, 31), ("D1", 1, 10.0, 30)])
    a.write_parquet(tmp_path / "a.parquet")
    b.write_parquet(tmp_path / "b.parquet")
    fa, fb = nightly.dyad_fingerprints(tmp_path / "a.parquet"), nightly.dyad_fingerprints(tmp_path / "b.parquet")
    assert fa.get_column("dyad_id").to_list() == ["D1", "D2"]
    assert fa.get_column("n_rows").to_list() == [2, 1]
    assert fa.equals(fb)


def test_one_changed_value_changes_only_that_dyad(tmp_path):
    _validated([("D1", 1, 10.0, 2), ("D2", 1, 7.0, 3)]).write_parquet(tmp_path / "a.parquet")
    _validated([("D1", 1, 11.0, 2), ("D2", 1, 7.0, 3)]).write_parquet(tmp_path / "b.parquet")
    fa, fb = nightly.dyad_fingerprints(tmp_path / "a.parquet"), nightly.dyad_fingerprints(tmp_path / "b.parquet")
    assert fa.row(0)[2] != fb.row(0)[2]
    assert fa.row(1) == fb.row(1)


def test_compare_dyads_new_changed_removed():
    prev = pl.DataFrame({"dyad_id": ["D1", "D2", "D3"], "fingerprint": ["a", "b", "c"]})
    cur = pl.DataFrame({"dyad_id": ["D4", "D3", "D1"], "fingerprint": ["d", "x", "a"]})
    assert nightly.compare_dyads(prev, cur) == {"new": ["D4"], "changed": ["D3"], "removed": ["D2"]}
    assert nightly.compare_dyads(None, cur) == {"new": ["D4", "D3", "D1"], "changed": [], "removed": []}


# ---------------------------------------------------------------- rejections by content

REJ_HEADER = "source_file,source_line,column,value,rule,message,dyad_id,session,instrument,source_column\n"


def test_new_rejections_are_found_by_content_not_line(tmp_path):
    (tmp_path / "prev.csv").write_text(
        REJ_HEADER
        + "x.csv,5,item_04,6,item_value,too high,D7,2,wai_sr,item_04\n"
        + "x.csv,9,date,2024-02-30,date_format,no such day,D9,3,bdi_ii,date\n"
    )
    # the export grew: the same two problems moved down; one new problem, and a second
    # copy of an old one (two rows with the same problem are two rejections)
    (tmp_path / "cur.csv").write_text(
        REJ_HEADER
        + "x.csv,25,item_04,6,item_value,too high,D7,2,wai_sr,item_04\n"
        + "x.csv,29,date,2024-02-30,date_format,no such day,D9,3,bdi_ii,date\n"
        + "x.csv,31,item_04,6,item_value,too high,D7,2,wai_sr,item_04\n"
        + "x.csv,40,session,x,session_format,not a number,D2,x,wai_s,session\n"
    )
    new = nightly.new_rejections(
        nightly.rejection_keys(tmp_path / "prev.csv"), nightly.rejection_keys(tmp_path / "cur.csv")
    )
    assert new.select("source_line", "rule").rows() == [("31", "item_value"), ("40", "session_format")]


# ---------------------------------------------------------------- outputs rebuilt


def test_changed_outputs_counts_by_folder():
    before = {"stats/a.csv": (10, 1), "stats/b.csv": (10, 1), "scores/s.csv": (5, 1), "old.json": (1, 1)}
    after = {"stats/a.csv": (10, 2), "stats/b.csv": (10, 1), "scores/s.csv": (6, 1), "ingest/x.parquet": (3, 3)}
    out = nightly.changed_outputs(before, after)
    assert out == {
        "total": 3,
        "by_folder": {"ingest": 1, "scores": 1, "stats": 1},
        "files": ["ingest/x.parquet", "scores/s.csv", "stats/a.csv"],
        "removed": ["old.json"],
    }


def test_snapshot_leaves_out_run_summaries(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x.json").write_text("{}")
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "d.csv").write_text("abc")
    assert list(nightly.snapshot(tmp_path)) == ["stats/d.csv"]
    assert nightly.snapshot(tmp_path)["stats/d.csv"][0] == 3


def test_temporaries_of_a_killed_job_are_removed(tmp_path):
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / ".dyads.csv.abc123.tmp").write_text("half")
    (tmp_path / "stats" / "dyads.csv").write_text("whole")
    assert nightly.remove_temporaries(tmp_path) == ["stats/.dyads.csv.abc123.tmp"]
    assert sorted(p.name for p in (tmp_path / "stats").iterdir()) == ["dyads.csv"]


# ---------------------------------------------------------------- lock and exit codes


def test_a_second_nightly_exits_at_once_while_one_holds_the_lock(tmp_path, capsys):
    held = nightly.Lock(tmp_path / "results" / "runs" / ".lock")
    assert held.acquire() is None
    try:
        code = nightly.run(None, workdir=tmp_path)
    finally:
        held.release()
    assert code == nightly.EXIT_LOCKED == 75
    err = capsys.readouterr().err
    assert "another nightly build is running (pid " in err and "Nothing was done; exit status 75" in err
    assert not list((tmp_path / "results" / "runs").glob("*.json"))


def test_a_missing_config_file_is_a_usage_error(tmp_path, capsys):
    assert nightly.run(str(tmp_path / "nope.yaml"), workdir=tmp_path) == nightly.EXIT_USAGE == 2
    assert "the config file" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end


def _edit_export(path: Path) -> None:
    """D003's first BDI-II item changes, D012 leaves, D099 arrives, and D004 gets one bad row."""
    df = pl.read_csv(path, infer_schema=False)
    first_d003 = df.with_row_index().filter(pl.col("dyad_id") == "D003").get_column("index")[0]
    old = df.get_column("item_01")[first_d003]
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == first_d003)
        .then(pl.lit("0" if old != "0" else "1"))
        .otherwise(pl.col("item_01"))
        .alias("item_01")
    )
    new = df.filter(pl.col("dyad_id") == "D001").with_columns(dyad_id=pl.lit("D099"), patient_id=pl.lit("P099"))
    bad = df.filter((pl.col("dyad_id") == "D004") & (pl.col("instrument") == "wai_sr")).head(1)
    bad = bad.with_columns(session=pl.lit("9"), item_02=pl.lit("9"))
    df = pl.concat([df.filter(pl.col("dyad_id") != "D012"), new, bad])
    df.write_csv(path, null_value="")


def test_one_changed_dyad_is_reported(small_study_built, tmp_path):
    work = tmp_path / "study"
    shutil.copytree(small_study_built, work, symlinks=True)
    _edit_export(work / "data" / "questionnaires.csv")
    proc = run_nightly(work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = sorted((work / "results" / "runs").glob("*.json"))
    assert len(runs) == 2
    s = json.loads(runs[-1].read_text())
    assert s["exit_status"] == 0 and s["snakemake_exit_code"] == 0
    assert s["previous_run"] == runs[0].stem
    assert (s["dyads"]["new"], s["dyads"]["changed"], s["dyads"]["removed"]) == (["D099"], ["D003"], ["D012"])
    assert s["dyads"]["total"] == 12
    rej = s["rejections"]
    assert (rej["total"], rej["new_total"], rej["new_by_rule"]) == (1, 1, {"item_value": 1})
    n_lines = len((work / "data" / "questionnaires.csv").read_text().splitlines())
    assert rej["new"][0]["source_line"] == str(n_lines) and rej["new"][0]["dyad_id"] == "D004"
    assert (
        s["outputs"]["by_folder"]
        == {
            "ingest": 2,
            "scores": 3,
            "selection": 1,
            "stats": 9,
            "validated": 2,
            "validation": 3,
        }
    )  # validated: questionnaires and consent; scores: + reliability.csv; stats: + feedback.parquet, .csv, subscales.csv
    assert s["wall_time_s"] > 0
    text = (work / "results" / "runs" / f"{runs[-1].stem}.txt").read_text()
    assert text.startswith(f"dyadflow nightly {runs[-1].stem}: OK (exit status 0)")
    assert (
        "  new: 1: D099\n  changed (their rows differ): 1: D003\n  removed (no accepted rows any more): 1: D012\n"
        in text
    )
    assert "rejected now: 1; new since the last nightly: 1\n    item_value: 1\n" in text
    assert text in proc.stdout  # cron mails stdout

    # the next night, nothing new: nothing rebuilt, nothing new, the old rejection is not new
    proc = run_nightly(work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(sorted((work / "results" / "runs").glob("*.json"))[-1].read_text())
    assert s["outputs"]["total"] == 0 and s["rejections"]["new_total"] == 0 and s["rejections"]["total"] == 1
    assert s["dyads"]["new"] == s["dyads"]["changed"] == s["dyads"]["removed"] == []
    assert "none: nothing had changed since the last build" in proc.stdout


def test_strict_validation_failure_is_a_non_zero_exit(tmp_path):
    make_small_study(tmp_path, SMALL_STUDY_CONFIG.replace("validation: quarantine", "validation: strict"))
    _edit_export(tmp_path / "data" / "questionnaires.csv")
    proc = run_nightly(tmp_path)
    assert proc.returncode == nightly.EXIT_FAILED == 1
    (summary,) = (tmp_path / "results" / "runs").glob("*.json")
    s = json.loads(summary.read_text())
    assert s["exit_status"] == 1 and s["snakemake_exit_code"] != 0
    assert s["failure"].startswith(
        "dyadflow validate: validation failed (validation: strict): 1 row(s) rejected in 1 file(s)"
    )
    text = summary.with_suffix(".txt").read_text()
    assert text.startswith(f"dyadflow nightly {summary.stem}: FAILED (exit status 1)")
    assert "WHAT WENT WRONG\n  dyadflow validate: validation failed" in text
    # the stage failure ends with the dyadflow message: no traceback fragments (point 16)
    log = (tmp_path / s["snakemake_log"]).read_text()
    assert "dyadflow validate: validation failed (validation: strict)" in log
    for fragment in ("StageFailed", "RuleException", "stages.py", "common.smk", "Traceback"):
        assert fragment not in log, fragment
    # a failed night does not become the baseline for the next comparison
    assert not (tmp_path / "results" / "runs" / ".state" / "state.json").exists()


# ---------------------------------------------------------------- a live manual run (issue 14, point 13)

# A stand-in for a manual `snakemake` run in the study directory: it writes Snakemake's
# lock file and then either keeps its log under .snakemake/log/ open (as Snakemake does
# for the whole run) or is a `snakemake --directory WORK` command line.
FAKE_RUN = """\
import os, sys, time
work, ready, keep_log = sys.argv[-3], sys.argv[-2], sys.argv[-1] == "log"
os.makedirs(os.path.join(work, ".snakemake", "locks"), exist_ok=True)
os.makedirs(os.path.join(work, ".snakemake", "log"), exist_ok=True)
with open(os.path.join(work, ".snakemake", "locks", "0.output.lock"), "w") as fh:
    fh.write("results/stats/cohort.json\\n")
log = open(os.path.join(work, ".snakemake", "log", "2026-12-03T020000.snakemake.log"), "w") if keep_log else None
open(ready, "w").close()
time.sleep(600)
"""


def _start_fake_run(tmp_path, work, script_name, *args, cwd, keep_log):
    import subprocess
    import sys
    import time

    script = tmp_path / "bin" / script_name
    script.parent.mkdir(exist_ok=True)
    script.write_text(FAKE_RUN)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, str(script), *args, str(work), str(ready), "log" if keep_log else "-"], cwd=cwd
    )
    while not ready.exists():
        assert proc.poll() is None
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize(
    "how",
    ["log_open", "snakemake_directory_arg", "snakemake_cwd"],
)
def test_a_live_manual_run_keeps_its_lock_and_the_nightly_exits_75(tmp_path, capsys, how):
    work = tmp_path / "study"
    (work / "results" / "stats").mkdir(parents=True)
    (work / "results" / "stats" / ".dyads.csv.abc123.tmp").write_text("being written")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if how == "log_open":  # not called snakemake, elsewhere: only its open log says it is a run here
        proc = _start_fake_run(tmp_path, work, "job.py", cwd=elsewhere, keep_log=True)
    elif how == "snakemake_directory_arg":
        proc = _start_fake_run(
            tmp_path, work, "snakemake", "--cores", "2", "--directory", "../study", cwd=elsewhere, keep_log=False
        )
    else:
        proc = _start_fake_run(tmp_path, work, "snakemake", "--cores", "2", cwd=work, keep_log=False)
    try:
        live = nightly.live_snakemake_runs(work)
        code = nightly.run(None, workdir=work)
    finally:
        proc.kill()
        proc.wait()
    assert len(live) == 1 and live[0].startswith(f"pid {proc.pid}: ")
    assert code == nightly.EXIT_LOCKED == 75
    err = capsys.readouterr().err
    assert err == (
        f"dyadflow nightly: a Snakemake run is working in {work} ({live[0]}), so its lock in .snakemake/locks is not "
        "stale and was left alone. Nothing was done; exit status 75.\n"
    )
    assert (work / ".snakemake" / "locks" / "0.output.lock").exists()  # never unlocked
    assert (work / "results" / "stats" / ".dyads.csv.abc123.tmp").exists()  # its temporary file is not removed
    assert not list((work / "results" / "runs").glob("*.json"))
    assert not (work / "logs").exists()


def test_a_lock_without_a_process_is_stale(tmp_path):
    work = tmp_path / "study"
    (work / ".snakemake" / "locks").mkdir(parents=True)
    (work / ".snakemake" / "locks" / "0.output.lock").write_text("results/stats/cohort.json\n")
    other = tmp_path / "other"
    other.mkdir()
    # a live snakemake run, but in another directory, with its log open there
    proc = _start_fake_run(tmp_path, other, "snakemake", "--cores", "1", cwd=other, keep_log=True)
    try:
        assert nightly.stale_snakemake_lock(work)
        assert nightly.live_snakemake_runs(work) == []
        assert len(nightly.live_snakemake_runs(other)) == 1
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- a disk that cannot be written (point 14)


def _mount_tmpfs(path: Path, options: str) -> None:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as CI has): {proc.stderr.strip()}")


@pytest.fixture
def mounts():
    import subprocess

    done = []
    yield done
    for m in reversed(done):
        subprocess.run(["umount", str(m)], check=False)


def test_a_read_only_results_folder_is_one_message_and_exit_1(tmp_path, capsys, mounts):
    # root ignores permission bits: a read-only file system is the real thing
    _mount_tmpfs(tmp_path / "results", "size=64k,ro")
    mounts.append(tmp_path / "results")
    assert nightly.run(None, workdir=tmp_path) == nightly.EXIT_FAILED == 1
    err = capsys.readouterr().err
    assert err == (
        f"dyadflow nightly: {tmp_path}/results/runs: cannot be written: the file system is read-only. "
        "Nothing was done; exit status 1.\n"
    )


def test_a_full_disk_is_exit_1_and_the_summary_is_still_printed(tmp_path, mounts):
    make_small_study(tmp_path)
    results = tmp_path / "results"
    _mount_tmpfs(results, "size=16k")
    mounts.append(results)
    (results / "runs").mkdir()
    filler = results / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk, then free one page: enough for the nightly's lock only
        try:
            while True:
                fh.write(b"x" * 1024)
        except OSError:
            pass
    with open(filler, "r+b") as fh:
        fh.truncate(filler.stat().st_size - 4096)
    proc = run_nightly(tmp_path)
    assert proc.returncode == nightly.EXIT_FAILED == 1, proc.stdout + proc.stderr
    assert "FAILED (exit status 1)" in proc.stdout.splitlines()[0]
    assert "dyadflow nightly: the run summary cannot be saved: " in proc.stdout
    assert "cannot be written: no space left on the device" in proc.stdout
    assert not list(results.rglob("*.tmp"))


# ---------------------------------------------------------------- files without data (point 15)

THREE_INPUTS = SMALL_STUDY_CONFIG.replace(
    "    format: canonical_csv\n",
    "    format: canonical_csv\n  - path: data/all_bad.csv\n    format: canonical_csv\n"
    "  - path: data/binary.csv\n    format: canonical_csv\n",
    1,
)


def _add_bad_files(work: Path) -> None:
    from conftest import row, write_canonical

    write_canonical(
        work / "data" / "all_bad.csv",
        [row(dyad="D/1", items=(4,) * 12), row(dyad="D020", session="x", items=(4,) * 12)],
    )
    shutil.copy(Path(__file__).parent / "data" / "bad" / "binary.csv", work / "data" / "binary.csv")


def test_a_file_without_accepted_rows_is_exit_3_and_a_binary_file_is_quarantined(tmp_path):
    make_small_study(tmp_path, THREE_INPUTS)
    _add_bad_files(tmp_path)
    proc = run_nightly(tmp_path)
    assert proc.returncode == nightly.EXIT_NO_DATA == 3, proc.stdout + proc.stderr
    (summary,) = (tmp_path / "results" / "runs").glob("*.json")
    s = json.loads(summary.read_text())
    assert s["exit_status"] == 3 and s["snakemake_exit_code"] == 0 and "failure" not in s
    binary_error = "data/binary.csv, line 1: is not a text export: it is binary (this is a PNG image)"
    assert [(f["source_file"], f["rows_read"], f["file_error"]) for f in s["files_without_data"]] == [
        ("data/all_bad.csv", 2, None),
        ("data/binary.csv", 0, binary_error),
    ]
    assert proc.stdout.startswith(f"dyadflow nightly {summary.stem}: WARNING (exit status 3)\n")
    assert (
        "\nWARNING: NO DATA USED FROM 2 INPUT FILE(S) (exit status 3)\n"
        "  data/all_bad.csv: all 2 row(s) were rejected: no data from this file is used (results/validation/rejections.csv)\n"
        f"  data/binary.csv: the whole file was quarantined, it cannot be read: {binary_error}\n"
    ) in proc.stdout
    # the rest of the study was built; the quarantined file is one accounting row with its error
    assert json.loads((tmp_path / "results" / "stats" / "cohort.json").read_text())["flow"]["dyads"] == 12
    acc = pl.read_csv(tmp_path / "results" / "validation" / "accounting.csv", infer_schema=False)
    rows = acc.select("source_file", "rows_read", "rows_accepted", "rows_rejected", "file_error").rows()
    assert rows[0][0] == "data/questionnaires.csv" and rows[0][1] == rows[0][2] and rows[0][3:] == ("0", None)
    assert rows[1:] == [("data/all_bad.csv", "2", "0", "2", None), ("data/binary.csv", "0", "0", "0", binary_error)]
    log = (tmp_path / s["snakemake_log"]).read_text()
    assert (
        f"dyadflow ingest: WARNING: data/binary.csv: the whole file is quarantined (validation: quarantine), it cannot be read: {binary_error}"
        in log
    )
    assert "dyadflow validate: WARNING: data/all_bad.csv: all 2 row(s) were rejected" in log
    # a finished build with exit status 3 is the baseline of the next comparison
    assert json.loads((tmp_path / "results" / "runs" / ".state" / "state.json").read_text())["run"] == summary.stem


def test_strict_still_stops_at_a_binary_file(tmp_path):
    make_small_study(tmp_path, THREE_INPUTS.replace("validation: quarantine", "validation: strict"))
    _add_bad_files(tmp_path)
    proc = run_nightly(tmp_path)
    assert proc.returncode == nightly.EXIT_FAILED == 1
    (summary,) = (tmp_path / "results" / "runs").glob("*.json")
    s = json.loads(summary.read_text())
    assert (
        s["failure"]
        == "dyadflow ingest: data/binary.csv, line 1: is not a text export: it is binary (this is a PNG image)"
    )
    assert not (tmp_path / "results" / "ingest" / "binary.parquet").exists()


def test_a_config_mistake_is_what_went_wrong(tmp_path):
    cfg = make_small_study(
        tmp_path,
        SMALL_STUDY_CONFIG.replace("validation: quarantine", "validation: lenient").replace(
            "outcome: bdi_ii", "outcome: bdi"
        ),
    )
    proc = run_nightly(tmp_path)
    assert proc.returncode == nightly.EXIT_FAILED == 1
    (summary,) = (tmp_path / "results" / "runs").glob("*.json")
    text = summary.with_suffix(".txt").read_text()
    assert (
        "WHAT WENT WRONG\n"
        "  dyadflow config: validation: 'lenient' is not one of: quarantine, strict\n"
        "  dyadflow config: outcome: 'bdi' is not an instrument in the registry; did you mean 'bdi_ii'?\n"
        f"  dyadflow config: 2 mistake(s) in {cfg}; nothing was read or run.\n"
    ) in text
    assert not (tmp_path / "results" / "ingest").exists()


def test_what_went_wrong_is_the_error_after_snakemakes_workflowerror_line():
    log = (
        "Using workflow specific profile profiles/default for setting default command line arguments.\n"
        'WorkflowError in file "/srv/dyadflow/workflow/rules/common.smk", line 10:\n'
        "Error validating config file.\n"
        "ValidationError: Additional properties are not allowed ('audiense' was unexpected)\n"
        "\n"
        "Failed validating 'additionalProperties' in schema['properties']['report']:\n"
    )
    assert nightly._failure_reason(log, 1) == (
        "Error validating config file. ValidationError: Additional properties are not allowed ('audiense' was unexpected)"
    )
    ours = (
        "dyadflow ingest: WARNING: data/x.csv: the whole file is quarantined\ndyadflow config: validaton: unknown key\n"
        * 2
    )
    assert nightly._failure_reason(ours, 1) == "dyadflow config: validaton: unknown key"
