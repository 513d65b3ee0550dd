"""Bulk open data: what the public pages show, as facts, their change log, and dumps.

A *fact* is one row a public surface shows: an entity's identity (a firm always; a natural
person only while a listing of theirs is in force), a listing in force or in its list's public
history, a public record within its publicity period. `public_facts` computes them all in a few
set-based queries through the same functions as the entity page (`entities.record_view`,
`due_process.list_listings`, `domain.decisions.in_force`, `domain.privacy.mask_public`), so a
dump and the pages cannot disagree.

`capture` is the change sequence: it diffs the facts with those it stored last time
(`public_facts` table) and appends an event per add, change and delete to `public_events`,
whose `seq` is the sequence of `publish --since`, `GET /v1/public/changes` and the webhooks.
It recomputes only when the store moved (`store_position`) or the pack's day changed (a
publicity period or a listing's term ends with no write at all). The first capture of a store
is its baseline: facts, no events.

`publish` writes `full/` (every fact now) and, since an earlier manifest's seq or `--since`,
`delta/SEQFROM-SEQTO/` (add, change, delete rows), each table in JSON Lines, CSV and Parquet,
with `manifest.json` and `datapackage.json`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select, text

from xinyong.domain.calendar import pack_today
from xinyong.domain.csvsafe import SafeWriter
from xinyong.domain.decisions import in_force
from xinyong.domain.listings import UNDONE
from xinyong.domain.pack import Pack
from xinyong.domain.privacy import mask_identifier, mask_public
from xinyong.store import tables as t
from xinyong.store.db import get_setting, set_setting

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
CSV_NOTE = ("CSV cells beginning with =, +, -, @, a tab or a carriage return are prefixed with a single quote "
            "(formula neutralisation, OWASP); JSON Lines and Parquet carry the raw values. Nested values are JSON.")
DEFAULT_LICENCE = "CC-BY-4.0"


@dataclass(frozen=True)
class Fact:
    kind: str  # entity | listing | record
    fact_id: str
    entity: str
    data: dict[str, Any]

    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def record_fact_id(masked_key: str, entity: str) -> str:
    return "record:" + hashlib.sha256(f"{entity}\x1f{masked_key}".encode()).hexdigest()[:32]


def public_facts(engine: Engine, pack: Pack, today: dt.date) -> list[Fact]:
    """Every fact the public surfaces show on `today`, in a few set-based queries."""
    from xinyong.services.lists.due_process import list_listings, publicity_ended
    from xinyong.services.resolution.entities import LINKED, public_categories, record_view
    from xinyong.services.resolution.resolve import PERSON_SCHEMES

    public = public_categories(pack)
    facts: list[Fact] = []
    in_force_lists: dict[str, set[str]] = {}
    for listing in list_listings(engine, as_of=today, evidence_categories=public):
        spec = pack.list_(listing["list"])
        forced = in_force(listing["state"], listing["effective_from"], listing["effective_to"], today)
        history = (listing["effective_from"] is not None and spec.history_public
                   and listing["end_reason"] not in UNDONE)
        if forced:
            in_force_lists.setdefault(listing["entity"], set()).add(listing["list"])
        if not (forced or history):
            continue
        data = {"entity": listing["entity"], "listing": listing["id"], "list": listing["list"], "in_force": forced,
                "history": history, "state": listing["state"] if forced else None,
                "effective_from": listing["effective_from"], "effective_to": listing["effective_to"],
                "ended_on": listing["ended_on"], "end_reason": listing["end_reason"],
                "rule_version": listing["rule_version"] if forced else None, "legal_basis": spec.legal_basis,
                "evidence": listing["evidence"] if forced else []}
        facts.append(Fact("listing", f"listing:{listing['id']}", listing["entity"], data))
    e, n, i, rel = t.entities.c, t.entity_names.c, t.entity_identifiers.c, t.entity_relations.c
    r, link = t.records.c, t.record_links.c
    with engine.connect() as c:
        keys: dict[int, str] = {}
        people: set[str] = set()
        entities: dict[int, dict[str, Any]] = {}
        for row in c.execute(select(e.id, e.key, e.kind, e.verified, e.status, e.region, e.established, e.address)
                             .execution_options(yield_per=20_000)):
            keys[row.id] = row.key
            if row.kind == "natural_person":
                people.add(row.key)
                if row.key not in in_force_lists:
                    continue  # a person is public only while listed
            entities[row.id] = {"entity": row.key, "kind": row.kind, "name": None, "verified": bool(row.verified),
                                "status": row.status, "region": row.region, "established": row.established,
                                "address": None if row.kind == "natural_person" else row.address,
                                "legal_representative": None, "names": [], "identifiers": []}
        # a person's past listings are no public fact once no list holds them (as on the entity page)
        facts = [f for f in facts if f.entity not in people or f.entity in in_force_lists]
        for row in c.execute(select(n.entity_id, n.name, n.current, n.valid_from, n.valid_to, n.language)
                             .order_by(n.entity_id, n.current.desc(), n.id).execution_options(yield_per=20_000)):
            item = entities.get(row.entity_id)
            if item is not None:
                item["names"].append({"name": row.name, "current": row.current, "valid_from": row.valid_from,
                                      "valid_to": row.valid_to, "language": row.language})
        for row in c.execute(select(i.entity_id, i.scheme, i.value, i.verified).execution_options(yield_per=20_000)):
            item = entities.get(row.entity_id)
            if item is not None:
                item["identifiers"].append({"scheme": row.scheme,
                                            "value": mask_identifier(row.scheme, row.value, PERSON_SCHEMES),
                                            "verified": bool(row.verified)})
        for row in c.execute(select(rel.entity_id, rel.person_name)
                             .where(rel.relation == "legal_representative", rel.valid_to.is_(None))
                             .order_by(rel.entity_id, rel.id)):
            item = entities.get(row.entity_id)
            if item is not None and item["legal_representative"] is None:
                item["legal_representative"] = row.person_name if row.person_name is not None else None
        repaired = publicity_ended(c, today)
        newest: Any = None
        records: list[Any] = []

        def take(row: Any) -> None:
            if row.entity_id is None or row.state not in LINKED:
                return  # the newest version is in review, or linked nowhere
            key = keys.get(row.entity_id)
            if key is None or (key in people and key not in in_force_lists):
                return
            records.append(row)

        for row in c.execute(select(r.record_key, r.version, r.category, r.authority, r.status, r.decision_date,
                                    r.fields, link.entity_id, link.state)
                             .outerjoin(t.record_links, link.record_id == r.id)
                             .where(r.category.in_(sorted(public)))
                             .order_by(r.record_key, r.version.desc()).execution_options(yield_per=20_000)):
            if newest is not None and newest.record_key == row.record_key:
                continue
            newest = row
            take(row)
    for item in entities.values():
        item["name"] = next((x["name"] for x in item["names"] if x["current"]),
                            item["names"][0]["name"] if item["names"] else None)
        identifiers = item.pop("identifiers")
        data = mask_public(item)
        data["identifiers"] = identifiers
        facts.append(Fact("entity", f"entity:{item['entity']}", item["entity"], data))
    for row in records:
        entity = keys[row.entity_id]
        view = record_view(pack, row, in_force_lists.get(entity, set()), today, repaired)
        if view is None:
            continue
        data = mask_public({"entity": entity, **{k: view[k] for k in TABLES["records"] if k in view}})
        facts.append(Fact("record", record_fact_id(data["record_key"], entity), entity, data))
    for fact in facts:
        if fact.kind == "listing":
            fact.data.update(mask_public(fact.data))
    return facts


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


def capture(engine: Engine, pack: Pack, *, force: bool = False,
            facts: list[Fact] | None = None) -> tuple[int, list[Fact] | None]:
    """Bring the public change log up to date; returns (seq, the facts computed or None when the
    store had not moved). Idempotent; safe from several processes at once (a capture whose
    computation is older than the stored one gives way)."""
    today = pack_today(pack)
    with engine.connect() as c:
        position = store_position(c)
        stored, day = get_setting(c, POSITION), get_setting(c, DAY)
        if not force and facts is None and stored is not None and int(stored) == position and day == today.isoformat():
            return head(c), None
    if facts is None:
        facts = public_facts(engine, pack, today)
    now = dt.datetime.now(dt.timezone.utc)
    f = t.public_facts.c
    with engine.begin() as c:
        _lock(c)
        stored = get_setting(c, POSITION)
        if stored is not None and int(stored) > position:
            return head(c), facts  # a newer capture came first
        baseline = stored is None
        old = {row.fact_id: row for row in c.execute(select(f.fact_id, f.kind, f.entity, f.hash))}
        new = {fact.fact_id: fact for fact in facts}
        adds, changes, deletes = [], [], []
        for fact_id, fact in new.items():
            digest = fact.digest()
            was = old.get(fact_id)
            if was is None:
                adds.append((fact, digest))
            elif was.hash != digest:
                changes.append((fact, digest))
        deletes = [row for fact_id, row in old.items() if fact_id not in new]
        befores: dict[str, dict[str, Any]] = {}
        wanted = [fact.fact_id for fact, _ in changes if fact.kind == "listing"] + \
                 [row.fact_id for row in deletes if row.kind == "listing"]
        for chunk in _chunks(wanted, 5000):
            for fact_id, data in c.execute(select(f.fact_id, f.data).where(f.fact_id.in_(chunk))):
                befores[fact_id] = data if isinstance(data, dict) else orjson.loads(data)
        events = []
        if not baseline:
            for op, items in (("add", [(fact, None) for fact, _ in adds]),
                              ("change", [(fact, None) for fact, _ in changes])):
                for fact, _ in items:
                    payload = _jsonable(fact.data)
                    events.append({"event_id": f"evt_{uuid.uuid4().hex}",
                                   "type": event_type(fact.kind, op, befores.get(fact.fact_id), payload),
                                   "entity": fact.entity, "fact_id": fact.fact_id, "op": op, "occurred_at": now,
                                   "change": {"op": op, "fact": fact.kind, "id": fact.fact_id, "data": payload}})
            for row in deletes:
                events.append({"event_id": f"evt_{uuid.uuid4().hex}",
                               "type": event_type(row.kind, "delete", befores.get(row.fact_id), None),
                               "entity": row.entity, "fact_id": row.fact_id, "op": "delete", "occurred_at": now,
                               "change": {"op": "delete", "fact": row.kind, "id": row.fact_id, "data": None}})
            events.sort(key=lambda ev: (ev["entity"], ev["fact_id"]))
        if not baseline:
            _forget_persons(c, {row.entity for row in deletes if row.kind == "entity"})
        for chunk in _chunks([row.fact_id for row in deletes], 5000):
            c.execute(t.public_facts.delete().where(f.fact_id.in_(chunk)))
        for chunk in _chunks([fact.fact_id for fact, _ in changes], 5000):
            c.execute(t.public_facts.delete().where(f.fact_id.in_(chunk)))
        rows = [{"fact_id": fact.fact_id, "kind": fact.kind, "entity": fact.entity, "hash": digest,
                 "data": _jsonable(fact.data)} for fact, digest in adds + changes]
        _insert(c, t.public_facts, rows)
        _insert(c, t.public_events, events)
        set_setting(c, POSITION, str(position))
        set_setting(c, DAY, today.isoformat())
        return head(c), facts


REDACTED = "opendata.redacted"  # seq ranges of events redacted since the last publish, as JSON


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
    redacted: list[int] = []
    for chunk in _chunks(persons, 5000):
        for seq, change in c.execute(select(ev.seq, ev.change).where(ev.entity.in_(chunk), ev.op != "delete")):
            change = change if isinstance(change, dict) else orjson.loads(change)
            if change.get("data") is not None:
                c.execute(t.public_events.update().where(ev.seq == seq).values(
                    change={**change, "data": None, "redacted": True}))
                redacted.append(seq)
    if redacted:
        pending = orjson.loads(get_setting(c, REDACTED) or "[]")
        set_setting(c, REDACTED, orjson.dumps(pending + [[min(redacted), max(redacted)]]).decode())


def _insert(c: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10_000):
        c.execute(table.insert(), rows[start:start + 10_000])


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Dates as ISO text: what the JSON column, the feed and the files hold."""
    return orjson.loads(orjson.dumps(data))


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

