"""The clinician copy (issue 17): consent of the patient's ratings, the risk override of the
banner, sv/nb catalogues complete, locale formats, the caseload order."""

from __future__ import annotations

import datetime as dt
import io as pyio
import re

import polars as pl
import pytest
from conftest import REPO
from pypdf import PdfReader

from dyadflow.core.accounting import RejectionsModel
from dyadflow.core.contract import conform, empty
from dyadflow.core.registry import load_registry
from dyadflow.report import charts, clinician, i18n, render
from dyadflow.report.tables import ReportTables, with_selection_columns
from dyadflow.score.contract import ScoresModel
from dyadflow.select.common import SelectionModel
from dyadflow.stats.contract import DyadsModel, FeedbackModel, RupturesModel, SessionsModel, SuddenGainsModel
from dyadflow.validate.consent import CONSENT_TABLE, ConsentModel

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}
D0 = dt.date(2024, 1, 1)


def _tables(consent: bool | None, risk_sessions=(), signal: str = "green") -> tuple[ReportTables, pl.DataFrame]:
    """D1 (therapist T1): BDI-II 31 → 27 → 23 and WAI-SR 3.25, 3.75 (patient), WAI-S 5.5, 5.0
    (therapist) at sessions 0–2; ``consent``: the patient's share_ratings decision at session 0
    (None: no decision); BDI-II item 9 endorsed at ``risk_sessions``; feedback ``signal`` at 2."""
    sessions = pl.DataFrame(
        {
            "dyad_id": ["D1"] * 3,
            "session": [0, 1, 2],
            "date": [D0 + dt.timedelta(days=7 * s) for s in range(3)],
            "alliance_patient": [None, 3.25, 3.75],
            "alliance_therapist": [None, 5.5, 5.0],
            "outcome": [31.0, 27.0, 23.0],
        }
    )
    rows = [("bdi_ii", "patient", s, v) for s, v in zip((0, 1, 2), (31.0, 27.0, 23.0), strict=False)]
    rows += [
        ("wai_sr", "patient", 1, 3.25),
        ("wai_sr", "patient", 2, 3.75),
        ("wai_s", "therapist", 1, 5.5),
        ("wai_s", "therapist", 2, 5.0),
    ]
    scores = pl.DataFrame(
        [
            {
                "dyad_id": "D1",
                "patient_id": "P1",
                "therapist_id": "T1",
                "session": s,
                "date": D0 + dt.timedelta(days=7 * s),
                "rater": r,
                "instrument": i,
                "score": v,
                "band": {31.0: "severe", 27.0: "moderate", 23.0: "moderate"}.get(v) if i == "bdi_ii" else None,
                "risk_flag": (s in risk_sessions) if i == "bdi_ii" else None,
                "risk_items": "item 9 = 2" if i == "bdi_ii" and s in risk_sessions else None,
            }
            for i, r, s, v in rows
        ]
    )
    dyads = pl.DataFrame(
        {
            "dyad_id": ["D1"],
            "patient_id": ["P1"],
            "therapist_id": ["T1"],
            "n_sessions": [3],
            "first_session": [0],
            "last_session": [2],
        }
    )
    decisions = (
        []
        if consent is None
        else [
            {
                "dyad_id": "D1",
                "session": 0,
                "date": D0,
                "rater": "patient",
                "consent": consent,
                "source_file": "q.csv",
                "source_line": 2,
                "kind": "share_ratings",
            }
        ]
    )
    fb = pl.DataFrame(
        {
            "dyad_id": ["D1"] * 3,
            "session": [0, 1, 2],
            "outcome": [31.0, 27.0, 23.0],
            "expected_p10": [31.0, 20.0, 17.0],
            "expected_p25": [31.0, 23.0, 20.0],
            "expected_p50": [31.0, 26.0, 23.0],
            "expected_p75": [31.0, 29.0, 26.0],
            "expected_p90": [31.0, 32.0, 29.0],
            "signal": [None, "green", signal],
            "signal_rule": ["intake", "within_expected", "within_expected"],
            "alliance_alert": [None, False, False],
            "alliance_alert_reason": [None, None, None],
            "intake": [31.0] * 3,
            "intake_session": [0] * 3,
        }
    )
    t = ReportTables(
        dyads=conform(dyads, DyadsModel),
        sessions=conform(sessions, SessionsModel),
        scores=conform(scores, ScoresModel),
        sudden_gains=empty(SuddenGainsModel),
        ruptures=empty(RupturesModel),
        selection=with_selection_columns(empty(SelectionModel)),
        rejections=empty(RejectionsModel),
        consent=conform(pl.DataFrame(decisions, schema=CONSENT_TABLE), ConsentModel)
        if decisions
        else empty(ConsentModel),
    )
    return t, conform(fb, FeedbackModel)


