"""Property: for any mix of valid and invalid rows, every row read is accounted for."""

from __future__ import annotations

import csv
import io

import polars as pl
from conftest import HEADER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyadflow import ingest
from dyadflow.validate import rules as validate
from dyadflow.validate.checks import RULES

ITEMS = 21
COLUMNS = HEADER + [f"item_{i:02d}" for i in range(1, ITEMS + 1)] + ["note"]

ids = st.sampled_from(["D1", "D2", "D3", "D 4", "", "D/5", "x" * 70])
people = st.sampled_from(["P1", "P2", "", "P 3"])
therapists = st.sampled_from(["T1", "T2", "", "T-3"])
sessions = st.sampled_from(["0", "1", "2", "3", "-1", "3a", "", "10000", "2.0"])
dates = st.sampled_from(["2024-01-01", "2024-01-08", "2024-01-15", "2023-12-01", "2024-02-30", "01/02/2024", ""])
raters = st.sampled_from(["patient", "therapist", "observer", "Patient", "doctor", ""])
instruments = st.sampled_from(["wai_sr", "wai_s", "bdi_ii", "phq_9", "BDI_II", "bdi_2", ""])
values = st.sampled_from(["0", "1", "2", "3", "4", "5", "7", "9", "", "1a", "2b|3a", "Always", "x", "-1", "3 pts"])
notes = st.sampled_from(["", "ok", "två\nrader", 'a "quote"', '=HYPERLINK("x")', "semi;colon,comma"])


@st.composite
def export(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for _ in range(n):
        r = [draw(ids), draw(people), draw(therapists), draw(sessions), draw(dates), draw(raters), draw(instruments)]
        r += [draw(values) for _ in range(ITEMS)] + [draw(notes)]
        rows.append(r)
    # exact copies of earlier rows, to exercise the duplicate rules
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        if rows:
            rows.append(list(draw(st.sampled_from(rows))))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=export())
def test_every_row_is_accepted_or_rejected_with_a_rule(tmp_path, registry, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")

    frame, meta = ingest.read_input({"path": str(path), "format": "canonical_csv"})
    res = validate.validate_frames([frame], [meta], registry)

    blank = sum(all(c == "" for c in r) for r in rows)
    read = meta["rows_read"]
    assert read == len(rows) - blank
    acc = res.accounting.row(0, named=True)
    assert acc["rows_read"] == read == acc["rows_accepted"] + acc["rows_rejected"]
    assert res.accepted.height == acc["rows_accepted"]
    rejected_lines = set(res.rejections.get_column("source_line").to_list())
    accepted_lines = set(res.accepted.get_column("source_line").to_list())
    assert len(rejected_lines) == acc["rows_rejected"]
    assert not rejected_lines & accepted_lines
    assert rejected_lines | accepted_lines == set(frame.get_column("source_line").to_list())
    assert set(res.rejections.get_column("rule").to_list()) <= set(RULES)
    assert res.rejections.filter(pl.col("message").is_null() | pl.col("rule").is_null()).height == 0
