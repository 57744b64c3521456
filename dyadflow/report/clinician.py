"""The clinician copy of a dyad report and the therapist's caseload page (issue 17).

The clinician copy (``results/reports/by_therapist/<T>/<D>.pdf``, and ``dyads/`` when
``report.audience: clinician``) is a feedback report, rendered from
``dyadflow/report/templates/clinician.html.j2``. It renders numbers, it does not compute them:
signals, expected bands and alliance alerts come from ``results/stats/feedback.parquet``
(:mod:`dyadflow.stats.feedback`). Page 1 answers three questions: how is the patient
doing (a status banner in words, colour and pattern; the outcome over the expected
band), is the alliance at risk (both raters on the 0–1 scale, alerts marked), and is
there a risk item (listed first, latest session first, with the registry's labels),
with short support prompts. Page 2 onwards: every instrument the dyad has with its
severity bands, the shared notes and the shared dial charts. Nothing for researchers.

Internal confidentiality (Lavik et al. 2022): the patient's own ratings reach the
therapist's copy as ``report.clinician.patient_ratings`` says: ``consent`` (default: only
sessions the patient's ``consent_share_ratings`` covers, :mod:`dyadflow.validate.consent`),
``always`` or ``never``. What is derived from withheld ratings is withheld with them.

Everything is computed for all dyads of a shard (or of the study, for the caseload
pages) at once with polars; the loop over dyads only hands pre-built rows to the template.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import polars as pl

from dyadflow import __version__
from dyadflow.core import atomic
from dyadflow.core.contract import columns, empty
from dyadflow.core.errors import DyadflowError
from dyadflow.report import charts, i18n
from dyadflow.report import dyad as dyad_report
from dyadflow.report.i18n import N_
from dyadflow.report.tables import ReportTables
from dyadflow.stats.contract import FeedbackModel
from dyadflow.validate.consent import ConsentModel

POLICIES = ("consent", "always", "never")
SIGNALS = ("red", "yellow", "green", "recovered")
# the caseload order: red first (a risk item comes before everything)
SIGNAL_ORDER = {"red": 0, "yellow": 1, "none": 2, "withheld": 3, "green": 4, "recovered": 5}
STATUS = {
    "red": N_("Not on track"),
    "yellow": N_("Less progress than expected"),
    "green": N_("On track"),
    "recovered": N_("Recovered"),
    "none": N_("No status yet"),
    "withheld": N_("Status not shown"),
}
ICON = {
    "red": "\u2716",
    "yellow": "\u25b2",
    "green": "\u25cf",
    "recovered": "\u2605",
    "none": "\u25cb",
    "withheld": "\u25cb",
}
RULES = {
    "above_p90": N_(
        "The latest score is worse than the expected range: worse than 9 in 10 patients who started at the same level, at this point of treatment."
    ),
    "below_p10": N_(
        "The latest score is worse than the expected range: worse than 9 in 10 patients who started at the same level, at this point of treatment."
    ),
    "p75_to_p90": N_(
        "The latest score is in the less favourable part of the expected range: worse than 3 in 4 patients who started at the same level."
    ),
    "p10_to_p25": N_(
        "The latest score is in the less favourable part of the expected range: worse than 3 in 4 patients who started at the same level."
    ),
    "within_expected": N_("The latest score is within the expected range for patients who started at the same level."),
    "reliable_deterioration": N_(
        "The patient is reliably worse than at intake (a change larger than measurement error)."
    ),
    "recovered": N_("The patient has improved reliably and now scores below the clinical cut-off."),
    "fallback_rci_deterioration": N_(
        "The patient is reliably worse than at intake. (Too few patients for expected curves: judged by reliable change since intake.)"
    ),
    "fallback_rci_recovered": N_(
        "The patient has improved reliably and now scores below the clinical cut-off. (Too few patients for expected curves.)"
    ),
    "fallback_rci_improved": N_(
        "The patient has improved reliably since intake. (Too few patients for expected curves: judged by reliable change since intake.)"
    ),
    "fallback_rci_unchanged": N_(
        "No reliable change since intake. (Too few patients for expected curves: judged by reliable change since intake.)"
    ),
    "intake": N_("Only the first questionnaire so far: the status appears from the next one."),
    "no_curves_no_reliable_change_rule": N_("No expected curves and no reliable-change rule for this questionnaire."),
    "withheld": N_("The patient has not agreed to share their ratings with you, so their status is not shown."),
}
# the support prompts shipped with dyadflow, keyed by signal or alert; feedback.prompts replaces them
PROMPTS = {
    "red": [
        N_("Consider asking how therapy is going for them, and reviewing the goals and tasks you agreed on."),
        N_("Ask whether something outside therapy has changed (stress, losses, health, substance use)."),
        N_(
            "Consider discussing the patient in supervision or at a team meeting, and whether the plan or session frequency should change."
        ),
    ],
    "yellow": [
        N_("Ask how they see their progress so far and what would make the sessions more useful."),
        N_("Check that you still agree on the goals and on how you work towards them."),
    ],
    "green": [N_("Progress as expected: share it with the patient and continue as agreed.")],
    "recovered": [
        N_(
            "Talk with the patient about what has helped and how to keep the gains; consider planning the ending of treatment and relapse prevention."
        )
    ],
    "none": [N_("Keep asking the patient to complete the questionnaires; the status appears from the second one.")],
    "withheld": [N_("You may ask the patient how they think therapy is going for them.")],
    "alliance_alert": [
        N_(
            "The alliance rating has dropped or is low. Consider asking openly how the last sessions felt for them, and whether anything did not fit."
        ),
        N_("Acknowledge your part, invite their view, and adjust goals or tasks together if needed."),
    ],
    "risk": [
        N_(
            "A risk item was endorsed. Follow your clinic's risk routine and ask about it directly at the next contact, before other topics."
        )
    ],
}
PROMPT_KEYS = tuple(PROMPTS)


def settings(report_cfg: dict | None) -> dict:
    """``patient_ratings``, ``language`` and ``languages`` of the report config (defaults as in the schema)."""
    from dyadflow.core.config import section

    cfg = section("report", report_cfg)
    clin = cfg["clinician"]
    out = {
        "patient_ratings": clin["patient_ratings"],
        "language": cfg["language"],
        "languages": dict(clin["languages"]),
    }
    if out["patient_ratings"] not in POLICIES:
        raise ValueError(f"unknown report.clinician.patient_ratings {out['patient_ratings']!r}")
    return out


def language_of(therapist: str | None, cfg: dict) -> str:
    return cfg["languages"].get(str(therapist), cfg["language"]) if therapist is not None else cfg["language"]


def load_prompts(path: str | None) -> dict:
    """A study's prompt catalogue (``feedback.prompts``): a YAML mapping of prompt keys
    (:data:`PROMPT_KEYS`) to a text or a list of texts, used for every language, or of
    languages (en, sv, nb) to such mappings. Keys it leaves out keep dyadflow's prompts."""
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DyadflowError("the prompt catalogue does not exist", file=str(path), key="feedback.prompts") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DyadflowError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path), line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict):
        raise DyadflowError("a prompt catalogue must map prompt keys (or languages) to texts", file=str(path))
    by_language = {}
    for key, value in data.items():
        if key in i18n.LANGUAGES and isinstance(value, dict):
            by_language[key] = value
        else:
            by_language.setdefault("*", {})[key] = value
    out = {}
    for language, block in by_language.items():
        for key, value in block.items():
            if key not in PROMPT_KEYS:
                raise DyadflowError(
                    f"unknown prompt key (one of {', '.join(PROMPT_KEYS)})", file=str(path), key=str(key)
                )
            texts = [value] if isinstance(value, str) else value
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise DyadflowError("a prompt is a text or a list of texts", file=str(path), key=str(key))
            out.setdefault(language, {})[key] = texts
    return out


