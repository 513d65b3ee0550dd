"""Properties of the keyed audit chain, at the domain level (no store).

A chain of any length, built from any events under any key, verifies against its head; and
any single edit, deletion, insertion or truncation, made by someone without the key, makes
verification against the head fail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xinyong.domain.audit import (
    EMPTY_HEAD,
    GENESIS,
    HASHED_FIELDS,
    Head,
    canonical,
    event_hash,
    verify_chain,
    verify_with_head,
)

relaxed = settings(deadline=None)  # examples are fast; a busy machine should not fail them

keys = st.binary(min_size=16, max_size=64)
texts = st.text(max_size=12)
json_scalars = st.none() | st.booleans() | st.integers(-10**9, 10**9) | texts
payloads = st.dictionaries(texts, json_scalars | st.lists(json_scalars, max_size=3), max_size=4)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                     timezones=st.just(dt.timezone.utc)).map(lambda d: d.replace(microsecond=0).isoformat())
contents = st.fixed_dictionaries({
    "at": times,
    "actor": texts,
    "action": st.sampled_from(["batch.ingested", "resolution.run", "judgement.match", "listing.added"]),
    "object_type": st.sampled_from(["batch", "record", "entity"]),
    "object_id": texts,
    "reason": st.none() | texts,
    "legal_basis": st.none() | texts,
    "payload": payloads,
})


def build(items: list[dict[str, Any]], key: bytes) -> tuple[list[dict[str, Any]], Head]:
    """The events as `append_event` would write them, and the head it would record."""
    chain, prev = [], GENESIS
    for seq, content in enumerate(items, start=1):
        event = {**content, "seq": seq, "prev_hash": prev}
        event["hash"] = prev = event_hash(prev, event, key)
        chain.append(event)
    return chain, Head(len(chain), prev) if chain else EMPTY_HEAD


chains = st.tuples(st.lists(contents, max_size=12), keys).map(lambda pair: (*build(*pair), pair[1]))
non_empty_chains = st.tuples(st.lists(contents, min_size=1, max_size=12), keys).map(
    lambda pair: (*build(*pair), pair[1]))


@relaxed
@given(chains)
def test_any_chain_verifies_against_its_head(chain_head_key):
    chain, head, key = chain_head_key
    assert verify_with_head(chain, key, head) == (len(chain), None, None)
    assert verify_chain(chain, key) == (len(chain), None)


@relaxed
@given(non_empty_chains, st.data())
def test_a_head_left_behind_still_verifies_with_a_note(chain_head_key, data):
    """A process that committed and stopped before writing the head: the later events verify."""
    chain, _, key = chain_head_key
    at = data.draw(st.integers(0, len(chain) - 1))
    head = Head(at, chain[at - 1]["hash"]) if at else EMPTY_HEAD
    report = verify_with_head(chain, key, head)
    assert report.intact and report.events == len(chain)
    assert report.note and f"events {at + 1}..{len(chain)}" in report.note


@relaxed
@given(non_empty_chains, keys)
def test_another_key_fails_at_the_first_event(chain_head_key, other):
    chain, head, key = chain_head_key
    assume(other != key)
    assert verify_with_head(chain, other, head).problem.startswith("event 1:")


def orjson_equal(a: Any, b: Any) -> bool:
    """Equal as the hash sees them (1 and 1.0, or a tuple and a list, would be the same bytes)."""
    return canonical({"payload": a}) == canonical({"payload": b})


EDITABLE = (*HASHED_FIELDS, "prev_hash", "hash")
FIELD_VALUES: dict[str, st.SearchStrategy] = {
    "seq": st.integers(-5, 100),
    "at": times,
    "actor": texts,
    "action": texts,
    "object_type": texts,
    "object_id": texts,
    "reason": st.none() | texts,
    "legal_basis": st.none() | texts,
    "payload": payloads,
    "prev_hash": st.sampled_from([GENESIS]) | st.text("0123456789abcdef", min_size=64, max_size=64),
    "hash": st.text("0123456789abcdef", min_size=64, max_size=64),
}


@relaxed
@given(non_empty_chains, st.data())
def test_any_single_edit_fails(chain_head_key, data):
    chain, head, key = chain_head_key
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(EDITABLE))
    old = chain[index][field]
    new = data.draw(FIELD_VALUES[field])
    assume(not orjson_equal(new, old))
    edited = [dict(e) for e in chain]
    edited[index][field] = new
    report = verify_with_head(edited, key, head)
    assert not report.intact, (field, old, new)


@relaxed
@given(non_empty_chains, st.data())
def test_any_single_edit_rehashed_without_the_key_fails(chain_head_key, data):
    """Edit one event and recompute every hash from it on, with plain SHA-256."""
    chain, head, key = chain_head_key
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(HASHED_FIELDS[1:]))  # seq is tied to the position
    new = data.draw(FIELD_VALUES[field])
    forged = [dict(e) for e in chain]
    forged[index][field] = new
    prev = forged[index]["prev_hash"]
    for event in forged[index:]:
        event["prev_hash"] = prev
        event["hash"] = prev = hashlib.sha256(prev.encode() + canonical(event)).hexdigest()
    report = verify_with_head(forged, key, head)
    assert not report.intact
    assert report.problem.startswith(f"event {index + 1}:")


@relaxed
@given(non_empty_chains, st.data())
def test_any_single_deletion_fails(chain_head_key, data):
    chain, head, key = chain_head_key
    index = data.draw(st.integers(0, len(chain) - 1))
    report = verify_with_head(chain[:index] + chain[index + 1:], key, head)
    assert not report.intact


@relaxed
@given(chains, st.data(), keys)
def test_any_single_insertion_fails(chain_head_key, data, forger_key):
    """An event slipped in anywhere: a copy of one already there, or a new one chained to its
    predecessor under a key that is not the chain's."""
    chain, head, key = chain_head_key
    assume(forger_key != key)
    index = data.draw(st.integers(0, len(chain)))
    if chain and data.draw(st.booleans()):
        inserted = dict(data.draw(st.sampled_from(chain)))
    else:
        prev = chain[index - 1]["hash"] if index else GENESIS
        inserted = {**data.draw(contents), "seq": data.draw(st.sampled_from([index + 1, index, 10**6])),
                    "prev_hash": prev}
        inserted["hash"] = event_hash(prev, inserted, forger_key)
    report = verify_with_head(chain[:index] + [inserted] + chain[index:], key, head)
    assert not report.intact


