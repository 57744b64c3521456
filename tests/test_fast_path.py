"""The typed fast path (issue 18) changes no output: a study with it off and on.

``DYADFLOW_FAST_PATH=0`` switches it off (dyadflow/core/performance.py). The study mixes
the demo's REDCap, Qualtrics and xlsx exports, a canonical CSV with bad and unusual cells
scattered through it, a REDCap and a Qualtrics export with the demo's bad rows and odd cells
scattered through them, and every readable file of the bad-input corpus (tests/data/bad/).
Every output is compared: ingested rows, accepted rows, rejections (rules, messages, line
numbers), accounting, consent decisions, warnings, scores and statistics.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from dyadflow import ingest, score, stats
from dyadflow.core import atomic
from dyadflow.tools import demo_study as demo
from dyadflow.validate import rules as validate
from dyadflow.validate.checks import clean_rows, instrument_schema, raw_schema, simple_tokens

REPO = Path(__file__).resolve().parent.parent
BAD = REPO / "tests" / "data" / "bad"
FREEZE = dt.date(2025, 1, 1)
ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}

# (k, column, cell, rule): the k-th BDI-II row of the generated table gets this cell,
# at and around the fast path's screen; rule None: accepted
ODD_CELLS = [
    (3, "item_02", "03", "item_value"),  # a leading zero: not a plain number; the token lookup rejects it
    (5, "item_03", "3.0", None),  # an accepted spelling, a simple token
    (6, "item_16", "1A", None),  # accepted, but not a simple token: the text path lower-cases it
    (7, "item_18", "1a|2b", None),  # several answers: the highest scores (text path)
    (8, "item_04", "+2", "item_value"),  # casts to 2, but is no answer
    (13, "item_01", "4", "item_value"),  # one above the BDI-II's 0–3 ...
    (21, "item_01", "3", None),  # ... the top itself
    (22, "item_01", "-1", "item_value"),  # one below the bottom ...
    (23, "item_01", "0", None),  # ... the bottom itself
    (34, "item_05", "x", "item_value"),
    (55, "rater", "Patient", None),  # case: accepted, lower-cased
    (89, "instrument", "BDI_II", None),
    (144, "session", "12a", "session_format"),
    (150, "consent_share_text", "maybe", "consent_value"),
    (160, "date", "2024-13-01", "date_format"),
]


def _canonical(path: Path) -> tuple[Path, dict[int, tuple[str, str | None]]]:
    """The CSV, and the line of each odd cell with its column and expected rule."""
    table = demo.generate(n_dyads=64, n_sessions=6, bad_rows=True).with_row_index("_i")
    # dyads of their own (the demo's REDCap export has D001 … too)
    table = table.with_columns(pl.col("dyad_id").str.replace("^D", "C"))
    bdi = table.filter(pl.col("instrument") == "bdi_ii").get_column("_i").to_list()
    lines = {}
    for k, column, cell, rule in ODD_CELLS:
        i = bdi[k]
        table = table.with_columns(
            pl.when(pl.col("_i") == i).then(pl.lit(cell)).otherwise(pl.col(column)).alias(column)
        )
        lines[i + 2] = (column, rule)  # the header is line 1
    atomic.write_bytes(path, atomic.csv_bytes(table.drop("_i")))
    return path, lines


# (k, column, cell): the k-th record of a generated REDCap or Qualtrics export gets this
# cell (the exports are the demo's, with its bad rows, of dyads of their own)
REDCAP_ODD = [
    (4, "bdi_03", "3.0"),  # an accepted spelling
    (9, "bdi_16", "1A"),  # accepted by the text path's lookup
    (15, "wai_sr_02", "x"),  # item_value
    (22, "bdi_complete", "1"),  # redcap_incomplete
    (30, "redcap_event_name", "session_x_arm_1"),  # session_format
    (41, "bdi_date", "2024-02-30"),  # date_format
    (57, "wai_sr_note", "Ett samtal – svårt"),  # non-ASCII far from the header, a wide lead byte (E2)
    (66, "consent_share", "maybe"),  # consent_value
]
QUALTRICS_ODD = [
    (5, "Q1_3", "sOMETIMES"),  # accepted by the text path's lookup
    (8, "Q1_4", "3"),  # a number among choice text
    (12, "Q1_5", "Very Often"),  # a usual spelling of a label
    (19, "Q1_6", "Often-ish"),  # item_value
    (27, "session", "12a"),  # session_format
    (33, "dyad", None),  # missing_value
    (40, "Finished", "False"),  # qualtrics_incomplete
    (48, "patient", "Pé"),  # non-ASCII (id_format)
]


def _with_cells(table: pl.DataFrame, odd: list) -> pl.DataFrame:
    table = table.with_row_index("_k")
    for k, column, cell in odd:
        table = table.with_columns(
            pl.when(pl.col("_k") == k).then(pl.lit(cell, dtype=pl.String)).otherwise(pl.col(column)).alias(column)
        )
    return table.drop("_k")


def _exports(tmp_path: Path, config: dict) -> list[dict]:
    """A REDCap and a Qualtrics export of a generated study with the demo's bad rows and
    odd cells scattered through them, read with the demo's inputs."""
    table = demo.generate(n_dyads=64, n_sessions=6, bad_rows=True)
    table = table.with_columns(pl.col(c).str.replace("^[DPT]", "X") for c in ("dyad_id", "patient_id", "therapist_id"))
    redcap, qualtrics = tmp_path / "redcap.csv", tmp_path / "qualtrics.csv"
    atomic.write_bytes(redcap, atomic.csv_bytes(_with_cells(demo.redcap_table(table), REDCAP_ODD)))
    atomic.write_bytes(qualtrics, demo.qualtrics_bytes(_with_cells(demo.qualtrics_table(table), QUALTRICS_ODD)))
    inputs = {s["format"]: s for s in config["inputs"]}
    return [{**inputs["redcap"], "path": str(redcap)}, {**inputs["qualtrics"], "path": str(qualtrics)}]