ALERT_PATTERNS = (  # the reasons of dyadflow.stats.feedback.alliance_alerts, as the clinician copy words them
    (
        re.compile(
            r"^(patient|therapist): latest rating (\S+) more than (\S+) SD below the earlier mean (\S+) \(SD (\S+), (\d+) earlier ratings\)$"
        ),
        N_(
            "%(rater)s: the latest rating %(v)s is more than %(k)s SD below the earlier mean %(m)s (SD %(sd)s, %(n)s earlier ratings)"
        ),
        ("rater", "v", "k", "m", "sd", "n"),
    ),
    (
        re.compile(r"^(patient|therapist): unrepaired rupture at session (\d+) \((\S+) → (\S+)\)$"),
        N_("%(rater)s: a drop at session %(s)s (%(a)s → %(b)s) that has not recovered yet"),
        ("rater", "s", "a", "b"),
    ),
    (
        re.compile(r"^both raters in the lower half of the 0-1 scale \(patient (\S+), therapist (\S+)\)$"),
        N_("both in the lower half of the scale (patient %(p)s, therapist %(t)s on 0–1)"),
        ("p", "t"),
    ),
)
RATER = {"patient": N_("patient"), "therapist": N_("therapist"), "observer": N_("observer")}


def alert_text(reason: str | None, language: str) -> str | None:
    """An alliance alert's reason in ``language``, numbers with the locale's decimal sign."""
    if not reason:
        return reason
    _ = i18n.gettext_for(language)
    out = []
    for part in reason.split("; "):
        for pattern, message, names in ALERT_PATTERNS:
            m = pattern.match(part)
            if m:
                values = dict(zip(names, m.groups(), strict=False))
                for k, v in values.items():
                    if k == "rater":
                        values[k] = _(RATER[v])
                    elif k not in ("n", "s"):
                        values[k] = i18n.fmt_decimal(float(v), 2, language)
                out.append(_(message) % values)
                break
        else:
            out.append(part)
    return "; ".join(out)


