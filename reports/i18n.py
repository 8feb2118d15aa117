"""Wording and number formats of the report, in English and French.

Number formats (pinned by tests):

============  =====================  =========================
value         English (``en``)       French (``fr``)
============  =====================  =========================
0.031 (pct)   ``+3.1%``              ``+3,1 %`` (no-break space)
12345.6 (€)   ``€12,346``            ``12 346 €``
1234.5        ``1,234.5``            ``1 234,5`` (narrow no-break space)
p-value       ``0.012`` / ``< 0.001``  ``0,012`` / ``< 0,001``
2026-03-30    ``30 March 2026``      ``30 mars 2026``
============  =====================  =========================

French follows the CLDR conventions: narrow no-break space (U+202F) between thousands,
no-break space (U+00A0) before ``%``, the currency symbol and ``:`` ``;`` ``?`` ``!``.
Money has no decimals from 100 on, two below. Negative numbers use the ASCII ``-`` in
both languages (searchable, and what spreadsheets read back).
"""

from __future__ import annotations

import math
import re
import string
from datetime import date, datetime
from typing import Any

from .catalogue_en import EN
from .catalogue_fr import FR

LANGS = ("en", "fr")
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "fr": FR}
#: quality check codes (``QualityCheck.code``) the catalogue words
QUALITY_CODES = ("sample_ratio", "balance", "pre_trend", "planned_weeks", "sequential")
NBSP, NNBSP = "\u00a0", "\u202f"
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
}
_MONTHS_SHORT = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "fr": [
        "janv.",
        "févr.",
        "mars",
        "avr.",
        "mai",
        "juin",
        "juil.",
        "août",
        "sept.",
        "oct.",
        "nov.",
        "déc.",
    ],
}
_FR_PUNCT = re.compile(r" ([:;?!])")


class MissingTranslation(KeyError):
    """A key with no wording in the report's language."""


def check_lang(lang: str) -> str:
    """``lang`` if supported, else ValueError naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"lang == {lang!r}, must be one of {', '.join(LANGS)}")
    return lang


def fields(template: str) -> set[str]:
    """The ``{fields}`` of a catalogue template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def text(key: str, lang: str, **params: Any) -> str:
    """The wording of ``key`` in ``lang``, filled with already formatted ``params``.

    A missing key raises :class:`MissingTranslation`; a field without a parameter shows
    as ``n/a`` (a document may lack a figure; the report must still render).
    """
    catalogue = CATALOGUES[check_lang(lang)]
    try:
        template = catalogue[key]
    except KeyError:
        raise MissingTranslation(f"no {lang} wording for {key!r}") from None
    values = {name: params.get(name, catalogue["na"]) for name in fields(template)}
    out = template.format(**values)
    if lang == "fr":
        out = _FR_PUNCT.sub(NBSP + r"\1", out)
    return out


def has(key: str, lang: str) -> bool:
    return key in CATALOGUES[check_lang(lang)]


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def na(lang: str) -> str:
    return CATALOGUES[check_lang(lang)]["na"]


def num(x: Any, lang: str, digits: int = 0, signed: bool = False) -> str:
    """``x`` with grouped thousands and ``digits`` decimals (``n/a`` when missing)."""
    if not _finite(x):
        return na(lang)
    body = f"{abs(x):,.{digits}f}"
    if lang == "fr":
        body = body.replace(",", NNBSP).replace(".", ",")
    zero = float(f"{abs(x):.{digits}f}") == 0
    sign = "" if zero else "-" if x < 0 else "+" if signed else ""
    return sign + body


def pct(x: Any, lang: str, digits: int = 1, signed: bool = True) -> str:
    """A fraction as a percentage: 0.031 -> ``+3.1%`` / ``+3,1 %``."""
    if not _finite(x):
        return na(lang)
    body = num(x * 100, lang, digits, signed)
    return body + ("%" if lang == "en" else NBSP + "%")


def money(x: Any, currency: str, lang: str) -> str:
    """``€12,346`` / ``12 346 €``; codes without a symbol: ``CHF 12,346`` / ``12 346 CHF``."""
    if not _finite(x):
        return na(lang)
    digits = 0 if abs(x) >= 100 or x == 0 else 2
    body = num(abs(x), lang, digits)
    sign = "-" if x < 0 and body.strip("0,.\u202f") else ""
    symbol = _SYMBOLS.get(currency.upper(), currency)
    if lang == "fr":
        return f"{sign}{body}{NBSP}{symbol}"
    return f"{sign}{symbol}{body}" if len(symbol) == 1 else f"{sign}{symbol}{NBSP}{body}"


def compact(x: Any, lang: str) -> str:
    """Short form for chart axes: 1.2M / 1,2 M, 35k / 35 k."""
    if not _finite(x):
        return na(lang)
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            body = num(x / factor, lang, 1 if abs(x) < 10 * factor else 0)
            return body + (suffix if lang == "en" else NBSP + suffix)
    return num(x, lang, 0 if abs(x) >= 10 or x == int(x) else 1)


def pvalue(x: Any, lang: str) -> str:
    """``0.012``; ``< 0.001`` below a thousandth."""
    if not _finite(x):
        return na(lang)
    if x < 0.001:
        return "<" + NBSP + num(0.001, lang, 3)
    return num(x, lang, 3)


def fmt_date(value: Any, lang: str, short: bool = False) -> str:
    """An ISO date (or timestamp) in words: ``30 March 2026`` / ``30 mars 2026``."""
    if not value:
        return na(lang)
    try:
        day = value if isinstance(value, date) else _parse_date(str(value))
    except ValueError:
        return str(value)
    months = (_MONTHS_SHORT if short else _MONTHS)[check_lang(lang)]
    return f"{day.day} {months[day.month - 1]} {day.year}"


def fmt_month(value: str, lang: str) -> str:
    """``2026-03`` -> ``Mar 2026`` / ``mars 2026``."""
    try:
        day = _parse_date(value[:7] + "-01")
    except ValueError:
        return value
    return f"{_MONTHS_SHORT[check_lang(lang)][day.month - 1]} {day.year}"


def fmt_timestamp(value: str, lang: str) -> str:
    """An ISO timestamp as date and time: ``30 March 2026, 14:05 UTC``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    clock = moment.strftime("%H:%M")
    zone = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    sep = ", " if lang == "en" else " à "
    return fmt_date(moment.date(), lang) + sep + clock + zone


def _parse_date(value: str) -> date:
    return datetime.fromisoformat(value.strip()).date()


def gate(value: str | None, lang: str) -> str:
    """A rollout gate in words; gates the renderer does not know are shown as given."""
    if not value:
        return na(lang)
    if value == "frozen assignment":
        return text("gate.frozen_assignment", lang)
    match = re.fullmatch(r"GO on (.+)", value)
    if match:
        return text("gate.go_on", lang, wave=match.group(1))
    return value
