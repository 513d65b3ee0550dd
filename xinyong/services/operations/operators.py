"""The authority console's side: signing in with an API key, the dashboard's figures, the
audit status, and the work waiting for an operator.

An authority signs in to the console with one of its API keys that has the `operate` scope
(the credit centre's own work: review, due process) or a submit scope (uploading batches).
Every step it takes is recorded with the actor ``AUTHORITY/keyID``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, and_, false, func, literal_column, or_, select

from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_record_key
from xinyong.domain.pack import Pack
from xinyong.services.operations.keys import secret_hash
from xinyong.store import tables as t
from xinyong.store.audit import append_event, check
from xinyong.store.plans import not_by_index

CONSOLE_SCOPES = ("operate", "submit")


class SignInRefused(Exception):
    """The key cannot open the console; the message says why."""


@dataclass(frozen=True)
class Operator:
    key_id: int
    authority: str
    prefix: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        return operator_actor(self.authority, self.key_id)

    @property
    def operates(self) -> bool:
        return "operate" in self.scopes

    def may_submit(self, category: str) -> bool:
        return "submit" in self.scopes or f"submit:{category}" in self.scopes

    @property
    def submits(self) -> bool:
        return any(s == "submit" or s.startswith("submit:") for s in self.scopes)


def _expired(expires_at: dt.datetime | None) -> bool:
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # SQLite gives naive UTC back
        expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
    return expires_at <= dt.datetime.now(dt.timezone.utc)


def operator_actor(authority: str, key_id: int) -> str:
    return f"{authority}/key{key_id}"


def _operator(row: Any) -> Operator:
    return Operator(row.id, row.authority, row.prefix, tuple(sorted(row.scopes)))


def sign_in_operator_key(engine: Engine, secret: str) -> Operator:
    """The key's holder, if the key is active and may use the console; the sign-in is audited."""
    secret = (secret or "").strip()
    k = t.api_keys.c
    with engine.begin() as c:
        row = c.execute(select(k.id, k.authority, k.prefix, k.scopes, k.revoked_at, k.expires_at)
                        .where(k.secret_sha256 == secret_hash(secret))).first() if secret else None
        if row is None or row.revoked_at is not None:
            raise SignInRefused("unknown or revoked API key")
        if _expired(row.expires_at):
            raise SignInRefused("this API key has expired")
        operator = _operator(row)
        if not (operator.operates or operator.submits):
            raise SignInRefused("this key has neither the operate nor a submit scope")
        append_event(c, actor=operator.actor, action="console.signed_in", object_type="api_key",
                     object_id=str(operator.key_id), payload={"scopes": list(operator.scopes)})
    return operator


def active_operator(engine: Engine, key_id: int) -> Operator | None:
    """The key's holder while the key is active (a revoked or expired key ends its console sessions)."""
    k = t.api_keys.c
    with engine.connect() as c:
        row = c.execute(select(k.id, k.authority, k.prefix, k.scopes, k.expires_at)
                        .where(k.id == key_id, k.revoked_at.is_(None))).first()
    if row is None or _expired(row.expires_at):
        return None
    operator = _operator(row)
    return operator if operator.operates or operator.submits else None


# -- the dashboard -------------------------------------------------------------------------------

