"""A fuzzer: valid exports corrupted at random, byte by byte.

Whatever the corruption, dyadflow either refuses the file with a DyadflowError that names
the file (never another exception, which would reach the data manager as a traceback),
or accounts for every record: read = accepted + rejected, each rejection with a known
rule and a line that exists in the file. Bounded example counts keep it fit for CI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from conftest import row, write_canonical
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyadflow import ingest
from dyadflow.core.errors import DyadflowError
from dyadflow.tools import demo_study as demo
from dyadflow.validate import rules as validate
from dyadflow.validate.checks import RULES

FREEZE = dt.date(2025, 1, 1)
# Characters that break exports: delimiters, quotes, line ends, NUL, non-ASCII, formula starts.
NASTY = st.sampled_from(
    [
        b",",
        b";",
        b'"',
        b"\n",
        b"\r\n",
        b"\x00",
        "å".encode(),
        b"\xe5",
        b"=",
        b" ",
        b"9",
        b"-",
        b"a",
        b"\t",
        b"\xef\xbb\xbf",
    ]
)


def seed_export(tmp_path) -> bytes:
    rows = [
        row(
            dyad="D1",
            session=s,
            date=f"2024-01-{7 * s + 1:02d}",
            rater="patient",
            instrument="wai_sr",
            items=[4] * 12,
            note="bra",
        )
        for s in range(1, 4)
    ] + [
        row(
            dyad="D2",
            patient="P2",
            therapist="T2",
            session=s,
            date=f"2024-02-{7 * s - 6:02d}",
            rater="patient",
            instrument="bdi_ii",
            items=[1] * 15 + ["2a"] + [1] + ["1b"] + [0] * 3,
            note='ö, "citat"',
        )
        for s in range(1, 4)
    ]
    return write_canonical(tmp_path / "seed.csv", rows, n_items=21, extra_columns=["note"]).read_bytes()


@st.composite
def corruption(draw, size: int):
    """A list of edits: (kind, position, payload)."""
    edits = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate_line", "swap_lines"]))
        pos = draw(st.integers(min_value=0, max_value=size))
        payload = b"".join(draw(st.lists(NASTY, min_size=1, max_size=4)))
        length = draw(st.integers(min_value=1, max_value=40))
        edits.append((kind, pos, payload, length))
    return edits


def corrupt(data: bytes, edits) -> bytes:
    for kind, pos, payload, length in edits:
        pos = min(pos, len(data))
        if kind == "insert":
            data = data[:pos] + payload + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + length :]
        elif kind == "replace":
            data = data[:pos] + payload + data[pos + len(payload) :]
        elif kind == "truncate":
            data = data[: max(pos, 1)]
        else:
            lines = data.split(b"\n")
            i, j = pos % len(lines), (pos + length) % len(lines)
            if kind == "duplicate_line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


def check_outcome(path, registry, spec: dict, one_row_per_line: bool = True) -> None:
    try:
        frame, meta = ingest.read_input(spec)
        res = validate.validate_frames([frame], [meta], registry, date_limit=FREEZE)
    except DyadflowError as err:
        assert err.file == str(path)
        assert err.message
        return
    n_lines = path.read_bytes().count(b"\n") + 1
    for acc in res.accounting.iter_rows(named=True):
        assert acc["rows_read"] == acc["rows_accepted"] + acc["rows_rejected"]
    assert res.accounting.get_column("rows_read").sum() == meta["rows_read"]
    rules = set(res.rejections.get_column("rule").to_list())
    assert rules <= set(RULES)
    lines = res.rejections.get_column("source_line").to_list() + res.accepted.get_column("source_line").to_list()
    assert all(1 < line <= n_lines for line in lines)
    if one_row_per_line:  # a REDCap line holds several questionnaires, which may differ
        rejected = set(res.rejections.get_column("source_line").to_list())
        accepted = set(res.accepted.get_column("source_line").to_list())
        assert not rejected & accepted


@settings(
    max_examples=int(__import__("os").environ.get("DYADFLOW_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_corrupted_canonical_exports_never_crash(tmp_path, registry, data):
    seed = seed_export(tmp_path)
    edits = data.draw(corruption(len(seed)))
    path = tmp_path / "fuzzed.csv"
    path.write_bytes(corrupt(seed, edits))
    check_outcome(path, registry, {"path": str(path), "format": "canonical_csv"})


REPO = Path(__file__).resolve().parent.parent
# the demo study's REDCap mapping, as a data manager would write it
REDCAP_SPEC = next(
    s
    for s in yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))["inputs"]
    if s["format"] == "redcap"
)
REDCAP_SEED = demo.redcap_table(demo.generate(n_dyads=2, n_sessions=4, bad_rows=False))


@settings(
    max_examples=int(__import__("os").environ.get("DYADFLOW_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_corrupted_redcap_exports_never_crash(tmp_path, registry, data):
    path = tmp_path / "redcap.csv"
    REDCAP_SEED.write_csv(path)
    seed = path.read_bytes()
    path.write_bytes(corrupt(seed, data.draw(corruption(len(seed)))))
    check_outcome(path, registry, {**REDCAP_SPEC, "path": str(path)}, one_row_per_line=False)
