"""Ingestion: one agency file -> one atomic batch of records and quarantined rows.

The file is streamed in chunks inside a single transaction: accepted records,
quarantined rows, the batch's counts and its audit event commit together or not at
all. A file that cannot be read at all is refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from xinyong import settings
from xinyong.domain.pack import Pack, PackError
from xinyong.domain.records import (
    FileRefused,
    Rejection,
    RowValidator,
    check_mapping,
    content_hash,
    decision_number,
    map_columns,
)
from xinyong.services.intake.readers import RowError, Table, open_table
from xinyong.domain.calendar import pack_today
from xinyong.services.intake.register import apply_registrations
from xinyong.store import tables as t
from xinyong.services.operations.integrity import BatchDigest
from xinyong.store.audit import append_event
from xinyong.store.bulk import bulk_session, collector_paused, insert_rows, render_value

CHUNK = 5000
RECORD_COLUMNS = ("record_key", "version", "authority", "category", "status", "subject_name",
                  "subject_kind", "subject_code", "subject_scheme", "subject_code_verified",
                  "decision_date", "fields", "extras", "warnings", "notes", "content_hash", "batch_id",
                  "row_number", "created_at")
QUARANTINE_COLUMNS = ("batch_id", "row_number", "field", "reason", "raw", "reason_code", "params")


@dataclass
class IngestResult:
    batch_id: int | None
    file: str
    authority: str
    category: str
    file_format: str
    encoding: str | None
    rows: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    unchanged: int = 0
    new_versions: int = 0
    warnings: int = 0  # identifier problems: a code failing its check, an unrecognisable code
    notes: int = 0  # other observations (an ID number moved out of a name cell, a 15-digit number converted...)
    duplicate_of: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_mapping(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first_line = " ".join(str(exc).split())  # YAML errors span several lines
        raise FileRefused(f"{path}: unreadable mapping ({first_line})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise FileRefused(f"{path}: a mapping is YAML of `original header: field name` pairs")
    return data


def check_authority(pack: Pack, authority: str, category: str) -> None:
    try:
        spec = pack.authority(authority)
        pack.category(category)
    except PackError as exc:
        raise FileRefused(str(exc)) from None
    if category not in spec.competences:
        raise FileRefused(f"authority {authority!r} is not competent for category {category!r} "
                          f"(its competences: {', '.join(spec.competences)})")


def ingest_file(engine: Engine, pack: Pack, path: Path, authority: str, category: str, *,
                mapping: dict[str, str] | None = None, actor: str = "cli",
                progress: Callable[[int], None] | None = None) -> IngestResult:
    check_authority(pack, authority, category)
    category_spec = pack.category(category)
    if mapping:
        known = {f.name for f in pack.fields_of(category_spec)}
        unknown = sorted(set(mapping.values()) - known)
        if unknown:
            raise FileRefused(f"mapping names unknown field(s) {', '.join(unknown)} "
                              f"for category {category}")
    def header_fields(headers: list[Any]) -> set[str]:
        return set(map_columns(pack, category_spec, [str(h) for h in headers], mapping).field_of.values())

    table = open_table(path, header_fields)  # refuses unreadable files before any write
    digest = file_hash(path)
    result = IngestResult(None, path.name, authority, category, table.file_format, table.encoding)
    with engine.connect() as connection:
        earlier = connection.execute(select(t.batches.c.id).where(
            t.batches.c.authority == authority, t.batches.c.category == category,
            t.batches.c.file_hash == digest)).scalar()
    if earlier is not None:
        result.duplicate_of = earlier
        return result
    try:
        check_mapping(pack, category_spec, map_columns(pack, category_spec, table.headers, mapping))
    except FileRefused as exc:
        raise FileRefused(f"{path.name}: {exc}") from None
    # Validated in this thread, chunk by chunk as the writer asks: validating on a thread of its own
    # (services.readahead) gained no time at 1,000,000 rows (GIL contention: 51 s against 48-50 s,
    # 7 s more CPU), nor did a forked worker (the rows' transport costs what validating them does)
    chunks = validated_chunks(pack, category, authority, table, mapping, pack_today(pack))
    with collector_paused(), engine.begin() as connection, \
            bulk_session(connection, SQLITE_BATCH_CACHE_KIB, temp_in_memory=False):
        now = dt.datetime.now(dt.timezone.utc)
        batch_id = connection.execute(t.batches.insert().values(
            authority=authority, category=category, file_name=path.name, file_hash=digest,
            file_format=table.file_format, encoding=table.encoding, headers=table.headers,
            mapping={}, rows=0, accepted=0, quarantined=0, duplicates=0, unchanged=0,
            new_versions=0, warnings=0, notes=0, pack=f"{pack.code}@{pack.version}", created_at=now,
        ).returning(t.batches.c.id)).scalar_one()
        result.batch_id = batch_id
        writer = _BatchWriter(connection, batch_id, authority, category, category_spec.natural_key,
                              render_value(connection, t.records.c.created_at, now),
                              _kind_of_type(pack) if category_spec.creates_entities else None,
                              pack_today(pack), category_spec.subject.legal_representative_field,
                              pack.primary_scheme)
        headers, column_mapping = table.headers, {}
        for headers, column_mapping, accepted, rejected in chunks:
            writer.write(headers, accepted, rejected, result)
            if progress:
                progress(len(accepted) + len(rejected))
        # Refusing here rolls the whole batch back: nothing of the file stays.
        if result.rows == 0:
            raise FileRefused(f"{path.name}: no data rows, only a header; an empty file is refused")
        check_quarantine_share(path.name, result, writer.commonest_reason())
        connection.execute(t.batches.update().where(t.batches.c.id == batch_id).values(
            headers=headers, mapping=column_mapping, rows=result.rows, accepted=result.accepted,
            quarantined=result.quarantined, duplicates=result.duplicates,
            unchanged=result.unchanged, new_versions=result.new_versions, warnings=result.warnings,
            notes=result.notes))
        # what `records_digest` reads from the batch's records, which `audit verify` recomputes
        stored, stored_digest = writer.digest.finish()
        append_event(connection, actor=actor, action="batch.ingested", object_type="batch",
                     object_id=str(batch_id), payload={
                         "file": path.name, "file_hash": digest, "authority": authority,
                         "category": category, "rows": result.rows, "accepted": result.accepted,
                         "quarantined": result.quarantined, "duplicates": result.duplicates,
                         "records": stored, "records_digest": stored_digest})
    return result


# SQLite's page cache while a batch is written (KiB): with the default 2 MB, the inserts of a large
# file in random key order keep spilling index pages to the WAL (a fifth more CPU, far more I/O).
# Bounded, so memory stays flat whatever the file's size; SQLite's sorter (the audit digest's
# ORDER BY) may use as much again, so its temporary b-trees stay on disk. 64 MB made peak RSS at
# 200k rows 1.21x that at 50k: too close to bench/ingest.py's 1.25.
SQLITE_BATCH_CACHE_KIB = 32768


def check_quarantine_share(name: str, result: IngestResult, commonest: str | None) -> None:
    """A file that is mostly rejects is the wrong file or a broken export: refuse it whole, saying
    why most rows failed (a code column a spreadsheet kept as numbers fails every row, and is no
    wrong file)."""
    share = settings.MAX_QUARANTINE_SHARE.value()
    if result.rows >= settings.QUARANTINE_SHARE_MIN_ROWS.value() and result.quarantined > share * result.rows:
        raise FileRefused(f"{name}: {result.quarantined} of {result.rows} rows would be quarantined, more than "
                          f"{share:.0%} ({settings.MAX_QUARANTINE_SHARE.name}); is it the right file for this "
                          "category?" + (f" The commonest reason: {commonest}" if commonest else ""))


class Accepted(NamedTuple):
    """A valid row, its values ready for the store's bulk path (JSON already serialised)."""

    number: int
    record_key: str
    natural_key: str
    content_hash: str
    subject_name: str | None
    subject_kind: str | None
    subject_code: str | None
    subject_scheme: str | None
    subject_code_verified: bool
    decision_date: str | None
    fields: str
    extras: str
    warnings: str
    warning_count: int
    notes: str
    note_count: int
    sorted_fields: bytes  # fields as JSON, keys sorted: what content_hash and the batch's audit digest cover
    cells: list[Any]  # the row as sent, should it turn out to conflict within the batch


