"""Consent (issue 14): a patient-owned, time-ordered fact.

A matrix of small canonical exports goes through validation (every decision, also on
rejected rows, into the consent table) and the clinician copy's decision per note; a
REDCap export checks that consent is never filled across events; one build through the
PDFs checks the therapist's copy against the research copy. All data are invented.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
from conftest import BDI_OK, WAI_S_OK, WAI_SR_OK, row, run_validation, write_canonical

from dyadflow.ingest import read_input
from dyadflow.report.dyad import redact, visible_notes
from dyadflow.score import with_text_consent
from dyadflow.validate import consent as C
from dyadflow.validate.rules import validate_frames

D = "2024-01-01"


def pat(session, consent="", note=None, items=WAI_SR_OK, instrument="wai_sr", ratings="", **kw):
    date = (dt.date(2024, 1, 1) + dt.timedelta(days=7 * session)).isoformat()
    return row(
        session=session,
        date=date,
        instrument=instrument,
        items=items,
        consent_share_text=consent,
        consent_share_ratings=ratings,
        note=note or f"PAT{session}",
        **kw,
    )


def ther(session, consent="", note=None, rater="therapist", ratings=""):
    date = (dt.date(2024, 1, 1) + dt.timedelta(days=7 * session)).isoformat()
    coder = {"coder_id": "C1"} if rater == "observer" else {}  # an observer row needs its coder (issue 19)
    return row(
        session=session,
        date=date,
        rater=rater,
        instrument="wai_s",
        items=WAI_S_OK,
        consent_share_text=consent,
        consent_share_ratings=ratings,
        note=note or f"{rater.upper()}{session}",
        **coder,
    )


def validated(tmp_path, registry, rows):
    path = write_canonical(
        tmp_path / "q.csv",
        rows,
        n_items=21,
        extra_columns=("note", "consent_share_text", "consent_share_ratings", "coder_id"),
    )
    return run_validation(path, registry)


def shown(res) -> list[str]:
    """The notes of the clinician copy, in order."""
    return visible_notes(res.accepted, "clinician", res.consent).get_column("note").to_list()


def decisions(res, kind="share_text") -> list[tuple]:
    return res.consent.filter(pl.col("kind") == kind).select("session", "consent", "source_line").rows()


# (case, rows, decisions (session, consent, line), sessions where consent holds, notes the therapist's copy shows)
MATRIX = [
    (
        "withdrawal hides the note under false and every later one; empty cells are no decision",
        [pat(1, "true"), pat(2), pat(3, "false"), pat(4), pat(5)],
        [(1, True, 2), (3, False, 4)],
        [1, 2],
        ["PAT1", "PAT2"],
    ),
    (
        "consent given again: shown from that session on (boundary: just before, at, after)",
        [pat(1, "true"), pat(2, "false"), pat(3), pat(4, "yes"), pat(5)],
        [(1, True, 2), (2, False, 3), (4, True, 5)],
        [1, 4, 5],
        ["PAT1", "PAT4", "PAT5"],
    ),
    (
        "a decision governs its session and later ones, not earlier ones",
        [pat(1), pat(2, "1"), pat(3)],
        [(2, True, 3)],
        [2, 3],
        ["PAT2", "PAT3"],
    ),
    (
        "no decision recorded: no consent",
        [pat(1), pat(2)],
        [],
        [],
        [],
    ),
    (
        "a therapist's true does not override the patient's false",
        [pat(1, "false"), ther(1, "true"), pat(2)],
        [(1, False, 2)],
        [],
        ["THERAPIST1"],
    ),
    (
        "a withdrawal on a rejected row (item out of range) still counts",
        [pat(1, "true"), pat(2, "false", items=WAI_SR_OK[:11] + (9,)), pat(3)],
        [(1, True, 2), (2, False, 3)],
        [1],
        ["PAT1"],
    ),
    (
        "two rows of one session that disagree: no consent (bdi_ii sorts before wai_sr)",
        [pat(1, "true"), pat(2, "false", instrument="bdi_ii", items=BDI_OK, note="BDI2"), pat(2, "true"), pat(3)],
        [(1, True, 2), (2, False, 3), (2, True, 4)],
        [1],
        ["PAT1"],
    ),
    (
        "two rows of one session that disagree, the other way round",
        [pat(1, "true"), pat(2, "true", instrument="bdi_ii", items=BDI_OK, note="BDI2"), pat(2, "false"), pat(3)],
        [(1, True, 2), (2, True, 3), (2, False, 4)],
        [1],
        ["PAT1"],
    ),
    (
        "Nordic spellings, any case",
        [pat(1, "Ja"), pat(2, "NEJ"), pat(3, "j"), pat(4, "nei")],
        [(1, True, 2), (2, False, 3), (3, True, 4), (4, False, 5)],
        [1, 3],
        ["PAT1", "PAT3"],
    ),
    (
        "a misspelt cell is rejected (consent_value) and is no decision",
        [pat(1, "true"), pat(2, "maybe"), pat(3)],
        [(1, True, 2)],
        [1, 2, 3],
        ["PAT1", "PAT3"],
    ),
]


def governed(res, rows, kind="share_text") -> list[int]:
    """The sessions (of the export's rows) where the consent of ``kind`` holds."""
    sessions = sorted({int(r["session"]) for r in rows})
    frame = C.governs(pl.DataFrame({"dyad_id": ["D1"] * len(sessions), "session": sessions}), res.consent, kind)
    return frame.filter(pl.col("consent")).get_column("session").to_list()


CASES = dict(
    argnames="rows, want_decisions, want_governed, want_shown",
    argvalues=[m[1:] for m in MATRIX],
    ids=[m[0] for m in MATRIX],
)


@pytest.mark.parametrize(**CASES)
def test_consent_matrix(tmp_path, registry, rows, want_decisions, want_governed, want_shown):
    res = validated(tmp_path, registry, rows)
    assert decisions(res) == want_decisions
    assert governed(res, rows) == want_governed
    assert res.consent.filter(pl.col("kind") == "share_text").get_column("rater").unique().to_list() in (
        [],
        ["patient"],
    )
    assert shown(res) == want_shown


@pytest.mark.parametrize(**CASES)
def test_ratings_consent_follows_the_same_rules(tmp_path, registry, rows, want_decisions, want_governed, want_shown):
    """The same cells in consent_share_ratings give the same decisions, per session."""
    moved = [{**r, "consent_share_ratings": r["consent_share_text"], "consent_share_text": ""} for r in rows]
    res = validated(tmp_path, registry, moved)
    assert decisions(res, "share_ratings") == want_decisions and decisions(res, "share_text") == []
    assert governed(res, rows, "share_ratings") == want_governed and governed(res, rows) == []


def test_the_consent_table_columns_dates_and_lines(tmp_path, registry):
    res = validated(tmp_path, registry, [pat(1, "true", ratings="nej"), pat(3, "false"), ther(3, "true")])
    assert res.consent.schema == pl.Schema(C.CONSENT_TABLE)
    assert list(res.consent.columns) == [
        "dyad_id",
        "session",
        "date",
        "rater",
        "consent",
        "source_file",
        "source_line",
        "kind",
    ]
    assert res.consent.drop("source_file").rows() == [
        ("D1", 1, dt.date(2024, 1, 8), "patient", False, 2, "share_ratings"),
        ("D1", 1, dt.date(2024, 1, 8), "patient", True, 2, "share_text"),
        ("D1", 3, dt.date(2024, 1, 22), "patient", False, 3, "share_text"),
    ]
    assert res.rejections.height == 0  # "nej" is a valid answer now


def test_a_consent_cell_on_a_non_patient_row_is_listed_as_a_warning(tmp_path, registry):
    res = validated(tmp_path, registry, [pat(1, "false"), ther(1, "true")])
    assert res.warnings.drop("source_file").rows() == [
        (
            "consent_share_text",
            "line 3: consent_share_text 'true' on a therapist row (wai_s) is ignored: consent is the patient's own "
            "decision, taken only from the patient's rows",
        ),
    ]
    assert res.rejections.height == 0 and res.accepted.height == 2


def test_observer_notes_follow_the_patients_text_consent(tmp_path, registry):
    """An observer's note may quote the patient: shown only where the patient's consent holds."""
    registry = {**registry, "wai_s": dataclasses.replace(registry["wai_s"], raters=("therapist", "observer"))}
    rows = [pat(1, "true"), ther(1, rater="observer"), ther(1), pat(2, "false"), ther(2, rater="observer"), ther(2)]
    res = validated(tmp_path, registry, rows)
    assert shown(res) == ["OBSERVER1", "PAT1", "THERAPIST1", "THERAPIST2"]
    research = visible_notes(res.accepted, "research", res.consent).get_column("note").to_list()
    assert research == ["OBSERVER1", "PAT1", "THERAPIST1", "OBSERVER2", "PAT2", "THERAPIST2"]


def test_untrusted_rows_give_no_decision(tmp_path, registry):
    """A row with a field missing: its cells are shifted, so its 'consent' cell is another field."""
    path = write_canonical(
        tmp_path / "q.csv",
        [pat(1, "true"), pat(3, ratings="yes")],
        n_items=12,
        extra_columns=("note", "consent_share_text", "consent_share_ratings"),
    )
    text = path.read_text(encoding="utf-8").splitlines()
    fields = text[-1].split(",")
    del fields[7]  # item_01 lost: the ratings consent 'yes' lands in consent_share_text
    text[-1] = ",".join(fields)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    res = run_validation(path, registry)
    assert res.rejections.select("source_line", "rule").rows() == [(3, "field_count")]
    assert res.consent.select("session", "consent", "source_line", "kind").rows() == [(1, True, 2, "share_text")]


# --- REDCap: consent is never filled across events ------------------------------------------

REDCAP_HEADER = [
    "record_id",
    "redcap_event_name",
    "pat",
    "ther",
    "arm",
    "consent",
    "wai_date",
    *[f"wai_sr_{k:02d}" for k in range(1, 13)],
    "wai_note",
    "wai_sr_complete",
]


def _redcap_line(record, event, pat_, ther_, arm, consent, note=None):
    form = [f"2024-01-{10 + len(note):02d}" if note else ""] + ([str(v) for v in WAI_SR_OK] if note else [""] * 12)
    return [record, event, pat_, ther_, arm, consent, *form, note or "", "2" if note else ""]


def test_redcap_consent_is_not_filled_and_counts_on_events_without_forms(tmp_path, registry):
    lines = [
        _redcap_line("D1", "baseline_arm_1", "P1", "T1", "CBT", "true"),  # enrolment: no form, consent given
        _redcap_line("D1", "session_1_arm_1", "", "", "", "", "N1"),
        _redcap_line("D1", "session_3_arm_1", "", "", "", "false", "N3"),  # withdrawn
        _redcap_line("D1", "session_4_arm_1", "", "", "", "", "N4"),  # empty: no decision, not a copy
        _redcap_line("D1", "session_5_arm_1", "", "", "", "ja"),  # consent again, on an event without a form
        _redcap_line("D1", "session_6_arm_1", "", "", "", "", "N6"),
        _redcap_line("D2", "baseline_arm_1", "P2", "T2", "IPT", "maybe"),  # no form: a warning, no decision
    ]
    path = tmp_path / "redcap.csv"
    path.write_text("\n".join(",".join(x) for x in [REDCAP_HEADER, *lines]) + "\n", encoding="utf-8")
    spec = {
        "path": str(path),
        "format": "redcap",
        "record_id": "dyad_id",
        "columns": {"patient_id": "pat", "therapist_id": "ther", "arm": "arm", "consent_share_text": "consent"},
        "events": {"map": {"baseline_arm_1": 0}, "pattern": "session_{n}_arm_1"},
        "instruments": {
            "wai_sr": {
                "items": "wai_sr_{n:02d}",
                "rater": "patient",
                "columns": {"date": "wai_date", "note": "wai_note"},
            }
        },
    }
    frame, meta = read_input(spec)
    got = frame.select(
        "source_line",
        "dyad_id",
        "patient_id",
        "therapist_id",
        "arm",
        "session",
        "instrument",
        "consent_share_text",
        pl.col("consent_only").fill_null(False),
    ).rows()
    assert got == [
        (2, "D1", "P1", "T1", "CBT", "0", None, "true", True),
        (3, "D1", "P1", "T1", "CBT", "1", "wai_sr", None, False),  # IDs and arm filled, consent not
        (4, "D1", "P1", "T1", "CBT", "3", "wai_sr", "false", False),
        (5, "D1", "P1", "T1", "CBT", "4", "wai_sr", None, False),
        (6, "D1", "P1", "T1", "CBT", "5", None, "ja", True),
        (7, "D1", "P1", "T1", "CBT", "6", "wai_sr", None, False),
        (8, "D2", "P2", "T2", "IPT", "0", None, "maybe", True),
    ]
    assert (meta["records_read"], meta["rows_read"], meta["records_without_forms"]) == (7, 4, 3)
    res = validate_frames([frame], [meta], registry)
    assert res.accounting.select("rows_read", "rows_accepted", "rows_rejected").row(0) == (4, 4, 0)
    assert res.consent.select("dyad_id", "session", "date", "consent", "source_line").rows() == [
        ("D1", 0, None, True, 2),
        ("D1", 3, dt.date(2024, 1, 12), False, 4),
        ("D1", 5, None, True, 6),
    ]
    assert res.warnings.get_column("warning").to_list() == [
        "line 8: consent_share_text 'maybe' is not true or false (true/yes/y/1/ja/j or false/no/n/0/nei/nej); "
        "it is no consent decision"
    ]
    assert shown(res) == ["N1", "N6"]


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "note, want",
    [
        ("mejla jörg.ex@exämple.se i dag", "mejla [e-mail removed] i dag"),
        ("skriv till per＠example.invalid.", "skriv till [e-mail removed]."),
        ("per@example.org", "[e-mail removed]"),
        ("IP 192.168.1.20 hemma", "IP [IP address removed] hemma"),
        ("IP 255.255.255.255 och 256.1.1.1", "IP [IP address removed] och [phone removed]"),
        (
            "v6 2001:db8:0:0:0:ff00:42:8329 och fe80::1ff:fe23:4567:890a.",
            "v6 [IP address removed] och [IP address removed].",
        ),
        ("ring +47 912 34 567", "ring [phone removed]"),
        ("kl. 10:30 i dag", "kl. 10:30 i dag"),
    ],
)
def test_redaction(note, want):
    assert pl.select(redact(pl.lit(note))).item() == want


