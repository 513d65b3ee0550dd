"""The authority scorecard: timeliness, quality and fairness per authority and month.

Everything comes from what the store already holds (docs/scorecard.md is the method):

- a record is *received* on the pack-calendar date of the batch (file or API post) that
  brought its first version; corrections and resends do not count again. Its month is that
  date's month;
- its *delay* is the number of working days of the pack calendar after its decision date (the
  decision day not counted) up to that receipt; *on time* is a delay of at most the pack's
  `scorecard.on_time_working_days` (cn: 7), for the pack's `scorecard.timed_categories` only
  (double publicity: licences and penalties);
- quality: the share of a month's batch rows quarantined and the commonest reasons, the share
  of records whose subject code was verified, corrections and revocations of the month's records;
- fairness: objections filed in the month against the authority's records (the record's
  authority) and listings (the list's authority), the share of decided ones upheld; repair
  applications filed in the month, the share of decided ones decided within the pack's
  deadlines (`repairs.late`, stored when the step was taken); cases overdue now come from
  `services.lists.due_process.overdue`, counted in the month the case opened.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, case, func, null, select

from xinyong.domain.calendar import Calendar
from xinyong.domain.pack import Pack, PackError
from xinyong.services.lists.due_process import overdue
from xinyong.store import tables as t

FIGURES = ("authority", "month", "records", "on_time_share", "median_delay_working_days", "quarantine_rate",
           "verified_code_share", "corrections", "revocations", "objections", "objections_upheld_share",
           "repairs", "repairs_on_time_share", "overdue")
# figures about cases (objections, repairs): not public facts, suppressed under the small-cell threshold
CASE_FIGURES = ("objections", "objections_upheld_share", "repairs", "repairs_on_time_share", "overdue")


class WorkingDays:
    """Working days between two dates of the pack calendar, from a cumulative count."""

    def __init__(self, calendar: Calendar):
        self.calendar = calendar
        self.start: dt.date | None = None
        self.cumulative: list[int] = []

    def _cover(self, first: dt.date, last: dt.date) -> None:
        if self.start is not None and first >= self.start and (last - self.start).days < len(self.cumulative):
            return
        start = min(first, self.start or first)
        end = max(last, (self.start + dt.timedelta(days=len(self.cumulative) - 1)) if self.start else last)
        counts, total = [], 0
        for offset in range((end - start).days + 1):
            total += self.calendar.is_working_day(start + dt.timedelta(days=offset))
            counts.append(total)
        self.start, self.cumulative = start, counts

    def between(self, decision: dt.date, received: dt.date) -> int:
        """Working days after `decision` up to and including `received` (0 if not after)."""
        if received <= decision:
            return 0
        self._cover(decision, received)
        assert self.start is not None
        return self.cumulative[(received - self.start).days] - self.cumulative[(decision - self.start).days]

    def earliest_on_time(self, received: dt.date, limit: int) -> dt.date:
        """The earliest decision date whose delay to `received` is at most `limit`: the delay only
        grows as the decision date moves back, so "on time" is `decision_date >= this` (a SQL filter)."""
        day, counted = received, 0
        for _ in range(3660):  # a calendar with no working day for ten years is no calendar
            counted += self.calendar.is_working_day(day)
            if counted > limit:
                return day
            day -= dt.timedelta(days=1)
        return day


def local_date(value: dt.datetime | dt.date | str, zone: ZoneInfo) -> dt.date:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)  # SQLite keeps UTC without its offset
    return value.astimezone(zone).date()


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_days(month: str) -> tuple[dt.date, dt.date]:
    """The first and last day of a month YYYY-MM: the console's lists filter a month as from/to."""
    first = dt.date.fromisoformat(f"{month}-01")
    after = (first + dt.timedelta(days=32)).replace(day=1)
    return first, after - dt.timedelta(days=1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(histogram: Counter) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    values = sorted(histogram)
    cumulative, running = [], 0
    for v in values:
        running += histogram[v]
        cumulative.append(running)

    def nth(n: int) -> int:  # the n-th value (0-based) in sorted order
        return values[bisect.bisect_right(cumulative, n)]

    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


# Whose case an objection or a repair application is, defined once in SQL: the scorecard groups by
# it and the console's queues filter on it, so a figure and the list it links to count the same cases.

def _list_authority(pack: Pack, table: Any) -> Any:
    """The authority that runs the case's listing's list (NULL without a listing or for a list unknown to the pack)."""
    list_code = select(t.listings.c.list_code).where(t.listings.c.id == table.c.listing_id).scalar_subquery()
    return case({spec.code: spec.authority for spec in pack.lists}, value=list_code, else_=null())


def _key_authority(pack: Pack, table: Any) -> Any:
    """The authority that published the case's record: its key's prefix ("samr:…")."""
    return case(*[(table.c.record_key.startswith(f"{a.code}:", autoescape=True), a.code) for a in pack.authorities],
                else_=null())


def _listing_or_record_authority(pack: Pack, table: Any) -> Any:
    return case((table.c.listing_id.is_not(None), _list_authority(pack, table)), else_=_key_authority(pack, table))


def objection_owner(pack: Pack) -> Any:
    """The authority that runs the listing's list, else the one that published the record, else the
    deciding authority stored with the objection."""
    O = t.objections
    return func.coalesce(_listing_or_record_authority(pack, O), func.nullif(O.c.authority, ""), "?")


def repair_owner(pack: Pack) -> Any:
    """The deciding authority stored with the application, else the list's, else the record's."""
    P = t.repairs
    return func.coalesce(func.nullif(P.c.authority, ""), _listing_or_record_authority(pack, P), "?")


def scorecard(engine: Engine, pack: Pack, today: dt.date, *, authority: str | None = None,
              date_from: dt.date | None = None, date_to: dt.date | None = None) -> list[dict[str, Any]]:
    """One row per authority and month (YYYY-MM) with every figure of the issue, and the counts behind them."""
    calendar = Calendar(pack.calendar)
    zone = calendar.zone
    working = WorkingDays(calendar)
    timed = set(pack.scorecard.timed_categories)
    limit = pack.scorecard.on_time_working_days
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(auth: str, month: str) -> dict[str, Any]:
        found = rows.get((auth, month))
        if found is None:
            found = rows[(auth, month)] = {
                "authority": auth, "month": month, "records": 0, "timed_records": 0, "on_time": 0,
                "delays": Counter(), "verified": 0, "rows": 0, "quarantined": 0, "reasons": Counter(),
                "corrections": 0, "revocations": 0, "objections": 0, "objections_decided": 0,
                "objections_upheld": 0, "repairs": 0, "repairs_decided": 0, "repairs_on_time": 0, "overdue": 0}
        return found

    B, R, Q, O, P = t.batches.c, t.records.c, t.quarantine.c, t.objections.c, t.repairs.c
    with engine.connect() as c:
        received: dict[int, tuple[str, dt.date]] = {}
        for batch_id, auth, created_at, rows_sent, quarantined in c.execute(
                select(B.id, B.authority, B.created_at, B.rows, B.quarantined)):
            day = local_date(created_at, zone)
            received[batch_id] = (auth, day)
            entry = row(auth, _month(day))
            entry["rows"] += rows_sent or 0
            entry["quarantined"] += quarantined or 0
        for batch_id, code, reason, count in c.execute(
                select(Q.batch_id, Q.reason_code, Q.reason, func.count()).group_by(Q.batch_id, Q.reason_code, Q.reason)):
            auth, day = received[batch_id]
            row(auth, _month(day))["reasons"][code or reason] += count
        # first versions: the receipt is their batch's date
        for batch_id, category, decision, verified, count in c.execute(
                select(R.batch_id, R.category, R.decision_date, R.subject_code_verified, func.count())
                .where(R.version == 1)
                .group_by(R.batch_id, R.category, R.decision_date, R.subject_code_verified)):
            auth, day = received[batch_id]
            entry = row(auth, _month(day))
            entry["records"] += count
            if verified:
                entry["verified"] += count
            if category in timed and decision is not None:
                delay = working.between(decision, day)
                entry["timed_records"] += count
                entry["delays"][delay] += count
                if delay <= limit:
                    entry["on_time"] += count
        # later versions: counted with the record's first version (its receipt month)
        first = t.records.alias("first")
        for batch_id, status, count in c.execute(
                select(first.c.batch_id, R.status, func.count())
                .select_from(t.records.join(first, and_(first.c.record_key == R.record_key, first.c.version == 1)))
                .where(R.version > 1).group_by(first.c.batch_id, R.status)):
            auth, day = received[batch_id]
            row(auth, _month(day))["revocations" if status == "revoked" else "corrections"] += count
        for owner, state, filed_on in c.execute(select(objection_owner(pack), O.state, O.filed_on)):
            entry = row(owner, _month(filed_on))
            entry["objections"] += 1
            if state in ("upheld", "rejected"):
                entry["objections_decided"] += 1
                entry["objections_upheld"] += state == "upheld"
        for owner, state, applied_on, late in c.execute(select(repair_owner(pack), P.state, P.applied_on, P.late)):
            entry = row(owner, _month(applied_on))
            entry["repairs"] += 1
            if state in ("approved", "refused"):
                entry["repairs_decided"] += 1
                entry["repairs_on_time"] += not late
    for item in overdue(engine, pack, today):
        row(item["authority"], _month(item["since"]))["overdue"] += 1

    first_month = _month(date_from) if date_from else None
    last_month = _month(date_to) if date_to else None
    out = []
    for (auth, month), entry in sorted(rows.items()):
        if authority is not None and auth != authority:
            continue
        if (first_month and month < first_month) or (last_month and month > last_month):
            continue
        out.append({
            "authority": auth, "month": month, "records": entry["records"],
            "on_time_share": _share(entry["on_time"], entry["timed_records"]),
            "median_delay_working_days": _median(entry["delays"]),
            "quarantine_rate": _share(entry["quarantined"], entry["rows"]),
            "verified_code_share": _share(entry["verified"], entry["records"]),
            "corrections": entry["corrections"], "revocations": entry["revocations"],
            "objections": entry["objections"],
            "objections_upheld_share": _share(entry["objections_upheld"], entry["objections_decided"]),
            "repairs": entry["repairs"],
            "repairs_on_time_share": _share(entry["repairs_on_time"], entry["repairs_decided"]),
            "overdue": entry["overdue"],
            "timed_records": entry["timed_records"], "on_time": entry["on_time"], "verified": entry["verified"],
            "rows": entry["rows"],
            "quarantined": entry["quarantined"],
            "quarantine_top_reasons": [{"reason": r, "count": n} for r, n in entry["reasons"].most_common(3)],
            "objections_decided": entry["objections_decided"], "objections_upheld": entry["objections_upheld"],
            "repairs_decided": entry["repairs_decided"], "repairs_on_time": entry["repairs_on_time"],
        })
    return out


def check_authority(pack: Pack, authority: str | None) -> None:
    if authority is not None:
        pack.authority(authority)  # PackError naming the known ones


def totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per authority over the months given (the public page's table)."""
    merged: dict[str, dict[str, Any]] = {}
    sums = ("records", "timed_records", "on_time", "verified", "rows", "quarantined", "corrections", "revocations",
            "objections", "objections_decided", "objections_upheld", "repairs", "repairs_decided", "repairs_on_time",
            "overdue")
    for item in rows:
        entry = merged.setdefault(item["authority"], {"authority": item["authority"], **{k: 0 for k in sums},
                                                      "months": []})
        for k in sums:
            entry[k] += item[k]
        entry["months"].append(item["month"])
    out = []
    for entry in merged.values():
        out.append({**entry,
                    "on_time_share": _share(entry["on_time"], entry["timed_records"]),
                    "quarantine_rate": _share(entry["quarantined"], entry["rows"]),
                    "verified_code_share": _share(entry["verified"], entry["records"]),
                    "objections_upheld_share": _share(entry["objections_upheld"], entry["objections_decided"]),
                    "repairs_on_time_share": _share(entry["repairs_on_time"], entry["repairs_decided"])})
    return sorted(out, key=lambda e: e["authority"])


def suppress(rows: list[dict[str, Any]], threshold: int) -> list[dict[str, Any]]:
    """Public figures: a case count under `threshold` (and a share over fewer decided cases, or one
    whose cases either way are fewer) is None.

    Objections, repairs, overdue cases, corrections and revocations are not public facts: a cell
    of 1-4 could point at a firm. A share gives its cases away with its whole: 20% of 5 decided
    objections upheld is one objection upheld."""
    out = []
    for item in rows:
        item = dict(item)
        for count, share, whole, part in (
                ("objections", "objections_upheld_share", "objections_decided", "objections_upheld"),
                ("repairs", "repairs_on_time_share", "repairs_decided", "repairs_on_time")):
            if 0 < item[count] < threshold:
                item[count] = None
            decided, yes = item.pop(whole, None), item.pop(part, None)
            if decided is not None and (decided < threshold or yes is not None and any(
                    0 < cases < threshold for cases in (yes, decided - yes))):
                item[share] = None
        for count in ("overdue", "corrections", "revocations"):
            if item.get(count) is not None and 0 < item[count] < threshold:
                item[count] = None
        item["suppressed_below"] = threshold
        out.append(item)
    return out


__all__ = ["FIGURES", "CASE_FIGURES", "scorecard", "totals", "suppress", "check_authority", "PackError",
           "WorkingDays", "objection_owner", "repair_owner", "month_days"]
