"""Bulk open data: what the public pages show, as facts, their change log, and dumps.

A *fact* is one row a public surface shows: an entity's identity (a firm always; a natural
person only while a listing of theirs is in force), a listing in force or in its list's public
history, a public record within its publicity period. `iter_facts` streams them all from a few
set-based queries through the same functions as the entity page (`entities.record_view`,
`due_process.list_listings`, `domain.decisions.in_force`, `domain.privacy.mask_public` as
`Masker`, which masks each distinct string once), so a dump and the pages cannot disagree.

`capture` is the change sequence: it diffs the facts with the hashes it stored last time
(`public_facts` table) and appends an event per add, change and delete to `public_events`,
whose `seq` is the sequence of `publish --since`, `GET /v1/public/changes` and the webhooks.
It recomputes only when the store moved (`store_position`) or the pack's day changed (a
publicity period or a listing's term ends with no write at all), and keeps and writes only the
facts that are new or changed. The first capture of a store is its baseline: facts, no events.

`publish` writes, in one pass over the facts (the same pass as its capture), `full/` (every fact
now) and then, since an earlier manifest's seq or `--since`, `delta/SEQFROM-SEQTO/` (add, change,
delete rows), each table in JSON Lines, CSV and Parquet, with `manifest.json` and
`datapackage.json`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import operator
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, Text, func, select, text, type_coerce

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import FORMULA_STARTS
from xinyong.domain.decisions import in_force
from xinyong.domain.listings import UNDONE
from xinyong.domain.pack import Pack
from xinyong.domain.privacy import Masker, mask_identifier
from xinyong.domain.records import superseded_writings
from xinyong.services.readahead import ReadAhead
from xinyong.store import tables as t
from xinyong.store.bulk import collector_paused
from xinyong.store.db import get_setting, set_setting
from xinyong.store.plans import not_by_index

# -- the tables of a dump ---------------------------------------------------------------------------

# column -> (Frictionless type, description); nested values are JSON (text in CSV and Parquet)
TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "entities": {
        "entity": ("string", "Entity key: the USCC when verified, else an opaque key (always opaque for a person)"),
        "kind": ("string", "enterprise, individual_business, social_organisation, public_institution, natural_person"),
        "name": ("string", "Current registered name"),
        "verified": ("boolean", "Whether the entity's code was verified"),
        "status": ("string", "Registration status"),
        "region": ("string", "Division code (GB/T 2260)"),
        "established": ("date", "Date of establishment"),
        "address": ("string", "Registered address (never a person's)"),
        "legal_representative": ("string", "Current legal representative"),
        "names": ("array", "Every name: name, current, valid_from, valid_to, language"),
        "identifiers": ("array", "Identifiers: scheme, value (a person's masked), verified"),
    },
    "listings": {
        "entity": ("string", "Entity key"),
        "listing": ("integer", "Listing number"),
        "list": ("string", "List code (the pack's)"),
        "in_force": ("boolean", "In force today (shown on the public list)"),
        "history": ("boolean", "Shown in the entity's public listing history"),
        "state": ("string", "State, while in force"),
        "effective_from": ("date", "Took effect"),
        "effective_to": ("date", "Term ends (exclusive)"),
        "ended_on": ("date", "Ended on"),
        "end_reason": ("string", "Why it ended"),
        "rule_version": ("string", "Version of the rule that listed it, while in force"),
        "legal_basis": ("string", "The list's legal basis"),
        "evidence": ("array", "Public records it rests on, while in force"),
    },
    "records": {
        "entity": ("string", "Entity key"),
        "record_key": ("string", "AUTHORITY:NUMBER (a person's ID number masked)"),
        "version": ("integer", "Record version"),
        "category": ("string", "Category code (the pack's)"),
        "authority": ("string", "Authority code"),
        "status": ("string", "active"),
        "decision_date": ("date", "Decision date"),
        "publicity_ends": ("date", "Publicity period ends"),
        "publicity_tier": ("string", "Publicity tier"),
        "fields": ("object", "Public fields as the authority sent them (persons' ID numbers masked)"),
    },
}
ID_COLUMN = {"entities": "entity", "listings": "listing", "records": "record_key"}
KIND_TABLE = {"entity": "entities", "listing": "listings", "record": "records"}
FORMATS = ("jsonl", "csv", "parquet")
CSV_NOTE = ("CSV cells beginning with =, +, -, @ (or a character NFKC folds into one: fullwidth \uff1d \uff0b \uff0d "
            "\uff20, small, superscript or subscript forms), a tab or a carriage return are prefixed with a single "
            "quote (formula neutralisation, OWASP); JSON Lines and Parquet carry the raw values. Nested values are "
            "JSON.")
DEFAULT_LICENCE = "CC-BY-4.0"


class Fact(NamedTuple):  # a tuple: a dump makes millions, and a frozen dataclass's __init__ costs six times as much
    kind: str  # entity | listing | record
    fact_id: str
    entity: str
    data: dict[str, Any]

    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def record_fact_id(masked_key: str, entity: str) -> str:
    return "record:" + hashlib.sha256(f"{entity}\x1f{masked_key}".encode()).hexdigest()[:32]


def _groups(rows: Iterable[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(entity_id, its rows) from rows sorted by entity_id, their first column."""
    current, group = None, []
    for row in rows:
        if row[0] != current:
            if group:
                yield current, group
            current, group = row[0], []
        group.append(row)
    if group:
        yield current, group