class Rejected(NamedTuple):
    number: int
    field: str | None
    reason: str
    raw: str  # JSON of the row keyed by original header, for the rejects file
    reason_code: str = "invalid_value"  # domain.values.REASON_CODES, rendered per language on pages
    params: str = "{}"  # JSON of the reason's parameters


Chunk = tuple[list[str], dict[str, str | None], list[Accepted], list[Rejected]]


def validated_chunks(pack: Pack, category: str, authority: str, table: Table,
                     mapping: dict[str, str] | None, today: dt.date | None = None) -> Iterator[Chunk]:
    """Read and validate in chunks; touches no store. `today` bounds decision dates.

    Each chunk is validated column-wise (`domain.columnar`); the rows its fast path leaves
    undecided go through `RowValidator.validate` one by one.
    """
    # here, not at the top: pyarrow is ~0.3 s of imports that `serve` (which imports this module for
    # POST /v1/records) should not pay before it can answer a screening request
    from xinyong.domain.columnar import ColumnValidator

    spec = pack.category(category)
    validator = RowValidator(pack, spec, authority, map_columns(pack, spec, table.headers, mapping), today)
    columns = ColumnValidator(validator)
    rows = iter(table.rows)
    dumps = orjson.dumps
    while chunk := list(islice(rows, CHUNK)):
        if len(table.headers) != len(validator.mapping.headers):  # JSON Lines grew a key
            validator = RowValidator(pack, spec, authority, map_columns(pack, spec, table.headers, mapping), today)
            columns = ColumnValidator(validator)
        headers = validator.mapping.headers
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        readable = [(number, cells) for number, cells in chunk if not isinstance(cells, RowError)]
        fast = iter(columns.fast([cells for _, cells in readable]))
        for number, cells in chunk:
            if isinstance(cells, RowError):
                raw = raw_row(headers, cells.cells) if cells.cells is not None else dumps({"line": cells.raw}).decode()
                rejected.append(Rejected(number, None, cells.reason, raw, cells.code,
                                         dumps({"text": cells.reason}).decode()))
                continue
            f = next(fast)
            if f is not None:
                accepted.append(Accepted(
                    number, f.record_key, f.natural_key, f.content_hash, f.subject_name, None, f.subject_code,
                    f.subject_scheme, f.subject_code_verified, f.decision_date, f.fields, f.extras, "[]", 0,
                    "[]", 0, f.sorted_fields, cells))
                continue
            r = validator.validate(cells)
            if isinstance(r, Rejection):
                rejected.append(Rejected(number, r.field, r.reason, raw_row(headers, cells), r.code,
                                         dumps(r.params).decode()))
                continue
            accepted.append(Accepted(
                number, r.record_key, r.natural_key, r.content_hash, r.subject_name, r.subject_kind,
                r.subject_code, r.subject_scheme, r.subject_code_verified, r.decision_date,
                dumps(r.fields).decode(), dumps(r.extras).decode(), dumps(r.warnings).decode(),
                len(r.warnings), dumps(r.notes).decode(), len(r.notes), dumps(r.fields, option=orjson.OPT_SORT_KEYS),
                cells))
        yield list(table.headers), validator.mapping.as_dict(), accepted, rejected


