"""What the audit chain vouches for, checked from the store itself; report seals; checkpoints.

`audit verify` first recomputes the keyed chain (`store.audit.check`). That alone trusts the head
file beside the store: delete the newest events, rewrite the head to match, and the chain looks
whole. So `verify_store` also checks, from the database and the signing key alone:

- every audited row has its event: each batch (`batch.ingested`, with a digest of the record
  versions it stored), each record version made by due process (`record.*`), each API key
  (`key.created`, and `key.revoked` once revoked), each listing (its transitions; one proposed on its
  own, a move to the next list, by the subject, list, rule and evidence its event names; the proposals an
  evaluation makes are audited a batch at a time, `listings.proposed`, one leaf per proposal that is
  recomputed from the store and compared one by one), each issued
  report (a `reports.sealed` event whose Merkle root covers it), each objection and repair
  application (`objection.filed`, `repair.applied`), each report-back of a measure applied or not
  (`feedback.reported`, with the digest of the row stored), each record's link to its entity
  (`links.written`: every write of links names each link's record, entity, state and method;
  `links.removed`: links a judgement deleted before re-resolving);
- every listing's current state and dates are what its audited transitions say, every
  current record version is what its audited ingestion or correction stored (a version made by
  due process carries its own digest in its event), and every objection and repair application
  is about what, filed when, and in the state its audited steps say (an
  ``UPDATE listings SET state='withdrawn'`` or ``UPDATE repairs SET state='approved'`` in SQL is reported);
- every stored signed checkpoint verifies under the store's signing key and is not ahead of the
  chain, nor different from it; `--checkpoint FILE` adds one saved elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import marshal
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, func, select, table, update
from sqlalchemy.engine import Connection

from xinyong.domain.audit import leaf_digest, merkle_root, merkle_root_of, proposal_leaf
from xinyong.domain.calendar import add_months
from xinyong.domain.listings import STATES
from xinyong.domain.pack import Pack, PackError
from xinyong.store import tables as t
from xinyong.store.audit import AuditError, append_event, audit_files, check
from xinyong.store.bulk import insert_rows
from xinyong.store.checkpoints import (
    all_checkpoints,
    load_document,
    public_hex,
    signature_problem,
    signing_key,
    write_checkpoint,
)

SEAL_ACTION = "reports.sealed"
FEEDBACK_ACTION = "feedback.reported"  # api: an authority reports a measure applied, or why not
FEEDBACK_BASELINE_ACTION = "feedback.audited"  # the reports stored before reports were audited, as they stood
FEEDBACK_BASELINE = "feedback_audited"  # setting: that event was written
LINKS_WRITTEN = "links.written"  # resolution, a judgement, a correction carrying its link: [record, entity, state, method]
LINKS_REMOVED = "links.removed"  # a judgement deleting a record's links before re-resolving it
LINKS_BASELINE = "links_audited"  # setting: the links stored before links were audited have had their event
PROPOSED_BATCH = "listings.proposed"  # services.lists.evaluate: one event per batch of proposals
# listing columns a transition's `changes` may set (besides the state)
LISTING_DATES = ("notified_on", "objection_deadline", "effective_from", "effective_to", "review_due", "ended_on",
                 "end_reason")
CHUNK = 900  # under every engine's bound-parameter limit


# -- digests ---------------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def record_line(row: Any) -> bytes:
    """What the digest of a record version covers: its key, version, status, subject and content."""
    return _line(row.record_key, row.version, row.status, row.subject_name, row.subject_kind,
                 row.subject_code, row.decision_date, row.content_hash, row.fields)


def _line(key: str, version: int, status: str, name: Any, kind: Any, code: Any, date: Any, content_hash: str,
          fields: Any) -> bytes:
    return orjson.dumps([key, version, status, name, kind, code, _text(date), content_hash, _json(fields)],
                        option=orjson.OPT_SORT_KEYS) + b"\n"


_DIGEST_SQL = ("SELECT record_key, version, status, subject_name, subject_kind, subject_code, decision_date, "
               "content_hash, CAST(fields AS TEXT) FROM records WHERE batch_id = {} ORDER BY record_key, version")


def records_digest(connection: Connection, batch_id: int,
                   excluded: frozenset[tuple[str, int]] = frozenset()) -> tuple[int, str]:
    """(count, SHA-256) of the record versions a batch stored, in key and version order; `excluded`
    are versions made later by due process (a correction keeps its batch).

    Read through the driver's own cursor (a server-side one on PostgreSQL, so memory stays flat),
    `fields` as JSON text decoded by orjson: SQLAlchemy's rows and its JSON type's decoding cost a
    fifth of a large file's ingestion. The lines digested are the same.
    """
    digest, count = hashlib.sha256(), 0
    dbapi = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    cursor = dbapi.cursor(name=f"records_digest_{batch_id}") if postgres else dbapi.cursor()
    try:
        cursor.execute(_DIGEST_SQL.format("%s" if postgres else "?"), (batch_id,))
        while rows := cursor.fetchmany(5000):
            for row in rows:
                if excluded and (row[0], row[1]) in excluded:
                    continue
                digest.update(_line(*row))
                count += 1
    finally:
        cursor.close()
    return count, digest.hexdigest()


def version_digest(connection: Connection, record_key: str, version: int) -> str:
    """SHA-256 of one stored record version's digest line (what `records_digest` covers), read back
    as stored: a version made by due process (correction, revocation) carries it in its audit event,
    since the batch's digest leaves such versions out."""
    r = t.records.c
    row = connection.execute(select(r.record_key, r.version, r.status, r.subject_name, r.subject_kind, r.subject_code,
                                    r.decision_date, r.content_hash, r.fields)
                             .where(r.record_key == record_key, r.version == version)).one()
    return hashlib.sha256(record_line(row)).hexdigest()