def _rows(c: Connection, query: Any, size: int = 20_000) -> Iterator[Any]:
    """A big query's rows, streamed, as tuples (see `_batches`)."""
    for batch in _batches(c, query, size):
        yield from batch


def _batches(c: Connection, query: Any, size: int = 20_000) -> Iterator[list[Any]]:
    """A big query's rows, streamed, `size` at a time. On SQLite through the driver's own cursor: no
    SQLAlchemy row or type processing (a quarter on top of the fetch itself, measured), so dates come
    as ISO text and booleans as 0 or 1 (`_Dates`, `bool`); elsewhere SQLAlchemy's rows, streamed
    by a server-side cursor, with their types."""
    if c.dialect.name != "sqlite":
        yield from c.execute(query, execution_options={"yield_per": size}).partitions()
        return
    compiled = query.compile(dialect=c.dialect, compile_kwargs={"render_postcompile": True})
    cursor = c.connection.driver_connection.cursor()
    try:
        cursor.execute(str(compiled), tuple(compiled.params[k] for k in compiled.positiontup or ()))
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


class _Dates(dict):
    """ISO date text (SQLite's) to dates, each distinct value parsed once; a date stays a date."""

    def __missing__(self, value: Any) -> Any:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(value, str):
            self[value] = day
        return day


class _RecordRow(NamedTuple):
    """What `record_view` reads of a record version."""
    record_key: str
    version: int
    category: str
    authority: str
    status: str
    decision_date: dt.date | None
    fields: Any


def iter_facts(engine: Engine, pack: Pack, today: dt.date, masker: Masker | None = None) -> Iterator[Fact]:
    """Every fact the public surfaces show on `today`, streamed from a few set-based queries (no
    query per entity): listings, then entities (their names, identifiers and legal representative
    merged in from streams sorted like them), then records. Each distinct string is masked once;
    the masking is `mask_public`'s, written out per column of each table (its generic walk over
    every value of every row was about a tenth of a dump's time). The records' query, the biggest,
    is read ahead from the start by a thread on its own connection (`ReadAhead`): the database's
    own work (SQLite's scan and sort of the records, each step of the fetch) runs without the GIL,
    on the other core while this one computes the facts."""
    from xinyong.services.resolution.entities import public_categories

    public = public_categories(pack)
    with ReadAhead(lambda: _fetched(engine, _records_query(public)), ahead=3, name="opendata-prefetch") as batches:
        records = (row for batch in batches for row in batch)
        yield from _facts(engine, pack, today, masker or Masker(person_numbers=pack.person_numbers), public, records)


def _fetched(engine: Engine, query: Any, size: int = 20_000) -> Iterator[list[Any]]:
    """`query`'s rows in batches, on a connection of its own."""
    with engine.connect() as c:
        yield from _batches(c, query, size)


def _records_query(public: set[str] | frozenset[str]) -> Any:
    """Every version of a record of a public category with its link and linked entity, newest
    version first within a key; fields as stored text (decoded once, by orjson, in record_view),
    not through the JSON type. SQLite sorts a scan of the table rather than walk the (record_key,
    version) index, which reads the table in random order a row at a time (twice the CPU, 200,000
    entities)."""
    r, link, e = t.records.c, t.record_links.c, t.entities.c
    return (select(r.record_key, r.version, r.category, r.authority, r.status, r.decision_date,
                   type_coerce(r.fields, Text).label("fields"), link.entity_id, link.state,
                   e.key.label("entity"), e.kind)
            .outerjoin(t.record_links, link.record_id == r.id)
            .outerjoin(t.entities, e.id == link.entity_id)
            .where(r.category.in_(sorted(public)))
            .order_by(not_by_index(r.record_key), r.version.desc()))


def _superseded_writings(c: Connection, public: set[str] | frozenset[str]) -> set[tuple[int, str]]:
    """(entity id, record key) of every record a later writing of the same decision about the same
    entity supersedes (`domain.records.superseded_writings`), from the newest versions of the linked
    records of public categories read in entity order: memory holds one entity's records at a time."""
    from xinyong.services.resolution.entities import LINKED

    r, link, newer = t.records.c, t.record_links.c, t.records.alias("newer").c
    query = (select(link.entity_id, r.id, r.record_key, r.category, r.status)
             .join(t.record_links, link.record_id == r.id)
             .where(r.category.in_(sorted(public)), link.state.in_(LINKED),
                    ~select(newer.id).where(newer.record_key == r.record_key, newer.version > r.version).exists())
             .order_by(link.entity_id))
    return {(entity_id, key) for entity_id, rows in _groups(_rows(c, query))
            for key in superseded_writings(row[1:] for row in rows)}


