"""The bad-input corpus (tests/data/bad/): every file gets exactly its written-down outcome.

A file is either refused as a whole with a message naming the file and the line (never a
traceback), or every row is accounted for: read = accepted + rejected, with each
rejection's line and rule as listed in tests/data/bad/expected.yaml.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from dyadflow import ingest
from dyadflow.core import accounting, atomic
from dyadflow.core.errors import DyadflowError
from dyadflow.validate import rules as validate

BAD = Path(__file__).parent / "data" / "bad"
EXPECTED = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
FREEZE = dt.date(2025, 1, 1)


def run_file(path: Path, registry, spec: dict | None = None):
    frame, meta = ingest.read_input({"path": str(path), "format": "canonical_csv", **(spec or {})})
    result = validate.validate_frames([frame], [meta], registry, date_limit=FREEZE)
    result.warnings = meta["warnings"]
    return result


def test_every_corpus_file_has_an_expected_outcome():
    files = sorted(p.name for p in BAD.iterdir() if p.name != "expected.yaml")
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name, registry):
    want = EXPECTED[name]
    path = BAD / name
    if "error" in want:
        with pytest.raises(DyadflowError) as info:
            run_file(path, registry)
        err = info.value
        assert err.file == str(path)
        assert err.line == want["error"]["line"]
        assert err.column == want["error"].get("column")
        assert want["error"]["says"] in err.message
        # validation: quarantine keeps the build going: the file is quarantined, one accounting row
        frame, meta = ingest.read_or_quarantine({"path": str(path), "format": "canonical_csv"}, "quarantine")
        result = validate.validate_frames([frame], [meta], registry, date_limit=FREEZE)
        acc = result.accounting.row(0, named=True)
        q = want["quarantine"]
        assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"]) == (
            q["read"],
            q["accepted"],
            q["rejected"],
        )
        assert acc["source_file"] == str(path)
        assert acc["file_error"] == f"{path}, {q['file_error']}"
        assert result.rejections.height == 0 and result.accepted.height == 0
        assert accounting.files_without_data(result.accounting).get_column("source_file").to_list() == [str(path)]
        with pytest.raises(DyadflowError):  # strict still stops
            ingest.read_or_quarantine({"path": str(path), "format": "canonical_csv"}, "strict")
        return
    assert "quarantine" not in want
    result = run_file(path, registry, want.get("spec"))
    if "warnings" in want:  # each listed text is part of one warning, in order
        assert len(result.warnings) == len(want["warnings"])
        assert all(w in got["warning"] for w, got in zip(want["warnings"], result.warnings, strict=False))
    acc = result.accounting.row(0, named=True)
    assert acc["file_error"] is None
    assert (acc["rows_read"], acc["rows_accepted"], acc["rows_rejected"]) == (
        want["read"],
        want["accepted"],
        want["rejected"],
    )
    assert acc["rows_read"] == acc["rows_accepted"] + acc["rows_rejected"]
    got = [list(r) for r in result.rejections.select("source_line", "column", "rule").iter_rows()]
    assert got == want["rejections"]
    assert result.accepted.height == want["accepted"]


def test_long_cells_are_shortened_in_rejections(registry):
    rej = run_file(BAD / "long_cells.csv", registry).rejections.row(0, named=True)
    assert rej["value"] == "D" + "9" * 199 + "… (10000 characters)"
    assert rej["message"].startswith("'D" + "9" * 79 + "… (10000 characters)' is not a valid dyad_id")
    assert len(rej["message"]) < 250


def test_formula_cells_are_inert_in_csv_outputs(registry, tmp_path):
    result = run_file(BAD / "formula_cells.csv", registry)
    atomic.write_csv(tmp_path / "rejections.csv", result.rejections)
    lines = (tmp_path / "rejections.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1].split(",")[2:5] == ["dyad_id", "'=1+1", "id_format"]
    atomic.write_csv(tmp_path / "accepted.csv", result.accepted.select("dyad_id", "session", "note"))
    assert (tmp_path / "accepted.csv").read_text(encoding="utf-8").splitlines() == [
        "dyad_id,session,note",
        'D01,1,"\'=HYPERLINK(""http://example.invalid"",""click"")"',
        "D01,3,'+41 plain",
    ]


def test_the_freeze_date_itself_is_accepted(registry, tmp_path):
    text = (BAD / "future_date.csv").read_text(encoding="utf-8").replace("2999-01-01", "2025-01-01")
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    assert run_file(tmp_path / "f.csv", registry).rejections.height == 0


def test_utf16_export_gets_a_hint(tmp_path):
    (tmp_path / "u.csv").write_bytes("dyad_id,session\nD1,1\n".encode("utf-16"))
    with pytest.raises(DyadflowError, match="set the input's encoding to utf-16") as info:
        ingest.read_input({"path": str(tmp_path / "u.csv"), "format": "canonical_csv"})
    assert info.value.line == 1


def test_a_config_mistake_is_never_quarantined(tmp_path):
    # the error names a config key: the study config is wrong, not the file; it stops the build
    (tmp_path / "q.csv").write_text("dyad_id,session\nD1,1\n", encoding="utf-8")
    spec = {"path": str(tmp_path / "q.csv"), "format": "canonical_csv", "columns": {"date": "Datum"}}
    with pytest.raises(DyadflowError) as info:
        ingest.read_or_quarantine(spec, "quarantine")
    assert info.value.key is not None


def test_a_wholly_rejected_file_is_listed(registry, tmp_path):
    from conftest import row, write_canonical

    ok = write_canonical(tmp_path / "ok.csv", [row(items=(4,) * 12)])
    bad = write_canonical(tmp_path / "bad.csv", [row(dyad="D/1", items=(4,) * 12), row(session="x", items=(4,) * 12)])
    one_good = write_canonical(
        tmp_path / "one_good.csv", [row(dyad="D/1", items=(4,) * 12), row(dyad="D2", items=(4,) * 12)]
    )
    frames = [ingest.read_input({"path": str(p), "format": "canonical_csv"}) for p in (ok, bad, one_good)]
    acc = validate.validate_frames(
        [f for f, _ in frames], [m for _, m in frames], registry, date_limit=FREEZE
    ).accounting
    (only,) = accounting.files_without_data(acc).to_dicts()
    assert (only["source_file"], only["rows_read"], only["rows_accepted"]) == (str(bad), 2, 0)
    assert accounting.whole_file_message(only) == (
        f"{bad}: all 2 row(s) were rejected: no data from this file is used (results/validation/rejections.csv)"
    )


def test_a_named_pipe_or_a_device_is_refused_not_read(tmp_path):
    """Reading a named pipe waits forever for a writer; each reader must refuse it at once.
    Run in a subprocess with a timeout, so that a regression fails instead of hanging."""
    import json
    import os
    import subprocess
    import sys

    os.mkfifo(tmp_path / "export.csv")
    code = (
        "import json, sys\n"
        "from dyadflow.ingest import read_input\n"
        "from dyadflow.core.errors import DyadflowError\n"
        "out = []\n"
        "for path, fmt in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        read_input({'path': path, 'format': fmt})\n"
        "        out.append(None)\n"
        "    except DyadflowError as exc:\n"
        "        out.append(str(exc))\n"
        "print(json.dumps(out))\n"
    )
    fifo = str(tmp_path / "export.csv")
    cases = [[fifo, fmt] for fmt in ("canonical_csv", "redcap", "qualtrics", "xlsx", "sav")]
    cases += [["/dev/null", "canonical_csv"], [str(tmp_path), "canonical_csv"]]
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        f"{fifo}: is not a regular file (a named pipe): give the path of an export file"
    ] * 5 + [
        "/dev/null: is not a regular file (a character device): give the path of an export file",
        f"{tmp_path}: is a directory, not a file",
    ]