class _BatchWriter:
    """Classifies each validated row against the batch and the store, then writes a chunk."""

    def __init__(self, connection: Connection, batch_id: int, authority: str, category: str,
                 key_field: str, created_at: Any, kind_of_type: dict[str, str] | None, today: dt.date,
                 legal_rep_field: str | None, primary_scheme: str | None):
        self.connection = connection
        self.key_field = key_field
        self.batch_id = batch_id
        self.authority = authority
        self.category = category
        self.created_at = created_at
        self.kind_of_type = kind_of_type  # set when the category is the entity register
        self.today = today
        self.legal_rep_field = legal_rep_field  # where the register names the legal representative
        self.primary_scheme = primary_scheme  # the pack's scheme whose valid code keys an entity
        self.digest = BatchDigest(connection)
        self._revoked_decisions: dict[str, set[str]] | None = None
        # (field, reason code) -> rows and the first row's reason: what a refused file is told
        self._reasons: dict[tuple[str | None, str], list[Any]] = {}

    def commonest_reason(self) -> str | None:
        if not self._reasons:
            return None
        count, number, field, reason = max(self._reasons.values(), key=lambda seen: seen[0])
        return f"{count} rows, e.g. row {number}: {field + ': ' if field and not reason.startswith(field) else ''}{reason}"

    def write(self, headers: list[str], accepted: list[Accepted], rejected: list[Rejected],
              result: IngestResult) -> None:
        result.rows += len(accepted) + len(rejected)
        rejected = list(rejected)
        latest, settled, revoked = self._latest_versions(accepted)
        to_store: list[tuple[Accepted, int]] = []
        for row in accepted:
            known = latest.get(row.record_key)
            version = 1
            if known is not None:
                known_version, known_hash, known_batch, known_row = known
                # the newest version's pack fields, or (from an earlier batch) those of a version a
                # revocation ended: a re-send never brings a revoked decision back
                if known_hash == row.content_hash or (
                        known_batch != self.batch_id and row.content_hash in settled.get(row.record_key, ())):
                    known_hash = row.content_hash
                    if known_batch == self.batch_id:
                        result.duplicates += 1
                    else:
                        # unchanged since an earlier batch: counted as this file's row (its warnings
                        # too), and a repeat later in this file is this file's duplicate
                        result.accepted += 1
                        result.unchanged += 1
                        result.warnings += row.warning_count
                        latest[row.record_key] = (known_version, known_hash, self.batch_id, row.number)
                    continue
                if row.record_key in revoked:  # what was revoked stays revoked: no re-send restores it
                    rejected.append(Rejected(row.number, self.key_field,
                                             f"{row.natural_key} was revoked: a re-sent row does not restore a "
                                             "revoked decision", raw_row(headers, row.cells), "revoked_record",
                                             orjson.dumps({"key": row.natural_key}).decode()))
                    continue
                if known_batch == self.batch_id:
                    rejected.append(Rejected(row.number, self.key_field,
                                             f"{row.natural_key} already appears in row {known_row} of this "
                                             "file with different content", raw_row(headers, row.cells),
                                             "conflicting_duplicate",
                                             orjson.dumps({"key": row.natural_key, "row": str(known_row)}).decode()))
                    continue
                version = known_version + 1
                result.new_versions += 1
            elif self._revoked_decision(row):  # the revoked decision under another key: still revoked
                rejected.append(Rejected(row.number, self.key_field,
                                         f"{row.natural_key} was revoked: a re-sent row does not restore a "
                                         "revoked decision", raw_row(headers, row.cells), "revoked_record",
                                         orjson.dumps({"key": row.natural_key}).decode()))
                continue
            latest[row.record_key] = (version, row.content_hash, self.batch_id, row.number)
            result.accepted += 1
            result.warnings += row.warning_count
            result.notes += row.note_count
            to_store.append((row, version))
        result.quarantined += len(rejected)
        for row in rejected:
            seen = self._reasons.setdefault((row.field, row.reason_code), [0, row.number, row.field, row.reason])
            seen[0] += 1
        batch_id, created_at = self.batch_id, self.created_at
        insert_rows(self.connection, t.records, RECORD_COLUMNS, (
            (r.record_key, version, self.authority, self.category, "active", r.subject_name,
             r.subject_kind, r.subject_code, r.subject_scheme, r.subject_code_verified,
             r.decision_date, r.fields, r.extras, r.warnings, r.notes, r.content_hash, batch_id, r.number,
             created_at)
            for r, version in to_store))
        line = BatchDigest.line
        self.digest.add([(r.record_key, version, line(r.record_key, version, "active", r.subject_name, r.subject_kind,
                                                      r.subject_code, r.decision_date, r.content_hash, r.sorted_fields))
                         for r, version in to_store])
        if rejected:
            insert_rows(self.connection, t.quarantine, QUARANTINE_COLUMNS,
                        ((batch_id, *r) for r in sorted(rejected)))
        if self.kind_of_type is not None and to_store:
            apply_registrations(self.connection, [r for r, _ in to_store], self.kind_of_type, self.today,
                                self.legal_rep_field, self.primary_scheme)

    def _latest_versions(self, accepted: list[Accepted]) -> tuple[dict[str, tuple[int, str, int, int]],
                                                                   dict[str, set[str]], set[str]]:
        """Newest stored version of each key: (version, content hash, batch, row); for each
        key, the content hashes a row may equal to be unchanged: the newest version's, and those
        of every version up to the key's last revocation; and the keys whose newest version is
        revoked (a row with other content for them is refused: what was revoked stays revoked).

        A hash stored before hashes left unknown columns out covered them too: for a row whose
        hash matches none of these, those versions' fields are hashed again (a few rows: the new
        versions), so a re-send does not become a version for its extra columns alone."""
        keys = {row.record_key for row in accepted}
        if not keys:
            return {}, {}, set()
        # each version's fields as stored text, decoded (by orjson) only for a row that matches no
        # stored hash: a second read of the changed rows' versions, and SQLAlchemy's JSON type (the
        # standard library's decoder), were most of the check of a changed register
        fields = "fields::text" if self.connection.dialect.name == "postgresql" else "fields"
        versions: dict[str, list[list[Any]]] = {}  # version, content hash, batch, row, status, fields
        for key, *stored in self._stored_versions(
                sorted(keys), f"record_key, version, content_hash, batch_id, row_number, status, {fields}"):
            versions.setdefault(key, []).append(stored)
        found: dict[str, tuple[int, str, int, int]] = {}
        restatable: dict[str, list[str]] = {}  # the stored fields of the versions whose content a row may restate
        settled: dict[str, set[str]] = {}
        revoked: set[str] = set()
        for key, stored in versions.items():
            newest = max(stored)
            found[key] = tuple(newest[:4])
            if newest[4] == "revoked":
                revoked.add(key)
            if len(stored) > 1:  # most keys have one version, which counts
                last_revoked = max((v[0] for v in stored if v[4] == "revoked"), default=0)
                stored = [v for v in stored if v[0] == newest[0] or v[0] <= last_revoked]
            settled[key] = {v[1] for v in stored}
            restatable[key] = [v[5] for v in stored]
        unmatched = {row.record_key for row in accepted
                     if row.record_key in settled and row.content_hash not in settled[row.record_key]}
        for key in unmatched:
            settled[key].update(content_hash(orjson.loads(text)) for text in restatable[key])
        return found, settled, revoked

    def _revoked_decision(self, row: Accepted) -> bool:
        """A new key for a decision this authority's revoked record of the same subject (its code,
        or its name) carries (`domain.records.decision_number`): the case re-sent written another
        way, (2026) for （2026）, or the firm's name for its code, brought an annulled decision back."""
        if self._revoked_decisions is None:  # once a batch: revocations are few (the later versions' index)
            r = t.records.c
            self._revoked_decisions = {}
            for key, code, name in self.connection.execute(
                    select(r.record_key, r.subject_code, r.subject_name).where(
                        r.version > 1, r.status == "revoked", r.authority == self.authority,
                        r.category == self.category)):
                self._revoked_decisions.setdefault(decision_number(key), set()).update({code, name} - {None})
        subjects = self._revoked_decisions.get(decision_number(row.record_key)) if self._revoked_decisions else None
        return bool(subjects) and bool({row.subject_code, row.subject_name} & subjects)

    def _stored_versions(self, keys: list[str], columns: str) -> Iterator[tuple]:
        """`columns` of every stored version of `keys`, through the driver: compiling a select with
        hundreds of bound values cost SQLAlchemy more than the query (a quarter of the write of a
        new file)."""
        cursor = self.connection.connection.driver_connection.cursor()
        try:
            if self.connection.dialect.name == "postgresql":
                cursor.execute(f"SELECT {columns} FROM records WHERE record_key = ANY(%s)", (keys,))
                yield from cursor.fetchall()
                return
            for part in _parts(keys, 900):  # stay under SQLite's bound-parameter limit
                cursor.execute(f"SELECT {columns} FROM records WHERE record_key IN ({', '.join('?' * len(part))})",
                               part)
                yield from cursor.fetchall()
        finally:
            cursor.close()


def _kind_of_type(pack: Pack) -> dict[str, str]:
    return {label: kind.value for label, kind in pack.kind_synonyms.items()}


def raw_row(headers: Sequence[str], cells: list[Any]) -> str:
    """The row as sent, keyed by original header, for the rejects file."""
    return orjson.dumps({h: _plain(cells[i]) for i, h in enumerate(headers) if i < len(cells)},
                        default=str).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _parts(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