def _specs(tmp_path: Path) -> list[dict]:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    specs = [{**s, "path": str(REPO / s["path"])} for s in config["inputs"]]
    specs.append({"path": str(_canonical(tmp_path / "questionnaires.csv")[0]), "format": "canonical_csv"})
    specs += _exports(tmp_path, config)
    expected = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
    specs += [
        {"path": str(BAD / name), "format": "canonical_csv", **expected[name].get("spec", {})}
        for name in sorted(expected)
    ]
    return specs


def _study(specs: list[dict], registry) -> dict[str, pl.DataFrame]:
    read = [ingest.read_or_quarantine(s, "quarantine") for s in specs]
    result = validate.validate_frames([f for f, _ in read], [m for _, m in read], registry, FREEZE, ALLIANCE)
    scores = score.score_frame(result.accepted, registry)
    st = stats.compute(scores, registry, "bdi_ii", ALLIANCE)
    out = {f"ingest {i}": f for i, (f, _) in enumerate(read)}
    out.update(
        {
            "accepted": result.accepted,
            "rejections": result.rejections,
            "accounting": result.accounting,
            "consent": result.consent,
            "warnings": result.warnings,
            "linking": result.linking,
            "scores": scores,
            "sessions": st.sessions,
            "dyads": st.dyads,
            "gains": st.gains,
            "ruptures": st.ruptures,
        }
    )
    out["cohort"] = pl.DataFrame({"json": [str(st.cohort)]})
    return out


