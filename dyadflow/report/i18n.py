"""Languages of the clinician copy and the caseload page (issue 17): gettext catalogues and Babel formats.

* Every fixed text of the clinician templates, their charts and the support prompts is a
  gettext message: ``{% trans %}`` / ``_()`` in the templates (Jinja2's ``jinja2.ext.i18n``),
  ``_()`` / ``N_()`` in :mod:`dyadflow.report.clinician`. English is the source language.
* The catalogues are text: ``dyadflow/report/locale/<lang>/LC_MESSAGES/dyadflow.po`` (sv, nb),
  extracted into ``dyadflow/report/locale/dyadflow.pot`` by Babel (``babel.cfg``, ``make catalogues``).
  They are compiled **in memory** when first used (``babel.messages.mofile.write_mo`` into a
  buffer, a few milliseconds per language and process): no binary .mo file is committed or
  written, nothing can go stale, and no Snakemake rule or install step has to run first.
* Numbers and dates are formatted for the locale by Babel: a decimal comma in sv and nb,
  ``5 jan. 2024`` (sv), ``5. jan. 2024`` (nb), ``Jan 5, 2024`` (en).
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
import math
from pathlib import Path

import jinja2

from dyadflow.report import render

LANGUAGES = ("en", "sv", "nb")
DOMAIN = "dyadflow"
LOCALE_DIR = render.REPORTS_DIR / "locale"
DASH = render.DASH
MINUS = "\u2212"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The gettext translations of ``language`` (English: the messages themselves)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown report language {language!r} (one of {', '.join(LANGUAGES)})")
    if language == "en":
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po_path(language), "rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)  # a fuzzy (unchecked) translation is not used
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def gettext_for(language: str):
    return translations(language).gettext


def fmt_decimal(value, digits: int = 1, language: str = "en") -> str:
    """A number with ``digits`` decimals for the locale (decimal comma in sv/nb), a true minus
    sign, ``—`` when missing."""
    from babel.numbers import format_decimal

    if value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return DASH
    pattern = "0." + "0" * digits if digits > 0 else "0"
    text = format_decimal(value, format=pattern, locale=language)
    return text.replace("-", MINUS)


def fmt_signed(value, digits: int = 1, language: str = "en") -> str:
    text = fmt_decimal(value, digits, language)
    if text != DASH and value > 0:
        return "+" + text
    return text


def fmt_date(value, language: str = "en") -> str:
    """A date as the locale writes it in running text (Babel's medium format)."""
    from babel.dates import format_date

    if value is None:
        return DASH
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return format_date(value, format="medium", locale=language)


@functools.cache
def environment(language: str) -> jinja2.Environment:
    """The Jinja2 environment of the clinician templates in ``language``: the report
    environment (autoescape, StrictUndefined) with the i18n extension and locale filters."""
    env = render.template_env()
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(language), newstyle=True)
    env.filters["num"] = lambda v, digits=1: fmt_decimal(v, digits, language)
    env.filters["signed"] = lambda v, digits=1: fmt_signed(v, digits, language)
    env.filters["date"] = lambda v: fmt_date(v, language)
    env.globals["language"] = language
    return env
