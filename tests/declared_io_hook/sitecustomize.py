"""Test-only audit of the paths each stage opens, for tests/test_declared_io.py.

That test puts this folder on PYTHONPATH, so every Python process of the build imports
this file at start-up. With DYADFLOW_IO_AUDIT=<file> set, ``dyadflow.stages.run_stage``
is wrapped: while a stage runs, every "open", "os.rename", "os.link", "os.remove",
"os.rmdir" and "shutil.rmtree" audit event of its thread
(and every path given to polars' readers and writers, which open files in Rust, out of
sight of Python's audit hooks) is recorded with the rule's declared input, output and
log, and one JSON line per stage is appended to <file>. With DYADFLOW_IO_INJECT=
<stage>:<path> set, that stage also reads <path> (a planted undeclared read, so the
test can show that the check fails). Without DYADFLOW_IO_AUDIT it does nothing.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading

_local = threading.local()


def _flat(named) -> list[str]:
    """Every path of a Snakemake Namedlist (or list, or str), flattened."""
    if named is None:
        return []
    if isinstance(named, (str, os.PathLike)):
        return [os.fspath(named)]
    out: list[str] = []
    for item in named:
        out.extend(_flat(item))
    return out


def _record(kind: str, path) -> None:
    rec = getattr(_local, "rec", None)
    if rec is None or isinstance(path, int) or path is None:
        return
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        return
    rec.append((kind, os.path.abspath(os.fspath(path))))


def _audit(event: str, args) -> None:
    if getattr(_local, "rec", None) is None:
        return
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            write = any(c in mode for c in "wax+")
        else:
            write = bool((flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        _record("write" if write else "read", path)
    elif event == "os.rename":
        _record("write", args[1])
    elif event == "os.link":  # a hard link reads its source and writes its destination
        _record("read", args[0])
        _record("write", args[1])
    elif event in ("os.remove", "os.rmdir", "shutil.rmtree"):  # deleting is writing
        _record("write", args[0])


def _wrap_polars() -> None:
    import polars as pl

    def reader(fn):
        @functools.wraps(fn)
        def wrapped(source, *a, **k):
            if isinstance(source, (str, os.PathLike)):
                _record("read", source)
            return fn(source, *a, **k)

        return wrapped

    def writer(fn):
        @functools.wraps(fn)
        def wrapped(self, file=None, *a, **k):
            if isinstance(file, (str, os.PathLike)):
                _record("write", file)
            return fn(self, file, *a, **k)

        return wrapped

    for name in ("read_parquet", "scan_parquet", "read_csv", "scan_csv", "read_excel", "read_json", "read_ndjson"):
        setattr(pl, name, reader(getattr(pl, name)))
    for name in ("write_parquet", "write_csv", "write_json", "write_ndjson"):
        setattr(pl.DataFrame, name, writer(getattr(pl.DataFrame, name)))


def install(out_file: str) -> None:
    from dyadflow import stages

    _wrap_polars()
    sys.addaudithook(_audit)
    run_stage = stages.run_stage
    stage_name, _, inject = os.environ.get("DYADFLOW_IO_INJECT", "").partition(":")

    def audited_run_stage(stage, *, log, input=None, output=None, params=None, wildcards=None):
        _local.rec = []
        try:
            if stage == stage_name and inject:
                with open(inject, "rb") as fh:
                    fh.read(1)
            return run_stage(stage, log=log, input=input, output=output, params=params, wildcards=wildcards)
        finally:
            events, _local.rec = _local.rec, None
            line = {
                "stage": stage,
                "cwd": os.getcwd(),
                "input": [os.path.abspath(p) for p in _flat(input)],
                "output": [os.path.abspath(p) for p in _flat(output)],
                "log": [os.path.abspath(p) for p in _flat(log)],
                "events": sorted(set(events)),
            }
            with open(out_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")

    stages.run_stage = audited_run_stage


if os.environ.get("DYADFLOW_IO_AUDIT"):
    install(os.environ["DYADFLOW_IO_AUDIT"])
