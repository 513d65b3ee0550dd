"""Ownership and control: relations records become the relations of the firms they are linked to.

A relations record (a pack category with `relations`) names a firm, its subject, and one party in
one role. A corrected record (`record correct`: a new version in its batch) makes its batch's set
for the firm apply again, unless a later file's set has replaced it since. Once resolution has
linked the record to its firm, the firm's relations from each batch replace its earlier set from
the set's date (`domain.relations.replace_set`): a relation the new set repeats stays open, the
others end (`valid_to`), new ones open. A firm party is found by its verified USCC, else by its
exact current registered name when one firm alone has it (never a natural person's entity); a
person keeps the ID number the record gave (restricted: masked wherever it is shown). A record
moved off its firm (a judgement, a re-resolution, back to review) takes its relations with it: they
end there as never held (`relations.moved`, audited), and it applies to the firm it is linked to
now (again, if it comes back). Runs inside the resolution run's transaction, at its end, with one
audit event per batch applied.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from xinyong.domain.calendar import Calendar, pack_today
from xinyong.domain.names import normalise_name
from xinyong.domain.pack import CategorySpec, Pack
from xinyong.domain.relations import Party, Relation, relation_of, replace_set
from xinyong.store import tables as t
from xinyong.store.audit import append_event

LINKED = ("linked", "new")
CHUNK = 5000  # firms per look-up


@dataclass(slots=True)
class RelationsResult:
    batches: int = 0
    firms: int = 0
    opened: int = 0
    ended: int = 0
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "firms": self.firms, "opened": self.opened, "ended": self.ended,
                "kept": self.kept}


def relation_categories(pack: Pack) -> dict[str, CategorySpec]:
    return {c.code: c for c in pack.categories if c.relations is not None}


def apply_relations(connection: Connection, pack: Pack, *, actor: str = "cli") -> RelationsResult:
    """Apply every relations record whose newest active version is linked and is no relation's
    source yet, batch by batch in the order they arrived."""
    result = RelationsResult()
    categories = relation_categories(pack)
    if not categories:
        return result
    result.ended += _end_moved(connection, pack, actor)
    r, link, rel = t.records.c, t.record_links.c, t.entity_relations.c
    newer = t.records.alias()
    current = and_(r.category.in_(sorted(categories)), r.status == "active", link.state.in_(LINKED),
                   ~exists().where(newer.c.record_key == r.record_key, newer.c.version > r.version))
    # no open relation from the record on the entity it is linked to: never applied, or applied
    # to an entity it has left (a set a later file replaced is left alone by `_later_set`)
    due = connection.execute(
        select(r.batch_id, link.entity_id).join(t.record_links, link.record_id == r.id)
        .where(current, ~exists().where(rel.record_id == r.id, rel.entity_id == link.entity_id,
                                        rel.valid_to.is_(None)))
        .distinct().order_by(r.batch_id, link.entity_id)).all()
    if not due:
        return result
    batches: dict[int, list[int]] = defaultdict(list)
    for batch_id, firm_id in due:
        batches[batch_id].append(firm_id)
    received = dict(connection.execute(select(t.batches.c.id, t.batches.c.created_at)
                                       .where(t.batches.c.id.in_(sorted(batches)))).all())
    parties = _PartyFinder(connection)
    for batch_id, firms in batches.items():
        # a batch at a time, each of its firms once: what one firm's set writes touches no other
        # firm's relations, so the batch's reads go first, in a few statements, and its writes after
        replaced = sorted(set(firms) - _later_sets(connection, firms, batch_id))
        if not replaced:
            continue  # corrections of sets that a later file replaced: that history stays as it was
        # each firm's whole set in the batch (a correction keeps its record's batch: the set is then
        # the batch's other records with the corrected one)
        records: dict[int, list[Any]] = defaultdict(list)
        for row in connection.execute(
                select(r.id, link.entity_id, r.category, r.decision_date, r.fields)
                .join(t.record_links, link.record_id == r.id)
                .where(current, r.batch_id == batch_id).order_by(r.id)):
            records[row.entity_id].append(row)
        open_rows = _open_relations(connection, replaced)
        received_on = _day(received.get(batch_id), pack)
        changes = _Changes()
        for firm_id in replaced:
            _replace(pack, categories, parties, firm_id, records[firm_id], open_rows[firm_id], received_on, changes)
        opened, ended, kept = changes.write(connection)
        append_event(connection, actor=actor, action="relations.replaced", object_type="batch",
                     object_id=str(batch_id),
                     payload={"firms": len(replaced), "opened": opened, "ended": ended, "kept": kept})
        result.batches += 1
        result.firms += len(replaced)
        result.opened += opened
        result.ended += ended
        result.kept += kept
    return result


def _end_moved(connection: Connection, pack: Pack, actor: str) -> int:
    """Relations whose record no longer links to their firm (a judgement said the record is not about
    it, or a re-resolution moved it or sent it to review): the record never spoke of that firm, so the
    relation never held there and ends the day it began; no measure reaches a person through it, on
    any date. One `relations.moved` event per record and firm, naming where the record is now."""
    rel, r, link = t.entity_relations.c, t.records.c, t.record_links.c
    version = t.records.alias()
    linked_to = (select(func.max(link.entity_id)).join(version, version.c.id == link.record_id)
                 .where(version.c.record_key == r.record_key, link.state.in_(LINKED)))
    still_linked = exists().where(version.c.record_key == r.record_key, link.record_id == version.c.id,
                                  link.entity_id == rel.entity_id, link.state.in_(LINKED))
    moved = connection.execute(
        select(rel.id, rel.record_id, rel.entity_id, rel.valid_from, r.record_key,
               linked_to.scalar_subquery().label("now"))
        .join(t.records, r.id == rel.record_id)
        .where(or_(rel.valid_to.is_(None), rel.valid_to > rel.valid_from), ~still_linked)
        .order_by(rel.record_id, rel.id)).all()
    if not moved:
        return 0
    today = pack_today(pack)
    connection.execute(update(t.entity_relations).where(rel.id == bindparam("_id")).values(valid_to=bindparam("_to")),
                       [{"_id": row.id, "_to": row.valid_from or today} for row in moved])
    by_record: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for row in moved:
        by_record[(row.record_id, row.entity_id)].append(row)
    for (record_id, entity_id), rows in by_record.items():
        append_event(connection, actor=actor, action="relations.moved", object_type="record",
                     object_id=rows[0].record_key, reason="the record is no longer linked to the firm",
                     payload={"record_id": record_id, "from_entity_id": entity_id, "to_entity_id": rows[0].now,
                              "relations": len(rows), "never_held": True})
    return len(moved)


def _later_sets(connection: Connection, firm_ids: Sequence[int], batch_id: int) -> set[int]:
    """The firms whose open relations come from a batch after this one."""
    rel, r = t.entity_relations.c, t.records.c
    later = set()
    for start in range(0, len(firm_ids), CHUNK):
        later.update(connection.execute(
            select(rel.entity_id).join(t.records, rel.record_id == r.id)
            .where(rel.entity_id.in_(firm_ids[start:start + CHUNK]), rel.valid_to.is_(None))
            .group_by(rel.entity_id).having(func.max(r.batch_id) > batch_id)).scalars())
    return later


def _open_relations(connection: Connection, firm_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Each firm's open relations that came from a record."""
    rel = t.entity_relations.c
    found: dict[int, list[Any]] = defaultdict(list)
    for start in range(0, len(firm_ids), CHUNK):
        for row in connection.execute(
                select(rel.entity_id, rel.id, rel.relation, rel.role, rel.person_name, rel.person_id,
                       rel.other_entity_id, rel.other_name, rel.share, rel.valid_from)
                .where(rel.entity_id.in_(firm_ids[start:start + CHUNK]), rel.valid_to.is_(None),
                       rel.record_id.is_not(None)).order_by(rel.id)):
            found[row.entity_id].append(row)
    return found