class BatchDigest:
    """`records_digest` of a batch computed while it is written, without reading the records back.

    Each stored version's line (the bytes `records_digest` digests, made from the values being
    inserted, not decoded from the stored JSON) is kept until `finish`, which digests the lines in
    key and version order, the order `records_digest` reads the records in. Memory stays flat:

    - SQLite compares text by its bytes (BINARY), and UTF-8 byte order is Python's order of `str`:
      each chunk's lines are sorted here and written to a temporary file as a sorted run, and
      `finish` merges the runs, reading each a block at a time. A third of the CPU of the engine
      sorting them in a temporary table (200,000 lines: 0.47 s against 1.3 s).
    - PostgreSQL sorts by the database's collation, which Python cannot reproduce: the lines go to
      a temporary table in the batch's transaction and the server sorts them.
    """

    TABLE = "batch_digest_lines"
    BLOCK = 100  # lines read back at a time from each sorted run

    def __init__(self, connection: Connection):
        self.connection = connection
        self.count = 0
        self.postgres = connection.dialect.name == "postgresql"
        self.runs: list[list[tuple[int, int]]] = []  # SQLite: each sorted run's blocks (offset, size)
        self.file = None if self.postgres else tempfile.TemporaryFile()
        if self.postgres:
            with connection.connection.driver_connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.TABLE}")  # left by a batch whose connection failed
                cursor.execute(f"CREATE TEMPORARY TABLE {self.TABLE} (record_key TEXT NOT NULL, "
                               "version INTEGER NOT NULL, line TEXT NOT NULL)")

    @staticmethod
    def line(key: str, version: int, status: str, name: Any, kind: Any, code: Any, date: str | None,
             content_hash: str, sorted_fields: bytes) -> bytes:
        """`_line` of a version about to be stored, from its fields' JSON with sorted keys (orjson's
        OPT_SORT_KEYS, what `content_hash` covers): the same bytes, without decoding the fields."""
        return orjson.dumps([key, version, status, name, kind, code, date, content_hash])[:-1] + b"," + \
            sorted_fields + b"]\n"

    def add(self, rows: list[tuple[str, int, bytes]]) -> None:
        """(record_key, version, line) of stored versions."""
        self.count += len(rows)
        if self.postgres:
            insert_rows(self.connection, table(self.TABLE), ("record_key", "version", "line"),
                        ((key, version, line.decode()) for key, version, line in rows))
            return
        rows = sorted(rows)  # (key, version) is unique in a batch: the lines themselves are never compared
        blocks = []
        for start in range(0, len(rows), self.BLOCK):
            block = marshal.dumps(rows[start:start + self.BLOCK])
            blocks.append((self.file.tell(), len(block)))
            self.file.write(block)
        self.runs.append(blocks)

    def finish(self) -> tuple[int, str]:
        """(count, SHA-256), as `records_digest` gives them for the batch once it is written."""
        digest = hashlib.sha256()
        for lines in self._ordered():
            digest.update(b"".join(lines))
        return self.count, digest.hexdigest()

    def _ordered(self) -> Iterator[list[bytes]]:
        """The lines in key and version order, a list at a time."""
        if self.postgres:
            dbapi = self.connection.connection.driver_connection
            with dbapi.cursor(name=self.TABLE) as cursor:  # server-side: memory stays flat
                cursor.execute(f"SELECT line FROM {self.TABLE} ORDER BY record_key, version")
                while rows := cursor.fetchmany(5000):
                    yield [line.encode() for (line,) in rows]
            with dbapi.cursor() as cursor:
                cursor.execute(f"DROP TABLE {self.TABLE}")
            return
        with self.file:
            self.file.flush()
            handle = self.file.fileno()

            def run(blocks: list[tuple[int, int]]) -> Iterator[tuple[str, int, bytes]]:
                for offset, size in blocks:
                    yield from marshal.loads(os.pread(handle, size, offset))

            merged = heapq.merge(*map(run, self.runs))
            while lines := [line for _, _, line in islice(merged, 5000)]:
                yield lines


