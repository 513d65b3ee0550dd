"""The register's path as main wrote it before the bulk reads and updates (commit e82ce1c), kept
as the oracle of tests/test_register_paths.py: row objects through SQLAlchemy, updates grouped by
their columns and sent by executemany, the change feed's row triggers left to fire. Only the
module's imports, its two helpers from `store.bulk` (copied below) and its change-feed muting
differ from the original."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from xinyong.domain.identifiers import classify_code
from xinyong.domain.names import normalise_name
from xinyong.store import tables as t
from xinyong.services.intake.register import entity_key_for, key_salt
from xinyong.store.bulk import Ids, insert_rows

if TYPE_CHECKING:
    from xinyong.services.intake.ingest import Accepted

LEGACY_CODE_FIELDS = ("reg_no", "org_code")


class Registration:
    """An accepted register row with its fields decoded."""

    __slots__ = ("subject_name", "subject_kind", "subject_code", "subject_scheme",
                 "subject_code_verified", "decision_date", "fields", "legal_representative", "entity_id")

    def __init__(self, row: "Accepted", fields: dict[str, Any], legal_rep_field: str | None):
        for name in self.__slots__[:-3]:
            setattr(self, name, getattr(row, name))
        self.fields = fields
        # the field the register's category names for the legal representative (pack data)
        self.legal_representative = fields.get(legal_rep_field) if legal_rep_field else None
        self.entity_id: int | None = None


def _identifiers(record: Registration) -> list[tuple[str, str, bool]]:
    found: list[tuple[str, str, bool]] = []
    if record.subject_code and record.subject_scheme:
        found.append((record.subject_scheme, record.subject_code, record.subject_code_verified))
    if record.subject_scheme == "uscc" and record.subject_code_verified:
        # positions 9-17 of a USCC are the entity's organisation code (GB 11714)
        embedded = classify_code(record.subject_code[8:17])
        if embedded and embedded.scheme == "org_code" and embedded.verified:
            found.append(("org_code", embedded.value, True))
    for name in LEGACY_CODE_FIELDS:
        value = record.fields.get(name)
        classified = classify_code(value) if isinstance(value, str) else None
        if classified and classified.scheme in LEGACY_CODE_FIELDS:
            found.append((classified.scheme, classified.value, classified.verified))
    unique: dict[tuple[str, str], bool] = {}
    for scheme, value, verified in found:  # the embedded org code often repeats its own column
        unique[(scheme, value)] = unique.get((scheme, value), False) or verified
    return [(scheme, value, verified) for (scheme, value), verified in unique.items()]


def _kind(record: Registration, kind_of_type: dict[str, str]) -> str:
    entity_type = record.fields.get("entity_type") or ""
    return record.subject_kind or kind_of_type.get(entity_type, "enterprise")


def apply_registrations(connection: Connection, rows: list[Accepted],
                        kind_of_type: dict[str, str], today: dt.date, legal_rep_field: str | None,
                        primary: str | None) -> None:
    """`today` (the pack's date) closes a name or relation whose change carries no date."""
    now = dt.datetime.now(dt.timezone.utc)
    records = [Registration(row, orjson.loads(row.fields), legal_rep_field) for row in rows]
    wanted = {(s, v) for r in records for s, v, _ in _identifiers(r)}
    owner: dict[tuple[str, str], int] = {}
    i = t.entity_identifiers.c
    for scheme in sorted({s for s, _ in wanted}):
        # scheme and value together: the unique index (scheme, value) finds them; value alone scans the table
        values = sorted(v for s, v in wanted if s == scheme)
        for start in range(0, len(values), 900):
            owner.update({(scheme, v): e for v, e in connection.execute(
                select(i.value, i.entity_id).where(i.scheme == scheme, i.value.in_(values[start:start + 900])))})
    fresh: list[tuple[Registration, list[tuple[str, str, bool]]]] = []
    known: list[Registration] = []
    claimed: set[tuple[str, str]] = set()
    for record in records:
        ids = _identifiers(record)
        if any((s, v) in owner or (s, v) in claimed for s, v, _ in ids):
            known.append(record)
        else:
            claimed.update((s, v) for s, v, _ in ids)
            fresh.append((record, ids))
    # the row triggers write the change feed, one row per written row (the test compares the set)
    _insert_new_entities(connection, fresh, kind_of_type, now, primary)
    for record, ids in fresh:
        owner.update({(s, v): record.entity_id for s, v, _ in ids})
    _update_entities(connection, known, owner, kind_of_type, now, today, primary)


def _attributes(record: Registration, kind_of_type: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    return {"kind": _kind(record, kind_of_type), "status": record.fields.get("status"),
            "region": record.fields.get("region"), "address": record.fields.get("address"),
            "established": _date(record.fields.get("established")), "updated_at": now}


def _insert_new_entities(connection: Connection, fresh: list[tuple[Registration, list[tuple[str, str, bool]]]],
                         kind_of_type: dict[str, str], now: dt.datetime, primary: str | None) -> None:
    """The common case, a register row for an entity not yet known: a few bulk statements per chunk."""
    if not fresh:
        return
    ids = Ids(connection, t.entities).take_many(len(fresh))
    _insert(connection, t.entities, [
        {"id": entity_id, "key": entity_key_for(r.subject_scheme, r.subject_code, r.subject_code_verified,
                                                r.subject_name, primary, key_salt(connection)),
         "verified": r.subject_code_verified and r.subject_scheme == "uscc", "origin": "register",
         "created_at": now, **_attributes(r, kind_of_type, now)} for (r, _), entity_id in zip(fresh, ids)])
    identifiers, names, relations = [], [], []
    since = None
    for (record, codes), entity_id in zip(fresh, ids):
        record.entity_id = entity_id
        since = _date(record.decision_date)
        identifiers += [{"entity_id": entity_id, "scheme": s, "value": v, "verified": ok} for s, v, ok in codes]
        if record.subject_name:
            names.append({"entity_id": entity_id, "name": record.subject_name,
                          "normalised": normalise_name(record.subject_name), "current": True,
                          "valid_from": since, "valid_to": None, "language": None})
        english = record.fields.get("name_en")
        if english and english != record.subject_name:
            names.append({"entity_id": entity_id, "name": english, "normalised": normalise_name(english),
                          "current": False, "valid_from": since, "valid_to": None, "language": "en"})
        for former in dict.fromkeys(record.fields.get("former_names") or []):
            if former != record.subject_name:
                names.append({"entity_id": entity_id, "name": former, "normalised": normalise_name(former),
                              "current": False, "valid_from": None, "valid_to": None, "language": None})
        if record.legal_representative:
            relations.append({"entity_id": entity_id, "relation": "legal_representative",
                              "person_name": record.legal_representative,
                              "person_id": record.fields.get("legal_rep_id"), "valid_from": since})
    for table, rows in ((t.entity_identifiers, identifiers), (t.entity_names, names),
                        (t.entity_relations, relations)):
        _insert(connection, table, rows)


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """The rows (dicts) through the engine's bulk path (`store.bulk`: executemany on SQLite, COPY on
    PostgreSQL), in order; rows with the same keys go together (every list here has one set)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        insert_rows(connection, table, columns, Renderer(connection, table, columns)(
            [tuple(row[c] for c in columns) for row in group]))


def _update(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """`UPDATE table SET ... WHERE id = row["_id"]` for each row (dicts of `_column` keys), in bulk."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(k for k in row if k != "_id"), []).append(row)
    for keys, group in groups.items():
        columns = [k[1:] for k in keys]
        update_rows(connection, table, columns, "id", Renderer(connection, table, [*columns, "id"])(
            [(*(row[k] for k in keys), row["_id"]) for row in group]))


def _update_entities(connection: Connection, records: list[Registration], owner: dict[tuple[str, str], int],
                     kind_of_type: dict[str, str], now: dt.datetime, today: dt.date,
                     primary: str | None) -> list[int]:
    """Register rows for known entities: new attributes, identifiers, names and legal representative.
    Returns the entities written, in row order.

    In waves: each wave holds each entity once, reads the names and open legal representatives of
    all its entities in one query each, decides every change in memory, and writes each kind of
    change with one executemany. A row whose entity already is in the wave starts the next wave,
    so a later row sees what an earlier one wrote, as row by row.
    """
    wave = _Wave()
    written = []
    for record in records:
        ids = _identifiers(record)
        # a valid USCC alone decides; legacy codes find an entity only for a row without one
        lookup = ids[:1] if record.subject_scheme == "uscc" and record.subject_code_verified else ids
        entity_id = next((owner[(s, v)] for s, v, _ in lookup if (s, v) in owner), None)
        attributes = _attributes(record, kind_of_type, now)
        if entity_id is not None and entity_id in wave.entities:
            wave.flush(connection, today)
            wave = _Wave()
        if entity_id is None:
            entity_id = connection.execute(t.entities.insert().values(
                key=entity_key_for(record.subject_scheme, record.subject_code,
                                   record.subject_code_verified, record.subject_name, primary,
                                   key_salt(connection)),
                verified=record.subject_code_verified and record.subject_scheme == "uscc",
                created_at=now, **attributes).returning(t.entities.c.id)).scalar_one()
        else:
            wave.attributes.append((entity_id, {k: v for k, v in attributes.items() if v is not None}))
        # an identifier another entity already holds stays with it: never two owners
        new_ids = [(s, v, ok) for s, v, ok in ids if (s, v) not in owner]
        wave.identifiers += [{"entity_id": entity_id, "scheme": s, "value": v, "verified": ok} for s, v, ok in new_ids]
        owner.update({(s, v): entity_id for s, v, _ in new_ids})
        wave.entities[entity_id] = record
        written.append(entity_id)
    wave.flush(connection, today)
    return written


class _Wave:
    """Changes to entities that each appear once, decided together and written in bulk."""

    def __init__(self) -> None:
        self.entities: dict[int, Registration] = {}  # in row order
        self.attributes: list[tuple[int, dict[str, Any]]] = []
        self.identifiers: list[dict[str, Any]] = []

    def flush(self, connection: Connection, today: dt.date) -> None:
        if not self.entities:
            return
        _update(connection, t.entities, [{"_id": entity_id, **{f"_{k}": v for k, v in values.items()}}
                                         for entity_id, values in self.attributes])
        _insert(connection, t.entity_identifiers, self.identifiers)
        ids = list(self.entities)
        n, rel = t.entity_names.c, t.entity_relations.c
        names: dict[int, dict[str, Any]] = {e: {} for e in ids}
        relations: dict[int, Any] = {}
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            for row in connection.execute(select(n.id, n.entity_id, n.name, n.current, n.valid_from)
                                          .where(n.entity_id.in_(part)).order_by(n.id)):
                names[row.entity_id][row.name] = row
            for row in connection.execute(select(rel.id, rel.entity_id, rel.person_name, rel.person_id, rel.valid_from)
                                          .where(rel.entity_id.in_(part), rel.relation == "legal_representative",
                                                 rel.valid_to.is_(None)).order_by(rel.id)):
                relations.setdefault(row.entity_id, row)
        close_names, reopen_names, new_names, close_relations, new_relations = [], [], [], [], []
        for entity_id, record in self.entities.items():
            _name_changes(entity_id, record, names[entity_id], today, close_names, reopen_names, new_names)
            _relation_changes(entity_id, record, relations.get(entity_id), today, close_relations, new_relations)
        _update(connection, t.entity_names, [{"_id": row["_id"], "_current": False, "_valid_to": row["_valid_to"]}
                                             for row in close_names])
        _update(connection, t.entity_names, [{"_id": row["_id"], "_current": True, "_valid_to": None}
                                             for row in reopen_names])
        _insert(connection, t.entity_names, new_names)
        _update(connection, t.entity_relations, close_relations)
        _insert(connection, t.entity_relations, new_relations)


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


_NAME_DEFAULTS = {"current": False, "valid_from": None, "valid_to": None, "language": None}


def _name_changes(entity_id: int, record: Registration, known: dict[str, Any], today: dt.date,
                  close: list[dict[str, Any]], reopen: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """What a register row changes in its entity's names, given the names it has (`known`, by name)."""
    current = record.subject_name
    since = _date(record.decision_date)
    english = record.fields.get("name_en")
    if english and english not in known and english != current:
        # English names accumulate: a query may use any the register ever gave
        new.append({**_NAME_DEFAULTS, "entity_id": entity_id, "name": english, "normalised": normalise_name(english),
                    "valid_from": since, "language": "en"})
    if current and not (current in known and known[current].current):
        replaced = [row for row in known.values() if row.current]
        dated = since is not None and all(row.valid_from is not None and since > row.valid_from for row in replaced)
        since = since if dated or not replaced else today  # a rename the row does not date is today's
        for row in replaced:
            close.append({"_id": row.id, "_valid_to": since})
        if current in known:
            reopen.append({"_id": known[current].id})
        else:
            new.append({**_NAME_DEFAULTS, "entity_id": entity_id, "name": current,
                        "normalised": normalise_name(current), "current": True, "valid_from": since})
    former = [f for f in record.fields.get("former_names") or [] if f not in known and f != current]
    new += [{**_NAME_DEFAULTS, "entity_id": entity_id, "name": f, "normalised": normalise_name(f)}
            for f in dict.fromkeys(former)]


def _relation_changes(entity_id: int, record: Registration, existing: Any, today: dt.date,
                      close: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """A legal representative other than the open one closes it and opens a new relation."""
    person = record.legal_representative
    if not person:
        return
    person_id = record.fields.get("legal_rep_id")
    if existing and existing.person_name == person and existing.person_id == person_id:
        return
    since = _date(record.decision_date)
    if existing:  # the row's date dates a change only when after the open relation began
        began = existing.valid_from
        if existing.person_name == person and existing.person_id is None:
            since = began or since
        elif not (since is not None and began is not None and since > began):
            since = today
        close.append({"_id": existing.id, "_valid_to": since})
    new.append({"entity_id": entity_id, "relation": "legal_representative", "person_name": person,
                "person_id": person_id, "valid_from": since, "valid_to": None})


# -- main's store.bulk helpers ------------------------------------------------------------------

def update_rows(connection: Connection, table: Table, columns: Sequence[str], key: str,
                rows: Iterable[Sequence[Any]]) -> None:
    """`UPDATE table SET columns... WHERE key = ?` for each row (the new values, then the key), in one
    prepared executemany: psycopg pipelines it on PostgreSQL. Values ready for the wire, as `insert_rows`."""
    dbapi = connection.connection.driver_connection
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    assignments = ", ".join(f"{column} = {mark}" for column in columns)
    cursor = dbapi.cursor()
    try:
        cursor.executemany(f"UPDATE {table.name} SET {assignments} WHERE {key} = {mark}", rows)
    finally:
        cursor.close()


class Renderer:
    """Rows of Python values (dates, times, booleans) made ready for `insert_rows` / `update_rows`:
    each column's value as SQLAlchemy would bind it on SQLite (ISO text, 0/1); on PostgreSQL the
    driver takes them as they are."""

    def __init__(self, connection: Connection, table: Table, columns: Sequence[str]):
        dialect = connection.dialect
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
        self.processors = None if dialect.name == "postgresql" else processors
        self.active = [i for i, p in enumerate(processors) if p is not None]

    def __call__(self, rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
        if self.processors is None or not self.active:
            return rows
        processors, active = self.processors, self.active

        def rendered(row: Sequence[Any]) -> list[Any]:
            out = list(row)
            for i in active:
                out[i] = processors[i](out[i])
            return out

        return map(rendered, rows)
