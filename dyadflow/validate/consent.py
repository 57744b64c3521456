"""Consent: a patient-owned, time-ordered fact (issue 14).

Two consents govern the therapist's copy of a case report (``by_therapist`` bundles and
the ``clinician`` audience):

* ``share_text`` (column ``consent_share_text``): the patient's free text, and observers'
  notes (which may quote the patient), may be shown to the therapist;
* ``share_ratings`` (column ``consent_share_ratings``): the patient's own questionnaire
  ratings and dial (moment-to-moment) data may be shown to the therapist.

Rules, the same for both:

* only the patient's own rows decide (rater ``patient``); a value on a therapist's or an
  observer's row is ignored and listed in ``results/validation/warnings.csv``;
* every recorded decision counts, also on a row rejected for another reason (a
  withdrawal on a row with a bad item is still a withdrawal); not on a row whose cells
  cannot be trusted to be the patient's (``field_count``: the fields are shifted;
  ``header_repeated``; ``qualtrics_test_response``: a preview or test), nor on a row
  whose dyad or session cannot be read; a cell with an unknown spelling is rejected
  (``consent_value``) and is no decision;
* an empty cell is no decision; it never copies another event's value;
* the decision governing session *s* is the latest recorded one at or before *s*
  (time order = session number): a withdrawal hides every later session until consent
  is given again; several decisions at one session that disagree = no consent; no
  decision at or before *s* = no consent.

Validation writes every decision to ``results/validated/consent.parquet``
(:data:`CONSENT_TABLE`); the reports read that file and nothing else for consent.
"""

from __future__ import annotations

import polars as pl

from dyadflow.core.contract import Contract, dtypes, nullable
from dyadflow.core.performance import fast_path_enabled
from dyadflow.ingest.mapping import CONSENT_COLUMNS
from dyadflow.validate.checks import ID_PATTERN, SESSION_PATTERN, parse_bool, parse_date

KINDS = {"consent_share_text": "share_text", "consent_share_ratings": "share_ratings"}


class ConsentModel(Contract):
    """results/validated/consent.parquet: every recorded consent decision, the only source of consent."""

    dyad_id: pl.String = nullable()
    session: pl.Int32 = nullable()
    date: pl.Date = nullable()
    rater: pl.String = nullable()
    consent: pl.Boolean = nullable()
    source_file: pl.String = nullable()
    source_line: pl.Int64 = nullable()
    kind: pl.String = nullable()


CONSENT_TABLE = dtypes(ConsentModel)
# rows whose cells are not the patient's recorded answer: their consent cell is no decision
UNTRUSTED_RULES = ("field_count", "header_repeated", "qualtrics_test_response")
WARNING = (
    "line {}: {} '{}' on a {} row ({}) is ignored: consent is the patient's own decision, "
    "taken only from the patient's rows"
)


def empty_table() -> pl.DataFrame:
    return pl.DataFrame(schema=CONSENT_TABLE)


