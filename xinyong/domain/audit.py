"""The audit chain: each event's MAC covers its content and the previous event's MAC.

Altering, removing or reordering any event breaks every link after it, which
`verify_chain` finds. The link is an HMAC-SHA256 under a secret key kept outside the
database, so someone who can only write to the database cannot recompute a forged chain;
and the chain's head (last sequence number and its hash), also kept outside the database,
catches a deleted tail, which no link inside the chain could. Pure: the store supplies
the events, the key and the head.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "at", "actor", "action", "object_type", "object_id", "reason", "legal_basis", "payload")


class Head(NamedTuple):
    """The last event of the chain as last recorded outside the database."""

    seq: int
    hash: str


EMPTY_HEAD = Head(0, GENESIS)
NO_HEAD = "no head recorded"


class ChainReport(NamedTuple):
    events: int
    problem: str | None  # the first thing wrong, or None when the chain is intact
    note: str | None = None  # something worth knowing that is not a break

    @property
    def intact(self) -> bool:
        return self.problem is None


def canonical(event: Mapping[str, Any]) -> bytes:
    """The bytes of an event that its hash covers: the hashed fields, keys sorted."""
    body = {k: event.get(k) for k in HASHED_FIELDS}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def event_hash(prev_hash: str, event: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256, under `key`, of the previous event's hash and this event's canonical form."""
    return hmac.new(key, prev_hash.encode() + canonical(event), hashlib.sha256).hexdigest()


def _walk(events: Iterable[Mapping[str, Any]], key: bytes, head_seq: int | None
          ) -> tuple[int, str | None, int, str | None]:
    """(events read, first problem, last seq, hash of the event numbered head_seq)."""
    prev, count, last_seq, at_head = GENESIS, 0, 0, None
    for event in events:
        count += 1
        if event["prev_hash"] != prev:
            return count, f"event {event['seq']}: previous hash does not match event before it", last_seq, at_head
        if not hmac.compare_digest(event_hash(prev, event, key), str(event["hash"])):
            return count, f"event {event['seq']}: content does not match its hash (altered)", last_seq, at_head
        prev, last_seq = event["hash"], event["seq"]
        if event["seq"] == head_seq:
            at_head = event["hash"]
    return count, None, last_seq, at_head


def verify_chain(events: Iterable[Mapping[str, Any]], key: bytes) -> tuple[int, str | None]:
    """Returns (events checked, first problem or None). The events must come in seq order."""
    count, problem, _, _ = _walk(events, key, None)
    return count, problem


def verify_with_head(events: Iterable[Mapping[str, Any]], key: bytes, head: Head | None) -> ChainReport:
    """The chain must verify and end at or after `head` (None: no head was recorded), holding it.

    A head behind the chain's end is accepted when the events after it verify: the process
    that committed them stopped before it could record the new head.
    """
    count, problem, last_seq, at_head = _walk(events, key, head.seq if head else None)
    if problem is not None:
        return ChainReport(count, problem)
    if head is None:
        if count:
            return ChainReport(count, f"{NO_HEAD} for a chain of {count} events")
        return ChainReport(0, None, f"{NO_HEAD} yet")
    if head.seq > last_seq:
        return ChainReport(count, f"tail deleted: head file says seq {head.seq}, database ends at {last_seq}")
    if head.seq == 0:
        if head.hash != GENESIS:
            return ChainReport(count, f"head file malformed: seq 0 with hash {head.hash}")
    elif at_head is None:
        return ChainReport(count, f"event {head.seq}: recorded as the head but missing from the chain")
    elif not hmac.compare_digest(at_head, head.hash):
        return ChainReport(count, f"event {head.seq}: differs from the recorded head")
    if head.seq < last_seq:
        return ChainReport(count, None, f"events {head.seq + 1}..{last_seq} were committed after the head was "
                                        "last recorded (a process stopped between commit and head write); "
                                        "they verify")
    return ChainReport(count, None)


def leaf_digest(leaf: bytes) -> bytes:
    """The Merkle hash of one leaf: SHA-256 of 0x00 and the leaf (so a leaf can never pass for a node)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def merkle_root_of(digests: list[bytes]) -> str:
    """SHA-256 Merkle root (hex) over leaf digests (`leaf_digest`) in the given order: each pair
    hashed with a 0x01 prefix, an odd node carried up unpaired. The root of no leaves is the hash
    of nothing."""
    if not digests:
        return hashlib.sha256(b"").hexdigest()
    level = list(digests)
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def merkle_root(leaves: list[bytes]) -> str:
    """SHA-256 Merkle root (hex) of `leaves` in the given order: each leaf hashed with a 0x00 prefix,
    each pair with 0x01 (so a leaf can never pass for a node), an odd node carried up unpaired.
    The root of no leaves is the hash of nothing."""
    return merkle_root_of([leaf_digest(leaf) for leaf in leaves])


def proposal_leaf(listing_id: int, entity_id: int, list_code: str, rule_version: str, state: str,
                  proposed_on: str, subject_kind: str, evidence: list[tuple[int, str | None]]) -> bytes:
    """What a batched proposal event vouches for, one leaf per proposed listing: its id, entity,
    list, rule version, state and date when proposed, subject kind, and its evidence (record id and
    note, by record id)."""
    return orjson.dumps([listing_id, entity_id, list_code, rule_version, state, proposed_on, subject_kind,
                         [[record_id, note] for record_id, note in sorted(evidence)]])