def _day(received: dt.datetime | None, pack: Pack) -> dt.date:
    """A set without a date of its own holds from the day its file arrived (in the pack's time zone)."""
    if received is None:
        return pack_today(pack)
    if received.tzinfo is None:  # SQLite gives back naive UTC
        received = received.replace(tzinfo=dt.timezone.utc)
    return received.astimezone(Calendar(pack.calendar).zone).date()


class _Changes:
    """What a batch's sets do to the relations, written together (`write`) once every firm's is known."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.ended: list[dict[str, Any]] = []
        self.opened: list[dict[str, Any]] = []

    def write(self, connection: Connection) -> tuple[int, int, int]:
        """Writes them; returns how many relations were opened, ended and kept."""
        rel = t.entity_relations.c
        if self.kept:
            connection.execute(update(t.entity_relations).where(rel.id == bindparam("_id"))
                               .values(record_id=bindparam("_record")), self.kept)
        if self.ended:
            connection.execute(update(t.entity_relations).where(rel.id == bindparam("_id"))
                               .values(valid_to=bindparam("_to")), self.ended)
        if self.opened:
            connection.execute(t.entity_relations.insert(), self.opened)
        return len(self.opened), len(self.ended), len(self.kept)


def _replace(pack: Pack, categories: dict[str, CategorySpec], parties: _PartyFinder, firm_id: int,
             records: Sequence[Any], open_rows: Sequence[Any], received_on: dt.date, changes: _Changes) -> None:
    """The firm's set from `records` replacing its open relations (`open_rows`), added to `changes`."""
    new: list[tuple[Relation, int]] = []
    dates = [row.decision_date for row in records if row.decision_date is not None]
    since = max(dates) if dates else received_on
    for row in records:
        spec = categories[row.category].relations
        assert spec is not None
        fields = row.fields if isinstance(row.fields, dict) else orjson.loads(row.fields)
        stated = relation_of(spec, fields, pack.person_names)
        new.append((replace(stated, party=parties.find(stated.party, firm_id)), row.id))
    source = {relation.identity: record_id for relation, record_id in new}
    began = {row.id: row.valid_from for row in open_rows}
    current = {row.id: Relation(row.relation, row.role or "", Party(
        row.person_name or row.other_name or "", row.person_name is not None, row.person_id, None,
        row.other_entity_id), row.share) for row in open_rows}
    change = replace_set(current, (relation for relation, _ in new))
    changes.kept += [{"_id": i, "_record": source[relation.identity]} for i, relation in change.kept.items()]
    # a set dated before a relation began ends it the day it began: it never held
    changes.ended += [{"_id": i, "_to": max(since, began[i] or since)} for i in change.ended]
    changes.opened += [{
        "entity_id": firm_id, "relation": relation.relation, "role": relation.role,
        "person_name": relation.party.name if relation.party.person else None,
        "person_id": relation.party.person_id, "other_entity_id": relation.party.entity_id,
        "other_name": None if relation.party.person else relation.party.name, "share": relation.share,
        "valid_from": since, "valid_to": None, "record_id": source[relation.identity]}
        for relation in change.opened]