def report_leaf(row: Any) -> bytes:
    issued = row.issued_at if row.issued_at.tzinfo else row.issued_at.replace(tzinfo=dt.timezone.utc)
    return orjson.dumps([row.code, row.entity_id, row.language, _text(row.as_of), row.pdf_sha256, row.pages,
                         issued.astimezone(dt.timezone.utc).isoformat()])


FEEDBACK_COLUMNS = ("id", "query_id", "key_id", "authority", "subject", "measure", "applied", "reason", "reference",
                    "on_date", "recorded_at")


def feedback_digest(row: Any) -> str:
    """SHA-256 of what a report-back says: who reported which measure as applied or not, about whom,
    on which answer, day, reason and reference, and when it was recorded."""
    values = [getattr(row, name) if not isinstance(row, dict) else row[name] for name in FEEDBACK_COLUMNS]
    values[-1] = _text(_utc(values[-1]))
    values[-2] = _text(values[-2])
    return hashlib.sha256(orjson.dumps(values)).hexdigest()


def audit_feedback(connection: Connection, row: dict[str, Any], actor: str) -> int:
    """The audit event of a report-back just stored (`row` with its id), in the caller's transaction:
    the report is what accountability counts, so an UPDATE, INSERT or DELETE of one in SQL must show."""
    return append_event(connection, actor=actor, action=FEEDBACK_ACTION, object_type="feedback",
                        object_id=str(row["id"]),
                        payload={"subject": row["subject"], "measure": row["measure"], "applied": row["applied"],
                                 "query_id": row["query_id"], "on": _text(row["on_date"]),
                                 "digest": feedback_digest(row)})


def _chain_holds(connection: Connection, *actions: str) -> bool:
    """Whether the audit chain holds an event of one of `actions`: what says a baseline was taken (a
    setting deleted in SQL must not have tampered rows baselined again as they stand)."""
    a = t.audit_events.c
    return connection.execute(select(a.seq).where(a.action.in_(actions)).limit(1)).first() is not None


def audit_stored_feedback(connection: Connection, actor: str) -> None:
    """Once per store, the report-backs stored before they were audited, as they stand: one event
    with each one's digest, so `audit verify` checks every report from here on. The setting only
    spares the chain's look-up."""
    from xinyong.store.db import get_setting, set_setting

    if get_setting(connection, FEEDBACK_BASELINE):
        return
    set_setting(connection, FEEDBACK_BASELINE, "1")
    if _chain_holds(connection, FEEDBACK_ACTION, FEEDBACK_BASELINE_ACTION):
        return
    rows = connection.execute(select(*(t.feedback.c[name] for name in FEEDBACK_COLUMNS)).order_by(t.feedback.c.id)).all()
    if rows:
        append_event(connection, actor=actor, action=FEEDBACK_BASELINE_ACTION, object_type="feedback",
                     object_id=f"{rows[0].id}..{rows[-1].id}",
                     payload={"count": len(rows), "reports": [[row.id, feedback_digest(row)] for row in rows]})


def audit_links(connection: Connection, links: list[tuple[int, int | None, str, str]], actor: str,
                why: str) -> int | None:
    """The audit event of links just written, in the caller's transaction: (record id, entity id,
    state, method) each. A link decides whose file, listing evidence and screening answer a record
    counts in: moved in SQL, it would carry a court's case to another firm unseen. The store's
    links from before links were audited get their event first (`audit_stored_links`)."""
    if not links:
        return None
    audit_stored_links(connection, actor)
    return _links_event(connection, links, actor, why)


def _links_event(connection: Connection, links: list[tuple[int, int | None, str, str]], actor: str,
                 why: str) -> int | None:
    if not links:
        return None
    return append_event(connection, actor=actor, action=LINKS_WRITTEN, object_type="record_links",
                        object_id=f"{min(r for r, *_ in links)}..{max(r for r, *_ in links)}",
                        payload={"why": why, "count": len(links), "links": [list(one) for one in links]})


def audit_links_removed(connection: Connection, record_ids: list[int], actor: str, why: str) -> None:
    if record_ids:
        audit_stored_links(connection, actor)
        append_event(connection, actor=actor, action=LINKS_REMOVED, object_type="record_links",
                     object_id=f"{min(record_ids)}..{max(record_ids)}", payload={"why": why, "records": record_ids})


