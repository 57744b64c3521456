"""``dyadflow nightly``: one unattended build, as cron runs it, with a run summary.

    dyadflow nightly --configfile study.yaml --cores 2 [snakemake targets or options ...]

1. Takes a lock (``flock`` on ``results/runs/.lock``). A second nightly started while
   one runs exits at once with :data:`EXIT_LOCKED` and says which process holds it.
2. Refuses to build while a Snakemake run started by hand (or a job it left running)
   works in the directory (:func:`live_snakemake_runs`): exits with :data:`EXIT_LOCKED`
   and names the process; its lock and temporary files are left alone.
   Otherwise cleans up after a run that was killed: removes Snakemake's stale directory
   lock (``snakemake --unlock``) and temporary files (``results/**/.*.tmp``) that a
   killed job left; nothing else can be using them.
3. Runs Snakemake with ``profiles/nightly`` (keep-going, rerun-incomplete, ...); its
   output goes to ``logs/nightly/<timestamp>.log``.
4. Writes ``results/runs/<timestamp>.json`` and ``.txt``: new, changed and removed
   dyads, new rejections since the last successful run, the warnings of
   ``results/validation/warnings.csv`` (e.g. IDs not linked across sources), outputs rebuilt, wall time and
   the exit status; the text is also printed (cron mails it).

Exit codes: 0 OK; 3 the build finished but no row of some input file was accepted; 1 the
build failed (a job failed, e.g. strict validation or a config
mistake, or results/ cannot be written: a full disk, a read-only file system); 2 a problem
with the command (the config file does not exist); 75 another nightly or a live Snakemake
run works in the directory.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from dyadflow.core.errors import DyadflowError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DATA = 3  # the build finished, but no row of some input file was accepted
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "profiles" / "nightly"
# Per-dyad fingerprints are computed from the validated rows without their line numbers
# (lines shift when an export grows); rejections are identified the same way.
FINGERPRINT_SOURCE = "validated/questionnaires.parquet"
REJECTIONS = "validation/rejections.csv"
WARNINGS = "validation/warnings.csv"
ACCOUNTING = "validation/accounting.csv"
REJECTION_IDENTITY = ("source_file", "rule", "column", "value", "dyad_id", "session", "instrument", "source_column")
LIST_IN_TEXT = 20


# ---------------------------------------------------------------------------- lock


class Lock:
    """An exclusive ``flock`` on ``path``, released when the process ends (even on SIGKILL)."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = None

    def acquire(self) -> str | None:
        """Take the lock; return None, or who holds it if another process does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            fh.close()
            return holder
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, started {utc_now():%Y-%m-%d %H:%M:%S} UTC\n")
        fh.flush()
        self.fh = fh
        return None

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------- outputs


def snapshot(results: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``results`` except ``runs/``: relative path → (size, mtime_ns)."""
    out = {}
    if not results.is_dir():
        return out
    for root, dirs, files in os.walk(results):
        rel_root = Path(root).relative_to(results)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d != "runs"]
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[str(rel_root / f) if str(rel_root) != "." else f] = (st.st_size, st.st_mtime_ns)
    return out


def changed_outputs(before: dict, after: dict) -> dict:
    """Files written (new or changed size/mtime) and removed between two snapshots, by folder."""
    rebuilt = sorted(p for p, v in after.items() if before.get(p) != v)
    removed = sorted(p for p in before if p not in after)
    by_folder: dict[str, int] = {}
    for p in rebuilt:
        folder = str(Path(p).parent) if str(Path(p).parent) != "." else "."
        by_folder[folder] = by_folder.get(folder, 0) + 1
    return {"total": len(rebuilt), "by_folder": dict(sorted(by_folder.items())), "files": rebuilt, "removed": removed}


def remove_temporaries(results: Path) -> list[str]:
    """Temporary files (``.<name>.<random>.tmp``, dyadflow/core/atomic.py) left by a killed job."""
    gone = []
    if results.is_dir():
        for p in sorted(results.rglob(".*.tmp")):
            if p.is_file():
                p.unlink()
                gone.append(str(p.relative_to(results)))
    return gone


# ---------------------------------------------------------------------------- dyads


