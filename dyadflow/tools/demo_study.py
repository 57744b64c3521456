"""A seeded, deterministic synthetic trial for the demo and the tests.

About 80 dyads in two arms (CBT and IPT) over 14 weekly sessions, modelled on the
design of Ekeblad et al. (2022): BDI-II before every session (and at intake, session 0),
WAI-SR (patient) and WAI-S (therapist) after every session. Within each dyad a better
alliance than usual at session t lowers symptoms at session t+1. There are missed
sessions, dropouts, occasional missing items, reflection notes in Scandinavian
languages, and a handful of deliberately bad rows that validation must reject.

All people are invented: IDs are pseudonymous codes (D001, P001, T01) and the notes
are generic sentences with no personal details.

:func:`generate` gives the study as one canonical table. :func:`write` writes it the way
a real study receives it (see the docs, "The demo study"):

- ``redcap_export.csv``: BDI-II and WAI-SR as a REDCap raw export (one record per dyad
  and event, the two forms side by side; a repeated form; incomplete forms);
- ``wai_s_qualtrics.csv``: the therapists' WAI-S as a Qualtrics choice-text export
  (three header rows; survey previews, a test response and unfinished responses);
- ``oq45_clinic.xlsx``: OQ-45 for a subset of dyads, a clinic's spreadsheet (a title
  above the header, dates as date cells, as text dd.mm.yyyy and as serial numbers);
- ``coded_high_low.csv`` and ``high_low_key_frozen.csv``: three coders' ratings of the
  ``high_low`` selection's blinded sessions and the key handed to them
  (:mod:`dyadflow.tools.demo_coding`, docs/coding.md).

The bad rows are spread over the three files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from dyadflow.core import atomic
from dyadflow.tools import demo_coding

SEED = 20220602
N_DYADS = 80
N_SESSIONS = 14
N_THERAPISTS = 12

NOTES = [
    "Vi pratade om sömnen och det kändes lättare efteråt.",
    "Det var svårt att komma hit i dag, men bra att vi pratade om det.",
    "Jeg følte meg hørt da vi snakket om jobben.",
    "Vi gick igenom hemuppgiften; den hjälpte mer än jag trodde.",
    "Det viktigaste var att vi kom överens om målen för våren.",
    "Vi snakket om hva som skjer når jeg trekker meg unna.",
    "Jag blev irriterad när vi bytte ämne, men vi reparerade det.",
    "Samtalet om å be om hjelp var det viktigaste i dag.",
    "Det kändes som om vi inte förstod varandra i dag.",
    "Vi øvde på å legge merke til tankene før de tar over.",
    "Bra session. Jag vågade säga vad jag tyckte.",
    "Jeg var trøtt og det ble en tung time.",
]


def _latent_items(rng, level, n_items, lo, hi, spread):
    """Ordinal item answers around a latent per-row level (on the item scale)."""
    difficulty = rng.normal(0.0, spread, size=n_items)
    noise = rng.normal(0.0, 0.55, size=(level.size, n_items))
    raw = level[:, None] + difficulty[None, :] + noise
    return np.clip(np.rint(raw), lo, hi).astype(np.int64)


def generate(
    seed: int = SEED, n_dyads: int = N_DYADS, n_sessions: int = N_SESSIONS, bad_rows: bool = True
) -> pl.DataFrame:
    """The demo questionnaire table in the canonical layout (strings, as in an export)."""
    rng = np.random.default_rng(seed)
    d = n_dyads
    s_idx = np.arange(n_sessions + 1)  # 0 = intake

    arm = np.where(rng.random(d) < 0.5, "CBT", "IPT")
    half = N_THERAPISTS // 2
    therapist = np.where(arm == "CBT", rng.integers(1, half + 1, d), rng.integers(half + 1, N_THERAPISTS + 1, d))
    start = np.datetime64("2024-01-08") + 7 * rng.integers(0, 30, d)
    consent = rng.random(d) < 0.7

    # attendance: dropouts stop after a session between 4 and 10; others miss ~7 %
    dropout_at = np.where(rng.random(d) < 0.12, rng.integers(4, 11, d), n_sessions + 1)
    attended = (rng.random((d, n_sessions + 1)) > 0.07) & (s_idx[None, :] < dropout_at[:, None])
    attended[:, 0] = True

    # alliance: dyad mean + slow growth + AR(1) within-dyad fluctuation
    pat_mean = np.clip(rng.normal(3.7, 0.45, d), 2.2, 4.8)
    th_mean = np.clip(4.9 + 0.9 * (pat_mean - 3.7) + rng.normal(0, 0.5, d), 3.0, 6.6)
    growth = rng.normal(0.03, 0.02, d)
    dev = np.zeros((d, n_sessions + 1))
    for t in range(1, n_sessions + 1):  # over sessions (14 steps), vectorised across dyads
        dev[:, t] = 0.3 * dev[:, t - 1] + rng.normal(0, 0.4, d)
    alliance_pat = pat_mean[:, None] + growth[:, None] * s_idx[None, :] + dev
    alliance_th = (
        th_mean[:, None] + 1.3 * growth[:, None] * s_idx[None, :] + 1.1 * dev + rng.normal(0, 0.25, (d, n_sessions + 1))
    )

    # symptoms: baseline, improvement, and the within-dyad effect of last session's alliance
    base = np.clip(rng.normal(29, 7, d), 14, 52)
    slope = rng.normal(-0.95, 0.45, d)
    bdi = base[:, None] + slope[:, None] * s_idx[None, :] + rng.normal(0, 2.2, (d, n_sessions + 1))
    bdi[:, 1:] -= 4.5 * dev[:, :-1]
    bdi = np.clip(bdi, 0, 63)

    # consent (docs, "Consent"), from a generator of its own so that the study's numbers
    # stay as they were: most patients share their ratings; one withdraws the text consent
    # and one the ratings consent part-way, so the demo shows the rule
    crng = np.random.default_rng([seed, 14])
    consent_ratings = crng.random(d) < 0.85
    full = dropout_at > n_sessions
    text_at = np.full(d, n_sessions + 1)
    ratings_at = np.full(d, n_sessions + 1)
    for flags, at, session in ((consent & full, text_at, 6), (consent_ratings & full & ~consent, ratings_at, 5)):
        hit = np.flatnonzero(flags)
        if hit.size:
            at[hit[0]] = session

    dates = start[:, None] + 7 * s_idx[None, :]
    rows = []

    def frame(instrument, rater, items, mask, note=None, missing=None):
        dd, ss = np.nonzero(mask)
        cols = {
            "dyad_id": [f"D{i + 1:03d}" for i in dd],
            "patient_id": [f"P{i + 1:03d}" for i in dd],
            "therapist_id": [f"T{therapist[i]:02d}" for i in dd],
            "arm": arm[dd].tolist(),
            "session": ss.astype(str).tolist(),
            "date": np.datetime_as_string(dates[dd, ss], unit="D").tolist(),
            "rater": [rater] * dd.size,
            "instrument": [instrument] * dd.size,
        }
        for k in range(items.shape[2]):
            values = pl.Series(items[dd, ss, k].astype(str))
            if missing is not None:
                values = values.zip_with(pl.Series(~missing[dd, ss, k]), pl.Series([None] * dd.size, dtype=pl.String))
            cols[f"item_{k + 1:02d}"] = values
        nulls = pl.Series([None] * dd.size, dtype=pl.String)
        if note is not None:
            text, none = note
            cols["note"] = pl.Series(text[dd, ss].tolist(), dtype=pl.String).zip_with(pl.Series(~none[dd, ss]), nulls)
        else:
            cols["note"] = nulls
        cols["consent_share_text"] = (
            pl.Series(np.where(consent[dd] & (ss < text_at[dd]), "true", "false")) if note is not None else nulls
        )
        cols["consent_share_ratings"] = (
            pl.Series(np.where(consent_ratings[dd] & (ss < ratings_at[dd]), "true", "false"))
            if note is not None
            else nulls
        )
        return pl.DataFrame(cols)

    flat = lambda a: a.reshape(-1)  # noqa: E731

    # BDI-II: 21 items 0–3 from the latent total; items 16 and 18 as 1a/1b codes
    bdi_items = _latent_items(rng, flat(bdi) / 21.0, 21, 0, 3, 0.35).reshape(d, n_sessions + 1, 21)
    bdi_items[:, :, 8] = np.where(flat(bdi).reshape(d, -1) > 30, rng.random((d, n_sessions + 1)) < 0.25, 0)
    bdi_str = bdi_items.astype(str).astype(object)  # items 16 and 18 get codes
    suffix = np.where(rng.random((d, n_sessions + 1, 2)) < 0.5, "a", "b")
    for j, item in enumerate((15, 17)):
        v = bdi_items[:, :, item]
        bdi_str[:, :, item] = np.where(v > 0, np.char.add(v.astype(str), suffix[:, :, j]), "0")
    skipped = rng.random(bdi_str.shape) < 0.004  # an occasional skipped item
    rows.append(frame("bdi_ii", "patient", bdi_str.astype(str), attended, missing=skipped))

    after = attended.copy()
    after[:, 0] = False  # alliance is rated after treatment sessions only
    wai_sr = _latent_items(rng, flat(alliance_pat), 12, 1, 5, 0.3).reshape(d, n_sessions + 1, 12)
    skipped = rng.random(wai_sr.shape) < 0.004
    notes = np.array(NOTES)[rng.integers(0, len(NOTES), (d, n_sessions + 1))]
    no_note = rng.random((d, n_sessions + 1)) < 0.4
    rows.append(frame("wai_sr", "patient", wai_sr, after, note=(notes, no_note), missing=skipped))

    wai_s = _latent_items(rng, flat(alliance_th), 12, 1, 7, 0.3).reshape(d, n_sessions + 1, 12)
    wai_s[:, :, [3, 9]] = 8 - wai_s[:, :, [3, 9]]  # items 4 and 10 are worded negatively
    th_attended = after & (rng.random((d, n_sessions + 1)) > 0.03)
    rows.append(frame("wai_s", "therapist", wai_s, th_attended))

    table = pl.concat(rows, how="diagonal_relaxed")
    order = {"bdi_ii": 0, "wai_sr": 1, "wai_s": 2}
    table = table.with_columns(
        pl.col("instrument").replace_strict(order).alias("_o"), pl.col("session").cast(pl.Int32).alias("_s")
    )
    table = table.sort("dyad_id", "_s", "_o").drop("_o", "_s")
    items = [f"item_{k:02d}" for k in range(1, 22)]
    table = table.select(
        "dyad_id",
        "patient_id",
        "therapist_id",
        "arm",
        "session",
        "date",
        "rater",
        "instrument",
        *items,
        "note",
        "consent_share_text",
        "consent_share_ratings",
    )
    return _add_bad_rows(table) if bad_rows else table


# The deliberately bad rows, each with the rule that must reject it.
BAD_ROWS = {
    "out_of_range": "item_value",
    "conflicting_duplicate": "duplicate_conflict",
    "exact_duplicate": "duplicate_exact",
    "unknown_instrument": "instrument_unknown",
    "malformed_date": "date_format",
    "changed_therapist": "dyad_therapist_changed",
}


def _add_bad_rows(table: pl.DataFrame) -> pl.DataFrame:
    t = table.with_row_index("_i")

    def pick(dyad: str, session: str, instrument: str) -> int:
        """The row of this dyad and instrument at the session, or the next one attended."""
        hit = t.filter(
            (pl.col("dyad_id") == dyad)
            & (pl.col("session").cast(pl.Int32) >= int(session))
            & (pl.col("instrument") == instrument)
        )
        return int(hit.get_column("_i")[0])

    edits = {
        pick("D007", "2", "wai_sr"): {"item_04": "6"},  # out of range on a 1–5 scale
        pick("D019", "3", "bdi_ii"): {"date": "2024-02-30"},  # no such day
        pick("D033", "3", "wai_s"): {"therapist_id": "T99"},  # a changed therapist ID
        # not a bad row: a half-completed questionnaire is accepted but not scored
        pick("D060", "5", "bdi_ii"): {f"item_{k:02d}": None for k in range(1, 8)},
    }
    t = t.with_columns(
        [
            pl.when(pl.col("_i").is_in(list(i for i, e in edits.items() if col in e)))
            .then(
                pl.col("_i").replace_strict(
                    {i: e[col] for i, e in edits.items() if col in e}, default=None, return_dtype=pl.String
                )
            )
            .otherwise(pl.col(col))
            .alias(col)
            for col in sorted({c for e in edits.values() for c in e})
        ]
    )
    conflict = t.filter(pl.col("_i") == pick("D012", "2", "bdi_ii")).with_columns(
        pl.when(pl.col("item_01") == "3").then(pl.lit("2")).otherwise(pl.lit("3")).alias("item_01")
    )
    exact = t.filter(pl.col("_i") == pick("D045", "3", "wai_s"))
    unknown = t.filter(pl.col("_i") == pick("D051", "2", "bdi_ii")).with_columns(
        pl.lit("bdi_2").alias("instrument"), pl.lit(None, dtype=pl.String).alias("item_21")
    )
    extra = pl.concat([conflict, exact, unknown]).with_columns((pl.col("_i") + 0.5).alias("_k"))
    out = pl.concat([t.with_columns(pl.col("_i").cast(pl.Float64).alias("_k")), extra]).sort("_k")
    return out.drop("_i", "_k")


# --- the demo study in real export formats ------------------------------------------

OQ_EVERY = 5  # OQ-45 for every 5th dyad …
OQ_SESSIONS = (0, 4, 8, 12)  # … at intake and every fourth session
WAI_S_LABELS = ("Never", "Rarely", "Occasionally", "Sometimes", "Often", "Very often", "Always")
# Fixed workbook metadata, so the .xlsx bytes do not depend on when they were written.
XLSX_TIME = "2024-09-01T00:00:00Z"
ZIP_TIME = (2024, 9, 1, 0, 0, 0)
FILES = (
    "redcap_export.csv",
    "wai_s_qualtrics.csv",
    "oq45_clinic.xlsx",
    "coded_high_low.csv",
    "high_low_key_frozen.csv",
)
# Forms whose <form>_complete the REDCap export marks 1 (Unverified) or 0 (Incomplete),
# though they hold answers: rejected as redcap_incomplete.
REDCAP_INCOMPLETE = {("D003", "wai_sr", 4): "1", ("D027", "bdi_ii", 6): "0"}


def _event(session: pl.Expr) -> pl.Expr:
    return pl.when(session == "0").then(pl.lit("baseline_arm_1")).otherwise(pl.format("session_{}_arm_1", session))


def redcap_table(table: pl.DataFrame) -> pl.DataFrame:
    """BDI-II and WAI-SR of the canonical table as a REDCap raw export.

    One record per dyad × event, BDI-II and WAI-SR side by side. Where a dyad has two
    BDI-II forms for one event (the conflicting duplicate), both are instances of a
    repeated form, on rows of their own. Patient, therapist, arm and consent are on the
    baseline record, as an enrolment form would hold them; a later change of consent (a
    withdrawal) is recorded on the event where it was made.
    """
    t = table.filter(pl.col("instrument").is_in(["bdi_ii", "wai_sr"])).with_columns(
        pl.col("session").cast(pl.Int32).alias("_s")
    )
    key = ["dyad_id", "session"]
    bdi = t.filter(pl.col("instrument") == "bdi_ii").with_columns(
        pl.int_range(1, pl.len() + 1).over(key).alias("_instance"), pl.len().over(key).alias("_n")
    )
    bdi_cols = [pl.col("date").alias("bdi_date")] + [
        pl.col(f"item_{k:02d}").alias(f"bdi_{k:02d}") for k in range(1, 22)
    ]
    wai = t.filter(pl.col("instrument") == "wai_sr").select(
        *key,
        pl.col("date").alias("wai_sr_date"),
        *[pl.col(f"item_{k:02d}").alias(f"wai_sr_{k:02d}") for k in range(1, 13)],
        pl.col("note").alias("wai_sr_note"),
    )
    single = bdi.filter(pl.col("_n") == 1).select(*key, *bdi_cols)
    repeated = bdi.filter(pl.col("_n") > 1).select(
        *key,
        *bdi_cols,
        pl.lit("bdi").alias("redcap_repeat_instrument"),
        pl.col("_instance").cast(pl.String).alias("redcap_repeat_instance"),
    )
    events = t.select(*key, "_s").unique()
    base = events.join(single, on=key, how="left").join(wai, on=key, how="left")
    ident = t.group_by("dyad_id").agg(
        pl.col("patient_id").first().alias("patient_code"),
        pl.col("therapist_id").first().alias("therapist_code"),
        pl.col("arm").first(),
        pl.col("consent_share_text").drop_nulls().first().alias("consent_share"),
        pl.col("consent_share_ratings").drop_nulls().first().alias("consent_ratings"),
    )
    consent = {"consent_share": "consent_share_text", "consent_ratings": "consent_share_ratings"}
    # a change of consent after enrolment: on the event of the first session with the new value
    changes = (
        t.filter(pl.col("consent_share_text").is_not_null())
        .sort("dyad_id", "_s")
        .with_columns(
            [
                (pl.col(c) != pl.col(c).shift(1).over("dyad_id")).fill_null(False).alias(f"_{k}")
                for k, c in consent.items()
            ]
        )
        .select(*key, *[pl.when(pl.col(f"_{k}")).then(pl.col(c)).alias(f"_{k}") for k, c in consent.items()])
    )
    base = (
        base.join(ident, on="dyad_id", how="left")
        .join(changes, on=key, how="left")
        .with_columns(
            [
                pl.when(pl.col("session") == "0").then(pl.col(c)).alias(c)
                for c in ("patient_code", "therapist_code", "arm")
            ]
            + [pl.when(pl.col("session") == "0").then(pl.col(k)).otherwise(pl.col(f"_{k}")).alias(k) for k in consent]
            + [pl.when(pl.col("session") == "0").then(pl.lit("2")).alias("enrolment_complete")]
        )
    )
    rows = pl.concat([base, repeated.join(events, on=key, how="left")], how="diagonal_relaxed")
    status = {}
    for form, first in (("bdi", "bdi_date"), ("wai_sr", "wai_sr_date")):
        status[form] = pl.when(pl.col(first).is_not_null()).then(pl.lit("2")).otherwise(pl.lit("0"))
    rows = rows.with_columns(status["bdi"].alias("bdi_complete"), status["wai_sr"].alias("wai_sr_complete"))
    for (dyad, inst, session), value in REDCAP_INCOMPLETE.items():
        col = "bdi_complete" if inst == "bdi_ii" else "wai_sr_complete"
        rows = rows.with_columns(
            pl.when((pl.col("dyad_id") == dyad) & (pl.col("_s") == session))
            .then(pl.lit(value))
            .otherwise(pl.col(col))
            .alias(col)
        )
    rows = rows.sort("dyad_id", "_s", pl.col("redcap_repeat_instance").fill_null(""))
    return rows.select(
        pl.col("dyad_id").alias("record_id"),
        _event(pl.col("session")).alias("redcap_event_name"),
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "patient_code",
        "therapist_code",
        "arm",
        "consent_share",
        "consent_ratings",
        "enrolment_complete",
        "bdi_date",
        *[f"bdi_{k:02d}" for k in range(1, 22)],
        "bdi_complete",
        "wai_sr_date",
        *[f"wai_sr_{k:02d}" for k in range(1, 13)],
        "wai_sr_note",
        "wai_sr_complete",
    )


QUALTRICS_SYSTEM = (
    "StartDate",
    "EndDate",
    "Status",
    "IPAddress",
    "Progress",
    "Duration (in seconds)",
    "Finished",
    "RecordedDate",
    "ResponseId",
    "RecipientLastName",
    "RecipientFirstName",
    "RecipientEmail",
    "ExternalReference",
    "LocationLatitude",
    "LocationLongitude",
    "DistributionChannel",
    "UserLanguage",
)
QUALTRICS_EMBEDDED = ("dyad", "patient", "therapist", "session")


def qualtrics_table(table: pl.DataFrame, seed: int = SEED) -> pl.DataFrame:
    """The therapists' WAI-S as a Qualtrics export with choice text, in export order.

    Adds two survey previews, one test response and two unfinished responses, which
    validation must count and reject.
    """
    rng = np.random.default_rng(seed + 3)
    t = table.filter(pl.col("instrument") == "wai_s")
    n = t.height
    minute = rng.integers(0, 60, n)
    took = rng.integers(90, 400, n)
    recorded = pl.Series([f"{m:02d}" for m in minute])
    items = [
        pl.col(f"item_{k:02d}")
        .cast(pl.Int32, strict=False)
        .replace_strict(list(range(1, 8)), list(WAI_S_LABELS), default=None, return_dtype=pl.String)
        .alias(f"Q1_{k}")
        for k in range(1, 13)
    ]
    out = t.with_columns(recorded.alias("_m"), pl.Series(took).alias("_took")).select(
        pl.format("{} 17:{}:00", pl.col("date"), pl.col("_m")).alias("StartDate"),
        pl.format("{} 17:{}:00", pl.col("date"), pl.col("_m")).alias("EndDate"),
        pl.lit("IP Address").alias("Status"),
        pl.lit(None, dtype=pl.String).alias("IPAddress"),
        pl.lit("100").alias("Progress"),
        pl.col("_took").cast(pl.String).alias("Duration (in seconds)"),
        pl.lit("True").alias("Finished"),
        pl.format("{} 17:{}:00", pl.col("date"), pl.col("_m")).alias("RecordedDate"),
        pl.lit(None, dtype=pl.String).alias("ResponseId"),
        *[pl.lit(None, dtype=pl.String).alias(c) for c in QUALTRICS_SYSTEM[9:15]],
        pl.lit("anonymous").alias("DistributionChannel"),
        pl.lit("SV").alias("UserLanguage"),
        *items,
        pl.col("dyad_id").alias("dyad"),
        pl.col("patient_id").alias("patient"),
        pl.col("therapist_id").alias("therapist"),
        pl.col("session"),
    )
    # previews, a test response, unfinished responses: copies of real rows, changed
    picks = {"preview": [5, 400], "test": [150], "unfinished": [60, 700]}
    extra = []
    for kind, rows in picks.items():
        for i in rows:
            r = out.slice(i, 1)
            if kind == "preview":
                r = r.with_columns(
                    pl.lit("Survey Preview").alias("Status"), pl.lit("preview").alias("DistributionChannel")
                )
            elif kind == "test":
                r = r.with_columns(pl.lit("Survey Test").alias("Status"), pl.lit("test").alias("DistributionChannel"))
            else:
                r = r.with_columns(
                    pl.lit("False").alias("Finished"),
                    pl.lit("42").alias("Progress"),
                    *[pl.lit(None, dtype=pl.String).alias(f"Q1_{k}") for k in range(6, 13)],
                )
            extra.append(r.with_columns(pl.lit(i + 0.5).alias("_k")))
    out = pl.concat([out.with_columns(pl.int_range(0, n).cast(pl.Float64).alias("_k")), *extra]).sort("_k").drop("_k")
    ids = rng.integers(0, 36, (out.height, 15))
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[:36]))
    response_ids = ["R_" + "".join(r) for r in alphabet[ids].tolist()]
    return out.with_columns(pl.Series("ResponseId", response_ids))


def qualtrics_bytes(q: pl.DataFrame) -> bytes:
    """The three header rows of a Qualtrics export, then the responses (UTF-8 with BOM)."""
    import json

    texts = {
        "StartDate": "Start Date",
        "EndDate": "End Date",
        "Status": "Response Type",
        "IPAddress": "IP Address",
        "Progress": "Progress",
        "Duration (in seconds)": "Duration (in seconds)",
        "Finished": "Finished",
        "RecordedDate": "Recorded Date",
        "ResponseId": "Response ID",
        "RecipientLastName": "Recipient Last Name",
        "RecipientFirstName": "Recipient First Name",
        "RecipientEmail": "Recipient Email",
        "ExternalReference": "External Data Reference",
        "LocationLatitude": "Location Latitude",
        "LocationLongitude": "Location Longitude",
        "DistributionChannel": "Distribution Channel",
        "UserLanguage": "User Language",
    }
    question = "Tänk på den senaste sessionen. Markera hur ofta påståendet stämmer. - Påstående {k}"
    row2, row3 = {}, {}
    for c in q.columns:
        if c.startswith("Q1_"):
            row2[c] = question.format(k=c[3:])
            row3[c] = json.dumps({"ImportId": f"QID1_{c[3:]}"})
        elif c in QUALTRICS_EMBEDDED:
            row2[c], row3[c] = c, json.dumps({"ImportId": c})
        else:
            row2[c] = texts[c]
            tz = {"timeZone": "Europe/Stockholm"} if c in ("StartDate", "EndDate", "RecordedDate") else {}
            row3[c] = json.dumps({"ImportId": c[0].lower() + c[1:].split(" ")[0], **tz})
    heads = pl.DataFrame([row2, row3], schema={c: pl.String for c in q.columns})
    return b"\xef\xbb\xbf" + atomic.csv_bytes(pl.concat([heads, q]))


def generate_oq45(table: pl.DataFrame, seed: int = SEED) -> pl.DataFrame:
    """OQ-45 for every 5th dyad at intake and every fourth session, in the canonical
    layout, following each dyad's BDI-II (higher symptoms, higher OQ-45)."""
    rng = np.random.default_rng(seed + 45)
    bdi = table.filter(
        (pl.col("instrument") == "bdi_ii")
        & pl.col("session").cast(pl.Int32).is_in(OQ_SESSIONS)
        & (pl.col("dyad_id").str.slice(1).cast(pl.Int32) % OQ_EVERY == 0)
    ).unique(["dyad_id", "session"], keep="first", maintain_order=True)
    items = [f"item_{k:02d}" for k in range(1, 22)]
    total = (
        bdi.select(pl.sum_horizontal(pl.col(items).str.extract(r"^(\d)", 1).cast(pl.Int32, strict=False).fill_null(0)))
        .to_series()
        .to_numpy()
    )
    level = np.clip(0.4 + total / 63 * 4.0, 0, 4)
    answers = _latent_items(rng, level.astype(float), 45, 0, 4, 0.4)
    reverse = [0, 11, 12, 19, 20, 23, 30, 36, 42]  # items 1, 12, 13, 20, 21, 24, 31, 37, 43
    answers[:, reverse] = 4 - answers[:, reverse]
    out = bdi.select("dyad_id", "patient_id", "therapist_id", "session", "date").with_columns(
        pl.lit("patient").alias("rater"), pl.lit("oq_45").alias("instrument")
    )
    return out.with_columns([pl.Series(f"item_{k + 1:02d}", answers[:, k].astype(str)) for k in range(45)])