def audit_stored_links(connection: Connection, actor: str) -> None:
    """Once per store, before its first audited write of links: the links written before links were
    audited, as they stand; from here on `audit verify` checks every link against its events. The
    chain says whether it was done (the setting only spares the look-up)."""
    from xinyong.store.db import get_setting, set_setting

    if get_setting(connection, LINKS_BASELINE):
        return
    set_setting(connection, LINKS_BASELINE, "1")
    if _chain_holds(connection, LINKS_WRITTEN, LINKS_REMOVED):
        return
    link = t.record_links.c
    batch: list[tuple[int, int | None, str, str]] = []
    for row in connection.execute(select(link.record_id, link.entity_id, link.state, link.method)
                                  .order_by(link.record_id)):
        batch.append(tuple(row))
        if len(batch) == 50_000:
            _links_event(connection, batch, actor, "baseline")
            batch = []
    _links_event(connection, batch, actor, "baseline")


# -- sealing and checkpoints ---------------------------------------------------------------------------

def seal_reports(connection: Connection, actor: str = "system") -> int | None:
    """One audit event (a Merkle root) over every report issued since the last seal; its seq, or None."""
    r = t.reports.c
    rows = connection.execute(select(r.code, r.entity_id, r.language, r.as_of, r.pdf_sha256, r.pages, r.issued_at)
                              .where(r.sealed_seq.is_(None)).order_by(r.code)).all()
    if not rows:
        return None
    issued = sorted(row.issued_at for row in rows)
    seq = append_event(connection, actor=actor, action=SEAL_ACTION, object_type="reports",
                       object_id=f"{rows[0].code}..{rows[-1].code}",
                       payload={"count": len(rows), "root": merkle_root([report_leaf(row) for row in rows]),
                                "first_issued": _text(issued[0]), "last_issued": _text(issued[-1])})
    codes = [row.code for row in rows]
    for start in range(0, len(codes), CHUNK):
        connection.execute(update(t.reports).where(r.code.in_(codes[start:start + CHUNK])).values(sealed_seq=seq))
    return seq


def checkpoint(engine: Engine, actor: str = "system") -> dict[str, Any] | None:
    """Seal the reports issued since the last seal, then sign the chain's head and store the checkpoint."""
    with engine.begin() as connection:
        seal_reports(connection, actor)
        return write_checkpoint(connection)


# -- verifying -------------------------------------------------------------------------------------------

@dataclass
class IntegrityReport:
    events: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the newest stored checkpoint

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass
class _Events:
    """What the chain says about each audited row, read in one pass."""

    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_created: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_revoked: set[str] = field(default_factory=set)
    listings: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    record_versions: dict[tuple[str, int], str] = field(default_factory=dict)  # -> action
    version_digests: dict[tuple[str, int], str] = field(default_factory=dict)  # -> version_digest when audited
    seals: dict[int, dict[str, Any]] = field(default_factory=dict)
    proposal_batches: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> payload
    reports_issued: set[str] = field(default_factory=set)  # one event per report, before seals existed
    feedback: dict[str, str] = field(default_factory=dict)  # feedback id -> digest
    feedback_baseline: bool = False  # the reports stored before reports were audited have their event
    links: dict[int, tuple[int | None, str, str] | None] = field(default_factory=dict)  # record id -> newest
    links_audited: bool = False  # any links event: links written before (a store not re-resolved since) are not
    hashes: dict[int, str] = field(default_factory=dict)  # at the seqs checkpoints name
    cases: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list))  # (objection | repair, id) -> its audited steps
    last_seq: int = 0


