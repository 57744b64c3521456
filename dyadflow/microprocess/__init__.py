"""Moment-to-moment (dial) alliance ratings: validation, congruence, discrepancy,
ruptures, repairs, peaks and video clips.

In microprocess studies the patient (client) and the therapist each rate the alliance
continuously while watching the recording of their session: one value per second,
from −50 (weakest) through 0 (neutral) to +50 (strongest). See the docs, section
"Moment-to-moment ratings" (Trusty 2023; Penix et al. 2021, J Clin Psychol 77:36-48).

Modules, one concept each:

* :mod:`.load`      read the inputs (a long CSV, or one CSV per dyad/session/rater)
* :mod:`.validate`  judge every row (same accounting as the questionnaires)
* :mod:`.series`    the per-second grid, gaps, limited interpolation, smoothing
* :mod:`.congruence` per dyad-session congruence and discrepancy
* :mod:`.segments`  ruptures, repairs, peaks and clip times per rater
* :mod:`.pipeline`  the stage: read, validate, analyse, write ``results/microprocess/``
* :mod:`.report`    what the case report's microprocess page needs
* :mod:`.demo`      the deterministic demo dial data

All work is polars expressions over every session at once; nothing loops over
sessions or rows in Python.
"""

from __future__ import annotations

import glob
import os

RATERS = ("patient", "therapist")
# Accepted spellings of the raters; the outputs use the project's words.
# one rater's ratings of one session: the key of a series, a gap and a duplicate second
KEY = ("dyad_id", "session", "rater")
RATER_SYNONYMS = {"patient": "patient", "client": "patient", "therapist": "therapist"}


def settings(config: dict | None) -> dict:
    """The microprocess settings (the section without ``inputs``) with every default of the
    config schema filled in."""
    from dyadflow.core.config import section

    return section("microprocess", config)


def input_files(specs: list[dict]) -> list[str]:
    """Every file the inputs name, once: a long CSV itself, a folder's ``*.csv``, or a glob's
    matches (sorted). Standard library only: the Snakefile calls this at parse time."""
    files: list[str] = []
    for spec in specs:
        path = spec["path"]
        if spec["layout"] == "long":
            files.append(path)
        elif os.path.isdir(path):
            files.extend(sorted(glob.glob(os.path.join(path, "*.csv"))))
        else:
            files.extend(sorted(glob.glob(path)))
    # a file matched by two inputs (a folder and a glob over it) is listed once
    seen: set[str] = set()
    return [f for f in files if not (os.path.normpath(f) in seen or seen.add(os.path.normpath(f)))]