def prompts_for(key: str, language: str, study_prompts: dict) -> list[str]:
    own = (study_prompts.get(language) or {}).get(key) or (study_prompts.get("*") or {}).get(key)
    if own:
        return list(own)
    _ = i18n.gettext_for(language)
    return [_(p) for p in PROMPTS[key]]


# ---------------------------------------------------------------- what the therapist may see


def visible_tables(t: ReportTables, policy: str, outcome_by_patient: bool) -> tuple[ReportTables, pl.DataFrame]:
    """The tables of the therapist's copy under ``patient_ratings`` ``policy``, and the
    withheld patient sessions (dyad_id, session). ``never`` treats every session as
    without ratings consent; ``always`` withholds nothing."""
    if policy == "always":
        return t, pl.DataFrame(schema={"dyad_id": pl.String, "session": pl.Int64})
    source = t if policy == "consent" else ReportTables(**{**t.__dict__, "consent": empty(ConsentModel)})
    shown, withheld = dyad_report.clinician_tables(source, outcome_by_patient=outcome_by_patient)
    shown.consent = t.consent  # notes follow the text consent whatever the ratings policy
    return shown, withheld


def visible_feedback(feedback: pl.DataFrame, withheld: pl.DataFrame, outcome_by_patient: bool) -> pl.DataFrame:
    """The feedback rows the therapist may see. When the outcome is the patient's rating,
    a withheld session shows no outcome, band or signal, and no signal is shown when the
    intake is withheld (every signal compares with it). In a dyad with any withheld
    session the alliance alert keeps only its therapist parts (the patient's ratings
    decide the others)."""
    fb = feedback.with_columns(pl.col("session").cast(pl.Int64))
    keyed = withheld.select("dyad_id", pl.col("session").cast(pl.Int64), pl.lit(True).alias("_w"))
    fb = fb.join(keyed, on=["dyad_id", "session"], how="left").join(
        keyed.rename({"session": "intake_session", "_w": "_wi"}), on=["dyad_id", "intake_session"], how="left"
    )
    hide = pl.col("_w").fill_null(False)
    hide_signal = hide | pl.col("_wi").fill_null(False)
    cols = ["outcome", "expected_p10", "expected_p25", "expected_p50", "expected_p75", "expected_p90"]
    if outcome_by_patient:
        fb = fb.with_columns(
            [pl.when(hide).then(None).otherwise(pl.col(c)).alias(c) for c in cols]
            + [
                pl.when(hide_signal).then(pl.lit("withheld")).otherwise(pl.col("signal")).alias("signal"),
                pl.when(hide_signal).then(pl.lit("withheld")).otherwise(pl.col("signal_rule")).alias("signal_rule"),
                pl.when(pl.col("_wi").fill_null(False)).then(None).otherwise(pl.col("intake")).alias("intake"),
            ]
        )
    partial = pl.col("dyad_id").is_in(withheld.get_column("dyad_id").unique().implode())
    therapist_parts = (
        pl.col("alliance_alert_reason")
        .str.split("; ")
        .list.eval(pl.element().filter(pl.element().str.starts_with("therapist:")))
        .list.join("; ")
    )
    fb = fb.with_columns(
        pl.when(partial).then(therapist_parts).otherwise(pl.col("alliance_alert_reason")).alias("_reason")
    )
    fb = fb.with_columns(
        pl.when(partial).then(pl.col("_reason") != "").otherwise(pl.col("alliance_alert")).alias("alliance_alert"),
        pl.when(pl.col("_reason") != "").then(pl.col("_reason")).alias("alliance_alert_reason"),
    )
    return fb.select(*columns(FeedbackModel)).sort("dyad_id", "session")


