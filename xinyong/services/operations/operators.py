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
from sqlalchemy import Engine, func, select

from xinyong.domain.calendar import pack_today
from xinyong.domain.identifiers import mask_record_key
from xinyong.domain.pack import Pack
from xinyong.services.operations.keys import secret_hash
from xinyong.store import tables as t
from xinyong.store.audit import append_event, check

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
    """The console's filter of objections and repair applications (and, without `state` and
    `list_code`, of batches): state, the list (of the listing), the authority deciding (the list's,
    or the publishing authority of a record), and the day filed (applied, received) from/to."""
    state: str | None = None
    list_code: str | None = None
    authority: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    category: str | None = None  # batches only


def _paged(c: Any, query: Any, count: Any, page: int, page_size: int) -> dict[str, Any]:
    total = c.execute(count).scalar_one()
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = [dict(r) for r in c.execute(query.limit(page_size).offset((page - 1) * page_size)).mappings()]
    return {"rows": rows, "total": total, "page": page, "pages": pages}


def _case_conditions(pack: Pack, table: Any, day: Any, where: CaseFilter) -> list[Any]:
    from sqlalchemy import or_

    L = t.listings.c
    conditions = []
    if where.state:
        conditions.append(table.c.state == where.state)
    if where.list_code:
        conditions.append(table.c.listing_id.in_(select(L.id).where(L.list_code == where.list_code)))
    if where.authority:
        codes = [spec.code for spec in pack.lists if spec.authority == where.authority]
        conditions.append(or_(table.c.listing_id.in_(select(L.id).where(L.list_code.in_(codes))),
                              table.c.record_key.like(f"{where.authority}:%")))
    if where.since:
        conditions.append(day >= where.since)
    if where.until:
        conditions.append(day <= where.until)
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


def batches_page(engine: Engine, authority: str, where: CaseFilter, *, zone: Any = None, page: int = 1,
                 page_size: int = CONSOLE_PAGE_SIZE) -> dict[str, Any]:
    """One page of an authority's batches (newest first), filtered by category and the day received
    (in the pack's time zone `zone`), and the total."""
    b = t.batches.c
    conditions = [b.authority == authority]
    if where.category:
        conditions.append(b.category == where.category)
    zone = zone or dt.timezone.utc
    if where.since:
        conditions.append(b.created_at >= dt.datetime.combine(where.since, dt.time(), zone).astimezone(dt.timezone.utc))
    if where.until:
        conditions.append(b.created_at < dt.datetime.combine(where.until + dt.timedelta(days=1), dt.time(), zone)
                          .astimezone(dt.timezone.utc))
    query = select(b.id, b.authority, b.category, b.file_name, b.rows, b.accepted, b.quarantined, b.duplicates,
                   b.warnings, b.notes, b.created_at).where(*conditions).order_by(b.id.desc())
    with engine.connect() as c:
        return _paged(c, query, select(func.count()).select_from(t.batches).where(*conditions), page, page_size)
