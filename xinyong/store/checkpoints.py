"""Ed25519-signed checkpoints of the audit chain's head, and their signing key.

A checkpoint says "the chain held event SEQ with hash HASH at time AT", signed with a key that
lives beside the audit key (``x.db.checkpoint-key``, or ``checkpoint-key`` in the audit folder),
never in the database and never in a backup. Checkpoints are stored in `chain_checkpoints`,
published at ``GET /v1/checkpoints/latest`` and printed on every credit report: whoever keeps one
can later show that the chain once reached that far, so deleting the newest events and rewriting
the head file no longer goes unnoticed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.engine import Connection

from xinyong.store import tables as t
from xinyong.store.audit import AuditError, AuditFiles, audit_files

CHECKPOINT_FORMAT = "xinyong-checkpoint-1"


def signing_key_path(files: AuditFiles) -> Path:
    """Beside the audit key: `x.db.checkpoint-key` for `x.db.audit-key`, `checkpoint-key` for `audit-key`."""
    return files.key_path.with_name(files.key_path.name.replace("audit-key", "checkpoint-key"))


def create_signing_key(files: AuditFiles) -> bool:
    """Make the Ed25519 signing key (32 raw bytes, hex, mode 0600) if there is none. True if created."""
    path = signing_key_path(files)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(raw.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def signing_key(files: AuditFiles) -> Ed25519PrivateKey:
    path = signing_key_path(files)
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
        return Ed25519PrivateKey.from_private_bytes(raw)
    except FileNotFoundError:
        raise AuditError(f"checkpoint signing key missing: {path}; run `xinyong init` (or restore the key "
                         "if this store already has checkpoints)") from None
    except (OSError, ValueError) as exc:
        raise AuditError(f"checkpoint signing key {path} unreadable: {exc}") from None


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def fingerprint(public_key_hex: str) -> str:
    """A short name of a signing key, printed on reports: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def message(seq: int, hash: str, at: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return f"{CHECKPOINT_FORMAT}:{seq}:{hash}:{at}".encode()


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def as_document(row: Any) -> dict[str, Any]:
    """A checkpoint as published and saved (JSON-ready)."""
    return {"format": CHECKPOINT_FORMAT, "seq": int(row["seq"]), "hash": row["hash"], "at": _iso(row["at"]),
            "public_key": row["public_key"], "signature": row["signature"],
            "fingerprint": fingerprint(row["public_key"])}


def write_checkpoint(connection: Connection) -> dict[str, Any] | None:
    """Sign the chain's current head and store it, inside the caller's transaction; None for an empty
    chain. A head already checkpointed is not signed twice."""
    last = connection.execute(select(t.audit_events.c.seq, t.audit_events.c.hash)
                              .order_by(t.audit_events.c.seq.desc()).limit(1)).first()
    if last is None:
        return None
    newest = latest(connection)
    if newest is not None and newest["seq"] == last.seq and newest["hash"] == last.hash:
        return newest
    key = signing_key(audit_files(connection))
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    row = {"seq": last.seq, "hash": last.hash, "at": at, "public_key": public_hex(key.public_key()),
           "signature": key.sign(message(last.seq, last.hash, _iso(at))).hex()}
    connection.execute(t.chain_checkpoints.insert().values(**row))
    return as_document(row)


def latest(connection: Connection) -> dict[str, Any] | None:
    c = t.chain_checkpoints.c
    row = connection.execute(select(t.chain_checkpoints).order_by(c.seq.desc(), c.id.desc()).limit(1)).mappings().first()
    return as_document(row) if row else None


def all_checkpoints(connection: Connection) -> list[dict[str, Any]]:
    c = t.chain_checkpoints.c
    return [as_document(r) for r in connection.execute(select(t.chain_checkpoints).order_by(c.id)).mappings()]


def load_document(path: Path) -> dict[str, Any]:
    """A checkpoint saved earlier (`xinyong audit checkpoint -o FILE`); AuditError naming the file if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        document = {"seq": int(data["seq"]), "hash": str(data["hash"]), "at": str(data["at"]),
                    "public_key": str(data["public_key"]), "signature": str(data["signature"])}
    except FileNotFoundError:
        raise AuditError(f"{path}: no such checkpoint file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: not a checkpoint: {exc!r}") from None
    return document


def signature_problem(document: dict[str, Any], expected_public_hex: str) -> str | None:
    """Why a checkpoint's signature does not hold under our key, or None."""
    if document["public_key"] != expected_public_hex:
        return (f"checkpoint at seq {document['seq']} is signed by key {fingerprint(document['public_key'])}, "
                f"not this store's key {fingerprint(expected_public_hex)}")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(expected_public_hex)).verify(
            bytes.fromhex(document["signature"]), message(document["seq"], document["hash"], document["at"]))
    except (InvalidSignature, ValueError):
        return f"checkpoint at seq {document['seq']}: signature does not verify (altered)"
    return None
