"""The dial ratings' fast path (issue 18) changes no output: the stage with it off and on.

With ``DYADFLOW_FAST_PATH`` on, a long dial CSV is read typed (``load.read_long_fast``)
and only the rows that are not clean go through the text path; every output file of
``microprocess.pipeline.run`` must be the same bytes as with the switch off, for files
with bad rows scattered through them, duplicates, blank lines, a file that does not
qualify for the fast path (quotes, an extra field) and a per-file input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dyadflow.microprocess import load, pipeline, settings

OUTPUTS = ("rejections", "accounting", "sessions", "segments", "gaps")
HEADER = "dyad_id,session,rater,second,rating"

# (line, text, rule or None): replaces that line of the generated file; None: accepted
# (by the text path: the row is not clean as read, so it must be cut out and judged there)
ODD_LINES = [
    (7, "B0001,1,patient,5", "field_count"),  # a field short
    (15, "B0001,1,patient,13,", "missing_value"),
    (40, " B0001,1,patient,38,7", None),  # a space the text path strips
    (61, "B 0001,1,patient,59,3", "id_format"),
    (75, "B0001,1a,patient,73,3", "session_format"),
    (90, "B0001,1,Client,88,3", None),  # a synonym, upper case: clean as read, lower-cased
    (120, "B0001,1,observer,118,3", "rater_unknown"),
    (150, "B0001,1,patient,148.5,3", "second_format"),
    (151, "B0001,1,patient,1.49e2,3", None),  # 149: a whole number, but not an Int32 as written
    (180, "B0001,1,patient,178,abc", "rating_format"),
    (181, "B0001,1,patient,179,nan", "rating_format"),
    (182, "B0001,1,patient,180,inf", "rating_range"),
    (200, "B0001,1,patient,198,51", "rating_range"),  # one above the top ...
    (201, "B0001,1,patient,199,50", None),  # ... the top itself
    (202, "B0001,1,patient,200,-50", None),  # the bottom itself
    (203, "B0001,1,patient,201,-50.5", "rating_range"),  # below it
    (204, "B0001,1,patient,202,12.5", None),  # a decimal rating: clean
    (230, "", None),  # a blank line: counted, neither accepted nor rejected
    (260, "B0001,1,patient,258, 7 ", None),
    (300, "B0001,0002,therapist,-1,3", "second_negative"),
]


def _long_csv(path: Path, odd: bool = True, seed: int = 3) -> Path:
    """Two dyads × two sessions × two raters × 250 seconds, sorted, whole-number ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    for dyad in ("B0001", "B0002"):
        for session in ("1", "0002"):  # a leading zero, as some tools write it
            for rater in ("patient", "therapist"):
                walk = np.clip(np.rint(10 + np.cumsum(rng.normal(0, 2, 250))), -50, 50).astype(int)
                rows += [f"{dyad},{session},{rater},{s},{v}" for s, v in enumerate(walk)]
    lines = [HEADER, *rows]
    if odd:
        for line, text, _ in ODD_LINES:
            lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(specs: list[dict], out_dir: Path, monkeypatch, fast: str) -> dict[str, bytes]:
    monkeypatch.setenv("DYADFLOW_FAST_PATH", fast)
    out_dir.mkdir()
    out = {n: str(out_dir / f"{n}.csv") for n in OUTPUTS} | {"series": str(out_dir / "series.parquet")}
    pipeline.run(specs, {}, out)
    got = {n: Path(out[n]).read_bytes() for n in OUTPUTS}
    got["series"] = pl.read_parquet(out["series"]).write_csv().encode()
    return got


def _same_off_and_on(specs, tmp_path, monkeypatch) -> dict[str, bytes]:
    off = _run(specs, tmp_path / "off", monkeypatch, "0")
    on = _run(specs, tmp_path / "on", monkeypatch, "1")
    for name in off:
        assert off[name] == on[name], name
    return on


def test_a_sorted_file_with_bad_rows_scattered_gives_the_same_outputs(tmp_path, monkeypatch):
    csv = _long_csv(tmp_path / "dial.csv")
    on = _same_off_and_on([{"path": str(csv), "layout": "long"}], tmp_path, monkeypatch)
    rejections = pl.read_csv(on["rejections"], infer_schema=False)
    expected = sorted((line, rule) for line, _, rule in ODD_LINES if rule)
    assert sorted((int(a), b) for a, b in rejections.select("source_line", "rule").rows()) == expected
    # the message quotes the cell as written and the session as written
    assert rejections.filter(pl.col("source_line") == "200").select("message", "session").row(0) == (
        "'51' is outside the rating range -50 to 50",
        "1",
    )
    assert rejections.filter(pl.col("source_line") == "300").select("session").item() == "0002"
    accounting = pl.read_csv(on["accounting"])
    # 2000 rows + 1 header = 2001 lines; one of them blank
    assert accounting.select("rows_read", "rows_accepted", "rows_rejected", "blank_rows").row(0) == (
        1999,
        1999 - len(expected),
        len(expected),
        1,
    )


