"""Appending to and verifying the keyed, hash-chained audit table; the key and head files.

The chain's key and its head (last sequence number and hash) live outside the database,
in the store's *audit folder*, so that someone who can only write to the database can
neither recompute a forged chain nor delete the newest events unnoticed:

- SQLite ``sqlite:///path/x.db``: ``path/x.db.audit-key`` and ``path/x.db.audit-head``,
  beside the database file;
- PostgreSQL: ``~/.xinyong/audit/<host>_<port>_<dbname>/audit-key`` and ``audit-head``;
- with ``XINYONG_AUDIT_DIR`` set (either engine): ``$XINYONG_AUDIT_DIR/audit-key`` and
  ``audit-head``. The folder belongs to one store: two stores must not share it.

The key is 32 random bytes, hex, mode 0600, created by `xinyong init` and never replaced.
The head is rewritten (atomically) after each committed transaction that appended events.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import logging
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import URL, Connection, make_url

from xinyong.domain.audit import (
    EMPTY_HEAD,
    GENESIS,
    NO_HEAD,
    ChainReport,
    Head,
    event_hash,
    verify_with_head,
)
from xinyong.store import tables as t
from xinyong.store.db import StoreError, database_url

log = logging.getLogger("xinyong.audit")

try:  # POSIX: serialise head writes between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_PG_AUDIT_LOCK = 0x78696E79  # one writer at a time extends the chain
AUDIT_DIR_ENV = "XINYONG_AUDIT_DIR"
KEY_BYTES = 32


class AuditError(StoreError):
    """The audit key or head file is missing, unreadable or inconsistent; the message says where."""


# -- the audit folder ----------------------------------------------------------------------------

def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", part) or "_"


@dataclass(frozen=True)
class AuditFiles:
    """Where one store's audit key and head live, and reading and writing them."""

    key_path: Path
    head_path: Path

    @classmethod
    def for_url(cls, url: str | URL) -> AuditFiles:
        # Not cached: a relative SQLite path depends on the working directory, and
        # XINYONG_AUDIT_DIR may change; the key itself is cached (see `key`).
        parsed = make_url(database_url(url) if isinstance(url, str) else url)
        return cls._locate(parsed, os.environ.get(AUDIT_DIR_ENV))

    @classmethod
    def _locate(cls, url: URL, override: str | None) -> AuditFiles:
        if override:
            folder = Path(override).expanduser().resolve()
            return cls(folder / "audit-key", folder / "audit-head")
        backend = url.get_backend_name()
        if backend == "sqlite":
            if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
                raise AuditError(f"an in-memory SQLite database has no folder for its audit files: "
                                 f"set {AUDIT_DIR_ENV}")
            db_file = Path(url.database).expanduser().resolve()
            return cls(db_file.with_name(db_file.name + ".audit-key"),
                       db_file.with_name(db_file.name + ".audit-head"))
        folder = (Path.home() / ".xinyong" / "audit"
                  / f"{_safe(url.host or 'localhost')}_{url.port or 5432}_{_safe(url.database or '')}")
        return cls(folder / "audit-key", folder / "audit-head")

    # key

    def key(self) -> bytes:
        """The chain's key; AuditError naming the file if it is missing or malformed.
        Cached per file, read again when the file changes."""
        try:
            stat = self.key_path.stat()
        except FileNotFoundError:
            raise AuditError(f"audit key file missing: {self.key_path}; run `xinyong init` "
                             f"(or restore the key if this store already holds audit events)") from None
        except OSError as exc:
            raise AuditError(f"audit key file {self.key_path} unreadable: {exc}") from None
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = _key_cache.get(self.key_path)
        if cached and cached[0] == signature:
            return cached[1]
        try:
            key = bytes.fromhex(self.key_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise AuditError(f"audit key file {self.key_path} unreadable: {exc}") from None
        if len(key) < 16:
            raise AuditError(f"audit key file {self.key_path} holds {len(key)} bytes; expected {KEY_BYTES}")
        _key_cache[self.key_path] = (signature, key)
        return key

    def create_key(self) -> bool:
        """Create the key file if there is none (mode 0600); never replaces one. True if created."""
        self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return True

    # head

    def read_head(self) -> Head | None:
        """The recorded head, or None if there is no head file; AuditError if it is malformed."""
        try:
            raw = self.head_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(f"audit head file {self.head_path} unreadable: {exc}") from None
        try:
            data = json.loads(raw)
            head = Head(int(data["seq"]), str(data["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"audit head file {self.head_path} malformed: {exc!r}") from None
        if head.seq < 0 or not re.fullmatch(r"[0-9a-f]{64}", head.hash):
            raise AuditError(f"audit head file {self.head_path} malformed: {raw.strip()!r}")
        return head

    def write_head(self, seq: int, hash: str, *, force: bool = False) -> bool:
        """Record the head atomically (temp file + rename). Unless `force`, a head never moves back:
        a slower process that committed an earlier event does not overwrite a later head.
        True if written."""
        self.head_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _KeyLock(self.key_path):
            if not force:
                try:
                    current = self.read_head()
                except AuditError:
                    current = None
                if current is not None and current.seq >= seq:
                    return False
            fd, temp = tempfile.mkstemp(dir=self.head_path.parent, prefix=f".{self.head_path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps({"seq": seq, "hash": hash}) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.head_path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return True

    def ensure(self, *, events: int = 0, fresh: bool = False) -> list[str]:
        """Create the key and an empty head if absent, for a store holding `events` audit events.

        Never replaces a key. Refuses to create one for a store that already has events (they
        could never verify under a new key). A head is only created, or reset, when the store
        has no events; reset only for a `fresh` database (schema just created), whose old head
        file belonged to an earlier database at the same place. Returns notes for the user.
        """
        notes: list[str] = []
        if not self.key_path.exists():
            if events:
                raise AuditError(f"audit key file missing: {self.key_path}, but the audit chain holds "
                                 f"{events} events; restore the key file (a new key could not verify them)")
            self.create_key()
            notes.append("new audit key: keep a copy safe, apart from the database's backups; without it the "
                         "chain cannot be verified")
        head = self.read_head()
        if head is None:
            if events:
                notes.append(f"audit head file missing: {self.head_path}; `xinyong audit verify` "
                             "reports the chain as broken until it is restored")
            else:
                self.write_head(EMPTY_HEAD.seq, EMPTY_HEAD.hash, force=True)
        elif head.seq > 0 and not events:
            if fresh:
                self.write_head(EMPTY_HEAD.seq, EMPTY_HEAD.hash, force=True)
                notes.append(f"audit head reset: the head file recorded event {head.seq} of an earlier "
                             "database at this place")
            else:
                notes.append(f"the audit head records event {head.seq} but the store holds no events; "
                             "`xinyong audit verify` reports the deleted tail")
        return notes


class _KeyLock:
    """Head writers take turns: an exclusive flock on the key file (which is never replaced,
    unlike the head), where the platform has flock and the key exists."""

    def __init__(self, key_path: Path):
        self.path = key_path
        self.fd: int | None = None

    def __enter__(self) -> _KeyLock:
        if fcntl is not None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return self
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


_key_cache: dict[Path, tuple[tuple[int, int, int], bytes]] = {}


def audit_files(engine_or_connection: Engine | Connection) -> AuditFiles:
    return AuditFiles.for_url(engine_or_connection.engine.url)


def prepare(engine: Engine, *, fresh: bool = False) -> tuple[AuditFiles, list[str]]:
    """For `xinyong init`: make sure the store's key and head exist. Returns them and notes."""
    from xinyong.store.checkpoints import create_signing_key  # it builds on this module

    files = audit_files(engine)
    with engine.connect() as connection:
        events = connection.execute(select(func.count()).select_from(t.audit_events)).scalar_one()
    notes = files.ensure(events=events, fresh=fresh)
    if create_signing_key(files):
        notes.append("new checkpoint signing key beside the audit key: keep both out of backups and out of git")
    return files, notes


# -- appending -----------------------------------------------------------------------------------

@dataclass
class _Pending:
    """The head a transaction will record once it has committed."""

    files: AuditFiles
    key: bytes
    head: Head | None
    extends: bool | None = None  # does the chain in the database carry the recorded head?
    seq: int | None = None
    hash: str | None = None


_pending: weakref.WeakKeyDictionary[Connection, _Pending] = weakref.WeakKeyDictionary()


def _on_commit(connection: Connection) -> None:
    pending = _pending.pop(connection, None)
    if pending is None or pending.seq is None:
        return
    # ConnectionEvents.commit fires just *before* SQLAlchemy sends COMMIT. The head may only
    # record a chain that is durable, so commit here first (SQLAlchemy's own commit right after
    # finds nothing left to do). If this commit fails, the head is left as it was.
    connection.connection.dbapi_connection.commit()
    if not pending.extends:
        return  # the chain no longer carries the recorded head: keep that evidence
    try:
        pending.files.write_head(pending.seq, pending.hash)
    except OSError as exc:  # committed all the same; `audit verify` accepts a head left behind
        # a log line, not a Python warning: the operator sees one sentence, not a source location
        log.warning("warning: audit events up to %s committed, but the head file %s could not be written "
                    "(%s); `xinyong audit verify` accepts them, and the next write records the head once "
                    "the file can be written", pending.seq, pending.files.head_path, exc.strerror or exc)


def _on_rollback(connection: Connection, *_args: Any) -> None:
    _pending.pop(connection, None)


def _listen(connection: Connection) -> None:
    if not event.contains(connection, "commit", _on_commit):
        event.listen(connection, "commit", _on_commit)
        event.listen(connection, "rollback", _on_rollback)
        # events appended inside a savepoint that is rolled back: record no head (the next
        # append in the transaction starts over, and a head left behind is accepted)
        event.listen(connection, "rollback_savepoint", _on_rollback)


def _extends(connection: Connection, head: Head | None, last_seq: int | None, last_hash: str | None) -> bool:
    if head is None:
        return last_seq is None  # no head yet is fine only for an empty chain
    if head.seq == 0:
        return head.hash == GENESIS
    if last_seq is None or head.seq > last_seq:
        return False
    if head.seq == last_seq:
        return head.hash == last_hash
    at_head = connection.execute(select(t.audit_events.c.hash).where(t.audit_events.c.seq == head.seq)).scalar()
    return at_head == head.hash


def subject_actor(entity_key: str) -> str:
    """How a subject acting for itself (its portal) is named as an actor: in events and as an objection's filer."""
    return f"subject:{entity_key}"


def append_event(connection: Connection, *, actor: str, action: str, object_type: str,
                 object_id: str, payload: dict[str, Any], reason: str | None = None,
                 legal_basis: str | None = None) -> int:
    """Append one event inside the caller's transaction; returns its sequence number."""
    return append_events(connection, [{"actor": actor, "action": action, "object_type": object_type,
                                       "object_id": object_id, "payload": payload, "reason": reason,
                                       "legal_basis": legal_basis}])


def append_events(connection: Connection, events: list[dict[str, Any]]) -> int:
    """Append events in order inside the caller's transaction; returns the last sequence number.

    The store's head file is rewritten once that transaction commits, and only if the chain
    in the database still carried the recorded head: a tampered chain keeps its evidence.
    """
    pending = _pending.get(connection)
    if pending is None:
        files = audit_files(connection)
        key = files.key()
        try:
            pending = _Pending(files, key, files.read_head())
        except AuditError:  # a malformed head: appends go on, the head stays for `audit verify`
            pending = _Pending(files, key, None, extends=False)
        _listen(connection)
        _pending[connection] = pending
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = connection.execute(
        select(t.audit_events.c.seq, t.audit_events.c.hash).order_by(t.audit_events.c.seq.desc()).limit(1)
    ).first()
    if pending.extends is None:
        pending.extends = _extends(connection, pending.head, last.seq if last else None, last.hash if last else None)
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    # Microseconds dropped: both engines then give back exactly what was hashed.
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = []
    for item in events:
        seq += 1
        event_body = {"seq": seq, "at": at.isoformat(), "actor": item["actor"], "action": item["action"],
                      "object_type": item["object_type"], "object_id": str(item["object_id"]),
                      "reason": item.get("reason"), "legal_basis": item.get("legal_basis"),
                      "payload": item["payload"]}
        digest = event_hash(prev, event_body, pending.key)
        rows.append({**event_body, "at": at, "prev_hash": prev, "hash": digest})
        prev = digest
    if rows:
        connection.execute(t.audit_events.insert(), rows)
        pending.seq, pending.hash = seq, prev
    return seq


# -- verifying -----------------------------------------------------------------------------------

def _as_utc_iso(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def stored_events(connection: Connection) -> Iterator[dict[str, Any]]:
    """The audit events as they were hashed, in sequence order."""
    rows = connection.execute(select(t.audit_events).order_by(t.audit_events.c.seq)).mappings()
    return ({**row, "at": _as_utc_iso(row["at"])} for row in rows)


def check(connection: Connection) -> ChainReport:
    """Recompute the keyed chain and compare its end with the head file."""
    files = audit_files(connection)
    try:
        key = files.key()
        head = files.read_head()
    except AuditError as exc:
        count = connection.execute(select(func.count()).select_from(t.audit_events)).scalar_one()
        return ChainReport(count, str(exc))
    report = verify_with_head(stored_events(connection), key, head)
    if head is None and report.problem and report.problem.startswith(NO_HEAD):
        return report._replace(problem=f"{report.problem}: head file {files.head_path} missing")
    return report


def verify(connection: Connection) -> tuple[int, str | None]:
    """(events checked, first problem or None)."""
    report = check(connection)
    return report.events, report.problem
