"""Blinding: coders see codes, not groups, until coding is done.

``<name>_blinded.csv`` lists the selected sessions as codes A, B, C, … (Z, then AA, AB,
…) in code order, without dyad, session or group; ``<name>_key.csv`` maps every code to
its dyad, session and group, for whoever prepares the recordings and, after coding, for
the analysis. The order of the codes is a stable hash of (seed, dyad, session), so codes
do not follow the groups and are the same on every rerun. The key never goes into a
clinician bundle.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dyadflow.core.hashing import stable_hash

ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def letter_codes(n: int) -> list[str]:
    """The first ``n`` codes: A … Z, AA … AZ, BA …, ZZ, AAA … (bijective base 26)."""
    i = np.arange(n, dtype=np.int64)
    digits = []
    rest = i + 1
    while rest.any():  # one pass per letter position (at most 3 for 18,278 codes)
        rest = rest - 1
        digits.append(np.where(rest >= 0, ALPHABET[np.maximum(rest, 0) % 26], ""))
        rest = np.where(rest >= 0, rest // 26, 0)
    if not digits:
        return []
    codes = digits[0].astype(object)
    for d in digits[1:]:
        codes = np.where(d != "", d.astype(object) + codes, codes)
    return codes.tolist()


def blind(selection: pl.DataFrame, name: str, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(blinded list, key) of a selection."""
    text = selection.select(pl.format(f"{seed}:{{}}:{{}}", pl.col("dyad_id"), pl.col("session"))).to_series()
    keyed = selection.with_columns(pl.Series("_h", stable_hash(text), dtype=pl.UInt64)).sort("_h", "dyad_id", "session")
    keyed = keyed.with_columns(pl.Series("code", letter_codes(keyed.height), dtype=pl.String))
    key = keyed.select("code", "dyad_id", "session", "group", "rank", "reason")
    blinded = keyed.select("code", pl.lit(name).alias("selection"))
    return blinded, key