def test_outputs_are_the_same_with_the_fast_path_off_and_on(registry, tmp_path, monkeypatch):
    specs = _specs(tmp_path)
    monkeypatch.setenv("DYADFLOW_FAST_PATH", "0")
    off = _study(specs, registry)
    monkeypatch.setenv("DYADFLOW_FAST_PATH", "1")
    on = _study(specs, registry)
    assert off.keys() == on.keys()
    for name in off:
        try:
            assert_frame_equal(off[name], on[name], check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    rejections = on["rejections"]
    assert rejections.height > 20  # the study does exercise the rules
    # the odd cells are judged as by the text path: the rule on their line, or no rejection
    _, lines = _canonical(tmp_path / "again.csv")
    csv = specs[3]["path"]
    mine = rejections.filter(pl.col("source_file") == csv)
    for line, (column, rule) in lines.items():
        got = mine.filter(pl.col("source_line") == line).select("column", "rule").rows()
        assert got == ([] if rule is None else [(column, rule)]), (line, column, got)
    accepted = on["accepted"].filter(pl.col("source_file") == csv)
    assert accepted.filter(pl.col("source_line").is_in([ln for ln, (_, r) in lines.items() if r is None])).height == 7
    # the generated exports' odd cells are rejected under their rules
    for spec, rules in zip(
        specs[4:6],
        [
            {"item_value", "redcap_incomplete", "session_format", "date_format", "consent_value"},
            {"item_value", "session_format", "missing_value", "qualtrics_incomplete", "id_format"},
        ],
        strict=True,
    ):
        assert rules <= set(rejections.filter(pl.col("source_file") == spec["path"]).get_column("rule").to_list())


def test_simple_tokens_are_those_looked_up_as_written(registry):
    numbers = {"0": 0, "0.0": 0, "1": 1, "1.0": 1, "2": 2, "2.0": 2, "3": 3, "3.0": 3}
    assert simple_tokens(registry["bdi_ii"], 1) == numbers
    # BDI-II items 16 and 18 also take the codes 1a … 3b (dyadflow/schemas/instruments/bdi_ii.yaml)
    codes = {"1a": 1, "1b": 1, "2a": 2, "2b": 2, "3a": 3, "3b": 3}
    assert simple_tokens(registry["bdi_ii"], 16) == numbers | codes | {k.upper(): v for k, v in codes.items()}
    wai = simple_tokens(registry["wai_sr"], 1)
    assert (wai["5"], wai["always"], wai["fairly often"]) == (5, 5, 3)
    # the labels as the registry writes them (Qualtrics' choice text), capitalised, in upper and title case
    # (dyadflow/schemas/instruments/wai_sr.yaml: Seldom, Sometimes, Fairly often, Very often, Always)
    assert {k: v for k, v in wai.items() if k != k.lower()} == {
        "Seldom": 1,
        "SELDOM": 1,
        "Sometimes": 2,
        "SOMETIMES": 2,
        "Fairly often": 3,
        "FAIRLY OFTEN": 3,
        "Fairly Often": 3,
        "Very often": 4,
        "VERY OFTEN": 4,
        "Very Often": 4,
        "Always": 5,
        "ALWAYS": 5,
    }
    assert len(wai) == 15 + 12 and "fairly OFTEN" not in wai  # other spellings take the normalising lookup


def test_the_screen_passes_only_rows_no_check_can_fail(registry):
    inst = registry["bdi_ii"]
    cells = ["3", "0", None, "3.0", "4", "-1", "03", "+3", " 3", "1a", "x", "3|2"]
    frame = pl.DataFrame(
        {
            "rater": ["patient"] * len(cells),
            "item_01": cells,
            "item_02": ["1"] * len(cells),
            "total": [None] * len(cells),
        },
        schema={"rater": pl.String, "item_01": pl.String, "item_02": pl.String, "total": pl.String},
    )
    clean = clean_rows(instrument_schema(inst, ["item_01", "item_02", "total"]), frame).to_list()
    # only the simple tokens of item 1 (0–3, "3.0") and an empty cell pass; "3|2" is valid but goes to pandera
    assert clean == [True, True, True, True, False, False, False, False, False, False, False, False]
    # a therapist's BDI-II fails rater_not_allowed: not clean
    therapist = frame.head(1).with_columns(pl.lit("therapist").alias("rater"))
    assert clean_rows(instrument_schema(inst, ["item_01", "item_02", "total"]), therapist).to_list() == [False]
    # the raw schema: an ID with a slash, an empty session
    raw = pl.DataFrame(
        {
            "dyad_id": ["D1", "D/1", "D1"],
            "patient_id": ["P1"] * 3,
            "therapist_id": ["T1"] * 3,
            "session": ["1", "1", None],
            "date": ["2024-01-08"] * 3,
            "rater": ["patient"] * 3,
            "instrument": ["bdi_ii"] * 3,
            "coder_id": pl.Series([None] * 3, dtype=pl.String),
        }
    )
    assert clean_rows(raw_schema(["bdi_ii"], False, FREEZE, dt.date(1900, 1, 1)), raw).to_list() == [True, False, False]
    # an observer row is clean only with its coder (coder_missing is screened too)
    observer = raw.head(1).with_columns(pl.lit("observer").alias("rater"))
    schema = raw_schema(["bdi_ii"], False, FREEZE, dt.date(1900, 1, 1))
    assert clean_rows(schema, observer).to_list() == [False]
    assert clean_rows(schema, observer.with_columns(pl.lit("C1").alias("coder_id"))).to_list() == [True]


def test_a_text_column_that_is_not_text_is_not_screened(registry):
    frame = pl.DataFrame(
        {"rater": ["patient"], "item_01": [3], "total": [None]},
        schema={"rater": pl.String, "item_01": pl.Int64, "total": pl.String},
    )
    assert clean_rows(instrument_schema(registry["bdi_ii"], ["item_01", "total"]), frame) is None


@pytest.mark.parametrize(
    "value, on", [("0", False), ("false", False), ("OFF", False), ("no", False), ("1", True), ("", True)]
)
def test_the_switch(monkeypatch, value, on):
    from dyadflow.core.performance import fast_path_enabled

    monkeypatch.setenv("DYADFLOW_FAST_PATH", value)
    assert fast_path_enabled() is on


@pytest.mark.parametrize(
    "data, delimiter, expected",
    [
        (b"a,b\nc,d\n", ",", False),
        (b"a,b\r\nc,d\r\n", ",", False),  # CR LF ends a line
        (b'a,"x, y"\n', ",", False),  # a space after a delimiter inside quotes is inside the cell
        (b'a,"x\ny"\n', ",", False),  # a newline inside a quoted cell, not at its edge
        ("a,é–ö\n".encode(), ",", False),  # non-ASCII, no whitespace
        (b"a, b\n", ",", True),
        (b"a,b \n", ",", True),
        (b"a,b\t\n", ",", True),
        (b"a\tb \n", "\t", True),
        (b'a\t"\tb"\n', "\t", True),  # a tab inside quotes is whitespace, not the delimiter
        (b'a," b"\n', ",", True),
        (b'a,"b\n"\n', ",", True),  # a quoted cell ending in a newline
        (b"a,b\rc\n", ",", False),  # a lone CR inside a cell, not at its edge
        (b"a,b\r\n\r", ",", True),  # ... and at the end of the file
        ("a,\u00a0b\n".encode(), ",", True),  # no-break space
        ("a,b\u3000\n".encode(), ",", True),  # ideographic space
        ("a,b\u200b\n".encode(), ",", False),  # zero-width space: polars does not strip it
        (b'a,x"y, z\n', ",", True),  # a stray quote: quote parity says nothing, so unsure
        # whitespace next to a doubled quote is inside the cell (a Qualtrics ImportId row) ...
        (b'a,"{""ImportId"": ""QID1_1""}"\n', ",", False),
        (b'a,"x "" y"\n', ",", False),
        (b'a,""\nb, c\n', ",", True),  # (an empty quoted cell's quotes are its edges)
        # ... next to the quote that opens or closes the cell it is at an edge
        (b'a,"x"" "\n', ",", True),
        (b'a," ""x"""\n', ",", True),
        (b'a,"""x "" "\n', ",", True),
        (b"", ",", False),
    ],
)
def test_the_strip_screen(data, delimiter, expected):
    """The fast path skips stripping every cell only when no cell can start or end with whitespace."""
    from dyadflow.ingest.text import may_need_strip

    assert may_need_strip(data, delimiter) is expected


def test_cells_read_the_same_with_the_strip_skipped(tmp_path, monkeypatch):
    from dyadflow.ingest.text import read_text_table

    path = tmp_path / "t.csv"
    path.write_bytes(b'id,note,x\nD1,"a, b",""\nD2,,3\nD3,"say ""hi""",4\n')
    tables = {}
    for value in ("0", "1"):
        monkeypatch.setenv("DYADFLOW_FAST_PATH", value)
        tables[value] = read_text_table(path).frame
    assert_frame_equal(tables["0"], tables["1"], check_exact=True)
    # the quoted empty cell is null, as an empty one is
    assert tables["1"].select("id", "note", "x").rows() == [
        ("D1", "a, b", None),
        ("D2", None, "3"),
        ("D3", 'say "hi"', "4"),
    ]


def test_one_lookup_types_every_instrument_s_items(registry, monkeypatch):
    from dyadflow.validate.rules import _cast_reads, _typed, _union_tokens

    # labels the WAI-SR (1–5) and the WAI-S (1–7) read differently are left out of the union
    union = _union_tokens(registry, ["wai_s", "wai_sr"], "item_01")
    assert "sometimes" not in union and "always" not in union and "very often" not in union
    assert (union["seldom"], union["rarely"], union["5"], union["7"]) == (1, 2, 5, 7)
    assert _cast_reads(registry, ["bdi_ii", "wai_sr"], "item_01")
    assert not _cast_reads(registry, ["bdi_ii"], "item_16")  # the codes 1a … 3b: looked up
    # accepted rows of three instruments: plain numbers, a code, a label read differently,
    # 3.0 and an upper-case code (the text path's lookup)
    cells = [
        ("bdi_ii", "3", "2b", None),
        ("bdi_ii", "3.0", "1A", None),
        ("wai_sr", "sometimes", None, None),
        ("wai_s", "sometimes", None, None),
        ("wai_s", "7", None, None),
        ("wai_sr", "Always", None, None),
    ]
    rows = pl.DataFrame(
        {
            "_row": list(range(len(cells))),
            "session": ["1"] * len(cells),
            "date": ["2024-01-08"] * len(cells),
            "rater": ["patient"] * len(cells),
            "instrument": [c[0] for c in cells],
            "consent_share_text": [None] * len(cells),
            "consent_share_ratings": [None] * len(cells),
            "total": [None] * len(cells),
            "item_01": [c[1] for c in cells],
            "item_16": [c[2] for c in cells],
            "item_17": [c[3] for c in cells],
        },
        schema_overrides={c: pl.String for c in ("consent_share_text", "consent_share_ratings", "total", "item_17")},
    ).with_columns(pl.col("_row").cast(pl.Int64))
    typed = {}
    for value in ("0", "1"):
        monkeypatch.setenv("DYADFLOW_FAST_PATH", value)
        typed[value] = _typed(rows, registry)
    assert_frame_equal(typed["0"], typed["1"], check_exact=True)
    assert typed["1"].select("item_01", "item_16").rows() == [
        (3, 2),
        (3, 1),
        (2, None),
        (4, None),
        (7, None),
        (5, None),
    ]
    assert typed["1"].schema["item_01"] == pl.Int16


def test_consent_copies_of_one_line_are_one_decision_in_one_sort():
    from dyadflow.validate.consent import _fast_table

    found = pl.DataFrame(
        {
            "_row": [4, 1, 2, 3],
            "dyad_id": ["D2", "D1", "D1", "D1"],
            "session": [1, 3, 3, 2],
            "date": [dt.date(2024, 1, 1), dt.date(2024, 1, 22), dt.date(2024, 1, 23), dt.date(2024, 1, 15)],
            "rater": ["patient"] * 4,
            "consent": [True, False, False, True],
            "source_file": ["r.csv"] * 4,
            "source_line": [9, 5, 5, 4],  # rows 1 and 2: two forms of one REDCap line
            "kind": ["share_text"] * 4,
        },
        schema_overrides={"session": pl.Int32},
    )
    table = _fast_table(found)
    # one decision per line, the first form's (row 1, dated the 22nd), in the table's order
    assert table.select("dyad_id", "session", "date", "consent", "source_line").rows() == [
        ("D1", 2, dt.date(2024, 1, 15), True, 4),
        ("D1", 3, dt.date(2024, 1, 22), False, 5),
        ("D2", 1, dt.date(2024, 1, 1), True, 9),
    ]
    # one line giving two different decisions of a kind: the text path orders them
    assert (
        _fast_table(
            found.with_columns(pl.when(pl.col("_row") == 2).then(True).otherwise(pl.col("consent")).alias("consent"))
        )
        is None
    )


def test_scores_keep_the_row_order_only_when_it_is_strictly_the_score_order():
    from dyadflow.score import _in_score_order

    def frame(rows):
        return pl.DataFrame(
            rows,
            schema={"dyad_id": pl.String, "session": pl.Int32, "instrument": pl.String, "rater": pl.String},
            orient="row",
        )

    ordered = [("D1", 1, "bdi_ii", "patient"), ("D1", 1, "wai_s", "therapist"), ("D1", 2, "bdi_ii", "patient")]
    assert _in_score_order(frame(ordered))
    assert _in_score_order(frame(ordered[:1]))
    # a tie (two coders of one session's instrument): the scores' sort decides, not the row order
    assert not _in_score_order(frame([*ordered, ordered[-1]]))
    # a later session before an earlier one; session 10 after 9 is numeric order, not text order
    assert not _in_score_order(frame([ordered[2], ordered[0]]))
    assert _in_score_order(frame([("D1", 9, "bdi_ii", "patient"), ("D1", 10, "bdi_ii", "patient")]))
    assert not _in_score_order(frame([("D1", 1, "bdi_ii", None), ("D1", 2, "bdi_ii", "patient")]))


@pytest.mark.parametrize(
    "raw",
    [
        b"a,b\n1,2\n",
        "a,b\nä,–\n".encode(),
        b"\xef\xbb\xbfa,b\n1,\xc3\xa4\n",  # a BOM
        b"a,b\n1,\xff\n2,3\n",  # an invalid start byte
        b"a,b\n\xc3\xa4,\xc3\n",  # a sequence cut short by the line end
        b"a,b\n\xc3\xa4,\xe2\x80",  # ... by the end of the file
        b"\xef\xbb\xbfa,b\n\xc3\xa4\n\xed\xa0\x80,x\n",  # a surrogate, after a BOM
    ],
)
def test_utf8_is_checked_as_decode_does(raw):
    """The fast path checks UTF-8 without decoding the whole file: the same encoding, or the
    same message and line, as decoding it."""
    from dyadflow.core.errors import DyadflowError
    from dyadflow.ingest.text import checked_utf8, decode

    def outcome(check):
        try:
            return ("ok", check())
        except DyadflowError as exc:
            return ("error", str(exc), exc.line)

    want = outcome(lambda: decode(raw, "utf-8", "f.csv")[1])
    for block in (1, 2, 1 << 24):
        assert outcome(lambda b=block: checked_utf8(raw, "utf-8", "f.csv", block=b)) == want


def test_the_contract_check_holds_only_where_pandera_passes():
    """contract_holds says True only for a table pandera passes unchanged; every broken
    variant is left to pandera, which rejects it."""
    import pandera.errors as pa_errors

    from dyadflow.validate.checks import contract_holds, validated_schema

    order = ("dyad_id", "session", "instrument", "rater")
    table = pl.DataFrame(
        {
            "dyad_id": ["D1", "D1", "D2"],
            "patient_id": ["P1", "P1", "P2"],
            "therapist_id": ["T1", "T1", "T1"],
            "arm": ["A", "A", None],
            "session": pl.Series([1, 2, 1], dtype=pl.Int32),
            "date": [dt.date(2024, 1, 1), dt.date(2024, 1, 8), dt.date(2024, 1, 2)],
            "rater": ["patient", "patient", "therapist"],
            "instrument": ["bdi_ii", "bdi_ii", "wai_s"],
            "item_01": pl.Series([1, 2, None], dtype=pl.Int16),
            "note": [None, "x", None],
            "consent_share_text": pl.Series([True, None, None], dtype=pl.Boolean),
            "consent_share_ratings": pl.Series([None, None, None], dtype=pl.Boolean),
            "source_file": ["f.csv"] * 3,
            "source_line": [2, 3, 4],
            "total": pl.Series([None, None, None], dtype=pl.Float64),
            "coder_id": pl.Series([None, None, None], dtype=pl.String),
        }
    )
    schema = validated_schema(1)
    assert contract_holds(schema, table, order) and contract_holds(schema, table)
    assert_frame_equal(schema.validate(table), table)
    broken = [
        table.with_columns(pl.lit("bad id!").alias("dyad_id")),
        table.with_columns(pl.col("session").cast(pl.Int64)),
        pl.concat([table.head(1), table]),  # a duplicate, next to its twin
        table.with_columns(pl.lit(-1, dtype=pl.Int32).alias("session")),
        table.with_columns(pl.lit("nurse").alias("rater")),
        table.with_columns(pl.lit(0, dtype=pl.Int64).alias("source_line")),
        table.with_columns(pl.lit(None, dtype=pl.Date).alias("date")),
        table.select(table.columns[::-1]),
        table.with_columns(pl.lit("x y").alias("coder_id")),
        table.with_columns(pl.lit("extra").alias("extra")),
    ]
    for frame in broken:
        assert not contract_holds(schema, frame, order)
        with pytest.raises((pa_errors.SchemaError, pa_errors.SchemaErrors)):
            schema.validate(frame, lazy=True)