def decisions(raw: pl.DataFrame, untrusted: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The consent decisions of the raw rows (``raw`` has ``_row``, all cells strings, and
    the consent columns), and the warnings about consent cells on non-patient rows.

    ``untrusted``: the ``_row`` of rows rejected under one of :data:`UNTRUSTED_RULES`.
    Returns (table with :data:`CONSENT_TABLE` columns, warnings with source_file, column,
    warning).
    """
    parts, warns = [], []
    present = [c for c in CONSENT_COLUMNS if c in raw.columns]
    # only the rows with a consent cell, and only the columns read here, are carried on
    rows = raw.select(
        "_row", "dyad_id", "session", "date", "rater", "instrument", "source_file", "source_line", *present
    ).filter(
        pl.any_horizontal([pl.lit(False), *(pl.col(c).is_not_null() for c in present)])
        & ~pl.col("_row").is_in(untrusted.implode())
    )
    rater = pl.col("rater").str.strip_chars().str.to_lowercase()
    placed = pl.col("dyad_id").str.contains(ID_PATTERN).fill_null(False) & pl.col("session").str.contains(
        SESSION_PATTERN
    ).fill_null(False)
    for column in present:
        value = parse_bool(pl.col(column))
        cells = rows.filter(pl.col(column).is_not_null() & value.is_not_null())
        patient = cells.filter((rater == "patient").fill_null(False) & placed)
        parts.append(
            patient.select(
                "_row",
                "dyad_id",
                pl.col("session").cast(pl.Int32),
                parse_date(pl.col("date")).alias("date"),
                pl.lit("patient").alias("rater"),
                value.alias("consent"),
                "source_file",
                pl.col("source_line").cast(pl.Int64),
                pl.lit(KINDS[column]).alias("kind"),
            )
        )
        other = cells.filter((rater != "patient").fill_null(True))
        warns.append(
            other.select(
                "source_file",
                pl.lit(column).alias("column"),
                pl.format(
                    WARNING,
                    pl.col("source_line"),
                    pl.lit(column),
                    pl.col(column),
                    pl.col("rater").fill_null("(no rater)"),
                    pl.col("instrument").fill_null("no instrument"),
                ).alias("warning"),
                "source_line",
            )
        )
    table = _fast_table(pl.concat(parts)) if parts and fast_path_enabled() else None
    table = (
        table
        if table is not None
        else pl.concat(parts)
        .sort("_row")
        # one REDCap record line gives several forms the same record-level cell: one decision
        .unique(
            ["source_file", "source_line", "kind", "dyad_id", "session", "consent"], keep="first", maintain_order=True
        )
        .drop("_row")
        .sort("dyad_id", "kind", "session", "source_file", "source_line")
        .select(list(CONSENT_TABLE))
        .cast(CONSENT_TABLE)
        if parts
        else empty_table()
    )
    warnings = (
        pl.concat(warns).unique(maintain_order=True).sort("source_file", "source_line", "column").drop("source_line")
        if warns
        else pl.DataFrame(schema={"source_file": pl.String, "column": pl.String, "warning": pl.String})
    )
    return table, warnings


ORDER = ["dyad_id", "kind", "session", "source_file", "source_line"]


def _fast_table(found: pl.DataFrame) -> pl.DataFrame | None:
    """The decisions table in one sort instead of a hash de-duplication and a sort (fast
    path): sorted by the table's order, then the decision and ``_row``, the copies of a
    decision (one REDCap line gives several forms the same cell) are adjacent and the
    first kept is the one of the lowest ``_row``, as the text path keeps. None when one
    line gives two different decisions of one kind: their order is then the text path's."""
    rows = found.sort([*ORDER, "consent", "_row"])
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in ORDER]).fill_null(False)
    rows = rows.filter(~(same & (pl.col("consent") == pl.col("consent").shift(1)).fill_null(False)))
    if rows.select(same.any()).item():
        return None
    return rows.select(list(CONSENT_TABLE)).cast(CONSENT_TABLE)


def invalid_cells(consent_only: pl.DataFrame) -> pl.DataFrame:
    """Warnings for consent cells with an unknown spelling on REDCap events without form
    data (there is no questionnaire row to reject): they are no decision."""
    out = []
    for column in CONSENT_COLUMNS:
        if column not in consent_only.columns:
            continue
        bad = consent_only.filter(pl.col(column).is_not_null() & parse_bool(pl.col(column)).is_null())
        out.append(
            bad.select(
                "source_file",
                pl.lit(column).alias("column"),
                pl.format(
                    "line {}: {} '{}' is not true or false (true/yes/y/1/ja/j or false/no/n/0/nei/nej); "
                    "it is no consent decision",
                    pl.col("source_line"),
                    pl.lit(column),
                    pl.col(column),
                ).alias("warning"),
            )
        )
    schema = {"source_file": pl.String, "column": pl.String, "warning": pl.String}
    return pl.concat(out).cast(schema) if out else pl.DataFrame(schema=schema)


def by_session(consent: pl.DataFrame, kind: str) -> pl.DataFrame:
    """One resolved decision per dyad and session at which a decision was recorded:
    true only if every patient decision of that session is true (disagreement = no)."""
    return (
        consent.filter((pl.col("kind") == kind) & (pl.col("rater") == "patient"))
        .group_by("dyad_id", "session")
        .agg(pl.col("consent").all().alias("consent"))
        .with_columns(pl.col("session").cast(pl.Int64))
        .sort("dyad_id", "session")
    )


def governs(frame: pl.DataFrame, consent: pl.DataFrame, kind: str, alias: str = "consent") -> pl.DataFrame:
    """``frame`` (with ``dyad_id``, ``session``) with a Boolean column ``alias``: the
    consent of ``kind`` that governs each row's session (latest decision at or before it;
    none = false)."""
    resolved = by_session(consent, kind).rename({"session": "_consent_session", "consent": "_consent"})
    # only the key columns are sorted and joined (not every column of a large frame)
    keyed = frame.select("dyad_id", pl.col("session").cast(pl.Int64).alias("_s")).with_row_index("_i")
    hit = keyed.sort("_s").join_asof(
        resolved.sort("_consent_session"),
        left_on="_s",
        right_on="_consent_session",
        by="dyad_id",
        strategy="backward",
        check_sortedness=False,  # both sides are sorted by session, hence within each dyad too
    )
    decided = hit.sort("_i").get_column("_consent").fill_null(False).alias(alias)
    return frame.with_columns(decided)


__all__ = ["CONSENT_TABLE", "CONSENT_COLUMNS", "KINDS", "decisions", "by_session", "governs", "empty_table"]