def _excel_serial(date: str) -> int:
    return (dt.date.fromisoformat(date) - dt.date(1899, 12, 30)).days


def oq45_workbook_bytes(oq: pl.DataFrame) -> bytes:
    """The clinic's OQ-45 log as .xlsx: a "Read me" sheet, then the data in sheet
    "OQ-45" with a title on row 1 and the header on row 3. Most dates are date cells,
    every 7th is typed as text dd.mm.yyyy and every 11th is a bare serial number. One
    row names a form the registry does not know (OQ-30)."""
    import openpyxl

    wb = openpyxl.Workbook()
    info = wb.active
    info.title = "Read me"
    info.append(["OQ-45 log exported from the clinic's spreadsheet (synthetic demo data)."])
    ws = wb.create_sheet("OQ-45")
    ws.append(["Klinikens OQ-45-logg: behandlingsstudie (syntetiska data)"])
    ws.append([])
    ws.append(["Dyad", "Patient", "Terapeut", "Session", "Datum", "Formulär", *[f"OQ{k}" for k in range(1, 46)]])
    cols = oq.select(
        "dyad_id", "patient_id", "therapist_id", "session", "date", *[f"item_{k:02d}" for k in range(1, 46)]
    ).rows()
    for i, r in enumerate(cols):
        date = r[4]
        if i % 11 == 10:
            cell_date = _excel_serial(date)
        elif i % 7 == 6:
            cell_date = dt.date.fromisoformat(date).strftime("%d.%m.%Y")
        else:
            cell_date = dt.date.fromisoformat(date)
        form = "OQ-30" if i == 17 else "OQ-45"
        ws.append([r[0], r[1], r[2], int(r[3]), cell_date, form, *[int(v) for v in r[5:]]])
        if isinstance(cell_date, dt.date):
            ws.cell(row=ws.max_row, column=5).number_format = "yyyy-mm-dd"
    return _deterministic_xlsx(wb)


