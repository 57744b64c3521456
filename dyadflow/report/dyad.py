"""Dyad case reports: the template context of each dyad, built for all dyads of a shard at once.

The data work (joins, per-session aggregates, consent, redaction) is done with polars
over every dyad of the shard together; the loop over dyads only hands each dyad's
pre-built rows to the template and WeasyPrint.

Audiences (config ``report.audience``, and always ``clinician`` for the
``by_therapist`` bundles):

* ``research``: everything, including selected sessions and every note.
* ``clinician``: the patient's and observers' notes only of sessions where the
  patient's text consent holds (``share_text`` in ``results/validated/consent.parquet``,
  see :mod:`dyadflow.validate.consent`), with e-mail addresses, phone numbers and IP addresses
  redacted in every note shown; the therapist's own notes; the patient's own ratings
  (questionnaires, the figures computed from them, dial data) only of sessions where the
  patient's ratings consent (``share_ratings``) holds, and whole-treatment figures from
  the patient's ratings only when it holds for every rated session; no selection
  material (selected sessions, groups, reasons), which is research-only.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from dyadflow import __version__
from dyadflow.core.config import section
from dyadflow.core.study import instrument
from dyadflow.report import charts
from dyadflow.report.tables import ReportTables
from dyadflow.score import with_text_consent
from dyadflow.validate import consent as consent_rules

AUDIENCES = ("research", "clinician")
# \w is Unicode-aware (jörg.ex@exämple.se); ＠ is the full-width at sign
EMAIL = r"[\w.%+-]+[@＠][\w-]+(?:\.[\w-]+)+"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9A-Fa-f]{1,4}"
IP_ADDRESS = (
    rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b"  # IPv4
    rf"|\b(?:{_HEX}:){{7}}{_HEX}\b"  # IPv6, full
    rf"|\b(?:{_HEX}:){{1,6}}(?::{_HEX}){{1,6}}\b|\b(?:{_HEX}:){{1,7}}:|::(?:{_HEX}:){{0,6}}{_HEX}\b"  # IPv6, with ::
)
PHONE = r"\+?\d[\d ()./-]{6,}\d"
REDACTED_EMAIL = "[e-mail removed]"
REDACTED_IP = "[IP address removed]"
REDACTED_PHONE = "[phone removed]"
# consent_share_ratings: the patient's ratings in the clinician copy (see shard_contexts)
PATIENT_DYAD_FIGURES = (
    "outcome_pre",
    "outcome_post",
    "outcome_change",
    "rci",
    "change_category",
    "alliance_patient_mean",
    "alliance_patient_early",
    "alliance_patient_slope",
    "agreement_r",
    "agreement_n",
    "discrepancy_mean",
    "lag_b",
    "lag_se",
    "lag_t",
    "lag_p",
    "lag_n",
    "n_sudden_gains",
    "n_sudden_losses",
    "n_rupture_repairs",
)
MAX_NOTE_CHARS = section("report")["max_note_chars"]  # the config schema's default of report.max_note_chars
SHORTENED = "… (shortened)"


def redact(expr: pl.Expr) -> pl.Expr:
    """Replace e-mail addresses, IP addresses and phone numbers in note text (in that
    order: an IPv4 address would otherwise read as a phone number)."""
    return (
        expr.str.replace_all(EMAIL, REDACTED_EMAIL)
        .str.replace_all(IP_ADDRESS, REDACTED_IP)
        .str.replace_all(PHONE, REDACTED_PHONE)
    )


def shorten_note(note: pl.Expr, max_chars: int, where: pl.Expr | None = None) -> pl.Expr:
    """A note longer than ``max_chars`` characters cut to at most that many (at the last
    word boundary, unless that loses more than a fifth), followed by "… (shortened)" and,
    if given, ``where`` (", full text: <file> line <n>"). Shorter notes are unchanged."""
    head = note.str.slice(0, max_chars + 1)  # one more: a space right after the cut is a word end
    at_word = head.str.replace(r"\s+\S*$", "")
    cut = pl.when(at_word.str.len_chars() >= max_chars * 4 // 5).then(at_word).otherwise(note.str.slice(0, max_chars))
    cut = cut.str.slice(0, max_chars).str.strip_chars_end()
    tail = pl.lit(SHORTENED) if where is None else pl.concat_str(pl.lit(SHORTENED), where.fill_null(""))
    return pl.when(note.str.len_chars() > max_chars).then(pl.concat_str(cut, pl.lit(" "), tail)).otherwise(note)


def visible_notes(
    scores: pl.DataFrame, audience: str, consent: pl.DataFrame | None = None, max_chars: int = MAX_NOTE_CHARS
) -> pl.DataFrame:
    """The notes an audience may read: dyad_id, session, rater, instrument, note.

    The clinician copy shows the therapist's own notes, and the patient's and observers'
    notes (an observer may quote the patient) only where the patient's text consent
    governs the note's session: the scores' ``consent_share_text``, which the score stage
    computed, or, when ``consent`` (the rows of consent.parquet) is given, computed from it
    the same way (:func:`dyadflow.score.with_text_consent`).
    Notes longer than ``max_chars`` are shortened (a 1,000,000-character note took 197
    pages); the research copy says where the full text is (the validated file and line).
    """
    notes = scores.filter(pl.col("note").is_not_null() & (pl.col("note").str.strip_chars() != ""))
    if audience == "research":
        where = None
        if {"source_file", "source_line"} <= set(notes.columns):
            where = pl.format(", full text: {} line {}", pl.col("source_file"), pl.col("source_line"))
        return notes.select(
            "dyad_id", "session", "rater", "instrument", shorten_note(pl.col("note"), max_chars, where).alias("note")
        ).sort("dyad_id", "session", "rater", "instrument")
    if consent is not None or "consent_share_text" not in notes.columns:
        notes = with_text_consent(notes, consent if consent is not None else consent_rules.empty_table())
    return (
        notes.filter((pl.col("rater") == "therapist") | pl.col("consent_share_text").fill_null(False))
        # redacted before it is cut, so a cut never leaves part of an address
        .select(
            "dyad_id", "session", "rater", "instrument", shorten_note(redact(pl.col("note")), max_chars).alias("note")
        )
        .sort("dyad_id", "session", "rater", "instrument")
    )


def ratings_withheld(t: ReportTables) -> pl.DataFrame:
    """dyad_id, session: the sessions whose patient ratings (questionnaires) the patient's
    ratings consent does not cover."""
    patient = t.scores.filter(pl.col("rater") == "patient").select("dyad_id", "session").unique()
    return (
        consent_rules.governs(patient, t.consent, "share_ratings")
        .filter(~pl.col("consent"))
        .select("dyad_id", pl.col("session").cast(pl.Int64))
        .sort("dyad_id", "session")
    )


def clinician_tables(t: ReportTables, outcome_by_patient: bool = True) -> tuple[ReportTables, pl.DataFrame]:
    """The tables of the clinician copy: the patient's ratings of sessions without ratings
    consent are left out (their scores, and the session values computed from them:
    patient alliance, composite and, when the outcome instrument is patient-rated, the
    outcome); figures over the whole treatment computed from the patient's ratings (key
    figures, sudden gains, the patient's ruptures, the patient's subscale profile) are
    left out for a dyad with any such session."""
    withheld = ratings_withheld(t)
    partial = withheld.select("dyad_id").unique()
    hidden = pl.col("_withheld").fill_null(False)
    keyed = withheld.with_columns(pl.lit(True).alias("_withheld"))
    scores = (
        t.scores.with_columns(pl.col("session").cast(pl.Int64).alias("_s"))
        .join(keyed.rename({"session": "_s"}), on=["dyad_id", "_s"], how="left")
        .filter(~(hidden & (pl.col("rater") == "patient")))
        .drop("_s", "_withheld")
    )
    by_patient = ["alliance_patient", "alliance_composite"] + (
        ["outcome", "outcome_next"] if outcome_by_patient else []
    )
    sessions = (
        t.sessions.with_columns(pl.col("session").cast(pl.Int64).alias("_s"))
        .join(keyed.rename({"session": "_s"}), on=["dyad_id", "_s"], how="left")
        .with_columns([pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in by_patient])
        .drop("_s", "_withheld")
    )
    in_partial = pl.col("dyad_id").is_in(partial.get_column("dyad_id").implode())
    dyads = t.dyads.with_columns(
        [
            pl.when(in_partial).then(None).otherwise(pl.col(c)).alias(c)
            for c in PATIENT_DYAD_FIGURES
            if c in t.dyads.columns
        ]
    )
    return ReportTables(
        dyads=dyads,
        sessions=sessions,
        scores=scores,
        sudden_gains=t.sudden_gains.filter(~in_partial),
        ruptures=t.ruptures.filter(~(in_partial & (pl.col("rater") == "patient"))),
        selection=t.selection,
        rejections=t.rejections,
        missing=t.missing,
        consent=t.consent,
    ), withheld


def clinician_microprocess(microprocess: dict | None, consent: pl.DataFrame) -> dict | None:
    """The microprocess (dial) page of the clinician copy: sessions without the patient's
    ratings consent are left out (their ``session`` numbers listed in ``withheld``)."""
    if not microprocess:
        return microprocess
    pairs = pl.DataFrame(
        [(d, e["session"]) for d, ctx in microprocess.items() for e in ctx.get("sessions", [])],
        schema={"dyad_id": pl.String, "session": pl.Int64},
        orient="row",
    )
    hidden = consent_rules.governs(pairs, consent, "share_ratings").filter(~pl.col("consent"))
    withheld = {(d, s) for d, s in hidden.select("dyad_id", "session").iter_rows()}
    out = {}
    for d, ctx in microprocess.items():
        keep = [e for e in ctx.get("sessions", []) if (d, e["session"]) not in withheld]
        gone = sorted(e["session"] for e in ctx.get("sessions", []) if (d, e["session"]) in withheld)
        out[d] = {**ctx, "sessions": keep, "withheld": gone, "available": bool(keep) or bool(gone)}
    return out


def session_rows(t: ReportTables, outcome: str) -> pl.DataFrame:
    """One row per dyad × session for the session table and the charts."""
    band = (
        t.scores.filter(pl.col("instrument") == outcome)
        .group_by("dyad_id", "session")
        .agg(
            pl.col("band").drop_nulls().first().alias("outcome_band"),
            pl.col("prorated").fill_null(False).any().alias("outcome_prorated"),
        )
    )
    risk = (
        t.scores.filter(pl.col("risk_flag").fill_null(False))
        .group_by("dyad_id", "session")
        .agg(pl.col("risk_items").drop_nulls().unique().sort().str.join("; ").alias("risk"))
    )
    return (
        t.sessions.join(band, on=["dyad_id", "session"], how="left")
        .join(risk, on=["dyad_id", "session"], how="left")
        .sort("dyad_id", "session")
        .select(
            "dyad_id",
            "session",
            "date",
            "outcome",
            "outcome_band",
            "outcome_prorated",
            "alliance_patient",
            "alliance_therapist",
            "alliance_composite",
            "risk",
        )
    )


def risk_rows(t: ReportTables) -> pl.DataFrame:
    """Every questionnaire with a risk flag (true) or an unanswered risk item (null flag with items missing)."""
    return (
        t.scores.filter(pl.col("risk_flag").fill_null(False))
        .select("dyad_id", "session", "date", "instrument", "risk_items")
        .sort("dyad_id", "session", "instrument")
    )


def _by_dyad(frame: pl.DataFrame) -> dict[str, list[dict]]:
    if frame.is_empty():
        return {}
    return {key[0]: part.drop("dyad_id").to_dicts() for key, part in frame.group_by("dyad_id", maintain_order=True)}


def scale_of(inst) -> str:
    """An instrument's item scale as the report prints it ("1–5")."""
    return f"{inst.min_value}–{inst.max_value}"


