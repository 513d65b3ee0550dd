"""Public lists and the change feed.

A listing is public only while it is in force (`domain.decisions.in_force`): due process made
it effective, and its end has not come; proposed and notified listings never appear here, nor
a notified listing under review. A person's ID number is
masked; the entity key of a person is opaque. A list read as of another day than today shows
no more than the public surfaces show today (`_public_today`).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from sqlalchemy import Engine, and_, exists, or_, select

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeDictWriter
from xinyong.domain.decisions import IN_FORCE, in_force
from xinyong.domain.identifiers import mask_person_id
from xinyong.domain.listings import FINAL, UNDONE
from xinyong.domain.pack import Pack
from xinyong.domain.privacy import mask_text
from xinyong.services.lists.due_process import list_listings
from xinyong.services.resolution.entities import public_categories
from xinyong.store import tables as t

LIST_COLUMNS = ("entity", "name", "kind", "id_number", "region", "list", "state", "effective_from", "effective_to",
                "legal_basis", "evidence")


def list_rows(engine: Engine, pack: Pack, code: str, as_of: dt.date) -> list[dict[str, Any]]:
    spec = pack.list_(code)
    listings = [row for row in list_listings(engine, list_code=code, as_of=as_of,
                                             evidence_categories=public_categories(pack))
                if in_force(row["state"], row["effective_from"], row["effective_to"], as_of)]
    if as_of != (today := pack_today(pack)):
        listings = _public_today(engine, pack, code, listings, today)
    keys = {row["entity"] for row in listings}
    e, n, i = t.entities.c, t.entity_names.c, t.entity_identifiers.c
    info: dict[str, Any] = {}
    person_ids: dict[str, str] = {}
    with engine.connect() as c:
        for chunk in _chunks(sorted(keys), 5000):
            for row in c.execute(select(e.key, e.kind, e.region, n.name)
                                 .outerjoin(t.entity_names, (n.entity_id == e.id) & n.current)
                                 .where(e.key.in_(chunk))):
                info[row.key] = row
            for key, value in c.execute(select(e.key, i.value).join(t.entity_identifiers, i.entity_id == e.id)
                                        .where(e.key.in_(chunk), i.scheme == "resident_id")):
                person_ids[key] = value
    out, numbers = [], pack.person_numbers
    for row in listings:
        entity = info.get(row["entity"])
        name = mask_text(entity.name, numbers) if entity and entity.name else None
        out.append({"entity": row["entity"], "name": name,
                    "kind": entity.kind if entity else None,
                    "id_number": mask_person_id(person_ids[row["entity"]]) if row["entity"] in person_ids else None,
                    "region": entity.region if entity else None, "list": code, "state": row["state"],
                    "effective_from": row["effective_from"], "effective_to": row["effective_to"],
                    "legal_basis": spec.legal_basis, "evidence": mask_text(";".join(row["evidence"]), numbers)})
    return out


def _public_today(engine: Engine, pack: Pack, code: str, listings: list[dict[str, Any]], today: dt.date) -> list[dict[str, Any]]:
    """Of a list's listings in force on another day, those the entity pages and open data show
    today: in force today, or in the public history of a `history_public` list (never one undone,
    such as withdrawn on an upheld objection); a natural person's only while a listing of theirs on
    this list is in force today (the list's own listings are all that is read). Evidence as
    today's (never a record whose publicity a repair has ended since), none for history, as the
    pages show it."""
    now = {row["id"]: row for row in list_listings(engine, list_code=code, as_of=today,
                                                      evidence_categories=public_categories(pack))}
    forced = {i for i, row in now.items() if in_force(row["state"], row["effective_from"], row["effective_to"], today)}
    held = {now[i]["entity"] for i in forced}
    with engine.connect() as c:
        persons = set(c.execute(select(t.entities.c.key).where(
            t.entities.c.kind == "natural_person", t.entities.c.key.in_({row["entity"] for row in listings}))).scalars())

    def public(row: dict[str, Any]) -> bool:
        current = now[row["id"]]
        history = (pack.list_(current["list"]).history_public and current["effective_from"] is not None
                   and current["end_reason"] not in UNDONE)
        return (row["id"] in forced or history) and (row["entity"] in held or row["entity"] not in persons)

    return [{**row, "evidence": now[row["id"]]["evidence"] if row["id"] in forced else []}
            for row in listings if public(row)]


def list_page(engine: Engine, pack: Pack, code: str, as_of: dt.date, *, region: str | None = None,
              name: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    rows = list_rows(engine, pack, code, as_of)
    if region:
        rows = [r for r in rows if (r["region"] or "").startswith(region)]
    if name:
        rows = [r for r in rows if name in (r["name"] or "")]
    start = (page - 1) * page_size
    spec = pack.list_(code)
    return {"list": code, "title": spec.names.model_dump(), "kind": spec.kind, "legal_basis": spec.legal_basis,
            "as_of": as_of, "total": len(rows), "page": page, "page_size": page_size,
            "items": rows[start:start + page_size]}


def csv_chunks(rows: Iterable[dict[str, Any]], columns: tuple[str, ...] = LIST_COLUMNS) -> Iterator[bytes]:
    """A list as CSV in chunks of rows (streamed, never whole in memory); UTF-8 with a BOM, so that
    spreadsheet programs open Chinese text correctly; every cell neutralised against formulas."""
    handle = io.StringIO()
    writer = SafeDictWriter(handle, fieldnames=columns)
    writer.writeheader()
    yield "\ufeff".encode() + _drain(handle)
    for number, row in enumerate(rows, start=1):
        writer.writerow(row)
        if number % 500 == 0:
            yield _drain(handle)
    yield _drain(handle)


def jsonl_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(row) + b"\n"


def _drain(handle: io.StringIO) -> bytes:
    data = handle.getvalue().encode("utf-8")
    handle.seek(0)
    handle.truncate()
    return data


def changes(engine: Engine, pack: Pack, since: int, limit: int) -> dict[str, Any]:
    """Changes of listings in force after `since`, in order: enough for a consumer to keep its own
    copy in sync. Only what binds is shared: a listing's taking effect and every later change
    (review, expiry, repair, withdrawal; an extension, an end undone by an objection upheld after
    it: a transition from a state to itself), never a proposal or a notice still under due process.
    Each names the measures its list triggers, so a change of state is a change of measures. A
    listing whose effect was undone (an objection posted in time, received after it took effect)
    has no `effective_from` any more: its later changes are shared all the same.

    `seq` is the transition's place in `changes`, numbered in commit order (on PostgreSQL at
    COMMIT, under an advisory lock): a transaction that started first and commits last is never
    skipped by a consumer that has already read past a later one. Transitions recorded before
    migration 0015 keep their id as `seq`, so older cursors keep their meaning."""
    T, L, e, C = t.listing_transitions.c, t.listings.c, t.entities.c, t.changes.c
    took_effect = t.listing_transitions.alias("took_effect")  # a listing whose effect was undone since
    triggered: dict[str, list[str]] = {}
    for measure in pack.measures:
        for code in measure.lists:
            triggered.setdefault(code, []).append(measure.code)
    with engine.connect() as c:
        rows = c.execute(select(C.seq, T.listing_id, T.from_state, T.to_state, T.on_date, T.recorded_at,
                                L.list_code, L.effective_from, L.effective_to, L.end_reason, e.key)
                         .select_from(t.changes).join(t.listing_transitions, T.id == C.ref_id)
                         .join(t.listings, L.id == T.listing_id).join(t.entities, e.id == L.entity_id)
                         .where(C.kind == "transition", C.seq > since,
                                or_(T.to_state == "effective",
                                    and_(or_(T.from_state.in_(IN_FORCE), T.from_state == T.to_state),
                                         or_(L.effective_from.is_not(None), exists().where(
                                             took_effect.c.listing_id == T.listing_id,
                                             took_effect.c.to_state == "effective", took_effect.c.id < T.id)))))
                         .order_by(C.seq).limit(limit)).all()
    items = [{"seq": r.seq, "listing": r.listing_id, "entity": r.key, "list": r.list_code, "from": r.from_state,
              "to": r.to_state, "on_date": r.on_date, "recorded_at": r.recorded_at,
              "effective_from": r.effective_from, "effective_to": r.effective_to,
              "end_reason": r.end_reason if r.to_state in FINAL else None,
              "measures": triggered.get(r.list_code, [])} for r in rows]
    return {"since": since, "next": items[-1]["seq"] if items else since, "more": len(items) == limit,
            "changes": items}


def _chunks(items: list[str], size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