def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _parquet_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in ("array", "object"):
        return orjson.dumps(value).decode()
    if kind == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return value


def _write_table(folder: Path, table: str, rows: list[dict[str, Any]], columns: list[str],
                 types: dict[str, str]) -> list[dict[str, Any]]:
    """One table in the three formats; returns the manifest entries (path relative to the folder)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    path = folder / f"{table}.jsonl"
    with path.open("wb") as handle:
        buffer = []
        for row in rows:
            buffer.append(orjson.dumps({k: row.get(k) for k in columns}))
            if len(buffer) >= 10_000:
                handle.write(b"\n".join(buffer) + b"\n")
                buffer = []
        if buffer:
            handle.write(b"\n".join(buffer) + b"\n")
    written.append((path, "jsonl"))
    path = folder / f"{table}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff")
        writer = SafeWriter(handle)
        writer.writerow(columns)
        writer.writerows([_cell(row.get(k)) for k in columns] for row in rows)
    written.append((path, "csv"))
    arrow = {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_(), "date": pa.date32(),
             "array": pa.string(), "object": pa.string()}
    schema = pa.schema([(k, arrow[types[k]]) for k in columns])
    data = {k: [_parquet_value(types[k], row.get(k)) for row in rows] for k in columns}
    path = folder / f"{table}.parquet"
    pq.write_table(pa.Table.from_pydict(data, schema=schema), path, compression="zstd")
    written.append((path, "parquet"))
    return [{"file": p, "format": fmt, "rows": len(rows), "table": table} for p, fmt in written]


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


def _sorted_rows(facts: Iterable[Fact]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
    for fact in facts:
        out[KIND_TABLE[fact.kind]].append(fact.data)
    out["entities"].sort(key=lambda row: row["entity"])
    out["listings"].sort(key=lambda row: (row["entity"], row["listing"]))
    out["records"].sort(key=lambda row: (row["entity"], row["record_key"]))
    return out


def publish(engine: Engine, pack: Pack, out: Path, *, since: int | None = None, licence: str = DEFAULT_LICENCE,
            attribution: str | None = None) -> dict[str, Any]:
    """Write full/ and, when DIR holds an earlier manifest (or `since` is given), delta/FROM-TO/;
    then manifest.json and datapackage.json. Returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    earlier = _read_manifest(out)
    seq, facts = capture(engine, pack, force=True)
    assert facts is not None
    today = pack_today(pack)
    entries: list[dict[str, Any]] = []
    tables = _sorted_rows(facts)
    for table, rows in tables.items():
        columns = list(TABLES[table])
        types = {k: v[0] for k, v in TABLES[table].items()}
        entries += [{**e, "kind": "full"} for e in _write_table(out / "full", table, rows, columns, types)]
    start = since if since is not None else (earlier or {}).get("seq")
    delta = None
    if start is not None and start < seq:
        delta = f"delta/{start}-{seq}"
        entries += _write_delta(engine, out, start, seq)
    entries += _rewrite_redacted_deltas(engine, out, earlier)
    files = []
    for entry in entries:
        files.append({"path": entry["file"].relative_to(out).as_posix(), "sha256": _sha256(entry["file"]),
                      "rows": entry["rows"], "format": entry["format"], "table": entry["table"], "kind": entry["kind"],
                      **({"from": entry["from"], "to": entry["to"]} if entry["kind"] == "delta" else {})})
    written = {f["path"] for f in files}
    for old in (earlier or {}).get("files", []):  # earlier deltas stay listed while their files are there
        if old.get("kind") == "delta" and old["path"] not in written and (out / old["path"]).is_file():
            files.append(old)
    files.sort(key=lambda f: (f["kind"] != "full", f.get("from") or 0, f["path"]))
    attribution = attribution or f"{pack.names.en} ({pack.names.zh}), pack {pack.code} {pack.version}, via xinyong"
    manifest = {"seq": seq, "as_of": today.isoformat(), "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "pack": {"code": pack.code, "version": pack.version}, "licence": licence, "attribution": attribution,
                "csv": CSV_NOTE, "masking": "persons' ID numbers, mobile numbers and addresses masked in every file "
                                            "(domain.privacy.mask_text), as on the public pages",
                "previous_seq": (earlier or {}).get("seq"), "delta": delta, "files": files}
    _atomic_write(out / "manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    _atomic_write(out / "datapackage.json", orjson.dumps(datapackage(manifest), option=orjson.OPT_INDENT_2))
    return manifest


def _write_delta(engine: Engine, out: Path, start: int, seq: int) -> list[dict[str, Any]]:
    entries = []
    for table, rows in delta_rows(engine, start, seq).items():
        columns = ["op", *TABLES[table]]
        types = {"op": "string", **{k: v[0] for k, v in TABLES[table].items()}}
        entries += [{**e, "kind": "delta", "from": start, "to": seq}
                    for e in _write_table(out / "delta" / f"{start}-{seq}", table, rows, columns, types)]
    return entries


def _rewrite_redacted_deltas(engine: Engine, out: Path, earlier: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Earlier delta folders holding events since redacted (a person who left the public pages)
    are written again from the log, without them; the pending ranges are then cleared."""
    with engine.connect() as c:
        pending = orjson.loads(get_setting(c, REDACTED) or "[]")
    if not pending:
        return []
    ranges = {(f["from"], f["to"]) for f in (earlier or {}).get("files", [])
              if f.get("kind") == "delta" and (out / f["path"]).is_file()}
    entries = []
    for start, seq in sorted(ranges):
        if any(low <= seq and high > start for low, high in pending):
            entries += _write_delta(engine, out, start, seq)
    with engine.begin() as c:  # ranges redacted meanwhile stay pending
        now = orjson.loads(get_setting(c, REDACTED) or "[]")
        set_setting(c, REDACTED, orjson.dumps([r for r in now if r not in pending]).decode())
    return entries


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


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


__all__ = ["capture", "store_position", "public_facts", "publish", "public_changes", "events_since", "TABLES"]