def _month(engine: Engine, column: Any) -> Any:
    if engine.dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _last_months(newest: str | None, count: int) -> list[str]:
    """`count` consecutive months (YYYY-MM) ending with `newest`."""
    if newest is None:
        return []
    year, month = int(newest[:4]), int(newest[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def dashboard(engine: Engine, pack: Pack, *, months: int = 12, today: dt.date | None = None) -> dict[str, Any]:
    """Counts, records per authority per month of decision (the `months` months up to the
    newest month with records, not after today), and listings per list and state."""
    today = today or pack_today(pack)
    r, L = t.records.c, t.listings.c
    month = _month(engine, r.decision_date).label("month")
    with engine.connect() as c:
        per_month = c.execute(select(r.authority, month, func.count())
                              .where(r.version == 1, r.decision_date.is_not(None))
                              .group_by(r.authority, month)).all()
        listings = c.execute(select(L.list_code, L.state, func.count()).group_by(L.list_code, L.state)).all()
        totals = {
            "entities": c.execute(select(func.count()).select_from(t.entities)).scalar_one(),
            "records": c.execute(select(func.count()).select_from(t.records).where(r.version == 1)).scalar_one(),
            "batches": c.execute(select(func.count()).select_from(t.batches)).scalar_one(),
            "quarantined": c.execute(select(func.count()).select_from(t.quarantine)).scalar_one(),
            "in_review": c.execute(select(func.count()).select_from(t.record_links)
                                   .where(t.record_links.c.state == "review")).scalar_one(),
            "open_objections": c.execute(select(func.count()).select_from(t.objections)
                                         .where(t.objections.c.state == "open")).scalar_one(),
            "pending_repairs": c.execute(select(func.count()).select_from(t.repairs)
                                         .where(t.repairs.c.state == "pending")).scalar_one(),
            "proposed_listings": c.execute(select(func.count()).select_from(t.listings)
                                           .where(L.state == "proposed")).scalar_one(),
        }
    all_months = _last_months(max((m for _, m, _ in per_month if m and m <= f"{today:%Y-%m}"), default=None),
                              months)
    authorities = sorted({a for a, m, _ in per_month if m in all_months})
    series = {a: [0] * len(all_months) for a in authorities}
    for authority, m, count in per_month:
        if m in all_months:
            series[authority][all_months.index(m)] += count
    lists: dict[str, dict[str, int]] = {}
    for code, state, count in listings:
        lists.setdefault(code, {})[state] = count
    return {"totals": totals,
            "records_per_month": {"months": all_months, "series": series,
                                  "names": {a: pack.authority(a).names.model_dump() for a in authorities}},
            "listings": {"lists": {code: lists[code] for code in sorted(lists)},
                         "names": {code: pack.list_(code).names.model_dump() for code in lists}}}


def audit_status(engine: Engine, *, recent: int = 20) -> dict[str, Any]:
    """Is the chain intact (the same check as `xinyong audit verify`), and its newest events."""
    a = t.audit_events.c
    with engine.connect() as c:
        report = check(c)
        events = [dict(e) for e in c.execute(select(a.seq, a.at, a.actor, a.action, a.object_type, a.object_id,
                                                    a.reason).order_by(a.seq.desc()).limit(recent)).mappings()]
    from xinyong.domain.identifiers import mask_record_key

    for e in events:  # a record's key may carry a person's ID number
        e["object_id"] = mask_record_key(e["object_id"]) if e["object_type"] == "record" else e["object_id"]
    return {"events": report.events, "intact": report.problem is None, "problem": report.problem,
            "note": report.note, "recent": events, "checked_at": dt.datetime.now(dt.timezone.utc)}


# -- work waiting -----------------------------------------------------------------------------------

def open_objections(engine: Engine, *, include_decided: int = 20) -> list[dict[str, Any]]:
    """Open objections (oldest first), then the most recently decided."""
    from xinyong.domain.identifiers import mask_record_key

    O, A = t.objections.c, t.objection_attachments.c
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(t.objections).where(O.state == "open").order_by(O.id)).mappings()]
        rows += [dict(r) for r in c.execute(select(t.objections).where(O.state != "open")
                                            .order_by(O.decided_on.desc(), O.id.desc())
                                            .limit(include_decided)).mappings()]
        files: dict[int, list[dict[str, Any]]] = {}
        if rows:
            for f in c.execute(select(A.objection_id, A.name, A.sha256, A.size)
                               .where(A.objection_id.in_([r["id"] for r in rows]))).mappings():
                files.setdefault(f["objection_id"], []).append(dict(f))
    for row in rows:
        row["record_key"] = mask_record_key(row["record_key"]) if row["record_key"] else None
        row["attachments"] = files.get(row["id"], [])
    return rows