def dyad_fingerprints(validated_path: Path):
    """One row per dyad: dyad_id, n_rows, fingerprint (order-independent hash of its rows).

    The rows are hashed without source_line, so a dyad whose rows moved down the file
    (other rows were added above) is unchanged. polars' hash is stable for one polars
    version; the state records the version, and another version compares nothing.
    """
    import polars as pl

    df = pl.read_parquet(validated_path)
    cols = [c for c in df.columns if c != "source_line"]
    h = pl.struct(cols).hash(seed=0)
    return (
        df.lazy()
        .select(pl.col("dyad_id"), (h % (1 << 32)).alias("lo"), (h // (1 << 32)).alias("hi"))
        .group_by("dyad_id")
        .agg(pl.len().cast(pl.Int64).alias("n_rows"), pl.col("lo").sum(), pl.col("hi").sum())
        .select(
            "dyad_id",
            "n_rows",
            pl.format("{}-{}-{}", "n_rows", "lo", "hi").alias("fingerprint"),
        )
        .sort("dyad_id")
        .collect()
    )


def compare_dyads(previous, current) -> dict:
    """New, changed and removed dyad IDs (sorted) between two fingerprint tables."""
    import polars as pl

    if previous is None:
        return {"new": current.get_column("dyad_id").to_list(), "changed": [], "removed": []}
    j = previous.select("dyad_id", pl.col("fingerprint").alias("old")).join(
        current.select("dyad_id", pl.col("fingerprint").alias("new")), on="dyad_id", how="full", coalesce=True
    )
    pick = lambda e: j.filter(e).get_column("dyad_id").sort().to_list()  # noqa: E731
    return {
        "new": pick(pl.col("old").is_null()),
        "changed": pick(pl.col("old").is_not_null() & pl.col("new").is_not_null() & (pl.col("old") != pl.col("new"))),
        "removed": pick(pl.col("new").is_null()),
    }


# ---------------------------------------------------------------------------- rejections


def rejection_keys(rejections_path: Path):
    """The rejections with an identity that does not depend on line numbers.

    ``key`` hashes the file, rule, column, value, dyad, session and instrument; ``nth``
    counts equal keys, so two identical bad rows are two rejections.
    """
    import polars as pl

    df = pl.read_csv(rejections_path, infer_schema=False)
    cols = [c for c in REJECTION_IDENTITY if c in df.columns]
    return df.with_columns(pl.struct(cols).hash(seed=0).cast(pl.String).alias("key")).with_columns(
        pl.int_range(pl.len()).over("key").alias("nth")
    )


def new_rejections(previous, current):
    """Rejections in ``current`` whose (key, nth) was not in ``previous``."""
    if previous is None:
        return current
    return current.join(previous.select("key", "nth"), on=["key", "nth"], how="anti").sort(
        "source_file", pl_col_int("source_line")
    )


def pl_col_int(name: str):
    import polars as pl

    return pl.col(name).cast(pl.Int64, strict=False)


def warnings_summary(path: Path, results: str = "results") -> dict:
    """The warnings of the build (input columns that look identifying, IDs that may not be
    linked across sources: docs, "Linking IDs across sources"): total, count per column, rows."""
    import polars as pl

    if not path.exists():
        return {"note": f"no {results}/{WARNINGS} yet", "total": None}
    df = pl.read_csv(path, schema={"source_file": pl.String, "column": pl.String, "warning": pl.String})
    by_column = dict(sorted(df.group_by("column").len().rows())) if df.height else {}
    return {"total": df.height, "by_column": by_column, "rows": df.to_dicts(), "note": None}


def files_without_data(accounting_path: Path) -> list[dict]:
    """Input files no row of which was accepted (all rejected, or quarantined), with a message each."""
    import polars as pl

    from dyadflow.core import accounting

    if not accounting_path.exists():
        return []
    acc = pl.read_csv(accounting_path, infer_schema=False)
    if "file_error" not in acc.columns:
        acc = acc.with_columns(pl.lit(None, dtype=pl.String).alias("file_error"))
    acc = acc.with_columns(pl.col("rows_read", "rows_accepted").cast(pl.Int64), pl.col("file_error").replace("", None))
    return [
        {
            "source_file": r["source_file"],
            "rows_read": r["rows_read"],
            "file_error": r["file_error"],
            "message": accounting.whole_file_message(r),
        }
        for r in accounting.files_without_data(acc).sort("source_file").iter_rows(named=True)
    ]


# ---------------------------------------------------------------------------- state


def _state_dir(results: Path) -> Path:
    return results / "runs" / ".state"


def load_state(results: Path) -> dict:
    """The fingerprints and rejections of the last successful nightly, if any."""
    import polars as pl

    d = _state_dir(results)
    info_path = d / "state.json"
    if not info_path.exists():
        return {"info": None, "dyads": None, "rejections": None}
    info = json.loads(info_path.read_text(encoding="utf-8"))
    comparable = info.get("polars") == pl.__version__
    dyads = pl.read_parquet(d / "dyads.parquet") if comparable and (d / "dyads.parquet").exists() else None
    rej = pl.read_parquet(d / "rejections.parquet") if comparable and (d / "rejections.parquet").exists() else None
    return {"info": info, "dyads": dyads, "rejections": rej, "comparable": comparable}


def _stat(path: Path) -> list[int] | None:
    if not path.exists():
        return None
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def save_state(results: Path, run_id: str, dyads, rejections) -> None:
    import polars as pl

    from dyadflow.core import atomic

    d = _state_dir(results)
    if dyads is not None:
        atomic.write_parquet(d / "dyads.parquet", dyads)
    if rejections is not None:
        atomic.write_parquet(d / "rejections.parquet", rejections.select("key", "nth"))
    atomic.write_json(
        d / "state.json",
        {
            "run": run_id,
            "polars": pl.__version__,
            # unchanged files (size and mtime) need not be hashed again next time
            "sources": {"dyads": _stat(results / FINGERPRINT_SOURCE), "rejections": _stat(results / REJECTIONS)},
        },
    )


# ---------------------------------------------------------------------------- snakemake


def snakemake_cmd(
    configfile: str | None, cores: int, workdir: Path, extra: list[str], profile: Path = PROFILE
) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir)]
    if configfile:  # first: --configfile takes several values, a target after it would be read as one
        cmd += ["--configfile", configfile]
    return cmd + ["--profile", str(profile), "--cores", str(cores), *extra]