# --- through the PDFs: the therapist's copy against the research copy -----------------------


@pytest.fixture(scope="module")
def consent_build(tmp_path_factory):
    from test_report_dyad import build, write_results

    res = write_results(tmp_path_factory.mktemp("consent_pdf"))
    scores = pl.read_parquet(res / "scores" / "questionnaires.parquet")
    later = (pl.col("dyad_id") == "D1") & (pl.col("session") == 5) & (pl.col("instrument") == "bdi_ii")
    observer = scores.filter((pl.col("dyad_id") == "D1") & (pl.col("session") == 3) & (pl.col("rater") == "therapist"))
    observer = observer.with_columns(
        pl.lit("observer").alias("rater"), pl.lit("OBSERVERQUOTE the patient said").alias("note")
    )
    pl.concat(
        [
            scores.with_columns(
                pl.when(later).then(pl.lit("LATERNOTE after withdrawal")).otherwise(pl.col("note")).alias("note")
            ),
            observer,
        ]
    ).write_parquet(res / "scores" / "questionnaires.parquet")
    # D1: text consent at intake, withdrawn at session 3; ratings shared. D2: text shared, no ratings consent.
    rows = [
        ("D1", 0, True, "share_text"),
        ("D1", 3, False, "share_text"),
        ("D1", 0, True, "share_ratings"),
        ("D2", 0, True, "share_text"),
    ]
    pl.DataFrame(
        [
            {
                "dyad_id": d,
                "session": s,
                "date": None,
                "rater": "patient",
                "consent": c,
                "source_file": "data/q.csv",
                "source_line": i + 2,
                "kind": k,
            }
            for i, (d, s, c, k) in enumerate(rows)
        ],
        schema=C.CONSENT_TABLE,
    ).write_parquet(res / "validated" / "consent.parquet")
    # the score stage carries each row's text consent (dyadflow.score.with_text_consent)
    scores = pl.read_parquet(res / "scores" / "questionnaires.parquet")
    consent = pl.read_parquet(res / "validated" / "consent.parquet")
    with_text_consent(scores, consent).write_parquet(res / "scores" / "questionnaires.parquet")
    build(res)
    return res