def test_the_typed_read_cuts_out_only_the_rows_that_are_not_clean(tmp_path):
    csv = _long_csv(tmp_path / "dial.csv")
    spec = load.section("microprocess", {"inputs": [{"path": str(csv), "layout": "long"}]})["inputs"][0]
    fast = load.read_long_fast(spec, -50, 50, settings({})["max_session_s"])
    assert fast is not None and fast.records == 2000
    clean_as_read = {90, 201, 202, 204}  # Client, the range's ends, a decimal rating
    cut = sorted(line for line, _, _ in ODD_LINES if line not in clean_as_read)
    blank = [line for line, text, _ in ODD_LINES if text == ""]
    # the text path read the cut-out lines, with their lines in the file
    assert fast.rest.get_column("source_line").to_list() == [x for x in cut if x not in blank]
    assert fast.rest.filter(pl.col("source_line") == 40).select("dyad_id", "rating").row(0) == ("B0001", "7")
    assert fast.meta["blank_rows"] == 1 and fast.meta["rows_read"] == 1999
    assert fast.clean.height == 2000 - len(cut)
    assert fast.clean.filter(pl.col("source_line") == 204).select("rating", "second").row(0) == (12.5, 202)


def test_duplicates_quotes_and_per_file_inputs_give_the_same_outputs(tmp_path, monkeypatch):
    dup = _long_csv(tmp_path / "dup.csv", odd=False, seed=4)
    lines = dup.read_text(encoding="utf-8").splitlines()
    # at the end of the file, out of order: line 11 (second 9 of B0001, session 1, patient)
    # again, and seconds 19 (line 21) and 5 (line 7) with another rating (the walk's are whole)
    lines += [lines[10], lines[20].rsplit(",", 1)[0] + ",0.25", lines[6].rsplit(",", 1)[0] + ",0.75"]
    dup.write_text("\n".join(lines) + "\n", encoding="utf-8")
    quoted = tmp_path / "quoted.csv"  # quotes: the text path reads all of it
    quoted.write_text(f'{HEADER}\n"B0003",1,patient,0,4\nB0003,1,patient,1,5\n', encoding="utf-8")
    ragged = tmp_path / "ragged.csv"  # a row with a field too many: the text path reads all of it
    ragged.write_text(f"{HEADER}\r\nB0004,1,patient,0,4\r\nB0004,1,patient,1,5,6\r\n", encoding="utf-8")
    crlf = tmp_path / "crlf.csv"  # a byte-order mark, CR LF line ends, no newline at the end
    crlf.write_bytes(
        ("\ufeff" + f"{HEADER}\r\nB0006,1,patient,0,4\r\nB0006,1,patient,1,x\r\nB0006,1,patient,2,5").encode()
    )
    empty = tmp_path / "header_only.csv"
    empty.write_text(f"{HEADER}\n", encoding="utf-8")
    folder = tmp_path / "carma"
    folder.mkdir()
    (folder / "B0005_s1_patient.csv").write_text("time,rating\n0,3\n1,x\n2,4\n", encoding="utf-8")
    specs = [
        {"path": str(dup), "layout": "long"},
        {"path": str(quoted), "layout": "long"},
        {"path": str(ragged), "layout": "long"},
        {"path": str(crlf), "layout": "long"},
        {"path": str(empty), "layout": "long"},
        {
            "path": str(folder),
            "layout": "per_file",
            "pattern": r"(?P<dyad_id>B\d+)_s(?P<session>\d+)_(?P<rater>\w+)\.csv",
            "time_column": "time",
        },
    ]
    on = _same_off_and_on(specs, tmp_path, monkeypatch)
    rejections = pl.read_csv(on["rejections"], infer_schema=False)
    got = sorted(
        (Path(f).name, int(line), rule)
        for f, line, rule in rejections.select("source_file", "source_line", "rule").rows()
    )
    assert got == [
        ("B0005_s1_patient.csv", 3, "rating_format"),
        ("crlf.csv", 3, "rating_format"),
        ("dup.csv", 7, "duplicate_second"),
        ("dup.csv", 21, "duplicate_second"),
        ("dup.csv", 2002, "duplicate_exact"),
        ("dup.csv", 2003, "duplicate_second"),
        ("dup.csv", 2004, "duplicate_second"),
        ("ragged.csv", 3, "field_count"),
    ]
    exact = rejections.filter(pl.col("rule") == "duplicate_exact").get_column("message").item()
    assert exact == "second 9 again with the same rating as line 11, which is kept"
    # the quoted file's rows are accepted (the text path reads the quotes)
    assert (
        pl.read_csv(on["accounting"]).filter(pl.col("source_file") == str(quoted)).get_column("rows_accepted").item()
        == 2
    )