def repair_applications(engine: Engine, *, include_decided: int = 20) -> list[dict[str, Any]]:
    R = t.repairs.c
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(t.repairs).where(R.state == "pending").order_by(R.id)).mappings()]
        rows += [dict(r) for r in c.execute(select(t.repairs).where(R.state != "pending")
                                            .order_by(R.decided_on.desc(), R.id.desc())
                                            .limit(include_decided)).mappings()]
    for row in rows:
        row["evidence"] = row["evidence"] if isinstance(row["evidence"], list) else orjson.loads(row["evidence"])
        row["record_key"] = mask_record_key(row["record_key"]) if row["record_key"] else None
    return rows


def known_file(engine: Engine, sha256: str) -> str | None:
    """The name of a file attached to some objection or repair application (for operators)."""
    with engine.connect() as c:
        name = c.execute(select(t.objection_attachments.c.name)
                         .where(t.objection_attachments.c.sha256 == sha256)).scalar()
        if name is not None:
            return name
        for (evidence,) in c.execute(select(t.repairs.c.evidence)):
            for item in evidence if isinstance(evidence, list) else orjson.loads(evidence):
                if item["sha256"] == sha256:
                    return item["name"]
    return None


# -- the console's tables, paged: a national store holds millions of listings and records ----------------

CONSOLE_PAGE_SIZE = 50


@dataclass(frozen=True)
class ListingFilter:
    state: str | None = None
    list_code: str | None = None
    authority: str | None = None  # the authority that runs the list
    proposed_from: dt.date | None = None
    proposed_to: dt.date | None = None