def _text(path):
    from test_report_dyad import pdf_text

    return pdf_text(path)


def test_withdrawn_notes_are_absent_from_the_therapists_copy_only(consent_build):
    reports = consent_build / "reports"
    therapist, research = _text(reports / "by_therapist" / "T1" / "D1.pdf"), _text(reports / "dyads" / "D1.pdf")
    assert "PATIENTSECRET" in therapist and "THERAPISTNOTE" in therapist  # session 1 (consented), the therapist's own
    assert "OBSERVERQUOTE" not in therapist and "LATERNOTE" not in therapist  # sessions 3 and 5, after the withdrawal
    for note in ("PATIENTSECRET", "THERAPISTNOTE", "OBSERVERQUOTE the patient said", "LATERNOTE after withdrawal"):
        assert note in research
    assert "has not agreed to share their own ratings" not in therapist  # D1 shares its ratings: all are there
    assert "Working Alliance Inventory – Short Revised (patient) patient 3.00 (s. 1) 4.25 (s. 3) +1.25" in therapist
    assert "Alliance, patient (mean) 3.81" in research


def test_patient_ratings_without_consent_are_absent_from_the_therapists_copy_only(consent_build):
    reports = consent_build / "reports"
    therapist, research = _text(reports / "by_therapist" / "T2" / "D2.pdf"), _text(reports / "dyads" / "D2.pdf")
    # the therapist's copy is the feedback report: D2's own ratings (alliance and BDI-II) are withheld
    assert "Alliance, patient (mean) 4.00" in research and "20.0 → 21.0" in research
    assert (
        "The patient has not agreed to share their own ratings of some sessions with you; those sessions are not "
        "shown, and neither is what is computed from them. (Sessions: 0, 1)"
    ) in therapist
    assert "All questionnaires — No questionnaires that can be shown." in therapist
    assert "Alliance — No alliance ratings that can be shown." in therapist
    for figure in ("20.0", "21.0", "4.00"):
        assert figure not in therapist
    assert "SHAREDNOTE" in therapist  # the text consent is a separate decision
    assert "No risk item was endorsed in the questionnaires on record." in research
    assert "0 2024-02-01 20.0 severe — — 1 2024-02-08 21.0 severe 4.00 —" in research