def stale_snakemake_lock(workdir: Path) -> bool:
    locks = workdir / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def _is_snakemake(argv: list[str]) -> bool:
    """``snakemake ...``, ``python .../bin/snakemake ...`` or ``python -m snakemake ...``."""
    if any(os.path.basename(a) == "snakemake" for a in argv[:2]):
        return True
    return any(a == "-m" and b == "snakemake" for a, b in zip(argv, argv[1:], strict=False))


def _run_directory(argv: list[str], cwd: str) -> str:
    """The working directory a snakemake command line works in (``--directory``/``-d``, else its cwd)."""
    for i, a in enumerate(argv):
        if a in ("--directory", "-d") and i + 1 < len(argv):
            return os.path.realpath(os.path.join(cwd, argv[i + 1]))
        if a.startswith("--directory="):
            return os.path.realpath(os.path.join(cwd, a.split("=", 1)[1]))
    return os.path.realpath(cwd)


def live_snakemake_runs(workdir: Path, proc: Path = Path("/proc")) -> list[str]:
    """Live processes of a Snakemake run in ``workdir``: ``"pid N: command line"`` each.

    Snakemake's lock files (``.snakemake/locks/*.lock``) are plain files that name no
    process, so a lock cannot tell whether its run is alive. A run is alive while a
    process (other than this one) either has a file open under ``workdir/.snakemake/``
    (Snakemake keeps its log ``.snakemake/log/*.snakemake.log`` open for the whole run)
    or is a ``snakemake`` command whose working directory (its cwd, or ``--directory``)
    is ``workdir``. Only processes on this host can be seen.
    """
    work = os.path.realpath(workdir)
    state = os.path.join(work, ".snakemake") + os.sep
    found = []
    for entry in sorted(os.scandir(proc), key=lambda e: e.name.zfill(12)):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        base = Path(entry.path)
        try:
            argv = [a.decode("utf-8", "replace") for a in (base / "cmdline").read_bytes().split(b"\0") if a]
            if not argv:  # a kernel thread or a zombie
                continue
            holds = False
            if _is_snakemake(argv):
                holds = _run_directory(argv, os.readlink(base / "cwd")) == work
            if not holds:
                for fd in os.scandir(base / "fd"):
                    try:
                        if os.readlink(fd.path).startswith(state):
                            holds = True
                            break
                    except OSError:
                        continue
        except OSError:  # gone meanwhile, or another user's process
            continue
        if holds:
            cmd = " ".join(argv)
            found.append(f"pid {entry.name}: {cmd if len(cmd) <= 120 else cmd[:119] + '…'}")
    return found


# ---------------------------------------------------------------------------- summary


