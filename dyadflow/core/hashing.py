"""A stable string hash, for anything that must not change between machines or runs
(report shards, blinding codes). Python's ``hash()`` and polars' ``hash`` are not stable
across processes or library versions; this is FNV-1a, 64 bit."""

from __future__ import annotations

import numpy as np
import polars as pl


def stable_hash(strings: pl.Series) -> np.ndarray:
    """64-bit FNV-1a hash of each (ASCII) string.

    Vectorised over the strings; the loop runs over character positions, never over rows.
    """
    raw = np.array(strings.to_list(), dtype="S")
    width = raw.dtype.itemsize
    codes = raw.view(np.uint8).reshape(raw.size, width) if raw.size else np.zeros((0, width), np.uint8)
    lengths = np.char.str_len(raw)
    h = np.full(raw.size, 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for pos in range(width):
            live = lengths > pos
            h = np.where(live, (h ^ codes[:, pos].astype(np.uint64)) * prime, h)
    return h