def _read_events(connection: Connection, wanted_seqs: set[int]) -> _Events:
    e = t.audit_events.c
    out = _Events()
    rows = connection.execute(select(e.seq, e.hash, e.action, e.object_type, e.object_id, e.payload)
                              .order_by(e.seq).execution_options(yield_per=5000))
    for row in rows:
        out.last_seq = row.seq
        if row.seq in wanted_seqs:
            out.hashes[row.seq] = row.hash
        action, object_id, payload = row.action, row.object_id, _json(row.payload) or {}
        if action == "batch.ingested":
            out.batches[object_id] = payload
        elif action == "key.created":
            out.keys_created[object_id] = payload
        elif action == "key.revoked":
            out.keys_revoked.add(object_id)
        elif row.object_type == "listing" and action.startswith("listing."):
            out.listings[object_id].append((action.partition(".")[2], payload))
        elif action == PROPOSED_BATCH:
            out.proposal_batches[row.seq] = payload
            for listing_id, _leaf in payload.get("proposals") or []:
                out.listings[str(listing_id)].append(("proposed", {"on": payload.get("on")}))
        elif row.object_type == "record" and action in ("record.revoked", "record.active", "record.corrected"):
            out.record_versions[(object_id, int(payload["version"]))] = action
            if "digest" in payload:  # events written before versions carried their digest have none
                out.version_digests[(object_id, int(payload["version"]))] = payload["digest"]
        elif row.object_type in CASES and action.startswith(f"{row.object_type}."):
            out.cases[(row.object_type, object_id)].append((action.partition(".")[2], payload))
        elif action == SEAL_ACTION:
            out.seals[row.seq] = payload
        elif action == "report.issued":
            out.reports_issued.add(object_id)
        elif action == LINKS_WRITTEN:
            out.links_audited = True
            for record_id, entity_id, state, method in payload.get("links") or []:
                out.links[record_id] = (entity_id, state, method)
        elif action == LINKS_REMOVED:
            for record_id in payload.get("records") or []:
                out.links[record_id] = None
        elif action == FEEDBACK_ACTION:
            out.feedback[object_id] = payload.get("digest")
        elif action == FEEDBACK_BASELINE_ACTION:
            out.feedback.update((str(feedback_id), digest) for feedback_id, digest in payload.get("reports") or [])
            out.feedback_baseline = True
    return out


def _check_checkpoint(document: dict[str, Any], public: str | None, events: _Events, origin: str) -> list[str]:
    problems = []
    if public is not None:
        problem = signature_problem(document, public)
        if problem:
            problems.append(f"{origin}: {problem}")
    seq = document["seq"]
    if seq > events.last_seq:
        problems.append(f"{origin}: signed checkpoint at seq {seq} ({document['at']}) is ahead of the chain, "
                        f"which ends at {events.last_seq}: the newest events were deleted")
    elif events.hashes.get(seq) != document["hash"]:
        problems.append(f"{origin}: event {seq} differs from the signed checkpoint of {document['at']}")
    return problems