@pytest.mark.parametrize(
    "text", ["12", "+12", "-0", "12.0", "1e1", "1E+01", ".5", "5.", "-7.25", "0.1", "49.99999999999999"]
)
def test_the_csv_reader_and_the_text_cast_read_a_rating_alike(text):
    """The fast path reads ratings with the CSV reader, the text path casts the text:
    the same value for every spelling the CSV reader accepts."""
    read = pl.read_csv(f"r\n{text}\n".encode(), schema={"r": pl.Float64}).item()
    cast = pl.Series([text]).cast(pl.Float64, strict=False).item()
    assert read == cast and str(read) == str(cast)


def _run_batched(specs, out_dir: Path, monkeypatch, batch_rows: int) -> dict[str, bytes]:
    monkeypatch.setenv("DYADFLOW_FAST_PATH", "1")
    monkeypatch.setattr(pipeline, "BATCH_ROWS", batch_rows)
    out_dir.mkdir()
    out = {n: str(out_dir / f"{n}.csv") for n in OUTPUTS} | {"series": str(out_dir / "series.parquet")}
    pipeline.run(specs, {}, out)
    return {n: Path(p).read_bytes() for n, p in out.items()}  # series.parquet's bytes as written


def test_the_analysis_in_batches_of_dyad_sessions_gives_the_same_bytes(tmp_path, monkeypatch):
    csv = _long_csv(tmp_path / "dial.csv")
    lines = _long_csv(tmp_path / "more.csv", odd=False, seed=5).read_text(encoding="utf-8").splitlines()
    # a third dyad whose session 1 only the patient rated, with a long gap (seconds 100–199 unrated)
    lines[1:] = [x.replace("B0001", "B0003") for x in lines[1:] if x.startswith("B0001,1,patient,")]
    lines[1:] = [x for x in lines[1:] if not 100 <= int(x.split(",")[3]) < 200]
    (tmp_path / "more.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    specs = [{"path": str(csv), "layout": "long"}, {"path": str(tmp_path / "more.csv"), "layout": "long"}]
    whole = _run_batched(specs, tmp_path / "whole", monkeypatch, 10**9)
    for size in (1, 300, 700):  # every dyad-session alone; about one or two per batch
        batched = _run_batched(specs, tmp_path / f"batch{size}", monkeypatch, size)
        for name in whole:
            assert batched[name] == whole[name], (size, name)
    sessions = pl.read_csv(whole["sessions"])
    assert sessions.height == 5 and sessions.get_column("note").null_count() == 4
    assert sessions.filter(pl.col("dyad_id") == "B0003").get_column("seconds_patient").item() == 150


def test_batches_hold_whole_dyad_sessions_in_order():
    keys = pl.DataFrame(
        {
            "series": pl.Series([0, 1, 2, 3, 4], dtype=pl.Int32),
            "dyad_id": ["B1", "B1", "B1", "B2", "B2"],
            "session": pl.Series([1, 1, 2, 1, 1], dtype=pl.Int32),
            "rater": ["patient", "therapist", "patient", "patient", "therapist"],
        }
    )
    rows = pl.DataFrame({"series": pl.Series(np.repeat(np.arange(5), [3, 2, 4, 1, 1]), dtype=pl.Int32)})
    # (first series, past the last, first row, past the last row)
    assert pipeline._batches(rows, keys, 10**9) == [(0, 5, 0, 11)]
    assert pipeline._batches(rows, keys, 1) == [(0, 2, 0, 5), (2, 3, 5, 9), (3, 5, 9, 11)]
    assert pipeline._batches(rows, keys, 6) == [(0, 3, 0, 9), (3, 5, 9, 11)]


def test_the_utf8_check_a_piece_at_a_time_agrees_with_decoding_whole():
    """The dial fast path checks UTF-8 with ingest.text.checked_utf8 (a piece of the file at a
    time): the same outcome, message and line as decoding the file whole."""
    from dyadflow.core.errors import DyadflowError
    from dyadflow.ingest.text import checked_utf8, decode

    def outcome(check):
        try:
            return ("ok", check())
        except DyadflowError as exc:
            return ("error", str(exc), exc.line)

    texts = [b"B0001,1,patient,0,3\n", "B0001,1,th\u00e9rapist,0,3\n".encode(), "\u20ac\u00e9".encode() * 7]
    bad = [
        b"B0001,1,patient,0,3\xff\n",
        "\u20ac".encode()[:2],
        b"ok" + "\u20ac".encode()[:2] + b"x",
        b"a\n" + "\u20ac".encode() * 3 + b"\x82\x82\x82\x82\x82" + "\u00e9".encode(),
    ]
    for raw in texts + bad + [b"\xef\xbb\xbf" + t for t in texts + bad]:
        want = outcome(lambda r=raw: decode(r, "utf-8", "f.csv")[1])
        assert want[0] == ("ok" if raw.removeprefix(b"\xef\xbb\xbf") in texts else "error")
        for block in (1, 2, 3, 1 << 24):  # a character cut across pieces must still be read whole
            assert outcome(lambda r=raw, b=block: checked_utf8(r, "utf-8", "f.csv", block=b)) == want, (raw, block)