def risk_table(scores: pl.DataFrame, registry: dict, language: str) -> pl.DataFrame:
    """dyad_id, session, date, instrument, items (list of labels): every questionnaire with an
    endorsed risk item, latest session first, each item with its registry label in ``language``."""
    labels = pl.DataFrame(
        [(key, r.item, r.labels.get(language) or r.label) for key, inst in registry.items() for r in inst.risk_items],
        schema={"instrument": pl.String, "item": pl.Int64, "label": pl.String},
        orient="row",
    )
    names = pl.DataFrame(
        [(k, i.name_in(language)) for k, i in registry.items()],
        schema={"instrument": pl.String, "name": pl.String},
        orient="row",
    )
    rows = scores.filter(pl.col("risk_flag").fill_null(False)).select(
        "dyad_id", pl.col("session").cast(pl.Int64), "date", "instrument", "risk_items"
    )
    return (
        rows.with_columns(pl.col("risk_items").str.extract_all(r"item \d+ = [0-9.]+").alias("_hit"))
        .explode("_hit")
        .with_columns(
            pl.col("_hit").str.extract(r"item (\d+)").cast(pl.Int64).alias("item"),
            pl.col("_hit").str.extract(r"= ([0-9.]+)$").alias("answer"),
        )
        .join(labels, on=["instrument", "item"], how="left")
        .join(names, on="instrument", how="left")
        .with_columns(
            pl.coalesce("label", pl.col("_hit")).alias("label"), pl.coalesce("name", "instrument").alias("name")
        )
        .group_by("dyad_id", "session", "date", "instrument", "name", maintain_order=True)
        .agg(pl.col("label"), pl.col("item"), pl.col("answer"))
        .sort(["dyad_id", "session", "instrument"], descending=[False, True, False])
    )