def _facts(engine: Engine, pack: Pack, today: dt.date, masker: Masker, public: set[str] | frozenset[str],
           records: Iterable[Any]) -> Iterator[Fact]:
    """`iter_facts`' facts, the records' rows coming from `records` (`_records_query`'s)."""
    from xinyong.services.lists.due_process import list_listings, listings_ended_publicity, publicity_ended
    from xinyong.services.resolution.entities import LINKED, record_view

    seen, mask = masker.seen, masker.text
    person_schemes = pack.person_schemes

    def text(value: Any) -> Any:
        if value is None:
            return None
        masked = seen.get(value)
        return masked if masked is not None else mask(value)

    dates = _Dates()
    e, n, i, rel = t.entities.c, t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c
    L = t.listings.c
    listings = list_listings(engine, as_of=today, evidence_categories=public)
    in_force_lists: dict[str, set[str]] = {}
    for listing in listings:
        if in_force(listing["state"], listing["effective_from"], listing["effective_to"], today):
            in_force_lists.setdefault(listing["entity"], set()).add(listing["list"])
    with engine.connect() as c:
        listed_people = set(c.execute(select(e.key).where(e.kind == "natural_person",
                                                          e.id.in_(select(L.entity_id)))).scalars())
    for listing in listings:
        entity = listing["entity"]
        if entity in listed_people and entity not in in_force_lists:
            continue  # a person's past listings are no public fact once no list holds them (as on the page)
        spec = pack.list_(listing["list"])
        forced = in_force(listing["state"], listing["effective_from"], listing["effective_to"], today)
        history = (listing["effective_from"] is not None and spec.history_public
                   and listing["end_reason"] not in UNDONE)
        if not (forced or history):
            continue
        data = {"entity": entity, "listing": listing["id"], "list": listing["list"], "in_force": forced,
                "history": history, "state": listing["state"] if forced else None,
                "effective_from": listing["effective_from"], "effective_to": listing["effective_to"],
                "ended_on": listing["ended_on"], "end_reason": listing["end_reason"],
                "rule_version": listing["rule_version"] if forced else None, "legal_basis": spec.legal_basis,
                "evidence": listing["evidence"] if forced else []}
        yield Fact("listing", f"listing:{listing['id']}", entity, masker.public(data))

    def hidden(kind: str, key: str) -> bool:
        return kind == "natural_person" and key not in in_force_lists  # a person is public only while listed

    with engine.connect() as c:
        names = _groups(_rows(c, select(n.entity_id, n.name, n.current, n.valid_from, n.valid_to, n.language)
                                 .order_by(n.entity_id, n.current.desc(), n.id)))
        identifiers = _groups(_rows(c, select(i.entity_id, i.scheme, i.value, i.verified)
                                       .order_by(i.entity_id, i.scheme, i.value)))
        representatives = _groups(_rows(c, select(rel.entity_id, rel.person_name)
                                           .where(rel.relation == "legal_representative", rel.valid_to.is_(None))
                                           .order_by(rel.entity_id, rel.id)))
        pending = {"names": next(names, None), "identifiers": next(identifiers, None),
                   "representatives": next(representatives, None)}
        streams = {"names": names, "identifiers": identifiers, "representatives": representatives}

        def rows_of(part: str, entity_id: int) -> list[Any]:
            while pending[part] is not None and pending[part][0] < entity_id:
                pending[part] = next(streams[part], None)
            if pending[part] is not None and pending[part][0] == entity_id:
                return pending[part][1]
            return []

        for entity_id, key, kind, verified, status, region, established, address in _rows(
                c, select(e.id, e.key, e.kind, e.verified, e.status, e.region, e.established, e.address)
                .order_by(e.id)):
            if hidden(kind, key):
                continue
            its_names = [{"name": text(name), "current": bool(current), "valid_from": dates[valid_from],
                          "valid_to": dates[valid_to], "language": text(language)}
                         for _, name, current, valid_from, valid_to, language in rows_of("names", entity_id)]
            its_representatives = rows_of("representatives", entity_id)
            person = kind == "natural_person"
            yield Fact("entity", f"entity:{key}", key, {
                "entity": key, "kind": text(kind),
                "name": next((x["name"] for x in its_names if x["current"]),
                             its_names[0]["name"] if its_names else None),
                "verified": bool(verified), "status": text(status), "region": text(region),
                "established": dates[established], "address": None if person else text(address),
                "legal_representative": text(its_representatives[0][1]) if its_representatives else None,
                "names": its_names,
                "identifiers": [{"scheme": scheme, "value": mask_identifier(scheme, value, person_schemes),
                                 "verified": bool(verified)}
                                for _, scheme, value, verified in rows_of("identifiers", entity_id)]})

        repaired = {**listings_ended_publicity(c, pack, today), **publicity_ended(c, today)}
        superseded = _superseded_writings(c, public)
        newest: Any = None
        columns = TABLES["records"]
        for row in records:
            if newest is not None and newest == row[0]:
                continue
            newest = row[0]
            entity_id, state, entity, kind = row[7:]
            if entity_id is None or state not in LINKED or hidden(kind, entity) or (entity_id, row[0]) in superseded:
                continue  # in review, linked nowhere, its subject not public, or shown in a later writing
            key, version, category, authority, status, decided, fields = row[:7]
            view = record_view(pack, _RecordRow(key, version, category, authority, status, dates[decided], fields),
                               in_force_lists.get(entity, set()), today, repaired)
            if view is None:
                continue
            data = {"entity": entity}
            for k in columns:
                if k in view:
                    value = view[k]
                    data[k] = text(value) if type(value) is str else (  # fields' names are the pack's: none kept
                        masker.public(value, frozenset()) if k == "fields" else value)
            yield Fact("record", record_fact_id(data["record_key"], entity), entity, data)


# -- the change sequence ----------------------------------------------------------------------------

POSITION, DAY = "opendata.position", "opendata.day"
_PG_LOCK = 0x78790D47  # pg_advisory_xact_lock: one capture at a time


def store_position(c: Connection) -> int:
    """Where the store is in its history: the audit chain's head (every write appends an event in
    its transaction). THE function to re-point at a commit-ordered change sequence: `capture`
    recomputes the facts only when this moved (or the day changed)."""
    return c.execute(select(func.max(t.audit_events.c.seq))).scalar() or 0


