"""The Merkle root that seals report issuances (domain.audit.merkle_root): pure, no store."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from xinyong.domain.audit import merkle_root

LEAVES = st.lists(st.binary(max_size=40), min_size=1, max_size=40)


def test_known_values():
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle_root([b"a"]) == hashlib.sha256(b"\x00a").hexdigest()
    a, b = hashlib.sha256(b"\x00a").digest(), hashlib.sha256(b"\x00b").digest()
    assert merkle_root([b"a", b"b"]) == hashlib.sha256(b"\x01" + a + b).hexdigest()
    # an odd node goes up unpaired
    assert merkle_root([b"a", b"b", b"c"]) == hashlib.sha256(
        b"\x01" + hashlib.sha256(b"\x01" + a + b).digest() + hashlib.sha256(b"\x00c").digest()).hexdigest()


@given(LEAVES, st.data())
def test_any_change_to_a_leaf_changes_the_root(leaves, data):
    position = data.draw(st.integers(0, len(leaves) - 1))
    changed = list(leaves)
    changed[position] = leaves[position] + b"\x00"
    assert merkle_root(changed) != merkle_root(leaves)


@given(LEAVES)
def test_dropping_or_adding_a_leaf_changes_the_root(leaves):
    assert merkle_root(leaves + [b""]) != merkle_root(leaves)
    if len(leaves) > 1:
        assert merkle_root(leaves[:-1]) != merkle_root(leaves)


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_a_leaf_cannot_pass_for_an_inner_node(a, b):
    inner = hashlib.sha256(b"\x00" + a).digest() + hashlib.sha256(b"\x00" + b).digest()
    assert merkle_root([inner]) != merkle_root([a, b])
