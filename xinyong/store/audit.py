"""Appending to and verifying the hash-chained audit table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from xinyong.domain.audit import GENESIS, event_hash, verify_chain
from xinyong.store import tables as t

_PG_AUDIT_LOCK = 0x78696E79  # one writer at a time extends the chain


def append_event(connection: Connection, *, actor: str, action: str, object_type: str,
                 object_id: str, payload: dict[str, Any], reason: str | None = None,
                 legal_basis: str | None = None) -> int:
    """Append one event inside the caller's transaction; returns its sequence number."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = connection.execute(
        select(t.audit_events.c.seq, t.audit_events.c.hash).order_by(t.audit_events.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    # Microseconds dropped: both engines then give back exactly what was hashed.
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    event = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
             "object_type": object_type, "object_id": str(object_id), "reason": reason,
             "legal_basis": legal_basis, "payload": payload}
    connection.execute(t.audit_events.insert().values(
        **{**event, "at": at}, prev_hash=prev, hash=event_hash(prev, event)))
    return seq


def _as_utc_iso(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def verify(connection: Connection) -> tuple[int, str | None]:
    rows = connection.execute(select(t.audit_events).order_by(t.audit_events.c.seq)).mappings()
    return verify_chain({**row, "at": _as_utc_iso(row["at"])} for row in rows)
