"""Dates in a jurisdiction: working days, deadlines, durations, today in its time zone."""

from __future__ import annotations

import datetime as dt
from calendar import monthrange
from zoneinfo import ZoneInfo

from typing import Any

from xinyong.domain.conditions import holds
from xinyong.domain.pack import CalendarSpec, DurationSpec, FieldType, Pack

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Calendar:
    def __init__(self, spec: CalendarSpec):
        self.zone = ZoneInfo(spec.timezone)
        self.working_weekdays = {_WEEKDAYS.index(d) for d in spec.working_days}
        self.holidays = set(spec.holidays)
        self.extra_working_days = set(spec.extra_working_days)
        self.deadlines_end_on_working_days = spec.deadlines_end_on_working_days
        # holidays are declared a year at a time (China: each November): a later year is unknown
        self.holidays_listed_through = max((day.year for day in self.holidays), default=None)

    def today(self) -> dt.date:
        return dt.datetime.now(self.zone).date()

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.weekday() in self.working_weekdays and day not in self.holidays

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The date `days` working days after `start` (start itself not counted)."""
        day = start
        counted = 0
        while counted < days:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def deadline(self, start: dt.date, days: int, unit: str) -> dt.date:
        """Last day of a window of `days` (working or calendar) that opens on `start`; a calendar window
        ending on a closed day runs to the next working day where the pack says so."""
        if unit == "working":
            return self.add_working_days(start, days)
        last = start + dt.timedelta(days=days)
        while self.deadlines_end_on_working_days and not self.is_working_day(last):
            last += dt.timedelta(days=1)
        return last

    def unlisted_years(self, start: dt.date, deadline: dt.date, unit: str) -> list[int]:
        """The years of a window from `start` to `deadline` whose holidays the pack does not list, where
        they count: that window's days were counted as if those years had none."""
        counts_holidays = unit == "working" or self.deadlines_end_on_working_days
        if self.holidays_listed_through is None or not counts_holidays:
            return []
        return list(range(max(start.year, self.holidays_listed_through + 1), deadline.year + 1))


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of the month, `months` later; clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, monthrange(year, month)[1]))


def add_years(day: dt.date, years: float) -> dt.date:
    return add_months(day, round(years * 12))


def listing_end(duration: DurationSpec, start: dt.date, severity_years: float | None = None) -> dt.date | None:
    """When a listing that became effective on `start` ends; None only for `until_performance`.

    A range duration takes the severity's years clamped into the range, or else its maximum:
    the minimum is the earliest exit, reached only through credit repair.
    """
    if duration.kind == "until_performance":
        return None
    if duration.kind == "fixed":
        return add_years(start, duration.years)  # type: ignore[arg-type]
    years = duration.max_years if severity_years is None else min(max(severity_years, duration.min_years),
                                                                  duration.max_years)
    return add_years(start, years)  # type: ignore[arg-type]


def term_end(duration: DurationSpec, start: dt.date, evidence: list[dict[str, Any]],
             types: dict[str, FieldType]) -> dt.date | None:
    """The end of a listing effective from `start` whose evidence records have these fields.

    Each record takes the first of the duration's `terms` it meets (a term without years is
    open-ended), or the duration itself; an open-ended record keeps the listing open-ended,
    else the latest end wins (a court listing: ground 1 until performance, grounds 2-6 2 years).
    """
    if not duration.terms or not evidence:
        return listing_end(duration, start)
    ends = []
    for fields in evidence:
        term = next((term for term in duration.terms if holds(term.when, fields, types)), None)
        if term is None:
            ends.append(listing_end(duration, start))
        else:
            ends.append(add_years(start, term.years) if term.years is not None else None)
    return None if None in ends else max(ends)  # type: ignore[type-var]


def pack_today(pack: Pack) -> dt.date:
    """The one "today" of the system: the pack's date in the pack's time zone, never the host's."""
    return Calendar(pack.calendar).today()