def _dial() -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    return {
        "D1": {
            "dyad_id": "D1",
            "available": True,
            "sessions": [{"session": 1, "chart_uri": charts.data_uri(charts.png_bytes(fig))}],
        }
    }


def _copy(t, fb, policy="consent", language="en", prompts=None) -> tuple[dict, str]:
    ctx = clinician.contexts(
        t,
        fb,
        study="Trial",
        outcome="bdi_ii",
        alliance=ALLIANCE,
        registry=load_registry(),
        report_cfg={"language": language, "clinician": {"patient_ratings": policy}},
        prompts=prompts,
        microprocess=_dial(),
    )[0]
    pdf = render.render_pdf(clinician.render_html(ctx), 0)
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pyio.BytesIO(pdf)).pages)
    return ctx, text


PATIENT_FIGURES = (
    "31.0",
    "23.0",
    "\u22128.0",
    "3.25",
    "3.75",
    "Moment-to-moment alliance ratings",
    "Session 1: patient (solid)",
)


@pytest.mark.parametrize(
    "consent,policy,shown",
    [
        (None, "consent", False),  # no decision: no consent
        (False, "consent", False),
        (True, "consent", True),
        (None, "always", True),  # clinics that run feedback as routine
        (True, "never", False),
    ],
)
def test_patient_ratings_and_dial_charts_follow_consent_and_policy(consent, policy, shown):
    t, fb = _tables(consent)
    ctx, text = _copy(t, fb, policy)
    for figure in PATIENT_FIGURES:
        assert (figure in text) is shown, (figure, consent, policy)
    assert "5.00" in text and "5.50" in text  # the therapist's own ratings: always
    assert ctx["status"] == ("green" if shown else "withheld")
    if not shown:
        assert "Status not shown" in text and ctx["ratings_withheld"] == [0, 1, 2]


def test_a_risk_item_overrides_a_green_signal_on_the_banner():
    t, fb = _tables(True, risk_sessions=(1, 2))
    ctx, text = _copy(t, fb)
    assert ctx["status"] == "green" and ctx["risk_now"] is True
    banner = text.split("To consider")[0]
    assert "Risk item endorsed — session 2: suicidal thoughts or wishes" in banner
    assert banner.index("Risk item endorsed") < banner.index("On track")
    # the risk prompt comes first; risk items latest session first, with the registry's label
    assert ctx["prompts"][0].startswith("A risk item was endorsed.")
    assert [r["session"] for r in ctx["risk"]] == [2, 1]
    assert "Session 2 (Jan 15, 2024), Beck Depression Inventory-II: suicidal thoughts or wishes" in text
    # no risk at the latest questionnaire carrying risk items: the banner is the signal's
    t, fb = _tables(True, risk_sessions=(1,))
    ctx, text = _copy(t, fb)
    assert ctx["risk_now"] is False and "Risk item endorsed —" not in text and "On track" in text
    t, fb = _tables(True)
    ctx, text = _copy(t, fb)
    assert ctx["risk"] == [] and "Risk item" not in text and ctx["prompts"][0].startswith("Progress as expected")


def test_swedish_copy_uses_the_catalogue_the_registry_and_decimal_commas():
    t, fb = _tables(True, risk_sessions=(2,))
    _, text = _copy(t, fb, language="sv")
    assert (
        "På rätt spår" in text
        and "Riskfråga besvarad positivt — session 2: självmordstankar eller självmordsönskningar" in text
    )
    assert "Becks depressionsskala (BDI-II)" in text and "15 jan. 2024" in text
    assert "23,0" in text and "−8,0" in text and "23.0" not in text
    _, nb = _copy(t, fb, language="nb")
    assert "I rute" in nb and "selvmordstanker eller selvmordsønsker" in nb and "23,0" in nb