def summaries(t: ReportTables, fb: pl.DataFrame, risk: pl.DataFrame) -> pl.DataFrame:
    """One row per dyad: the status of the banner and the caseload page.

    ``status``: the latest feedback row's signal (``none`` without one, ``withheld`` when
    the therapist may not see it); ``latest``/``latest_session``: the latest outcome the
    therapist may see; ``change``: it minus the intake; ``alliance_alert`` and its reason at
    the latest feedback row; ``risk``: a risk item endorsed at the latest session of the
    dyad with a questionnaire that carries risk items (``risk_session``)."""
    last = (
        fb.sort("dyad_id", "session")
        .group_by("dyad_id", maintain_order=True)
        .agg(
            pl.col("signal", "signal_rule", "alliance_alert", "alliance_alert_reason", "session").last(),
            pl.col("outcome").drop_nulls().last().alias("latest"),
            pl.col("session").filter(pl.col("outcome").is_not_null()).last().alias("latest_session"),
            pl.col("intake").drop_nulls().first().alias("intake"),
        )
        .rename({"session": "signal_session"})
    )
    flagged = (
        t.scores.filter(pl.col("risk_flag").is_not_null())
        .group_by("dyad_id")
        .agg(
            pl.col("risk_flag").sort_by(pl.col("session").cast(pl.Int64)).last().alias("_risk_now"),
            pl.col("session").cast(pl.Int64).max().alias("_risk_last"),
        )
    )
    any_risk = risk.group_by("dyad_id").agg(pl.col("session").max().alias("risk_session"))
    return (
        t.dyads.select("dyad_id", "patient_id", "therapist_id")
        .join(last, on="dyad_id", how="left")
        .join(flagged, on="dyad_id", how="left")
        .join(any_risk, on="dyad_id", how="left")
        .with_columns(
            pl.col("signal").fill_null("none").alias("status"),
            (pl.col("latest") - pl.col("intake")).alias("change"),
            (pl.col("_risk_now").fill_null(False) & (pl.col("risk_session") == pl.col("_risk_last"))).alias("risk"),
        )
        .drop("_risk_now", "_risk_last")
        .sort("dyad_id")
    )


def _to01(value: pl.Expr, rng: tuple[float, float] | None) -> pl.Expr:
    if not rng:
        return pl.lit(None, dtype=pl.Float64)
    lo, hi = rng
    return ((value.cast(pl.Float64) - lo) / (hi - lo)).round(4)


def instrument_table(scores: pl.DataFrame, registry: dict, language: str) -> pl.DataFrame:
    """Per dyad and instrument: first and latest score with their sessions, the latest band,
    the number of questionnaires (every instrument the dyad has, not only the outcome)."""
    scored = scores.filter(pl.col("score").is_not_null()).with_columns(pl.col("session").cast(pl.Int64))
    return (
        scored.sort("dyad_id", "instrument", "rater", "session")
        .group_by("dyad_id", "instrument", "rater", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.col("session").first().alias("first_session"),
            pl.col("score").first().alias("first"),
            pl.col("session").last().alias("latest_session"),
            pl.col("score").last().alias("latest"),
            pl.col("band").last().alias("band"),
        )
        .with_columns((pl.col("latest") - pl.col("first")).alias("change"))
    )


def _band_view(inst, band: str | None, language: str) -> dict:
    if inst is None:
        return {"bands": [], "band": band}
    shown = next((b.labels.get(language) or b.label for b in inst.bands if b.label == band), band)
    return {
        "bands": [
            {"label": b.labels.get(language) or b.label, "min": b.min, "max": b.max, "current": b.label == band}
            for b in inst.bands
        ],
        "band": shown,
    }


def report_id(fingerprint: str) -> str:
    return fingerprint[:8].upper()