@relaxed
@given(non_empty_chains, st.data())
def test_insertion_in_the_middle_fails_even_with_the_key(chain_head_key, data):
    chain, head, key = chain_head_key
    index = data.draw(st.integers(0, len(chain) - 1))  # before an existing event
    prev = chain[index - 1]["hash"] if index else GENESIS
    inserted = {**data.draw(contents), "seq": index + 1, "prev_hash": prev}
    inserted["hash"] = event_hash(prev, inserted, key)
    assert not verify_with_head(chain[:index] + [inserted] + chain[index:], key, head).intact


@relaxed
@given(non_empty_chains, st.data())
def test_any_truncation_fails_against_the_head(chain_head_key, data):
    chain, head, key = chain_head_key
    keep = data.draw(st.integers(0, len(chain) - 1))
    truncated = chain[:keep]
    assert verify_chain(truncated, key) == (keep, None), "the chain alone cannot see a deleted tail"
    report = verify_with_head(truncated, key, head)
    assert report.problem == f"tail deleted: head file says seq {len(chain)}, database ends at {keep}"


@relaxed
@given(non_empty_chains, st.data(), st.lists(contents, min_size=1, max_size=3))
def test_truncation_then_new_events_fails_against_the_head(chain_head_key, data, more):
    """The tail deleted and new events appended in its place, under the key: the head, which
    the store does not move over a chain that no longer carries it, still tells."""
    chain, head, key = chain_head_key
    keep = data.draw(st.integers(0, len(chain) - 1))
    rebuilt, _ = build([{k: e[k] for k in HASHED_FIELDS if k != "seq"} for e in chain[:keep]] + more, key)
    assume(len(rebuilt) < len(chain) or rebuilt[len(chain) - 1]["hash"] != head.hash)
    assert not verify_with_head(rebuilt, key, head).intact


@relaxed
@given(chains)
def test_missing_head(chain_head_key):
    chain, _, key = chain_head_key
    report = verify_with_head(chain, key, None)
    assert report.intact is (not chain)


@settings(max_examples=25, deadline=None)
@given(non_empty_chains, st.data())
def test_reordering_fails(chain_head_key, data):
    chain, head, key = chain_head_key
    assume(len(chain) >= 2)
    i = data.draw(st.integers(0, len(chain) - 2))
    j = data.draw(st.integers(i + 1, len(chain) - 1))
    swapped = list(chain)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert not verify_with_head(swapped, key, head).intact
