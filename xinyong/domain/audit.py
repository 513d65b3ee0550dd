"""The audit chain: each event's hash covers its content and the previous event's hash.

Altering, removing or reordering any event breaks every hash after it, which
`verify_chain` finds. Pure: the store supplies the events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "at", "actor", "action", "object_type", "object_id", "reason", "legal_basis", "payload")


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    body = {k: event.get(k) for k in HASHED_FIELDS}
    blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(prev_hash.encode() + blob).hexdigest()


def verify_chain(events: Iterable[Mapping[str, Any]]) -> tuple[int, str | None]:
    """Returns (events checked, first problem or None)."""
    prev = GENESIS
    count = 0
    for event in events:
        count += 1
        if event["prev_hash"] != prev:
            return count, f"event {event['seq']}: previous hash does not match event before it"
        if event_hash(prev, event) != event["hash"]:
            return count, f"event {event['seq']}: content does not match its hash (altered)"
        prev = event["hash"]
    return count, None