def _check_batches(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    b = t.batches.c
    excluded = frozenset(events.record_versions)
    for row in connection.execute(select(b.id, b.rows, b.accepted, b.quarantined).order_by(b.id)):
        payload = events.batches.get(str(row.id))
        if payload is None:
            report.problems.append(f"batch {row.id} has no audit event (batch.ingested)")
            continue
        for name in ("rows", "accepted", "quarantined"):
            if payload.get(name) != getattr(row, name):
                report.problems.append(f"batch {row.id}: {name} is {getattr(row, name)}, "
                                       f"its audited ingestion says {payload.get(name)}")
        if "records_digest" in payload:
            count, digest = records_digest(connection, row.id, excluded)
            if count != payload.get("records") or digest != payload["records_digest"]:
                report.problems.append(f"batch {row.id}: its record versions ({count}) differ from those its "
                                       f"audited ingestion stored ({payload.get('records')})")
    r = t.records.c
    due_process = defaultdict(list)
    for key, version in events.record_versions:
        due_process[key].append(version)
    keys = sorted(due_process)
    seen: set[tuple[str, int]] = set()
    for start in range(0, len(keys), CHUNK):
        for row in connection.execute(select(r.record_key, r.version, r.status, r.subject_name, r.subject_kind,
                                             r.subject_code, r.decision_date, r.content_hash, r.fields)
                                      .where(r.record_key.in_(keys[start:start + CHUNK]))):
            action = events.record_versions.get((row.record_key, row.version))
            if action is None:
                continue
            seen.add((row.record_key, row.version))
            expected = "revoked" if action == "record.revoked" else "active"
            if row.status != expected:
                report.problems.append(f"record {row.record_key} version {row.version} is {row.status}; "
                                       f"its audited step ({action}) made it {expected}")
            digest = events.version_digests.get((row.record_key, row.version))
            if digest is not None and hashlib.sha256(record_line(row)).hexdigest() != digest:
                report.problems.append(f"record {row.record_key} version {row.version}: its subject, decision date "
                                       f"or fields differ from those its audited step ({action}) stored")
    for key, version in sorted(set(events.record_versions) - seen):
        report.problems.append(f"record {key} version {version}: audited ({events.record_versions[(key, version)]}) "
                               "but missing from the store")


def _check_keys(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    k = t.api_keys.c
    for row in connection.execute(select(k.id, k.authority, k.scopes, k.revoked_at, k.expires_at).order_by(k.id)):
        payload = events.keys_created.get(str(row.id))
        if payload is None:
            report.problems.append(f"API key {row.id} has no audit event (key.created)")
            continue
        if payload.get("authority") != row.authority or sorted(payload.get("scopes") or []) != sorted(row.scopes):
            report.problems.append(f"API key {row.id}: authority or scopes differ from its audited creation")
        if "expires_at" in payload and payload["expires_at"] != _text(_utc(row.expires_at)):
            report.problems.append(f"API key {row.id}: expiry differs from its audited creation")
        if (row.revoked_at is not None) != (str(row.id) in events.keys_revoked):
            report.problems.append(f"API key {row.id}: {'revoked' if row.revoked_at else 'active'} in the store, "
                                   f"{'revoked' if str(row.id) in events.keys_revoked else 'active'} in the chain")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def _expected_listing(history: list[tuple[str, dict[str, Any]]], pack: Pack | None, list_code: str
                      ) -> tuple[str | None, int, dict[str, str | None], set[str]]:
    """(state, transitions, columns, columns an event set) as the audited transitions leave a listing.
    Without the pack, a periodic review's new due date cannot be computed: review_due is left unchecked."""
    state, transitions, columns, touched = None, 0, {}, set()
    for step, payload in history:
        if step == "review_due":
            if pack is None:
                columns.pop("review_due", None)
                touched.add("review_due?")
                continue
            try:
                interval = pack.list_(list_code).duration.review_interval_months or 6
            except PackError:
                continue
            columns["review_due"] = add_months(dt.date.fromisoformat(payload["due"]), interval).isoformat()
            continue
        if step == "extended":  # `listing extend`: a later end (a transition from its state to itself)
            columns["effective_to"] = payload["to"]
            touched.add("effective_to")
            transitions += 1
            continue
        if step == "undone":  # an objection upheld after the listing ended: the end's reason changes
            columns["end_reason"] = payload["end_reason"]  # (a transition from its final state to itself)
            touched.add("end_reason")
            transitions += 1
            continue
        if step not in STATES:
            continue  # reminders: no change of state
        transitions += 1
        state = step
        if step == "proposed" and "on" in payload and "from" not in payload:
            columns["proposed_on"] = payload["on"]
            touched.add("proposed_on")
        for name in LISTING_DATES:
            if name in payload:
                columns[name] = payload[name]
                touched.add(name)
    return state, transitions, columns, touched


def _check_listings(connection: Connection, pack: Pack | None, events: _Events, report: IntegrityReport) -> None:
    L, T, E = t.listings.c, t.listing_transitions.c, t.listing_evidence.c
    counts = dict(connection.execute(select(T.listing_id, func.count()).group_by(T.listing_id)).all())
    # a listing proposed on its own (a move to the next list) names its subject, list, rule and evidence
    # in its event; those proposed by evaluation are checked leaf by leaf (`_check_proposals`)
    alone = {int(listing_id): payload for listing_id, history in events.listings.items()
             for step, payload in history[:1] if step == "proposed" and "entity_id" in payload}
    evidence: dict[int, list[int]] = defaultdict(list)
    ids = sorted(alone)
    for start in range(0, len(ids), CHUNK):
        for listing_id, record_id in connection.execute(select(E.listing_id, E.record_id)
                                                        .where(E.listing_id.in_(ids[start:start + CHUNK]))):
            evidence[listing_id].append(record_id)
    for row in connection.execute(select(t.listings).order_by(L.id)).mappings():
        history = events.listings.get(str(row["id"]))
        if not history:
            report.problems.append(f"listing {row['id']} has no audited transitions")
            continue
        proposed = alone.get(row["id"])
        if proposed is not None and (
                (row["entity_id"], row["list_code"], row["rule_version"]) !=
                (proposed["entity_id"], proposed["list"], proposed["rule_version"])
                or sorted(evidence.get(row["id"], [])) != sorted(proposed.get("evidence") or [])):
            report.problems.append(f"listing {row['id']}: its subject, list, rule or evidence differs from "
                                   "its audited proposal")
        state, transitions, columns, touched = _expected_listing(history, pack, row["list_code"])
        if row["state"] != state:
            report.problems.append(f"listing {row['id']}: state is {row['state']}, its audited transitions "
                                   f"end in {state}")
        # an extension recorded before extensions were stored as transitions has no row
        legacy = transitions - sum(step == "extended" for step, _ in history)
        if counts.get(row["id"], 0) not in (transitions, legacy):
            report.problems.append(f"listing {row['id']}: {counts.get(row['id'], 0)} transitions stored, "
                                   f"{transitions} audited")
        for name in ("proposed_on", *LISTING_DATES):
            if f"{name}?" in touched:
                continue
            if name not in touched and name not in columns:
                # never set by an audited step: must be empty (end_reason of listings ended before
                # migration 0007 was filled in by it, outside the chain)
                if row[name] is not None and name != "end_reason":
                    report.problems.append(f"listing {row['id']}: {name} is {_text(row[name])}, "
                                           "set by no audited step")
                continue
            if _text(row[name]) != columns.get(name):
                report.problems.append(f"listing {row['id']}: {name} is {_text(row[name])}, its audited "
                                       f"transitions say {columns.get(name)}")


# an objection or a repair application: its table, the step opening it, its state then, its decisions
CASES = {"objection": (t.objections, "filed", "filed_on", "open", ("upheld", "rejected")),
         "repair": (t.repairs, "applied", "applied_on", "pending", ("approved", "refused"))}


def _check_cases(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    """Each objection and repair application is what its audited steps made it: what it is about,
    when it was filed, its state and decision date. A repair set to approved in SQL ends a penalty's
    publicity on every public surface; an objection set to upheld changes the public statistics."""
    for kind, (cases, opened, opened_on, first_state, decisions) in CASES.items():
        stored = set()
        for row in connection.execute(select(cases.c.id, cases.c.listing_id, cases.c.record_key, cases.c.state,
                                             cases.c[opened_on], cases.c.decided_on).order_by(cases.c.id)):
            stored.add(str(row.id))
            steps = events.cases.get((kind, str(row.id)), [])
            opening = next((payload for step, payload in steps if step == opened), None)
            if opening is None:
                report.problems.append(f"{kind} {row.id} has no audit event ({kind}.{opened})")
                continue
            audited = {"listing": row.listing_id, "record": row.record_key, "on": _text(row[4])}
            if any(opening[name] != value for name, value in audited.items() if name in opening):  # older: fewer
                report.problems.append(f"{kind} {row.id}: what it is about or the day it was {opened} differs "
                                       f"from its audited {kind}.{opened}")
            decided = [(step, payload) for step, payload in steps if step in decisions]
            state, on = (decided[-1][0], decided[-1][1].get("on")) if decided else (first_state, None)
            if row.state != state:
                report.problems.append(f"{kind} {row.id} is {row.state}, its audited steps leave it {state}")
            elif _text(row.decided_on) != on and (on is not None or row.decided_on is not None):
                report.problems.append(f"{kind} {row.id}: decided on {_text(row.decided_on)}, "
                                       f"its audited decision says {on}")
        for case_kind, case_id in sorted(events.cases):
            if case_kind == kind and case_id not in stored:
                report.problems.append(f"{kind} {case_id}: audited but missing from the store")


def _check_proposals(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    """Each proposal of each batched event, one by one: its leaf recomputed from the store (listing,
    entity, list, rule version, state when proposed, date, subject kind, evidence) must be the leaf
    the event sealed; then the batch's Merkle root."""
    L, E = t.listings.c, t.listing_evidence.c
    for seq, payload in events.proposal_batches.items():
        sealed = [(int(listing_id), leaf) for listing_id, leaf in payload.get("proposals") or []]
        if not sealed:
            continue
        ids = [listing_id for listing_id, _ in sealed]
        low, high = min(ids), max(ids)
        rows = {row.id: row for row in connection.execute(
            select(L.id, L.entity_id, L.list_code, L.rule_version, L.proposed_on, L.subject_kind)
            .where(L.id.between(low, high)))}
        evidence: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
        for listing_id, record_id, note in connection.execute(
                select(E.listing_id, E.record_id, E.note).where(E.listing_id.between(low, high))):
            evidence[listing_id].append((record_id, note))
        for listing_id, leaf in sealed:
            row = rows.get(listing_id)
            if row is None:
                report.problems.append(f"listing {listing_id}: proposed in batch event {seq}, missing from the store")
                continue
            digest = leaf_digest(proposal_leaf(row.id, row.entity_id, row.list_code, row.rule_version, "proposed",
                                               _text(row.proposed_on), row.subject_kind, evidence.get(row.id, [])))
            if digest.hex() != leaf:
                report.problems.append(f"listing {listing_id}: its proposal (entity, list, rule, date or evidence) "
                                       f"differs from the one batch event {seq} sealed")
        if payload.get("count") != len(sealed) or payload.get("root") != merkle_root_of(
                [bytes.fromhex(leaf) for _, leaf in sealed]):
            report.problems.append(f"batch event {seq}: its proposals do not make its Merkle root")


def _check_reports(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    r = t.reports.c
    groups: dict[int, list[Any]] = defaultdict(list)
    pending = 0
    for row in connection.execute(select(r.code, r.entity_id, r.language, r.as_of, r.pdf_sha256, r.pages,
                                         r.issued_at, r.sealed_seq).order_by(r.code)):
        if row.sealed_seq is not None:
            groups[row.sealed_seq].append(row)
        elif row.code not in events.reports_issued:
            pending += 1
    for seq, rows in groups.items():
        seal = events.seals.get(seq)
        if seal is None:
            report.problems.append(f"{len(rows)} reports name seal event {seq}, which is not a report seal "
                                   "in the chain")
        elif seal.get("count") != len(rows) or seal.get("root") != merkle_root([report_leaf(row) for row in rows]):
            report.problems.append(f"reports sealed by event {seq} differ from the sealed Merkle root "
                                   f"({len(rows)} stored, {seal.get('count')} sealed)")
    for seq, seal in events.seals.items():
        if seq not in groups:
            report.problems.append(f"event {seq} seals {seal.get('count')} reports that are no longer stored")
    if pending:
        report.notes.append(f"{pending} reports issued since the last seal (sealed at the next checkpoint)")


def _check_feedback(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    """Each report-back is the one its audit event stored; none unaudited, none audited and gone."""
    stored, legacy = set(), 0
    for row in connection.execute(select(*(t.feedback.c[name] for name in FEEDBACK_COLUMNS)).order_by(t.feedback.c.id)
                                  .execution_options(yield_per=5000)):
        stored.add(str(row.id))
        digest = events.feedback.get(str(row.id))
        if digest is None and not events.feedback and not events.feedback_baseline:
            legacy += 1  # a store whose reports predate their audit: audited as they stand by the next report
        elif digest is None:
            report.problems.append(f"feedback {row.id} has no audit event ({FEEDBACK_ACTION})")
        elif feedback_digest(row) != digest:
            report.problems.append(f"feedback {row.id}: its authority, subject, measure, applied, reason, reference "
                                   f"or dates differ from its audited report ({FEEDBACK_ACTION})")
    for feedback_id in sorted(set(events.feedback) - stored, key=int):
        report.problems.append(f"feedback {feedback_id}: audited but missing from the store")
    if legacy:
        report.notes.append(f"{legacy} report-backs were stored before reports were audited: the next report "
                            "audits them as they stand")


def _check_links(connection: Connection, events: _Events, report: IntegrityReport) -> None:
    """Each record's link is the newest its events wrote: entity, state and method."""
    link = t.record_links.c
    if not events.links_audited:
        if connection.execute(select(link.record_id).limit(1)).first() is not None:
            report.notes.append("record links were written before links were audited: the next `xinyong resolve` "
                                "audits them as they stand")
        return
    differ, shown, stored = 0, 20, set()
    for row in connection.execute(select(link.record_id, link.entity_id, link.state, link.method)
                                  .order_by(link.record_id).execution_options(yield_per=5000)):
        stored.add(row.record_id)
        audited = events.links.get(row.record_id)
        if audited == (row.entity_id, row.state, row.method):
            continue
        differ += 1
        if differ <= shown:
            report.problems.append(
                f"record link {row.record_id}: {row.state} to entity {row.entity_id} ({row.method}), " +
                ("written by no audited step" if audited is None else
                 f"its audited step says {audited[1]} to entity {audited[0]} ({audited[2]})"))
    for record_id in sorted(r for r, audited in events.links.items() if audited is not None and r not in stored):
        differ += 1
        if differ <= shown:
            report.problems.append(f"record link {record_id}: audited ({events.links[record_id][1]} to entity "
                                   f"{events.links[record_id][0]}) but missing from the store")
    if differ > shown:
        report.problems.append(f"{differ - shown} more record links differ from their audited steps")


def verify_store(connection: Connection, pack: Pack | None = None, anchor: Path | None = None) -> IntegrityReport:
    """The chain, then everything it vouches for (see the module's doc); problems in the order found."""
    chain = check(connection)
    report = IntegrityReport(events=chain.events)
    if chain.problem:
        report.problems.append(chain.problem)
    if chain.note:
        report.notes.append(chain.note)
    stored = all_checkpoints(connection)
    documents = [(f"stored checkpoint {i + 1}", doc) for i, doc in enumerate(stored)]
    if anchor is not None:
        try:
            documents.append((f"checkpoint file {anchor}", load_document(anchor)))
        except AuditError as exc:
            report.problems.append(str(exc))
    public: str | None = None
    try:
        public = public_hex(signing_key(audit_files(connection)).public_key())
    except AuditError as exc:
        if documents:
            report.problems.append(f"{exc}: the signed checkpoints cannot be checked")
    events = _read_events(connection, {doc["seq"] for _, doc in documents})
    for origin, document in documents:
        report.problems.extend(_check_checkpoint(document, public, events, origin))
    report.checkpoint = max(stored, key=lambda d: d["seq"]) if stored else None
    _check_batches(connection, events, report)
    _check_keys(connection, events, report)
    _check_listings(connection, pack, events, report)
    _check_cases(connection, events, report)
    _check_proposals(connection, events, report)
    _check_reports(connection, events, report)
    _check_feedback(connection, events, report)
    _check_links(connection, events, report)
    return report
