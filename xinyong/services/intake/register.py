"""The market-entity register: registration records create and update entities.

Runs inside the ingesting batch's transaction, chunk by chunk. An entity is found by any
of its identifiers (USCC, legacy registration number, organisation code); a new name
makes the old one a former name, never deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from sqlalchemy.engine import Connection

from xinyong.domain.identifiers import classify_code, is_valid_org_code
from xinyong.domain.names import normalise_names
from xinyong.domain.privacy import may_be_person_id
from xinyong.store import tables as t
from xinyong.store.bulk import Ids, insert_rows, render_value, select_in, update_rows
from xinyong.store.changes import EntityChanges
from xinyong.store.db import get_setting, set_setting

if TYPE_CHECKING:
    from xinyong.services.intake.ingest import Accepted

LEGACY_CODE_FIELDS = ("reg_no", "org_code")


class Registration:
    """An accepted register row with its fields decoded and its identifiers found."""

    __slots__ = ("subject_name", "subject_kind", "subject_code", "subject_scheme",
                 "subject_code_verified", "decision_date", "fields", "legal_representative", "identifiers",
                 "entity_id")

    def __init__(self, row: "Accepted", fields: dict[str, Any], legal_rep_field: str | None):
        self.subject_name, self.subject_kind, self.subject_code = row.subject_name, row.subject_kind, row.subject_code
        self.subject_scheme, self.subject_code_verified = row.subject_scheme, row.subject_code_verified
        self.decision_date = row.decision_date
        self.fields = fields
        # the field the register's category names for the legal representative (pack data)
        self.legal_representative = fields.get(legal_rep_field) if legal_rep_field else None
        self.identifiers = _identifiers(self)
        self.entity_id: int | None = None


def entity_key_for(scheme: str | None, code: str | None, verified: bool, name: str | None,
                   primary: str | None, salt: str) -> str:
    """A verified code of the pack's primary scheme (cn: the USCC) is the entity's key; anything else
    gets an opaque generated key. A code the pages show masked (`may_be_person_id`: an individual
    business registered by its owner's ID number) is hashed with the store's `salt` (`key_salt`):
    unsalted, its key would give the number back to anyone hashing the 40,000 birth dates between
    the region and last four digits shown."""
    if scheme == primary and verified and code:
        return code
    if code and may_be_person_id(code):
        return opaque_key("X", f"{salt}:{scheme}:{code}")
    return opaque_key("X", f"{scheme}:{code}" if code else f"name:{name}")


def key_salt(connection: Connection) -> str:
    """The store's secret for opaque keys, made on first use."""
    salt = get_setting(connection, "key_salt")
    if salt is None:
        salt = secrets.token_hex(16)
        set_setting(connection, "key_salt", salt)
    return salt


def opaque_key(prefix: str, seed: str) -> str:
    """A stable key that reveals nothing of what it was made from (no ID number in URLs)."""
    return prefix + hashlib.blake2b(seed.encode(), digest_size=8).hexdigest().upper()


def _identifiers(record: Registration) -> list[tuple[str, str, bool]]:
    scheme, code, verified = record.subject_scheme, record.subject_code, record.subject_code_verified
    found = [(scheme, code, verified)] if code and scheme else []
    # positions 9-17 of a USCC are the entity's organisation code (GB 11714)
    if scheme == "uscc" and verified and is_valid_org_code(code[8:17]):
        found.append(("org_code", code[8:17], True))
    legacy = [classified for value in map(record.fields.get, LEGACY_CODE_FIELDS) if isinstance(value, str)
              and (classified := classify_code(value)) and classified.scheme in LEGACY_CODE_FIELDS]
    if not legacy:
        return found
    unique: dict[tuple[str, str], bool] = {}
    # the embedded org code often repeats its own column
    for scheme, value, verified in [*found, *((c.scheme, c.value, c.verified) for c in legacy)]:
        unique[(scheme, value)] = unique.get((scheme, value), False) or verified
    return [(scheme, value, verified) for (scheme, value), verified in unique.items()]


def _kind(record: Registration, kind_of_type: dict[str, str]) -> str:
    entity_type = record.fields.get("entity_type") or ""
    return record.subject_kind or kind_of_type.get(entity_type, "enterprise")


def apply_registrations(connection: Connection, rows: list[Accepted], kind_of_type: dict[str, str],
                        today: dt.date, legal_rep_field: str | None, primary: str | None) -> None:
    """`today` (the pack's date) closes a name or relation whose change carries no date; `primary` is
    the pack's primary identifier scheme."""
    now = render_value(connection, t.entities.c.created_at, dt.datetime.now(dt.timezone.utc))
    records = [Registration(row, orjson.loads(row.fields), legal_rep_field) for row in rows]
    owner = _owners(connection, {(s, v) for record in records for s, v, _ in record.identifiers})
    fresh: list[Registration] = []
    known: list[Registration] = []
    claimed: set[tuple[str, str]] = set()
    for record in records:
        if any((s, v) in owner or (s, v) in claimed for s, v, _ in record.identifiers):
            known.append(record)
        else:
            claimed.update((s, v) for s, v, _ in record.identifiers)
            fresh.append(record)
    ids = Ids(connection, t.entities)
    with EntityChanges(connection) as changes:  # one `changes` row per entity of the chunk
        keys = EntityKeys(primary, key_salt(connection))
        _insert_new_entities(connection, fresh, ids, kind_of_type, now, keys)
        for record in fresh:
            owner.update({(s, v): record.entity_id for s, v, _ in record.identifiers})
        changes.touched(record.entity_id for record in fresh)
        changes.touched(_update_entities(connection, known, owner, ids, kind_of_type, now, today.isoformat(), keys))


def _owners(connection: Connection, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The entity holding each identifier (scheme, value) of `wanted` that one holds."""
    owner: dict[tuple[str, str], int] = {}
    for scheme in sorted({s for s, _ in wanted}):
        # scheme and value together: the unique index (scheme, value) finds them; value alone scans the table
        values = sorted(v for s, v in wanted if s == scheme)
        owner.update({(scheme, v): e for v, e in select_in(
            connection, t.entity_identifiers, ("value", "entity_id"), "value", values, {"scheme": scheme})})
    return owner


# The columns each table is written with, in this order
ENTITY_COLUMNS = ("id", "key", "kind", "status", "region", "address", "established", "updated_at", "verified",
                  "origin", "created_at")
ATTRIBUTE_COLUMNS = ENTITY_COLUMNS[2:8]  # what a later register row updates: an empty value keeps the stored one
IDENTIFIER_COLUMNS = ("entity_id", "scheme", "value", "verified")
NAME_COLUMNS = ("entity_id", "name", "normalised", "current", "valid_from", "valid_to", "language")
RELATION_COLUMNS = ("entity_id", "relation", "person_name", "person_id", "valid_from", "valid_to")


def _attributes(record: Registration, kind_of_type: dict[str, str], now: Any) -> tuple:
    fields = record.fields
    return (_kind(record, kind_of_type), fields.get("status"), fields.get("region"), fields.get("address"),
            _date(fields.get("established")), now)


class EntityKeys(NamedTuple):
    """How a batch keys the entities it makes: by a valid code of the pack's `primary` scheme (cn: the
    USCC), else an opaque key (`entity_key_for`, with the store's `salt`)."""

    primary: str | None
    salt: str

    def keyed_by_code(self, record: Registration) -> bool:
        return bool(record.subject_code_verified and record.subject_scheme == self.primary)


def _entity_row(entity_id: int, record: Registration, kind_of_type: dict[str, str], now: Any, keys: EntityKeys) -> tuple:
    return (entity_id, entity_key_for(record.subject_scheme, record.subject_code, record.subject_code_verified,
                                      record.subject_name, keys.primary, keys.salt),
            *_attributes(record, kind_of_type, now), keys.keyed_by_code(record), "register", now)


def _insert_new_entities(connection: Connection, fresh: list[Registration], ids: Ids,
                         kind_of_type: dict[str, str], now: Any, keys: EntityKeys) -> None:
    """The common case, a register row for an entity not yet known: a few bulk statements per chunk."""
    if not fresh:
        return
    entities, identifiers, names, relations = [], [], [], []
    for record, entity_id in zip(fresh, ids.take_many(len(fresh))):
        record.entity_id = entity_id
        entities.append(_entity_row(entity_id, record, kind_of_type, now, keys))
        since = _date(record.decision_date)
        identifiers += [(entity_id, s, v, ok) for s, v, ok in record.identifiers]
        name = record.subject_name
        if name:
            names.append((entity_id, name, True, since, None, None))
        english = record.fields.get("name_en")
        if english and english != name:
            names.append((entity_id, english, False, since, None, "en"))
        for former in dict.fromkeys(record.fields.get("former_names") or []):
            if former != name:  # a register row does not say when a former name ended
                names.append((entity_id, former, False, None, None, None))
        if record.legal_representative:
            relations.append((entity_id, "legal_representative", record.legal_representative,
                              record.fields.get("legal_rep_id"), since, None))
    for table, columns, rows in ((t.entities, ENTITY_COLUMNS, entities),
                                 (t.entity_identifiers, IDENTIFIER_COLUMNS, identifiers),
                                 (t.entity_names, NAME_COLUMNS, _normalised(names)),
                                 (t.entity_relations, RELATION_COLUMNS, relations)):
        if rows:
            insert_rows(connection, table, columns, rows)


def _update_entities(connection: Connection, records: list[Registration], owner: dict[tuple[str, str], int],
                     ids: Ids, kind_of_type: dict[str, str], now: Any, today: str, keys: EntityKeys) -> list[int]:
    """Register rows for known entities: new attributes, identifiers, names and legal representative.
    Returns the entities written, in row order.

    In waves: each wave holds each entity once, reads the names and open legal representatives of
    all its entities in one query each, decides every change in memory, and writes each kind of
    change with one statement. A row whose entity already is in the wave starts the next wave,
    so a later row sees what an earlier one wrote, as row by row.
    """
    wave = _Wave()
    written = []
    for record in records:
        codes = record.identifiers
        # a valid primary code (USCC) alone decides; legacy codes find an entity only for a row without one
        lookup = codes[:1] if keys.keyed_by_code(record) else codes
        entity_id = next((owner[(s, v)] for s, v, _ in lookup if (s, v) in owner), None)
        if entity_id is not None and entity_id in wave.entities:
            wave.flush(connection, today)
            wave = _Wave()
        if entity_id is None:  # its USCC is new, though another entity holds one of its legacy codes
            entity_id = ids.take()
            wave.new_entities.append(_entity_row(entity_id, record, kind_of_type, now, keys))
        else:
            wave.attributes.append((*_attributes(record, kind_of_type, now), entity_id))
        # an identifier another entity already holds stays with it: never two owners
        new_ids = [(s, v, ok) for s, v, ok in codes if (s, v) not in owner]
        wave.identifiers += [(entity_id, s, v, ok) for s, v, ok in new_ids]
        owner.update({(s, v): entity_id for s, v, _ in new_ids})
        wave.entities[entity_id] = record
        written.append(entity_id)
    wave.flush(connection, today)
    return written


class _Wave:
    """Changes to entities that each appear once, decided together and written in bulk."""

    def __init__(self) -> None:
        self.entities: dict[int, Registration] = {}  # in row order
        self.new_entities: list[tuple] = []
        self.attributes: list[tuple] = []
        self.identifiers: list[tuple] = []

    def flush(self, connection: Connection, today: str) -> None:
        if not self.entities:
            return
        if self.new_entities:
            insert_rows(connection, t.entities, ENTITY_COLUMNS, self.new_entities)
        if self.attributes:
            update_rows(connection, t.entities, ATTRIBUTE_COLUMNS, "id", self.attributes, keep_null=ATTRIBUTE_COLUMNS)
        if self.identifiers:
            insert_rows(connection, t.entity_identifiers, IDENTIFIER_COLUMNS, self.identifiers)
        ids = list(self.entities)
        names: dict[int, dict[str, tuple]] = {e: {} for e in ids}
        for row in select_in(connection, t.entity_names, ("id", "entity_id", "name", "current", "valid_from"),
                             "entity_id", ids, order_by="id"):
            names[row[1]][row[2]] = row
        relations: dict[int, tuple] = {}
        for row in select_in(connection, t.entity_relations,
                             ("id", "entity_id", "person_name", "person_id", "valid_from"), "entity_id", ids,
                             {"relation": "legal_representative", "valid_to": None}, order_by="id"):
            relations.setdefault(row[1], row)
        renamed: list[tuple] = []
        new_names: list[tuple] = []
        closed: list[tuple] = []
        new_relations: list[tuple] = []
        for entity_id, record in self.entities.items():
            _name_changes(entity_id, record, names[entity_id], today, renamed, new_names)
            _relation_changes(entity_id, record, relations.get(entity_id), today, closed, new_relations)
        if renamed:
            update_rows(connection, t.entity_names, ("current", "valid_to"), "id", renamed)
        if new_names:
            insert_rows(connection, t.entity_names, NAME_COLUMNS, _normalised(new_names))
        if closed:
            update_rows(connection, t.entity_relations, ("valid_to",), "id", closed)
        if new_relations:
            insert_rows(connection, t.entity_relations, RELATION_COLUMNS, new_relations)


def _normalised(names: list[tuple]) -> list[tuple]:
    """Name rows (entity, name, then the rest of NAME_COLUMNS but the normalised form) with that
    form put in, the chunk's names folded at once."""
    return [(entity_id, name, normalised, *rest)
            for (entity_id, name, *rest), normalised in zip(names, normalise_names([row[1] for row in names]))]


def _date(value: Any) -> str | None:
    """A date of the file as the store writes it: ISO text (SQLite's form; PostgreSQL casts it)."""
    return _iso_date(value) if isinstance(value, str) else None


@lru_cache(maxsize=16384)
def _iso_date(value: str) -> str:
    """Parsed once per distinct text: a register's rows share a few thousand dates."""
    return dt.date.fromisoformat(value).isoformat()


def _name_changes(entity_id: int, record: Registration, known: dict[str, tuple], today: str,
                  renamed: list[tuple], new: list[tuple]) -> None:
    """What a register row changes in its entity's names, given the names it has (`known`, by name:
    id, entity, name, current, since): `renamed` gets (current, valid_to, id) updates, `new` rows to insert
    (NAME_COLUMNS less `normalised`, which `_normalised` puts in)."""
    current = record.subject_name
    since = _date(record.decision_date)
    english = record.fields.get("name_en")
    if english and english not in known and english != current:
        # English names accumulate: a query may use any the register ever gave
        new.append((entity_id, english, False, since, None, "en"))
    if current and not (current in known and known[current][3]):
        # a rename the row does not date (its date is the firm's establishment) is today's, as a new
        # legal representative (`_relation_changes`)
        replaced = [row for row in known.values() if row[3]]
        dated = bool(since) and all(row[4] is not None and since > str(row[4])[:10] for row in replaced)
        on = since if dated or not replaced else today
        renamed += [(False, on, row[0]) for row in replaced]
        if current in known:
            renamed.append((True, None, known[current][0]))
        else:
            new.append((entity_id, current, True, on, None, None))
    former = [f for f in record.fields.get("former_names") or [] if f not in known and f != current]
    new += [(entity_id, f, False, None, None, None) for f in dict.fromkeys(former)]  # its end is not given


def _relation_changes(entity_id: int, record: Registration, existing: tuple | None, today: str,
                      close: list[tuple], new: list[tuple]) -> None:
    """A legal representative other than the open one (`existing`: id, entity, person, person's ID,
    since) closes it and opens a new relation, from the row's date when it is after the open one
    began, else from today: a register row is dated by its firm's establishment, which dates its
    first representative, never a change (the one it replaces began that day at the latest)."""
    person = record.legal_representative
    if not person:
        return
    person_id = record.fields.get("legal_rep_id")
    if existing and existing[2] == person and existing[3] == person_id:
        return
    since = _date(record.decision_date)
    if existing:
        began = str(existing[4])[:10] if existing[4] is not None else None  # a date, or ISO text on SQLite
        if existing[2] == person and existing[3] is None:
            since = began or since  # the same person, now with an ID number: the relation held since it began
        elif not (since and began and since > began):
            since = today
        close.append((since, existing[0]))
    new.append((entity_id, "legal_representative", person, person_id, since, None))