def test_dial_sessions_follow_the_ratings_consent():
    from dyadflow.report.dyad import clinician_microprocess

    micro = {
        "D1": {"dyad_id": "D1", "available": True, "sessions": [{"session": 3}, {"session": 8}, {"session": 9}]},
        "D2": {"dyad_id": "D2", "available": True, "sessions": [{"session": 5}]},
        "D3": {"dyad_id": "D3", "available": False, "sessions": []},
    }
    consent = pl.DataFrame(
        {
            "dyad_id": ["D1", "D1", "D2"],
            "session": [0, 9, 5],
            "date": [None] * 3,
            "rater": ["patient"] * 3,
            "consent": [True, False, True],
            "source_file": ["x.csv"] * 3,
            "source_line": [2, 3, 4],
            "kind": ["share_ratings", "share_ratings", "share_text"],
        },
        schema=C.CONSENT_TABLE,
    )
    out = clinician_microprocess(micro, consent)
    # D1: withdrawn at 9 (8 just before stays); D2 consented to text only; D3 has no dial data
    assert {d: ([e["session"] for e in v["sessions"]], v["withheld"], v["available"]) for d, v in out.items()} == {
        "D1": ([3, 8], [9], True),
        "D2": ([], [5], True),
        "D3": ([], [], False),
    }


