"""A seeded, deterministic synthetic trial for the demo and the tests.

About 80 dyads in two arms (CBT and IPT) over 14 weekly sessions, modelled on the
design of Ekeblad et al. (2022): BDI-II before every session (and at intake, session 0),
WAI-SR (patient) and WAI-S (therapist) after every session. Within each dyad a better
alliance than usual at session t lowers symptoms at session t+1. There are missed
sessions, dropouts, occasional missing items, reflection notes in Scandinavian
languages, and a handful of deliberately bad rows that validation must reject.

All people are invented: IDs are pseudonymous codes (D001, P001, T01) and the notes
are generic sentences with no personal details.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from dyadflow import io

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


def generate(seed: int = SEED, n_dyads: int = N_DYADS, n_sessions: int = N_SESSIONS, bad_rows: bool = True) -> pl.DataFrame:
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
    alliance_th = th_mean[:, None] + 1.3 * growth[:, None] * s_idx[None, :] + 1.1 * dev + rng.normal(0, 0.25, (d, n_sessions + 1))

    # symptoms: baseline, improvement, and the within-dyad effect of last session's alliance
    base = np.clip(rng.normal(29, 7, d), 14, 52)
    slope = rng.normal(-0.95, 0.45, d)
    bdi = base[:, None] + slope[:, None] * s_idx[None, :] + rng.normal(0, 2.2, (d, n_sessions + 1))
    bdi[:, 1:] -= 4.5 * dev[:, :-1]
    bdi = np.clip(bdi, 0, 63)

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
        cols["consent_share_text"] = pl.Series(np.where(consent[dd], "true", "false")) if note is not None else pl.Series([None] * dd.size, dtype=pl.String)
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
    table = table.with_columns(pl.col("instrument").replace_strict(order).alias("_o"), pl.col("session").cast(pl.Int32).alias("_s"))
    table = table.sort("dyad_id", "_s", "_o").drop("_o", "_s")
    items = [f"item_{k:02d}" for k in range(1, 22)]
    table = table.select("dyad_id", "patient_id", "therapist_id", "arm", "session", "date", "rater", "instrument", *items, "note", "consent_share_text")
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
            .then(pl.col("_i").replace_strict({i: e[col] for i, e in edits.items() if col in e}, default=None, return_dtype=pl.String))
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


def write(out_dir: str | Path = "data/demo", seed: int = SEED) -> Path:
    out = Path(out_dir)
    table = generate(seed)
    path = out / "questionnaires.csv"
    io.write_bytes(path, io.csv_bytes(table))
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write())