def listings_page(engine: Engine, pack: Pack, where: ListingFilter, *, page: int = 1,
                  page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of listings (newest first) with the entity's key and current name, and the total."""
    L, e, n = t.listings.c, t.entities.c, t.entity_names.c
    conditions = []
    if where.state:
        conditions.append(L.state == where.state)
    if where.list_code:
        conditions.append(L.list_code == where.list_code)
    if where.authority:
        conditions.append(L.list_code.in_([spec.code for spec in pack.lists if spec.authority == where.authority]))
    if where.proposed_from:
        conditions.append(L.proposed_on >= where.proposed_from)
    if where.proposed_to:
        conditions.append(L.proposed_on <= where.proposed_to)
    name = (select(n.name).where(n.entity_id == L.entity_id, n.current.is_(True)).order_by(n.id).limit(1)
            .scalar_subquery())
    with engine.connect() as c:
        total = c.execute(select(func.count()).select_from(t.listings).where(*conditions)).scalar_one()
        pages = max(1, -(-total // page_size))
        page = min(max(page, 1), pages)
        rows = [dict(r) for r in c.execute(
            select(L.id, L.list_code.label("list"), L.state, L.subject_kind, L.proposed_on, L.objection_deadline,
                   L.effective_from, L.effective_to, e.key.label("entity"), name.label("entity_name"))
            .join(t.entities, e.id == L.entity_id).where(*conditions)
            .order_by(L.id.desc()).limit(page_size).offset((page - 1) * page_size)).mappings()]
    return {"rows": rows, "total": total, "page": page, "pages": pages}


def review_page(queue: list[dict[str, Any]], *, page: int = 1, page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of the review queue (already ordered), with the total."""
    pages = max(1, -(-len(queue) // page_size))
    page = min(max(page, 1), pages)
    return {"rows": queue[(page - 1) * page_size:page * page_size], "total": len(queue), "page": page, "pages": pages}


@dataclass(frozen=True)
class CaseFilter:
    """The console's filter of its case lists: objections and repair applications (state, `decided`
    for either decision; the list of the listing; the authority whose case it is, as the scorecard
    counts it; the day filed or applied from/to; a repair decided on time or late), batches, the
    records they brought and their quarantined rows (category; the day received from/to; a
    record's timeliness, verified code, later versions; a quarantine reason)."""
    state: str | None = None
    list_code: str | None = None
    authority: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    category: str | None = None  # batches, records, quarantine
    timeliness: str | None = None  # records: on_time | late | timed; repairs: on_time | late (decided ones)
    verified: str | None = None  # records: yes | no
    change: str | None = None  # records: correction | revocation (later versions) instead of first versions
    reason: str | None = None  # quarantine: a reason code (or the reason's text for rows without one)

    def query(self) -> list[tuple[str, str]]:
        """The filter as query parameters (the pager's and the scorecard's links)."""
        return [(k, v) for k, v in (("state", self.state), ("list", self.list_code), ("authority", self.authority),
                                    ("category", self.category), ("from", self.since and self.since.isoformat()),
                                    ("to", self.until and self.until.isoformat()), ("timeliness", self.timeliness),
                                    ("verified", self.verified), ("change", self.change), ("reason", self.reason))
                if v]


DECIDED = {"objections": ("upheld", "rejected"), "repairs": ("approved", "refused")}


def _paged(c: Any, query: Any, count: Any, page: int, page_size: int) -> dict[str, Any]:
    total = c.execute(count).scalar_one()
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = [dict(r) for r in c.execute(query.limit(page_size).offset((page - 1) * page_size)).mappings()]
    return {"rows": rows, "total": total, "page": page, "pages": pages}


def _case_conditions(pack: Pack, table: Any, day: Any, where: CaseFilter) -> list[Any]:
    from xinyong.services.accountability.scorecard import objection_owner, repair_owner

    L = t.listings.c
    conditions = []
    if where.state == "decided":
        conditions.append(table.c.state.in_(DECIDED[table.name]))
    elif where.state:
        conditions.append(table.c.state == where.state)
    if where.list_code:
        conditions.append(table.c.listing_id.in_(select(L.id).where(L.list_code == where.list_code)))
    if where.authority:
        owner = objection_owner if table is t.objections else repair_owner
        conditions.append(owner(pack) == where.authority)
    if where.since:
        conditions.append(day >= where.since)
    if where.until:
        conditions.append(day <= where.until)
    if where.timeliness and table is t.repairs:  # as the scorecard: a decision not stored late is on time
        late = table.c.late.is_(True)
        conditions.append(late if where.timeliness == "late" else or_(table.c.late.is_(None), table.c.late.is_(False)))
    return conditions


def _open_first(table: Any, open_state: str) -> list[Any]:
    """Open cases first, oldest first (the queue); then decided ones, newest first."""
    from sqlalchemy import case

    return [case((table.c.state == open_state, 0), else_=1), case((table.c.state == open_state, table.c.id),
                                                                  else_=-table.c.id)]


def objections_page(engine: Engine, pack: Pack, where: CaseFilter, *, page: int = 1,
                    page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of objections (open ones first, oldest first) with their attachments, and the total."""
    O, A = t.objections.c, t.objection_attachments.c
    conditions = _case_conditions(pack, t.objections, O.filed_on, where)
    with engine.connect() as c:
        data = _paged(c, select(t.objections).where(*conditions).order_by(*_open_first(t.objections, "open")),
                      select(func.count()).select_from(t.objections).where(*conditions), page, page_size)
        files: dict[int, list[dict[str, Any]]] = {}
        if data["rows"]:
            for f in c.execute(select(A.objection_id, A.name, A.sha256, A.size)
                               .where(A.objection_id.in_([r["id"] for r in data["rows"]]))).mappings():
                files.setdefault(f["objection_id"], []).append(dict(f))
    for row in data["rows"]:
        row["record_key"] = mask_record_key(row["record_key"]) if row["record_key"] else None
        row["attachments"] = files.get(row["id"], [])
    return data


def repairs_page(engine: Engine, pack: Pack, where: CaseFilter, *, page: int = 1,
                 page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of credit repair applications (pending ones first, oldest first), and the total."""
    R = t.repairs.c
    conditions = _case_conditions(pack, t.repairs, R.applied_on, where)
    with engine.connect() as c:
        data = _paged(c, select(t.repairs).where(*conditions).order_by(*_open_first(t.repairs, "pending")),
                      select(func.count()).select_from(t.repairs).where(*conditions), page, page_size)
    for row in data["rows"]:
        row["evidence"] = row["evidence"] if isinstance(row["evidence"], list) else orjson.loads(row["evidence"])
        row["record_key"] = mask_record_key(row["record_key"]) if row["record_key"] else None
    return data


def _received(where: CaseFilter, zone: Any) -> list[Any]:
    """Batches received on the days from/to of the filter, in the pack's time zone `zone`."""
    b = t.batches.c
    conditions = []
    if where.since:
        conditions.append(b.created_at >= dt.datetime.combine(where.since, dt.time(), zone).astimezone(dt.timezone.utc))
    if where.until:
        conditions.append(b.created_at < dt.datetime.combine(where.until + dt.timedelta(days=1), dt.time(), zone)
                          .astimezone(dt.timezone.utc))
    return conditions


def batches_page(engine: Engine, authority: str, where: CaseFilter, *, zone: Any = None, page: int = 1,
                 page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of an authority's batches (newest first), filtered by category and the day received
    (in the pack's time zone `zone`), and the total, with the rows sent and quarantined in all of them."""
    b = t.batches.c
    conditions = [b.authority == authority, *_received(where, zone or dt.timezone.utc)]
    if where.category:
        conditions.append(b.category == where.category)
    query = select(b.id, b.authority, b.category, b.file_name, b.rows, b.accepted, b.quarantined, b.duplicates,
                   b.warnings, b.notes, b.created_at).where(*conditions).order_by(b.id.desc())
    with engine.connect() as c:
        data = _paged(c, query, select(func.count()).select_from(t.batches).where(*conditions), page, page_size)
        sent, quarantined = c.execute(select(func.coalesce(func.sum(b.rows), 0),
                                             func.coalesce(func.sum(b.quarantined), 0)).where(*conditions)).one()
    return {**data, "rows_sent": sent, "rows_quarantined": quarantined}


def records_page(engine: Engine, pack: Pack, authority: str, where: CaseFilter, *, page: int = 1,
                 page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of the records an authority's batches brought (newest first), as the scorecard
    counts them (docs/scorecard.md): first versions, by the day their batch was received, the
    category, timeliness (`on_time`/`late`: of the pack's timed categories, by working days
    after the decision date) and whether the subject code was verified; or, with `change`, the
    later versions (corrections, revocations) of the records received on those days. Each row
    carries its delay in working days (timed categories)."""
    from xinyong.domain.calendar import Calendar
    from xinyong.services.accountability.scorecard import WorkingDays, local_date

    calendar = Calendar(pack.calendar)
    working = WorkingDays(calendar)
    timed = list(pack.scorecard.timed_categories)
    limit = pack.scorecard.on_time_working_days
    R, B = t.records, t.batches
    # the record as received: the row itself, or for a later version its first version
    first = R if where.change is None else R.alias("first")
    received = [B.c.authority == authority, *_received(where, calendar.zone)]
    if where.change is None:
        source = R.join(B, B.c.id == R.c.batch_id)
        conditions = [*received, R.c.version == 1]
        newest_first = R.c.id.desc()
    else:
        # Start from the later versions (few: partial index ix_records_later_versions, usable only with
        # `version > 1` written literally), not from the authority's batches and their millions of
        # first versions, nor by walking the whole table in id order for the page's ORDER BY
        one = literal_column("1")
        source = R.join(first, and_(first.c.record_key == R.c.record_key, first.c.version == one)).join(
            B, B.c.id == first.c.batch_id)
        conditions = [not_by_index(B.c.authority) == authority, *_received(where, calendar.zone), R.c.version > one,
                      (R.c.status == "revoked") if where.change == "revocation" else (R.c.status != "revoked")]
        newest_first = not_by_index(R.c.id).desc()
    if where.category:
        conditions.append(first.c.category == where.category)
    if where.verified:
        conditions.append(first.c.subject_code_verified.is_(where.verified == "yes"))
    with engine.connect() as c:
        if where.timeliness:
            conditions += [first.c.category.in_(timed), first.c.decision_date.is_not(None)]
            if where.timeliness in ("on_time", "late"):
                # on time: decided on or after the earliest on-time decision date of the day received
                by_day: dict[dt.date, list[int]] = {}
                for batch_id, created_at in c.execute(select(B.c.id, B.c.created_at).where(*received)):
                    by_day.setdefault(local_date(created_at, calendar.zone), []).append(batch_id)
                decided = first.c.decision_date
                by_batch_day = [and_(first.c.batch_id.in_(ids),
                                     (decided >= working.earliest_on_time(day, limit)) if where.timeliness == "on_time"
                                     else (decided < working.earliest_on_time(day, limit)))
                                for day, ids in sorted(by_day.items())]
                conditions.append(or_(*by_batch_day) if by_batch_day else false())
        query = (select(R.c.id, R.c.record_key, R.c.version, R.c.status, R.c.category, R.c.subject_name,
                        R.c.subject_kind, R.c.subject_code, R.c.subject_code_verified, R.c.batch_id, R.c.created_at,
                        first.c.decision_date.label("decided_on"), first.c.category.label("received_category"),
                        B.c.id.label("received_batch"), B.c.created_at.label("received_at"))
                 .select_from(source).where(*conditions).order_by(newest_first))
        data = _paged(c, query, select(func.count()).select_from(source).where(*conditions), page, page_size)
    for row in data["rows"]:
        row["received_on"] = local_date(row["received_at"], calendar.zone)
        row["delay"] = (working.between(row["decided_on"], row["received_on"])
                        if row["received_category"] in timed and row["decided_on"] is not None else None)
        row["on_time"] = None if row["delay"] is None else row["delay"] <= limit
    return data


def quarantine_reason_of(table: Any = t.quarantine) -> Any:
    """SQL: a quarantined row's reason as the scorecard groups it, its code or else its text."""
    return func.coalesce(func.nullif(table.c.reason_code, ""), table.c.reason)


def quarantine_page(engine: Engine, pack: Pack, authority: str, where: CaseFilter, *, page: int = 1,
                    page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of the rows an authority's batches received on the days from/to had quarantined
    (by category and reason), newest batch first, and the rows sent in those batches."""
    from zoneinfo import ZoneInfo

    Q, B = t.quarantine, t.batches
    batch_conditions = [B.c.authority == authority, *_received(where, ZoneInfo(pack.calendar.timezone))]
    if where.category:
        batch_conditions.append(B.c.category == where.category)
    conditions = [*batch_conditions]
    if where.reason:
        conditions.append(quarantine_reason_of(Q) == where.reason)
    source = Q.join(B, B.c.id == Q.c.batch_id)
    query = (select(Q.c.id, Q.c.batch_id, Q.c.row_number, Q.c.field, Q.c.reason, Q.c.reason_code, Q.c.params,
                    B.c.category, B.c.file_name, B.c.created_at)
             .select_from(source).where(*conditions).order_by(Q.c.batch_id.desc(), Q.c.row_number, Q.c.id))
    with engine.connect() as c:
        data = _paged(c, query, select(func.count()).select_from(source).where(*conditions), page, page_size)
        sent, batches = c.execute(select(func.coalesce(func.sum(B.c.rows), 0), func.count())
                                  .where(*batch_conditions)).one()
    for row in data["rows"]:
        if isinstance(row["params"], str):
            row["params"] = orjson.loads(row["params"])
    return {**data, "rows_sent": sent, "batches": batches}