def test_the_demo_shows_a_withdrawal_of_each_consent(registry):
    from conftest import demo_inputs

    frames, metas = zip(*(read_input(spec) for spec in demo_inputs()), strict=False)
    res = validate_frames(list(frames), list(metas), registry)
    got = (
        res.consent.filter(pl.col("dyad_id").is_in(["D002", "D006"]))
        .select("dyad_id", "kind", "session", "consent")
        .rows()
    )
    assert got == [
        ("D002", "share_ratings", 0, False),
        ("D002", "share_text", 0, True),
        ("D002", "share_text", 7, False),
        ("D006", "share_ratings", 0, True),
        ("D006", "share_ratings", 5, False),
        ("D006", "share_text", 0, False),
    ]
    per_kind = (
        res.consent.filter(pl.col("session") == 0).group_by("kind").agg(pl.col("consent").sum()).sort("kind").rows()
    )
    assert per_kind == [("share_ratings", 65), ("share_text", 57)]  # of 80 dyads
    # the demo's only warnings are the Qualtrics export's identifier-like columns (not read)
    assert res.warnings.filter(pl.col("column").str.starts_with("consent")).height == 0
    assert set(res.warnings.get_column("column")) == {
        "IPAddress",
        "RecipientLastName",
        "RecipientFirstName",
        "RecipientEmail",
        "LocationLatitude",
        "LocationLongitude",
    }


def test_the_dial_page_says_which_sessions_are_withheld():
    from test_microprocess_report import render

    research = render({"dyad_id": "D1", "available": True, "sessions": []})  # no 'withheld': the research copy
    assert "not shown in this copy" not in research
    clinician = " ".join(render({"dyad_id": "D1", "available": True, "sessions": [], "withheld": [5, 9]}).split())
    assert (
        "Sessions 5, 9: not shown in this copy; the patient has not consented to share their ratings with the "
        "therapist."
    ) in clinician