def _run_id(runs: Path, start: dt.datetime) -> str:
    base = start.strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while (runs / f"{run_id}.json").exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _listing(title: str, ids: list[str]) -> list[str]:
    if not ids:
        return [f"  {title}: none"]
    shown = ", ".join(ids[:LIST_IN_TEXT])
    more = f" ... and {len(ids) - LIST_IN_TEXT} more (all in the .json)" if len(ids) > LIST_IN_TEXT else ""
    return [f"  {title}: {len(ids)}: {shown}{more}"]


def summary_text(s: dict) -> str:
    """The run summary as a data manager reads it in cron mail."""
    ok = s["exit_status"] in (EXIT_OK, EXIT_NO_DATA)
    word = {EXIT_OK: "OK", EXIT_NO_DATA: "WARNING"}.get(s["exit_status"], "FAILED")
    lines = [
        f"dyadflow nightly {s['run_id']}: {word} (exit status {s['exit_status']})",
        f"  study config: {s['configfile'] or '(the bundled demo config)'}; working directory {s['workdir']}",
        f"  started {s['started_utc']}, finished {s['finished_utc']}, wall time {s['wall_time_s']:.1f} s",
    ]
    if not ok:
        lines += [
            "",
            "WHAT WENT WRONG",
            f"  {s['failure']}",
            f"  Full Snakemake output: {s['snakemake_log']}. Outputs that were finished are kept;",
            "  fix the cause and the next nightly (or `dyadflow nightly` by hand) continues from there.",
        ]
    if s.get("files_without_data"):
        lines += [
            "",
            f"WARNING: NO DATA USED FROM {len(s['files_without_data'])} INPUT FILE(S) (exit status {EXIT_NO_DATA})",
        ]
        lines += [f"  {f['message']}" for f in s["files_without_data"]]
        lines.append("  Check the export (or its mapping in the study config); the rest of the study was built.")
    if s.get("cleanup"):
        lines += ["", "CLEAN-UP AFTER AN INTERRUPTED RUN"] + [f"  {c}" for c in s["cleanup"]]
    d = s["dyads"]
    lines += [
        "",
        "DYADS (compared with the last successful nightly" + (f", {s['previous_run']})" if s["previous_run"] else ")"),
    ]
    if d.get("note"):
        lines.append(f"  {d['note']}")
    if d.get("total") is not None:
        lines.append(f"  in the validated data now: {d['total']}")
        lines += _listing("new", d["new"]) + _listing("changed (their rows differ)", d["changed"])
        lines += _listing("removed (no accepted rows any more)", d["removed"])
    r = s["rejections"]
    lines += ["", "REJECTED ROWS (results/validation/rejections.csv)"]
    if r.get("note"):
        lines.append(f"  {r['note']}")
    if r.get("total") is not None:
        lines.append(f"  rejected now: {r['total']}; new since the last nightly: {r['new_total']}")
        for rule, n in r["new_by_rule"].items():
            lines.append(f"    {rule}: {n}")
        for row in r["new"][:LIST_IN_TEXT]:
            lines.append(
                f"    {row.get('source_file')}, line {row.get('source_line')}, column '{row.get('column')}': "
                f"{row.get('rule')}: {row.get('message')}"
            )
        if r["new_total"] > LIST_IN_TEXT:
            lines.append(f"    ... and {r['new_total'] - LIST_IN_TEXT} more (all in the .json and in rejections.csv)")
    w = s.get("warnings") or {}
    if w:
        lines += ["", "WARNINGS (results/validation/warnings.csv; no row is rejected for them)"]
        if w.get("note"):
            lines.append(f"  {w['note']}")
        if w.get("total") is not None:
            by_column = "".join(f"; {c}: {n}" for c, n in w["by_column"].items())
            lines.append(f"  warnings now: {w['total']}{by_column}")
            for row in w["rows"][:LIST_IN_TEXT]:
                where = f"{row['source_file']}: " if row.get("source_file") else ""
                lines.append(f"    {row.get('column')}: {where}{row.get('warning')}")
            if w["total"] > LIST_IN_TEXT:
                lines.append(f"    ... and {w['total'] - LIST_IN_TEXT} more (all in the .json and in warnings.csv)")
    o = s["outputs"]
    lines += ["", f"OUTPUTS WRITTEN THIS RUN (under {s['results']}/): {o['total']} file(s)"]
    if not o["total"]:
        lines.append("  none: nothing had changed since the last build")
    for folder, n in o["by_folder"].items():
        lines.append(f"  {folder}/: {n}")
    if o["removed"]:
        lines.append(f"  removed: {len(o['removed'])} file(s)")
    lines += ["", f"This summary: {s['summary_json']} (and .txt). Exit status 0 means OK; anything else needs a look."]
    return "\n".join(lines) + "\n"


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _failure_reason(log_text: str, code: int) -> str:
    """The most useful lines of Snakemake's output: dyadflow's own message if there is one
    (every mistake the start-up config check found), else the error Snakemake reports
    (the lines after ``WorkflowError in file …, line N:``), else its first error line."""
    lines = log_text.splitlines()
    ours = [
        line.strip() for line in lines if line.startswith("dyadflow ") and ":" in line and ": WARNING: " not in line
    ]
    config = list(dict.fromkeys(line for line in ours if line.startswith("dyadflow config:")))
    if config:
        return "\n  ".join(config)
    if ours:
        return ours[0]
    for i, line in enumerate(lines):
        if re.match(r"^\w+(Error|Exception) in (file|rule|line)\b.*:$", line.strip()):
            detail = []
            for nxt in lines[i + 1 : i + 3]:
                if not nxt.strip() or nxt.startswith(("Failed validating", "  File ", "Traceback")):
                    break
                detail.append(nxt.strip())
            if detail:
                return " ".join(detail)
    for line in lines:
        if "Error" in line or "error" in line:
            return line.strip()
    return f"Snakemake exited with status {code}"


