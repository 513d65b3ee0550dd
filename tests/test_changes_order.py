"""A transaction that starts first and commits last is never skipped (issue 12, item 4).

Two writers on PostgreSQL: the first opens its transaction and writes, the second writes and
commits, a reader reads past the second, then the first commits. Its row ids are lower than
the second's, and it was stamped earlier: a reader paging by id, or looking back by time, misses
it. `/v1/changes` (services.publication.lists.changes) and screening's refresh follow `changes.seq`,
numbered at COMMIT, and must see it.

On SQLite one writer holds the database at a time (the second would wait for the first), so the
interleaving cannot happen there; the tests say so and skip.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select, update

from xinyong.domain.pack import load_pack
from xinyong.services.publication.lists import changes
from xinyong.services.screening.screen import ScreeningIndex
from xinyong.store import tables as t
from xinyong.store.db import migrate, open_engine

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
LONG_AGO = NOW - dt.timedelta(hours=2)  # a batch whose transaction began long before it committed


@pytest.fixture
def engine(db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite: one writer at a time, a second transaction cannot commit before the first")
    engine = open_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _entity(c, key: str, code: str, name: str, stamped: dt.datetime) -> int:
    entity_id = c.execute(insert(t.entities).values(key=key, kind="company", verified=True, origin="register",
                                                    created_at=stamped, updated_at=stamped)
                          .returning(t.entities.c.id)).scalar_one()
    c.execute(insert(t.entity_identifiers).values(entity_id=entity_id, scheme="uscc", value=code, verified=True))
    c.execute(insert(t.entity_names).values(entity_id=entity_id, name=name, normalised=name, current=True))
    return entity_id


def _listing(c, entity_id: int) -> int:
    return c.execute(insert(t.listings).values(
        entity_id=entity_id, list_code="serious_dishonesty", rule_version="1", state="notified",
        subject_kind="company", language="zh", proposed_on=dt.date(2025, 9, 15), created_at=NOW)
        .returning(t.listings.c.id)).scalar_one()


def _takes_effect(c, listing_id: int) -> int:
    return c.execute(insert(t.listing_transitions).values(
        listing_id=listing_id, from_state="notified", to_state="effective", on_date=dt.date(2025, 10, 20),
        actor="test", recorded_at=NOW).returning(t.listing_transitions.c.id)).scalar_one()


def test_changes_feed_never_skips_a_late_commit(engine):
    pack = load_pack("cn")
    with engine.begin() as c:
        first_listing = _listing(c, _entity(c, "E-FIRST", "CODE-FIRST", "甲公司", NOW))
        second_listing = _listing(c, _entity(c, "E-SECOND", "CODE-SECOND", "乙公司", NOW))
    cursor = changes(engine, pack, 0, 1000)["next"]

    first, second = engine.connect(), engine.connect()
    try:
        slow = first.begin()  # started first...
        slow_id = _takes_effect(first, first_listing)
        with second.begin():  # ...a later transaction writes and commits meanwhile
            fast_id = _takes_effect(second, second_listing)
        assert slow_id < fast_id  # ids are handed out at insert: paging by id would skip slow_id
        seen = changes(engine, pack, cursor, 1000)
        assert [c["listing"] for c in seen["changes"]] == [second_listing]
        cursor = seen["next"]
        slow.commit()  # ...and commits last
    finally:
        first.close()
        second.close()

    after = changes(engine, pack, cursor, 1000)
    assert [(c["listing"], c["to"]) for c in after["changes"]] == [(first_listing, "effective")]
    assert after["next"] > cursor


def test_refresh_never_misses_a_late_commit(engine):
    pack = load_pack("cn")
    with engine.begin() as c:
        _entity(c, "E-OLD", "CODE-OLD", "丙公司", NOW)
    index = ScreeningIndex.load(engine, pack, names=True)
    as_of = dt.date(2026, 1, 5)

    first, second = engine.connect(), engine.connect()
    try:
        slow = first.begin()  # a batch that began two hours ago: a lower id, stamped long ago
        _entity(first, "E-SLOW", "CODE-SLOW", "丁公司", LONG_AGO)
        with second.begin():
            _entity(second, "E-FAST", "CODE-FAST", "戊公司", NOW)
        assert index.refresh(engine)
        assert index.screen_identifier("CODE-FAST", "public_procurement", as_of).subject_id is not None
        assert index.screen_identifier("CODE-SLOW", "public_procurement", as_of).decision.decision == "not_found"
        slow.commit()
    finally:
        first.close()
        second.close()

    assert index.refresh(engine)
    found = index.screen_identifier("CODE-SLOW", "public_procurement", as_of)
    assert found.decision.decision == "allow" and index.info[found.subject_id].key == "E-SLOW"
    by_name = index.screen_name("丁公司", "public_procurement", as_of)
    assert by_name.subject_id == found.subject_id
    # a restart maps the index file written at load and catches up from its stamp
    again = ScreeningIndex.load(engine, pack, names=True)
    assert not again.built
    assert again.screen_identifier("CODE-SLOW", "public_procurement", as_of).subject_id == found.subject_id
    assert again.screen_name("丁公司", "public_procurement", as_of).subject_id == found.subject_id
    with engine.connect() as c:
        slow_id = c.execute(select(t.entities.c.id).where(t.entities.c.key == "E-SLOW")).scalar_one()
        fast_id = c.execute(select(t.entities.c.id).where(t.entities.c.key == "E-FAST")).scalar_one()
    assert slow_id < fast_id


def test_a_relation_written_alone_reaches_the_feed(db_url):
    """A new controller (a relation, nothing else about the firm) is a change of the firm: screening's
    refresh must see it. On SQLite the triggers were lost when migration 0021 rebuilt the table."""
    engine = open_engine(db_url)
    try:
        migrate(engine)
        with engine.begin() as c:
            firm = _entity(c, "E:relations-feed", "91350100M000100Y43", "某某控股有限公司", NOW)
        with engine.connect() as c:
            before = c.execute(select(func.max(t.changes.c.seq))).scalar_one() or 0
        with engine.begin() as c:
            relation = c.execute(insert(t.entity_relations).values(
                entity_id=firm, relation="actual_controller", person_name="张某", valid_from=dt.date(2025, 10, 25))
                .returning(t.entity_relations.c.id)).scalar_one()
        with engine.begin() as c:
            c.execute(update(t.entity_relations).where(t.entity_relations.c.id == relation)
                      .values(valid_to=dt.date(2025, 12, 1)))
        with engine.connect() as c:
            after = c.execute(select(t.changes.c.kind, t.changes.c.ref_id)
                              .where(t.changes.c.seq > before).order_by(t.changes.c.seq)).all()
        assert [tuple(row) for row in after] == [("entity", firm), ("entity", firm)]
    finally:
        engine.dispose()


def test_a_transaction_leaves_one_entity_change_per_entity_and_every_other_change(engine):
    """Migration 0029: an entity's rows (the entity, its names, identifiers, updates) are one change
    of that entity, as SQLite's bulk writer leaves it; listings and transitions are moved row for
    row. A register file of 100,000 firms had left about a million entity rows."""
    with engine.begin() as c:
        start = c.execute(select(func.coalesce(func.max(t.changes.c.seq), 0))).scalar_one()
    with engine.begin() as c:
        first = _entity(c, "91110000MA0000001X", "91110000MA0000001X", "甲公司", NOW)
        second = _entity(c, "91110000MA0000002X", "91110000MA0000002X", "乙公司", NOW)
        c.execute(update(t.entities).where(t.entities.c.id == first).values(address="北京市海淀区"))
        c.execute(insert(t.entity_names).values(entity_id=first, name="甲公司旧名", normalised="甲公司旧名",
                                                current=False))
        listing = _listing(c, second)
        transitions = [_takes_effect(c, listing), _takes_effect(c, listing)]
    with engine.begin() as c:
        rows = c.execute(select(t.changes.c.kind, t.changes.c.ref_id).where(t.changes.c.seq > start)
                         .order_by(t.changes.c.seq)).all()
    assert [tuple(row) for row in rows] == [("entity", first), ("entity", second), ("listing", listing),
                                            ("transition", transitions[0]), ("transition", transitions[1])]