class _PartyFinder:
    """A firm party's entity: by its verified USCC, else by its exact current name held by one entity
    that is not a natural person. Looked up once per code and name in a run (parties recur)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.found: dict[tuple[str | None, str], int | None] = {}

    def find(self, party: Party, firm_id: int) -> Party:
        if party.person:
            return party
        asked = (party.code, party.name)
        if asked not in self.found:
            self.found[asked] = self._entity(party)
        found = self.found[asked]
        if found is None or found == firm_id:  # a firm never holds itself
            return party
        return Party(party.name, False, None, party.code, found)

    def _entity(self, party: Party) -> int | None:
        i, n, e = t.entity_identifiers.c, t.entity_names.c, t.entities.c
        # a firm party is a firm: never a natural person's entity (a court's debtor named like it).
        # Joined, not `IN (firms)`: SQLite would list every entity for each look-up
        firm = e.kind != "natural_person"
        found = None
        if party.code:  # a verified USCC (`classify_party`): the identifiers' (scheme, value) index
            found = self.connection.execute(
                select(i.entity_id).join(t.entities, e.id == i.entity_id)
                .where(i.scheme == "uscc", i.value == party.code, i.verified, firm)).scalar()
        if found is None:
            holders = self.connection.execute(
                select(n.entity_id).join(t.entities, e.id == n.entity_id)
                .where(n.normalised == normalise_name(party.name), n.current, firm)
                .distinct().limit(2)).scalars().all()
            found = holders[0] if len(holders) == 1 else None
        return found