def contexts(
    t: ReportTables,
    feedback: pl.DataFrame,
    *,
    study: str,
    outcome: str,
    alliance: dict[str, str],
    registry: dict,
    report_cfg: dict | None = None,
    prompts: dict | None = None,
    microprocess: dict | None = None,
    max_note_chars: int = dyad_report.MAX_NOTE_CHARS,
) -> list[dict]:
    """The template context of every dyad's clinician copy (sorted by dyad ID), without charts."""
    cfg = settings(report_cfg)
    prompts = prompts or {}
    inst = registry.get(outcome)
    by_patient = inst is None or "patient" in inst.raters
    notes = dyad_report.visible_notes(t.scores, "clinician", None, max_note_chars)
    shown, withheld = visible_tables(t, cfg["patient_ratings"], by_patient)
    fb = visible_feedback(feedback, withheld, by_patient)
    if cfg["patient_ratings"] == "consent":
        microprocess = dyad_report.clinician_microprocess(microprocess, t.consent)
    elif cfg["patient_ratings"] == "never":
        microprocess = dyad_report.clinician_microprocess(microprocess, empty(ConsentModel))
    langs = {d: language_of(th, cfg) for d, th in shown.dyads.select("dyad_id", "therapist_id").iter_rows()}
    risk_by_lang = {lang: risk_table(shown.scores, registry, lang) for lang in sorted(set(langs.values()))}
    summary = summaries(
        shown, fb, risk_by_lang.get(cfg["language"], risk_table(shown.scores, registry, cfg["language"]))
    )
    a_pat, a_ther = registry.get(alliance["patient"]), registry.get(alliance["therapist"])
    rng = {r: ((i.score_min, i.score_max) if i else None) for r, i in (("patient", a_pat), ("therapist", a_ther))}
    points = (
        shown.sessions.select(
            "dyad_id",
            pl.col("session").cast(pl.Int64),
            "date",
            _to01(pl.col("alliance_patient"), rng["patient"]).alias("patient"),
            _to01(pl.col("alliance_therapist"), rng["therapist"]).alias("therapist"),
        )
        .join(fb.select("dyad_id", "session", "alliance_alert"), on=["dyad_id", "session"], how="left")
        .sort("dyad_id", "session")
    )
    per = {
        "feedback": dyad_report._by_dyad(fb.drop("intake", "intake_session")),
        "alliance": dyad_report._by_dyad(points),
        "notes": dyad_report._by_dyad(notes),
        "instruments": dyad_report._by_dyad(instrument_table(shown.scores, registry, cfg["language"])),
        "summary": {r["dyad_id"]: r for r in summary.to_dicts()},
        "dates": {
            r["dyad_id"]: (r["first"], r["last"])
            for r in shown.sessions.group_by("dyad_id")
            .agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
            .to_dicts()
        },
        "withheld": {
            r["dyad_id"]: r["session"] for r in withheld.group_by("dyad_id").agg(pl.col("session").sort()).to_dicts()
        },
        "risk": {lang: dyad_report._by_dyad(frame) for lang, frame in risk_by_lang.items()},
    }
    out = []
    for dyad in (
        shown.dyads.sort("dyad_id")
        .select("dyad_id", "patient_id", "therapist_id", "n_sessions", "first_session", "last_session")
        .to_dicts()
    ):
        d = dyad["dyad_id"]
        lang = langs[d]
        _ = i18n.gettext_for(lang)
        s = per["summary"][d]
        risk = per["risk"][lang].get(d, [])
        status = s["status"]
        prompt_keys = (["risk"] if s["risk"] else []) + [status] + (["alliance_alert"] if s["alliance_alert"] else [])
        instruments = []
        for row in per["instruments"].get(d, []):
            i = registry.get(row["instrument"])
            instruments.append(
                {
                    **row,
                    "name": i.name_in(lang) if i else row["instrument"],
                    "digits": 2 if i is not None and i.method == "mean" else 1,
                    "lower_is_better": i.lower_is_better if i else None,
                    **_band_view(i, row["band"], lang),
                }
            )
        first, last = per["dates"].get(d, (None, None))
        ctx = {
            "study": study,
            "language": lang,
            "dyad": dyad,
            "period": (first, last) if first else None,
            "status": status,
            "status_word": _(STATUS[status]),
            "icon": ICON[status],
            "rule_text": _(RULES[s["signal_rule"]]) if s["signal_rule"] in RULES else "",
            "signal_session": s["signal_session"],
            "risk_now": bool(s["risk"]),
            "risk": risk,
            "prompts": [p for key in prompt_keys for p in prompts_for(key, lang, prompts)],
            "latest": {
                "score": s["latest"],
                "session": s["latest_session"],
                "change": s["change"],
                "intake": s["intake"],
            },
            "alliance_alert": bool(s["alliance_alert"]),
            "alliance_alert_reason": alert_text(s["alliance_alert_reason"], lang),
            "outcome": {
                "key": outcome,
                "name": inst.name_in(lang) if inst else outcome,
                "lower_is_better": inst.lower_is_better if inst else True,
                "range": (inst.score_min, inst.score_max) if inst else None,
            },
            "alliance": {
                "patient": a_pat.name_in(lang) if a_pat else alliance["patient"],
                "therapist": a_ther.name_in(lang) if a_ther else alliance["therapist"],
            },
            "feedback": per["feedback"].get(d, []),
            "alliance_points": per["alliance"].get(d, []),
            "instruments": instruments,
            "notes": per["notes"].get(d, []),
            "dial": [e for e in ((microprocess or {}).get(d) or {}).get("sessions", []) if e.get("chart_uri")],
            "ratings_withheld": per["withheld"].get(d, []),
            "policy": cfg["patient_ratings"],
        }
        ctx["fingerprint"] = fingerprint(ctx)
        ctx["report_id"] = report_id(ctx["fingerprint"])
        ctx["epoch_date"] = last
        out.append(ctx)
    return out