def head(c: Connection) -> int:
    """The newest seq of the public change log (0 before the first event)."""
    return c.execute(select(func.max(t.public_events.c.seq))).scalar() or 0


def _lock(c: Connection) -> None:
    if c.dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    else:  # SQLite: the first write takes the database's write lock for the transaction
        set_setting(c, "opendata.lock", dt.datetime.now(dt.timezone.utc).isoformat())


def event_type(kind: str, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if kind == "listing":
        was, now = bool(before and before["in_force"]), bool(after and after["in_force"])
        if now and not was:
            return "listing.effective"
        if was and not now:
            return "listing.ended"
        return "listing.changed" if op != "delete" else "listing.removed"
    return f"{kind}.{ {'add': 'published', 'change': 'changed', 'delete': 'withdrawn'}[op] }"


class _Stale(Exception):
    """Another capture committed between reading the stored facts and writing the diff."""


def capture(engine: Engine, pack: Pack, *, force: bool = False, each: Callable[[Fact], None] | None = None,
            masker: Masker | None = None) -> tuple[int, bool]:
    """Bring the public change log up to date; returns (seq, whether the facts were computed: not
    when the store had not moved and the day is the same, unless `force`). Every fact computed is
    passed to `each` as it streams by (publish writes the files from it). Incremental: only the
    stored hashes are read, only the facts that are new or changed are kept and written, and the
    deleted ones are named by id. Idempotent; safe from several processes at once (a capture whose
    computation is older than the stored one gives way)."""
    for _attempt in range(3):
        try:
            return _capture(engine, pack, force, each, masker)
        except _Stale:
            continue
    raise RuntimeError("the public change log moved under three captures in a row")


def _capture(engine: Engine, pack: Pack, force: bool, each: Callable[[Fact], None] | None,
             masker: Masker | None) -> tuple[int, bool]:
    today = pack_today(pack)
    f = t.public_facts.c
    with engine.connect() as c:
        position = store_position(c)
        stored, day = get_setting(c, POSITION), get_setting(c, DAY)
        if not force and stored is not None and int(stored) == position and day == today.isoformat():
            return head(c), False
        old: dict[str, str] = dict(_rows(c, select(f.fact_id, f.hash)))
        if get_setting(c, POSITION) != stored:
            raise _Stale
    adds, changes = _Spill(), _Spill()  # on disk: a baseline has millions of new facts
    added: set[str] = set()
    try:
        with contextlib.closing(iter_facts(engine, pack, today, masker)) as facts:  # on an error too: its thread stops
            for fact in facts:
                if each is not None:
                    each(fact)
                digest = fact.digest()
                was = old.pop(fact.fact_id, None)
                if was is None:
                    if fact.fact_id not in added:  # two records whose keys mask alike: one fact
                        added.add(fact.fact_id)
                        adds.add(fact, digest)
                elif was != digest:
                    changes.add(fact, digest)
        del added
        deleted = list(old)
        del old
        return _write_diff(engine, today, position, stored, adds, changes, deleted, exact=each is not None)
    finally:
        adds.close()
        changes.close()


class _Spill:
    """New or changed facts as (fact_id, kind, entity, hash, JSON text), in a temporary file: one
    line each, `[fact_id, kind, entity, hash]` TAB the fact's JSON (orjson escapes tabs and newlines)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.count = 0

    def add(self, fact: Fact, digest: str) -> None:
        self._file.write(orjson.dumps([fact.fact_id, fact.kind, fact.entity, digest]) + b"\t"
                         + orjson.dumps(fact.data) + b"\n")
        self.count += 1

    def __iter__(self) -> Iterator[tuple[str, str, str, str, bytes]]:
        self._file.seek(0)
        for line in self._file:
            head_part, _, blob = line.rstrip(b"\n").partition(b"\t")
            fact_id, kind, entity, digest = orjson.loads(head_part)
            yield fact_id, kind, entity, digest, blob

    def close(self) -> None:
        self._file.close()


def _write_diff(engine: Engine, today: dt.date, position: int, stored: str | None, adds: _Spill, changes: _Spill,
                deleted: list[str], *, exact: bool = False) -> tuple[int, bool]:
    """The diff into the change log, under the lock (see `capture`). `exact`: the facts were also
    written out (publish), so they must be those of the seq returned: a capture from a newer
    position that came first makes this one start again rather than give way."""
    f = t.public_facts.c
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as c:
        _lock(c)
        stored_now = get_setting(c, POSITION)
        if stored_now != stored:
            if stored_now is not None and (int(stored_now) == position or (int(stored_now) > position and not exact)):
                return head(c), True  # a capture as new as this one came first
            raise _Stale
        baseline = stored is None
        deletes = []
        for chunk in _chunks(deleted, 5000):
            deletes += c.execute(select(f.fact_id, f.kind, f.entity).where(f.fact_id.in_(chunk))).all()
        befores: dict[str, dict[str, Any]] = {}
        wanted = [fact_id for fact_id, kind, *_ in changes if kind == "listing"] + \
                 [row.fact_id for row in deletes if row.kind == "listing"]
        for chunk in _chunks(wanted, 5000):
            for fact_id, data in c.execute(select(f.fact_id, f.data).where(f.fact_id.in_(chunk))):
                befores[fact_id] = data if isinstance(data, dict) else orjson.loads(data)
        events = []
        if not baseline:
            for op, items in (("add", adds), ("change", changes)):
                for fact_id, kind, entity, _digest, blob in items:
                    payload = orjson.loads(blob)
                    events.append({"event_id": f"evt_{uuid.uuid4().hex}",
                                   "type": event_type(kind, op, befores.get(fact_id), payload),
                                   "entity": entity, "fact_id": fact_id, "op": op, "occurred_at": now,
                                   "change": {"op": op, "fact": kind, "id": fact_id, "data": payload}})
            for row in deletes:
                events.append({"event_id": f"evt_{uuid.uuid4().hex}",
                               "type": event_type(row.kind, "delete", befores.get(row.fact_id), None),
                               "entity": row.entity, "fact_id": row.fact_id, "op": "delete", "occurred_at": now,
                               "change": {"op": "delete", "fact": row.kind, "id": row.fact_id, "data": None}})
            events.sort(key=lambda ev: (ev["entity"], ev["fact_id"]))
        if not baseline:
            _forget_persons(c, {row.entity for row in deletes if row.kind == "entity"})
            _forget_withdrawn(c, [row for row in deletes if row.kind != "entity"])
        for chunk in _chunks(deleted + [fact_id for fact_id, *_ in changes], 5000):
            c.execute(t.public_facts.delete().where(f.fact_id.in_(chunk)))
        _insert_facts(c, adds)
        _insert_facts(c, changes)
        _insert(c, t.public_events, events)
        set_setting(c, POSITION, str(position))
        set_setting(c, DAY, today.isoformat())
        return head(c), True


# public_facts as SQLite holds it: the JSON column is text there, so orjson's text goes in as it is
# (SQLAlchemy's JSON type would encode every row again with the standard library's json)
_FACTS_AS_TEXT = Table("public_facts", MetaData(), Column("fact_id", String), Column("kind", String),
                       Column("entity", String), Column("hash", String), Column("data", Text))


def _insert_facts(c: Connection, facts: Iterable[tuple[str, str, str, str, bytes]]) -> None:
    raw = c.dialect.name == "sqlite"
    table = _FACTS_AS_TEXT if raw else t.public_facts
    rows = iter(facts)
    while chunk := list(itertools.islice(rows, 10_000)):
        c.execute(table.insert(), [{"fact_id": fact_id, "kind": kind, "entity": entity, "hash": digest,
                                    "data": blob.decode() if raw else orjson.loads(blob)}
                                   for fact_id, kind, entity, digest, blob in chunk])


# seq ranges of events redacted, as JSON [[n, low, high], ...] numbered in order: each dump folder's
# manifest keeps the last n it applied (several folders may be published; none clears the list)
REDACTED = "opendata.redacted"


def _forget_persons(c: Connection, gone: set[str]) -> None:
    """A natural person is public only while a listing of theirs is in force: once the person
    leaves the public pages, the log's earlier events about them keep their key and operation but
    no longer their data (name, listing, court record), on the feed, the webhooks yet to deliver
    and the earlier deltas, which `publish` rewrites."""
    if not gone:
        return
    e, ev = t.entities.c, t.public_events.c
    persons = [key for chunk in _chunks(sorted(gone), 5000) for key in c.execute(
        select(e.key).where(e.key.in_(chunk), e.kind == "natural_person")).scalars()]
    _redact(c, [ev.entity.in_(chunk) for chunk in _chunks(persons, 5000)])


def _forget_withdrawn(c: Connection, gone: list[Any]) -> None:
    """A record or listing that left the public surfaces (`gone`: its delete rows, with `fact_id`
    and `entity`) is forgotten by the earlier events too, as a person is: a record its authority
    revoked was never valid, and a fact whose publicity period ended (or a credit repair ended)
    must not be offered any more, in the feed, the webhooks yet to deliver or the earlier deltas."""
    ev = t.public_events.c
    _redact(c, [ev.entity.in_(sorted({row.entity for row in chunk})) & ev.fact_id.in_([row.fact_id for row in chunk])
                for chunk in _chunks(gone, 5000)])


def _redact(c: Connection, conditions: list[Any]) -> None:
    """The events matching any of `conditions` keep their key and operation, no longer their data;
    their seq range is left for `publish` to rewrite the earlier deltas holding them."""
    ev = t.public_events.c
    redacted: list[int] = []
    for condition in conditions:
        for seq, change in c.execute(select(ev.seq, ev.change).where(condition, ev.op != "delete")):
            change = change if isinstance(change, dict) else orjson.loads(change)
            if change.get("data") is not None:
                c.execute(t.public_events.update().where(ev.seq == seq).values(
                    change={**change, "data": None, "redacted": True}))
                redacted.append(seq)
    if redacted:
        ranges = _redactions(get_setting(c, REDACTED))
        number = max((n for n, _, _ in ranges), default=0) + 1
        set_setting(c, REDACTED, orjson.dumps(ranges + [[number, min(redacted), max(redacted)]]).decode())


def _redactions(stored: str | None) -> list[list[int]]:
    """The redacted ranges as [n, low, high] (those stored before they were numbered, [low, high], as 0)."""
    return [item if len(item) == 3 else [0, *item] for item in orjson.loads(stored or "[]")]


def _insert(c: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10_000):
        c.execute(table.insert(), rows[start:start + 10_000])


def events_since(engine: Engine, since: int, limit: int, until: int | None = None,
                 entities: set[str] | None = None) -> list[dict[str, Any]]:
    ev = t.public_events.c
    query = select(ev.seq, ev.event_id, ev.type, ev.entity, ev.fact_id, ev.op, ev.occurred_at, ev.change) \
        .where(ev.seq > since).order_by(ev.seq).limit(limit)
    if until is not None:
        query = query.where(ev.seq <= until)
    with engine.connect() as c:
        rows = c.execute(query).all()
    return [{"seq": row.seq, "event_id": row.event_id, "type": row.type, "entity": row.entity,
             "occurred_at": _utc(row.occurred_at),
             "change": row.change if isinstance(row.change, dict) else orjson.loads(row.change)}
            for row in rows if entities is None or row.entity in entities]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def public_changes(engine: Engine, pack: Pack, since: int, limit: int) -> dict[str, Any]:
    """`GET /v1/public/changes`: the public change log after `since`, oldest first."""
    events = events_since(engine, since, limit)
    return {"since": since, "next": events[-1]["seq"] if events else since, "more": len(events) == limit,
            "events": events}


# -- dumps ------------------------------------------------------------------------------------------

BATCH_ROWS = 20_000


class _TableWriter:
    """One table in the three formats, written batch by batch as its rows stream in: JSON Lines
    with orjson, the batch as an Arrow table for Parquet (zstd) and CSV (pyarrow's writer, cells
    that could start a formula neutralised column-wise first). `seconds` adds up each format's
    own time (the bench reads it)."""

    def __init__(self, folder: Path, table: str, columns: list[str], types: dict[str, str],
                 seconds: dict[str, float] | None = None):
        import pyarrow as pa

        folder.mkdir(parents=True, exist_ok=True)
        self.table, self.columns, self.types = table, columns, types
        self.paths = {fmt: folder / f"{table}.{fmt}" for fmt in FORMATS}
        # written beside the served file and put in its place whole on close: a download during a
        # publish gets the earlier file, never a truncated one
        self.parts = {fmt: path.with_name(path.name + ".part") for fmt, path in self.paths.items()}
        arrow = {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_(), "date": pa.date32(),
                 "array": pa.string(), "object": pa.string()}
        self.schema = pa.schema([(k, arrow[types[k]]) for k in columns])
        self.rows: list[dict[str, Any]] = []
        self.count = 0
        self.seconds = seconds if seconds is not None else {}
        self._jsonl = self.parts["jsonl"].open("wb")
        self._csv = self.parts["csv"].open("wb")
        self._csv.write("\ufeff".encode())
        self._csv_writer: Any = None
        self._parquet: Any = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self._flush()

    def _time(self, fmt: str, began: float) -> None:
        self.seconds[fmt] = self.seconds.get(fmt, 0.0) + time.perf_counter() - began

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        rows, self.rows = self.rows, []
        if not rows:
            return
        self.count += len(rows)
        columns, width = self.columns, len(self.columns)
        began = time.perf_counter()
        # a fact's data has the table's columns in order; a delta's delete row only a few of them
        rows = [row if len(row) == width else {k: row.get(k) for k in columns} for row in rows]
        dumps = orjson.dumps
        self._jsonl.write(b"\n".join([dumps(row) for row in rows]) + b"\n")
        self._time("jsonl", began)
        began = time.perf_counter()  # the Arrow batch serves Parquet and CSV: its time counts in each
        values = zip(*map(operator.itemgetter(*columns), rows)) if width > 1 else [[row[columns[0]] for row in rows]]
        arrays = [_arrow_column(pa, self.types[k], list(column), self.schema.field(k).type)
                  for k, column in zip(columns, values)]
        batch = pa.Table.from_arrays(arrays, schema=self.schema)
        shared = time.perf_counter() - began
        began = time.perf_counter()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.parts["parquet"], self.schema, compression="zstd")
        self._parquet.write_table(batch)
        self._time("parquet", began - shared)
        began = time.perf_counter()
        safe = pa.Table.from_arrays([_neutralised(pc, column) if pa.types.is_string(column.type) else column
                                     for column in batch.columns], schema=self.schema)
        if self._csv_writer is None:
            self._csv_writer = pacsv.CSVWriter(self._csv, self.schema,
                                               write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._csv_writer.write_table(safe)
        self._time("csv", began - shared)

    def close(self) -> list[dict[str, Any]]:
        """Flush, close, and the manifest entries (`file`, `format`, `rows`, `table`)."""
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self._flush()
        if self._parquet is None:  # an empty table still has its header and schema
            self._parquet = pq.ParquetWriter(self.parts["parquet"], self.schema, compression="zstd")
        if self._csv_writer is None:
            self._csv_writer = pacsv.CSVWriter(self._csv, self.schema,
                                               write_options=pacsv.WriteOptions(quoting_style="needed"))
        self._parquet.close()
        self._csv_writer.close()
        self._csv.close()
        self._jsonl.close()
        for fmt in FORMATS:
            os.replace(self.parts[fmt], self.paths[fmt])
        return [{"file": self.paths[fmt], "format": fmt, "rows": self.count, "table": self.table} for fmt in FORMATS]

    def discard(self) -> None:
        """Close without publishing: the served files stay as they were."""
        for handle in (self._parquet, self._csv_writer, self._csv, self._jsonl):
            if handle is not None:
                handle.close()
        for part in self.parts.values():
            part.unlink(missing_ok=True)


def _arrow_column(pa: Any, kind: str, values: list[Any], arrow_type: Any) -> Any:
    """A column's values as an Arrow array: nested values as JSON text (orjson's UTF-8 bytes,
    checked and taken as text by Arrow at once), dates as dates (a delta's, read back from the
    change log, are ISO text)."""
    if kind in ("array", "object"):
        dumps = orjson.dumps
        return pa.array([None if v is None else dumps(v) for v in values], type=pa.binary()).cast(arrow_type)
    if kind == "date" and str in map(type, values):
        values = [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in values]
    return pa.array(values, type=arrow_type)


def _neutralised(pc: Any, column: Any) -> Any:
    """csvsafe's rule (a text cell starting with =, +, -, @, a tab or a CR gets a leading quote),
    applied to a whole Arrow column at once."""
    pattern = "^[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_STARTS) + "]"
    risky = pc.match_substring_regex(column, pattern)
    if not pc.any(risky).as_py():
        return column
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def _write_table(folder: Path, table: str, rows: Iterable[dict[str, Any]], columns: list[str],
                 types: dict[str, str]) -> list[dict[str, Any]]:
    """One table in the three formats; returns the manifest entries."""
    writer = _TableWriter(folder, table, columns, types)
    try:
        for row in rows:
            writer.add(row)
    except BaseException:
        writer.discard()
        raise
    return writer.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def delta_rows(engine: Engine, since: int, until: int) -> dict[str, list[dict[str, Any]]]:
    """The events in (since, until] folded per fact: add (new since), change (there before and
    after), delete (there before, gone now: a person leaving the lists, a record whose publicity
    ended). A fact added and deleted in between is no row."""
    first: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    cursor = since
    while True:
        events = events_since(engine, cursor, 50_000, until=until)
        if not events:
            break
        for event in events:
            first.setdefault(event["change"]["id"], event)
            last[event["change"]["id"]] = event
        cursor = events[-1]["seq"]
    out: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
    for fact_id, event in last.items():
        before = first[fact_id]["change"]["op"] != "add"
        after = event["change"]["op"] != "delete"
        if (not before and not after) or (after and event["change"].get("redacted")):
            continue  # a redacted fact (a person no longer public) is no row: its delete comes later
        op = "change" if before and after else ("add" if after else "delete")
        table = KIND_TABLE[event["change"]["fact"]]
        if after:
            row = {"op": op, **event["change"]["data"]}
        else:
            row = {"op": op, "entity": event["entity"], ID_COLUMN[table]: _deleted_id(fact_id, table)}
        out[table].append(row)
    for rows in out.values():
        rows.sort(key=lambda row: (row["entity"], str(row.get(ID_COLUMN["listings"]) or row.get("record_key") or "")))
    return out


def _deleted_id(fact_id: str, table: str) -> Any:
    value = fact_id.split(":", 1)[1]
    if table == "listings":
        return int(value)
    if table == "records":
        return fact_id  # the masked key is gone with the fact; its stable fact id names it
    return value


def publish(engine: Engine, pack: Pack, out: Path, *, since: int | None = None, licence: str = DEFAULT_LICENCE,
            attribution: str | None = None, seconds: dict[str, float] | None = None) -> dict[str, Any]:
    """Write full/ and, when DIR holds an earlier manifest (or `since` is given), delta/FROM-TO/;
    then manifest.json and datapackage.json. Returns the manifest. The facts are computed once
    and stream, in one pass, into the capture of the change log and the three formats of full/.
    `seconds`, when given, receives each step's time (facts_and_capture, each format's own
    writing, delta, manifest)."""
    seconds = seconds if seconds is not None else {}
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    earlier = _read_manifest(out)
    today = pack_today(pack)
    masker = Masker(person_numbers=pack.person_numbers)
    formats: dict[str, float] = {}
    with collector_paused():  # a dump's millions of small dicts and lists hold no cycles
        writers, seq = _publish_full(engine, pack, out, masker, formats)
    entries: list[dict[str, Any]] = []
    for writer in writers.values():
        entries += [{**e, "kind": "full"} for e in writer.close()]
    seconds.update({fmt: round(value, 3) for fmt, value in formats.items()})
    seconds["facts_and_capture"] = time.perf_counter() - began - sum(formats.values())
    step = time.perf_counter()
    start = since if since is not None else (earlier or {}).get("seq")
    delta = None
    redacted_before = _pending_redactions(engine)
    if start is not None and start < seq:
        delta = f"delta/{start}-{seq}"
        entries += _write_delta(engine, out, start, seq)
    rewritten, redactions = _rewrite_redacted_deltas(engine, out, earlier, (start, seq) if delta else None,
                                                     redacted_before)
    entries += rewritten
    seconds["delta"] = time.perf_counter() - step
    step = time.perf_counter()
    by_path = {}  # a delta written again in this publish: its last writing
    for entry in entries:
        path = entry["file"].relative_to(out).as_posix()
        by_path[path] = {"path": path, "sha256": _sha256(entry["file"]), "rows": entry["rows"],
                         "format": entry["format"], "table": entry["table"], "kind": entry["kind"],
                         **({"from": entry["from"], "to": entry["to"]} if entry["kind"] == "delta" else {})}
    files = list(by_path.values())
    written = {f["path"] for f in files}
    for old in (earlier or {}).get("files", []):  # earlier deltas stay listed while their files are there
        if old.get("kind") == "delta" and old["path"] not in written and (out / old["path"]).is_file():
            files.append(old)
    files.sort(key=lambda f: (f["kind"] != "full", f.get("from") or 0, f["path"]))
    local = pack.names.get(pack.language)  # the jurisdiction's own name beside the English one: 中国… for cn
    attribution = attribution or (f"{pack.names.en}{f' ({local})' if local != pack.names.en else ''}, "
                                  f"pack {pack.code} {pack.version}, via xinyong")
    manifest = {"seq": seq, "as_of": today.isoformat(), "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "pack": {"code": pack.code, "version": pack.version}, "licence": licence, "attribution": attribution,
                "csv": CSV_NOTE, "masking": "persons' ID numbers, mobile numbers and addresses masked in every file "
                                            "(domain.privacy.mask_text), as on the public pages",
                "previous_seq": (earlier or {}).get("seq"), "delta": delta, "redactions": redactions, "files": files}
    _atomic_write(out / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    _atomic_write(out / "datapackage.json", orjson.dumps(datapackage(manifest), option=orjson.OPT_INDENT_2))
    seconds["manifest"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - began
    return manifest


def _publish_full(engine: Engine, pack: Pack, out: Path, masker: Masker,
                  formats: dict[str, float]) -> tuple[dict[str, "_TableWriter"], int]:
    """The facts, once, into the capture of the change log and full/'s writers (left open)."""
    for _attempt in range(3):
        writers = {table: _TableWriter(out / "full", table, list(columns), {k: v[0] for k, v in columns.items()},
                                       formats)
                   for table, columns in TABLES.items()}

        def write(fact: Fact) -> None:
            writers[KIND_TABLE[fact.kind]].add(fact.data)

        try:
            seq, _computed = _capture(engine, pack, True, write, masker)
            return writers, seq
        except BaseException as exc:
            for writer in writers.values():
                writer.discard()
            if not isinstance(exc, _Stale):
                raise
            formats.clear()
    raise RuntimeError("the public change log moved under three publishes in a row")