# ---------------------------------------------------------------------------- main


def run(
    configfile: str | None,
    cores: int = 2,
    workdir: str | os.PathLike[str] = ".",
    extra: list[str] | None = None,
    results: str = "results",
    logs: str = "logs",
    profile: Path = PROFILE,
    out=None,
    err=None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from dyadflow.core import atomic

    work = Path(workdir).resolve()
    if configfile:
        if not Path(configfile).is_file():
            print(f"dyadflow nightly: the config file {configfile} does not exist; nothing was done.", file=err)
            return EXIT_USAGE
        configfile = str(Path(configfile).resolve())
    res = work / results
    runs = res / "runs"
    lock = Lock(runs / ".lock")
    try:
        holder = lock.acquire()
    except OSError as exc:
        print(
            f"dyadflow nightly: {cannot_write(exc, runs / '.lock')}. Nothing was done; exit status {EXIT_FAILED}.",
            file=err,
        )
        return EXIT_FAILED
    if holder is not None:
        print(
            f"dyadflow nightly: another nightly build is running ({holder}; lock {runs / '.lock'}). "
            f"Nothing was done; exit status {EXIT_LOCKED}.",
            file=err,
        )
        return EXIT_LOCKED
    try:
        live = live_snakemake_runs(work)
        if live:
            print(
                f"dyadflow nightly: a Snakemake run is working in {work} ({'; '.join(live[:3])}"
                f"{f'; and {len(live) - 3} more' if len(live) > 3 else ''}), so its lock in .snakemake/locks is not "
                f"stale and was left alone. Nothing was done; exit status {EXIT_LOCKED}.",
                file=err,
            )
            return EXIT_LOCKED
        start = utc_now()
        t0 = time.perf_counter()
        run_id = _run_id(runs, start)
        log_path = work / logs / "nightly" / f"{run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cleanup = []
        tmp = remove_temporaries(res)
        if tmp:
            cleanup.append(f"removed {len(tmp)} temporary file(s) of a killed job: {', '.join(tmp[:5])}")
        before = snapshot(res)
        base = snakemake_cmd(configfile, cores, work, [], profile)
        with open(log_path, "w", encoding="utf-8") as log:
            if stale_snakemake_lock(work):
                subprocess.run([*base, "--unlock"], stdout=log, stderr=subprocess.STDOUT, check=False, cwd=work)
                cleanup.append("removed Snakemake's lock left by a run that was killed (snakemake --unlock)")
            log.write(f"$ {' '.join(snakemake_cmd(configfile, cores, work, extra or [], profile))}\n")
            log.flush()
            code = subprocess.run(
                snakemake_cmd(configfile, cores, work, extra or [], profile),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=work,
            ).returncode
        no_data = files_without_data(res / ACCOUNTING) if code == 0 else []
        exit_status = EXIT_FAILED if code != 0 else EXIT_NO_DATA if no_data else EXIT_OK
        after = snapshot(res)
        state = load_state(res)
        previous_run = (state["info"] or {}).get("run")
        summary = {
            "run_id": run_id,
            "started_utc": start.strftime("%Y-%m-%d %H:%M:%S"),
            "configfile": configfile,
            "workdir": str(work),
            "results": results,
            "host": socket.gethostname(),
            "cores": cores,
            "snakemake_exit_code": code,
            "exit_status": exit_status,
            "snakemake_log": str(log_path.relative_to(work)),
            "previous_run": previous_run,
            "cleanup": cleanup,
            "files_without_data": no_data,
            "outputs": changed_outputs(before, after),
        }
        if exit_status == EXIT_FAILED:
            summary["failure"] = _failure_reason(log_path.read_text(encoding="utf-8", errors="replace"), code)

        sources = (state["info"] or {}).get("sources") or {}
        if state["dyads"] is not None and sources.get("dyads") == _stat(res / FINGERPRINT_SOURCE):
            fp = state["dyads"]  # the validated data is the file that was fingerprinted last time
        else:
            fp = dyad_fingerprints(res / FINGERPRINT_SOURCE) if (res / FINGERPRINT_SOURCE).exists() else None
        if fp is None:
            summary["dyads"] = {"note": f"no {results}/{FINGERPRINT_SOURCE} yet: no dyads to compare", "total": None}
        else:
            cmp = compare_dyads(state["dyads"], fp)
            note = None
            if state["info"] is None:
                note = "first nightly in this directory: every dyad counts as new"
            elif not state.get("comparable", True):
                note = "polars was upgraded since the last nightly: fingerprints are not comparable, every dyad counts as new"
            summary["dyads"] = {"total": fp.height, **cmp, "note": note}

        rej = rejection_keys(res / REJECTIONS) if (res / REJECTIONS).exists() else None  # small: always read
        if rej is None:
            summary["rejections"] = {"note": f"no {results}/{REJECTIONS} yet", "total": None}
        else:
            new = new_rejections(state["rejections"], rej)
            by_rule = dict(sorted(new.group_by("rule").len().rows())) if new.height else {}
            rows = new.drop("key", "nth").to_dicts()
            summary["rejections"] = {
                "total": rej.height,
                "new_total": new.height,
                "new_by_rule": by_rule,
                "new": rows,
                "note": "first nightly in this directory: every rejection counts as new"
                if state["info"] is None
                else None,
            }
        summary["warnings"] = warnings_summary(res / WARNINGS, results)
        finish = utc_now()
        summary["finished_utc"] = finish.strftime("%Y-%m-%d %H:%M:%S")
        summary["wall_time_s"] = round(time.perf_counter() - t0, 3)
        summary["summary_json"] = str((runs / f"{run_id}.json").relative_to(work))
        text = summary_text(summary)
        try:
            if code == 0:  # the build finished (also with exit status 3): the next comparison's baseline
                save_state(res, run_id, fp, rej)
            atomic.write_json(runs / f"{run_id}.json", summary)
            atomic.write_text(runs / f"{run_id}.txt", text)
        except (DyadflowError, OSError) as exc:  # a full disk: the summary is still printed (cron mails it)
            exit_status = summary["exit_status"] = EXIT_FAILED
            problem = str(exc) if isinstance(exc, DyadflowError) else cannot_write(exc, runs)
            saved = f"dyadflow nightly: the run summary cannot be saved: {problem}"
            summary["failure"] = f"{summary['failure']}\n  {saved}" if summary.get("failure") else saved
            text = summary_text(summary)
        print(text, file=out, end="")
        if exit_status == EXIT_FAILED:
            print(f"\nLast lines of {log_path}:\n{_tail(log_path)}", file=err)
        return exit_status
    except DyadflowError as exc:  # e.g. a full disk while writing a log or cleaning up
        print(f"dyadflow nightly: {exc}. Exit status {EXIT_FAILED}.", file=err)
        return EXIT_FAILED
    except OSError as exc:  # a read-only or full results/ or logs/: one message, no traceback
        print(f"dyadflow nightly: {cannot_write(exc, work)}. Exit status {EXIT_FAILED}.", file=err)
        return EXIT_FAILED
    finally:
        lock.release()


def cannot_write(exc: OSError, default: Path) -> str:
    """``<file>: cannot be written: <why>`` for an OSError of the disk."""
    import errno

    why = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }.get(exc.errno, exc.strerror or str(exc))
    return f"{exc.filename or default}: cannot be written: {why}"
