"""Numbers, dates and times in a page's or a report's language, through Babel's locale data:
the one place every user-facing surface (console, portal, public pages, reports) formats them
(fr: `2 291`, `5 déc. 2026`; en: `2,291`, `5 Dec 2026`; zh: `2,291`, `2026年12月5日`)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

LOCALES = {"zh": "zh_Hans_CN", "en": "en_GB", "fr": "fr_FR"}


@lru_cache(maxsize=None)
def locale(lang: str) -> Locale:
    try:
        return Locale.parse(LOCALES.get(lang, lang))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def number(n: Any, lang: str, pattern: str | None = None) -> str:
    """A count or an amount; anything else as given."""
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return str(n)
    return format_decimal(n, format=pattern, locale=locale(lang))


def share(value: float, lang: str) -> str:
    """A share (0-1) as a percentage in the language (87 % in French, 87% in English)."""
    return format_percent(value, locale=locale(lang))


def capital_share(percent: float, lang: str) -> str:
    """A share of capital given in percent (35.5) as the language writes it, to two decimals (35.5 %)."""
    return format_percent(percent / 100, "#,##0.##%", locale=locale(lang))


def day(value: Any, lang: str, form: str = "medium", zone: Any = None) -> str:
    """A date (or an ISO date string), or the date of a point in time in the time zone `zone` (a
    naive one is UTC; default UTC): a batch received at 00:30 in Beijing is of that day, not UTC's
    day before. Anything else as given."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(zone or dt.timezone.utc)
        value = value.date()
    return format_date(value, format=form, locale=locale(lang))


def moment(value: Any, lang: str, zone: Any = None, form: str = "medium") -> str:
    """A point in time (a naive one is UTC), in the time zone `zone` (a tzinfo; default UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return format_datetime(value, format=form, tzinfo=zone or dt.timezone.utc, locale=locale(lang))


def month(value: str, lang: str) -> str:
    """A month given as YYYY-MM: `Nov 2026`, `nov. 2026`, `2026年11月`."""
    from babel.dates import format_skeleton

    try:
        first = dt.date.fromisoformat(f"{value[:7]}-01")
    except ValueError:
        return value
    return format_skeleton("yMMM", first, locale=locale(lang))