def fingerprint(ctx: dict) -> str:
    payload = json.dumps(
        {**ctx, "dial": [e.get("chart_uri") for e in ctx.get("dial", [])], "version": __version__, "kind": "clinician"},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def add_charts(ctx: dict) -> dict:
    """The clinician copy's two charts as PNG data: URIs (None when there is nothing to draw)."""
    _ = i18n.gettext_for(ctx["language"])
    out = {"outcome": None, "alliance": None}
    if any(p["outcome"] is not None for p in ctx["feedback"]):
        rng = ctx["outcome"]["range"] or (0, max(p["outcome"] or 0 for p in ctx["feedback"]))
        out["outcome"] = charts.data_uri(
            charts.png_bytes(
                charts.feedback_figure(
                    ctx["feedback"],
                    ctx["outcome"]["name"].split(" (")[0],
                    rng,
                    ctx["outcome"]["lower_is_better"],
                    _,
                    ctx["language"],
                )
            )
        )
    if any(p["patient"] is not None or p["therapist"] is not None for p in ctx["alliance_points"]):
        out["alliance"] = charts.data_uri(
            charts.png_bytes(charts.alliance01_figure(ctx["alliance_points"], _, ctx["language"]))
        )
    return {**ctx, "charts": out}


def render_html(ctx: dict) -> str:
    return i18n.environment(ctx["language"]).get_template("clinician.html.j2").render(**add_charts(ctx))


# ---------------------------------------------------------------- caseload pages


def caseload_rows(
    t: ReportTables, feedback: pl.DataFrame, registry: dict, outcome: str, report_cfg: dict | None
) -> pl.DataFrame:
    """One row per dyad (what each therapist may see): therapist_id, dyad_id, patient_id,
    status, latest, latest_session, change, alliance_alert, risk; risk first, then red,
    yellow, no status, withheld, green, recovered; then dyad ID."""
    cfg = settings(report_cfg)
    inst = registry.get(outcome)
    by_patient = inst is None or "patient" in inst.raters
    shown, withheld = visible_tables(t, cfg["patient_ratings"], by_patient)
    fb = visible_feedback(feedback, withheld, by_patient)
    summary = summaries(shown, fb, risk_table(shown.scores, registry, cfg["language"]))
    return (
        summary.with_columns(
            pl.col("status").replace_strict(SIGNAL_ORDER, default=9).alias("_order"),
        )
        .sort(["therapist_id", "risk", "_order", "dyad_id"], descending=[False, True, False, False])
        .drop("_order")
    )


def caseload_context(
    therapist: str, rows: list[dict], *, study: str, outcome: str, registry: dict, language: str
) -> dict:
    _ = i18n.gettext_for(language)
    inst = registry.get(outcome)
    for r in rows:
        r["status_word"] = _(STATUS[r["status"]])
        r["icon"] = ICON[r["status"]]
    counts = {s: sum(r["status"] == s for r in rows) for s in SIGNAL_ORDER}
    ctx = {
        "study": study,
        "language": language,
        "therapist": therapist,
        "rows": rows,
        "outcome": {
            "name": inst.name_in(language) if inst else outcome,
            "lower_is_better": inst.lower_is_better if inst else True,
        },
        "counts": [(_(STATUS[s]), ICON[s], s, n) for s, n in counts.items() if n],
        "n_risk": sum(bool(r["risk"]) for r in rows),
    }
    ctx["fingerprint"] = hashlib.sha256(
        json.dumps({**ctx, "version": __version__}, sort_keys=True, default=str, ensure_ascii=False).encode()
    ).hexdigest()
    ctx["report_id"] = report_id(ctx["fingerprint"])
    return ctx


def write_caseloads(
    files: dict,
    out_manifest: str,
    out_pages: str,
    *,
    study: str,
    outcome: str,
    registry: dict,
    report_cfg: dict | None = None,
    feedback_path: str | None = None,
) -> list[dict]:
    """``out_pages/<T>/_caseload.pdf`` for every therapist (one job for all: the caseload is a
    small table), and a manifest listing them (therapist_id, bundle_path, bundle_sha256);
    report_index publishes them as results/reports/by_therapist/<T>/_caseload.pdf. ``files``
    are the rule's named inputs (the tables of :func:`dyadflow.report.tables.read_report_tables`)."""
    from dyadflow.core.contract import read_table
    from dyadflow.report import render
    from dyadflow.report.tables import read_report_tables

    t = read_report_tables(files)
    fb = read_table(feedback_path, FeedbackModel) if feedback_path else t.feedback
    cfg = settings(report_cfg)
    rows = caseload_rows(t, fb, registry, outcome, report_cfg)
    dates = t.sessions.group_by(pl.col("dyad_id")).agg(pl.col("date").max().alias("last"))
    last_by_therapist = (
        rows.select("dyad_id", "therapist_id")
        .join(dates, on="dyad_id", how="left")
        .group_by("therapist_id")
        .agg(pl.col("last").max())
    )
    last = dict(last_by_therapist.iter_rows())
    fetcher = render.make_fetcher()
    out = []
    for key, part in rows.group_by("therapist_id", maintain_order=True):  # one page per therapist
        therapist = key[0]
        if therapist is None:
            continue
        language = language_of(therapist, cfg)
        ctx = caseload_context(
            therapist, part.to_dicts(), study=study, outcome=outcome, registry=registry, language=language
        )
        html = i18n.environment(language).get_template("caseload.html.j2").render(**ctx)
        pdf = render.render_pdf(html, render.epoch_of(last.get(therapist)), fetcher)
        path = Path(out_pages) / str(therapist) / "_caseload.pdf"
        atomic.write_bytes_if_changed(path, pdf)
        out.append(
            {
                "dyad_id": None,
                "therapist_id": therapist,
                "path": None,
                "sha256": None,
                "bundle_path": path.as_posix(),
                "bundle_sha256": render.sha256_bytes(pdf),
            }
        )
    atomic.write_json(out_manifest, {"reports": out})
    return out