def shard_contexts(
    t: ReportTables,
    *,
    study: str,
    audience: str,
    outcome: str,
    alliance: dict[str, str],
    registry: dict,
    provenance: dict,
    microprocess: dict | None = None,
    max_note_chars: int = MAX_NOTE_CHARS,
) -> list[dict]:
    """The template context of every dyad in ``t.dyads`` (sorted by dyad ID), without charts."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown report audience {audience!r}")
    inst = instrument(registry, outcome, "outcome")
    bands = [{"label": b.label, "min": b.min, "max": b.max} for b in inst.bands]
    a_pat = instrument(registry, alliance["patient"], "alliance.patient")
    a_ther = instrument(registry, alliance["therapist"], "alliance.therapist")
    notes = visible_notes(t.scores, audience, None, max_note_chars)
    profile = t.subscales  # the stats stage's subscale profile
    withheld = {}
    if audience == "clinician":  # the patient's ratings only with their ratings consent
        t, hidden = clinician_tables(t, outcome_by_patient="patient" in inst.raters)
        partial = hidden.get_column("dyad_id").unique().implode()
        profile = profile.filter(~(pl.col("dyad_id").is_in(partial) & (pl.col("rater") == "patient")))
        withheld = {
            r["dyad_id"]: r["session"] for r in hidden.group_by("dyad_id").agg(pl.col("session").sort()).to_dicts()
        }
        microprocess = clinician_microprocess(microprocess, t.consent)
    per = {
        "sessions": _by_dyad(session_rows(t, outcome)),
        "risk": _by_dyad(risk_rows(t)),
        "notes": _by_dyad(notes),
        "missed": dict(t.dyads.select("dyad_id", "missed_sessions").drop_nulls().iter_rows()),
        "profile": _by_dyad(profile),
        "gains": _by_dyad(t.sudden_gains.sort("dyad_id", "pregain_session")),
        "ruptures": _by_dyad(t.ruptures.sort("dyad_id", "rupture_session", "rater")),
        "selected": _by_dyad(t.selection.sort("dyad_id", "strategy", "session")) if audience == "research" else {},
        "rejected": _by_dyad(
            t.rejections.sort("dyad_id", "source_file", "source_line").select(
                "dyad_id", "source_file", "source_line", "column", "rule", "message"
            )
        ),
    }
    alliance_max = max(a_pat.score_max, a_ther.score_max)
    alliance_min = min(a_pat.score_min, a_ther.score_min)
    out = []
    for dyad in t.dyads.sort("dyad_id").to_dicts():
        d = dyad["dyad_id"]
        sessions = per["sessions"].get(d, [])
        dates = [s["date"] for s in sessions if s["date"] is not None]
        ctx = {
            "study": study,
            "audience": audience,
            "dyad": dyad,
            "period": (min(dates), max(dates)) if dates else None,
            "outcome": {
                "key": outcome,
                "name": inst.name,
                "bands": bands,
                "lower_is_better": inst.lower_is_better,
                "range": (inst.score_min, inst.score_max),
            },
            "alliance": {
                "patient": a_pat.name,
                "therapist": a_ther.name,
                "range": (alliance_min, alliance_max),
                "scales": {"patient": scale_of(a_pat), "therapist": scale_of(a_ther)},
            },
            "sessions": sessions,
            "risk": per["risk"].get(d, []),
            "notes": per["notes"].get(d, []),
            "missed": per["missed"].get(d),
            "profile": per["profile"].get(d, []),
            "gains": per["gains"].get(d, []),
            "ruptures": per["ruptures"].get(d, []),
            "selected": per["selected"].get(d, []),
            "rejected": per["rejected"].get(d, []),
            "microprocess": (microprocess or {}).get(d),
            "ratings_withheld": withheld.get(d, []),
            "provenance": provenance,
        }
        ctx["data_fingerprint"] = fingerprint({k: v for k, v in ctx.items() if k != "provenance"}, version=False)
        ctx["fingerprint"] = fingerprint(ctx)
        ctx["epoch_date"] = max(dates) if dates else None
        out.append(ctx)
    return out


def fingerprint(ctx: dict, version: bool = True) -> str:
    """sha256 of everything a dyad report shows (its data, audience, provenance, code version):
    a change re-renders the report. With ``version=False`` and the provenance left out of
    ``ctx``, the data alone: the fingerprint printed in the report, which a change of
    dyadflow's code or templates leaves as it is."""
    payload = json.dumps(
        {**ctx, "version": __version__} if version else ctx, sort_keys=True, default=str, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def subscale_rows(profile: list[dict]) -> list[dict]:
    """One row per subscale (alphabetical) with the patient's and the therapist's mean item
    score (None where that rater has none). The raters' questionnaires may have different
    scales (WAI-SR 1–5, WAI-S 1–7), so no difference is shown."""
    by = {(p["subscale"], p["rater"]): p["value"] for p in profile}
    return [
        {"subscale": name.capitalize(), "patient": by.get((name, "patient")), "therapist": by.get((name, "therapist"))}
        for name in sorted({p["subscale"] for p in profile})
    ]


def add_charts(ctx: dict) -> dict:
    """The two charts of a dyad report, as PNG data: URIs (``None`` when there is nothing to
    draw), and the subscale profile as table rows (``subscales``: subscale, patient,
    therapist; a few numbers read better, and render faster, as a table than as a chart)."""
    sessions = ctx["sessions"]
    out = {"outcome": None, "alliance": None, "subscales": subscale_rows(ctx["profile"])}
    if any(s["outcome"] is not None for s in sessions):
        rng = ctx["outcome"]["range"] or (0, max(s["outcome"] or 0 for s in sessions))
        out["outcome"] = charts.data_uri(
            charts.png_bytes(
                charts.outcome_figure(
                    sessions,
                    ctx["outcome"]["bands"],
                    ctx["gains"],
                    ctx["outcome"]["name"].split(" (")[0],
                    (rng[0], rng[1]),
                )
            )
        )
    if any(s["alliance_patient"] is not None or s["alliance_therapist"] is not None for s in sessions):
        marks = [
            {"session": s["session"], "label": f"{s['strategy']}: {s['group']}" if s["group"] else s["strategy"]}
            for s in ctx["selected"]
        ]
        lo, hi = ctx["alliance"]["range"]
        out["alliance"] = charts.data_uri(
            charts.png_bytes(
                charts.alliance_figure(sessions, marks, ctx["ruptures"], (lo - 0.2, hi + 0.2), ("Patient", "Therapist"))
            )
        )
    return {**ctx, "charts": out}