def _deterministic_xlsx(wb) -> bytes:
    """Save a workbook with fixed document times and zip entry times (same bytes every time)."""
    import io as _io
    import re
    import zipfile

    created = dt.datetime(2024, 9, 1)
    wb.properties.created = created
    wb.properties.modified = created
    buf = _io.BytesIO()
    wb.save(buf)
    out = _io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>" + XLSX_TIME.encode() + rb"\g<2>", data)
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def write(out_dir: str | Path = "data/demo", seed: int = SEED) -> Path:
    """Write the demo study in its real export formats (see the module docstring)."""
    out = Path(out_dir)
    table = generate(seed)
    atomic.write_bytes(out / FILES[0], atomic.csv_bytes(redcap_table(table)))
    atomic.write_bytes(out / FILES[1], qualtrics_bytes(qualtrics_table(table, seed)))
    atomic.write_bytes(out / FILES[2], oq45_workbook_bytes(generate_oq45(table, seed)))
    demo_coding.write(out, seed)  # the coders' files: their key is computed from the files above
    return out


def write_canonical(out_dir: str | Path, seed: int = SEED, **kwargs) -> Path:
    """The demo study as one canonical table (``questionnaires.csv``), e.g. for benchmarks."""
    path = Path(out_dir) / "questionnaires.csv"
    atomic.write_bytes(path, atomic.csv_bytes(generate(seed, **kwargs)))
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write())