def test_study_prompts_replace_the_shipped_ones(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text(
        "green: Keep the weekly check-in.\nsv:\n  green: [Fortsätt med veckouppföljningen.]\n", encoding="utf-8"
    )
    own = clinician.load_prompts(str(path))
    assert clinician.prompts_for("green", "en", own) == ["Keep the weekly check-in."]
    assert clinician.prompts_for("green", "sv", own) == ["Fortsätt med veckouppföljningen."]
    assert clinician.prompts_for("red", "nb", own)[0].startswith("Vurder å spørre")
    path.write_text("gren: typo\n", encoding="utf-8")
    with pytest.raises(Exception, match="unknown prompt key") as err:
        clinician.load_prompts(str(path))
    assert "gren" in str(err.value)


def _extracted() -> set[str]:
    """Every message of the clinician templates and Python, extracted by Babel with babel.cfg."""
    from babel.messages.extract import extract_from_file
    from babel.messages.frontend import parse_mapping_cfg

    with open(REPO / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    ids = set()
    for pattern, method in method_map:
        for path in sorted(REPO.glob(pattern)):
            for _line, message, _comments, _context in extract_from_file(
                method,
                str(path),
                keywords={"_": None, "N_": None, "gettext": None},
                options=options_map.get(pattern, {}),
            ):
                ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("language", ["sv", "nb"])
def test_every_clinician_message_is_translated(language):
    from babel.messages.pofile import read_po

    ids = _extracted()
    assert len(ids) > 80 and "Not on track" in ids and "Report ID %(id)s" in ids  # the templates and the Python
    with open(i18n.po_path(language), "rb") as fh:
        catalog = read_po(fh, locale=language)
    for msgid in sorted(ids):
        message = catalog.get(msgid)
        assert message is not None and message.string, f"{language}: untranslated: {msgid!r}"
        assert not message.fuzzy, msgid
        placeholders = sorted(re.findall(r"%\(\w+\)s", msgid))
        assert sorted(re.findall(r"%\(\w+\)s", message.string)) == placeholders, msgid


def test_numbers_and_dates_for_the_locale():
    assert i18n.fmt_decimal(1234.5, 1, "sv") == "1234,5"
    assert i18n.fmt_decimal(1234.5, 1, "nb") == "1234,5"
    assert i18n.fmt_decimal(1234.5, 1, "en") == "1234.5"
    assert i18n.fmt_decimal(-2.25, 2, "nb") == "\u22122,25"
    assert i18n.fmt_signed(10.0, 1, "sv") == "+10,0" and i18n.fmt_signed(0.0, 1, "sv") == "0,0"
    assert i18n.fmt_decimal(None, 1, "sv") == "—" and i18n.fmt_decimal(float("nan"), 1, "sv") == "—"
    assert i18n.fmt_date(dt.date(2024, 1, 5), "sv") == "5 jan. 2024"
    assert i18n.fmt_date(dt.date(2024, 1, 5), "nb") == "5. jan. 2024"
    assert i18n.fmt_date(dt.date(2024, 1, 5), "en") == "Jan 5, 2024"


def test_caseload_puts_risk_then_red_first():
    t, fb = _tables(True)
    two = pl.concat([fb, fb.with_columns(pl.lit("D2").alias("dyad_id"), pl.lit("red").alias("signal"))])
    three = pl.concat([two, fb.with_columns(pl.lit("D3").alias("dyad_id"), pl.lit("recovered").alias("signal"))])
    dyads = pl.concat(
        [
            t.dyads,
            t.dyads.with_columns(pl.lit("D2").alias("dyad_id")),
            t.dyads.with_columns(pl.lit("D3").alias("dyad_id")),
        ]
    )
    scores = pl.concat(
        [
            t.scores,
            t.scores.with_columns(pl.lit("D2").alias("dyad_id")),
            t.scores.with_columns(
                pl.lit("D3").alias("dyad_id"),
                (pl.col("instrument") == "bdi_ii").alias("risk_flag"),
                pl.when(pl.col("instrument") == "bdi_ii").then(pl.lit("item 9 = 1")).alias("risk_items"),
            ),
        ]
    )
    consent = pl.concat(
        [
            t.consent,
            t.consent.with_columns(pl.lit("D2").alias("dyad_id")),
            t.consent.with_columns(pl.lit("D3").alias("dyad_id")),
        ]
    )
    t = ReportTables(
        **{
            **t.__dict__,
            "dyads": dyads,
            "scores": scores,
            "consent": consent,
            "sessions": pl.concat(
                [
                    t.sessions,
                    t.sessions.with_columns(pl.lit("D2").alias("dyad_id")),
                    t.sessions.with_columns(pl.lit("D3").alias("dyad_id")),
                ]
            ),
        }
    )
    rows = clinician.caseload_rows(t, three, load_registry(), "bdi_ii", {})
    assert rows.select("dyad_id", "status", "risk", "latest", "change").rows() == [
        ("D3", "recovered", True, 23.0, -8.0),
        ("D2", "red", False, 23.0, -8.0),
        ("D1", "green", False, 23.0, -8.0),
    ]