def _write_delta(engine: Engine, out: Path, start: int, seq: int) -> list[dict[str, Any]]:
    entries = []
    for table, rows in delta_rows(engine, start, seq).items():
        columns = ["op", *TABLES[table]]
        types = {"op": "string", **{k: v[0] for k, v in TABLES[table].items()}}
        entries += [{**e, "kind": "delta", "from": start, "to": seq}
                    for e in _write_table(out / "delta" / f"{start}-{seq}", table, rows, columns, types)]
    return entries


def _pending_redactions(engine: Engine) -> list[list[int]]:
    with engine.connect() as c:
        return _redactions(get_setting(c, REDACTED))


def _rewrite_redacted_deltas(engine: Engine, out: Path, earlier: dict[str, Any] | None,
                             written: tuple[int, int] | None = None,
                             redacted_before: list[list[int]] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Earlier delta folders of this folder holding events redacted since its last publish (a person
    who left the public pages: the ranges numbered after the `redactions` its manifest applied) are
    written again from the log, without them; so is the delta this publish has just `written` when
    events in it were redacted while it was written (a capture by the server meanwhile; those
    `redacted_before` it began were already left out). Returns the entries and the last range applied."""
    pending = _pending_redactions(engine)
    applied = (earlier or {}).get("redactions", -1)  # a manifest from before ranges were numbered: all
    ranges = {(f["from"], f["to"]): [r for r in pending if r[0] > applied] for f in (earlier or {}).get("files", [])
              if f.get("kind") == "delta" and (out / f["path"]).is_file()}
    if written is not None:
        ranges[written] = [r for r in pending if r not in (redacted_before or [])]
    entries = []
    for (start, seq), redacted in sorted(ranges.items()):
        if any(low <= seq and high > start for _, low, high in redacted):
            entries += _write_delta(engine, out, start, seq)
    return entries, max((n for n, _, _ in pending), default=max(applied, 0))


def datapackage(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Frictionless Data Package describing every file's fields."""
    media = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
    resources = []
    for f in manifest["files"]:
        fields = [{"name": name, "type": kind, "description": text}
                  for name, (kind, text) in TABLES[f["table"]].items()]
        if f["kind"] == "delta":
            fields.insert(0, {"name": "op", "type": "string", "description": "add, change or delete",
                              "constraints": {"enum": ["add", "change", "delete"]}})
        name = f["path"].replace("/", "-").replace(".", "-").lower()
        resources.append({"name": name, "path": f["path"], "format": f["format"], "mediatype": media[f["format"]],
                          "hash": f"sha256:{f['sha256']}", **({"encoding": "utf-8-sig"} if f["format"] == "csv" else {}),
                          "schema": {"fields": fields, "primaryKey": ["entity", ID_COLUMN[f["table"]]]
                                     if f["table"] != "entities" else ["entity"]}})
    return {"name": "xinyong-open-data", "title": manifest["attribution"],
            "licenses": [{"name": manifest["licence"]}], "created": manifest["generated_at"],
            "version": str(manifest["seq"]), "resources": resources}


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / "manifest.json"
    if not path.is_file():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None


def published_paths(out: Path) -> frozenset[str]:
    """What `publish` wrote into `out` and its manifest lists, as paths under it (manifest.json and
    datapackage.json with them): all that /data/ serves. Anything else there (a restricted snapshot
    or a backup written into the folder, a file being written) is not open data."""
    manifest = _read_manifest(out)
    if manifest is None:
        return frozenset()
    return frozenset(["manifest.json", "datapackage.json", *(f["path"] for f in manifest.get("files", []))])


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


__all__ = ["capture", "store_position", "iter_facts", "publish", "published_paths", "public_changes", "events_since",
           "TABLES"]
