"""The query log written behind the request: a bad row cannot block the rows behind it."""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import select

from xinyong.services.screening.querylog import QueryLog
from xinyong.services.screening.screen import _query_id
from xinyong.store import tables as t
from xinyong.store.db import open_engine


def entry(query_id: str) -> dict:
    return {"query_id": query_id, "key_id": None, "authority": "operator", "purpose": "supervision",
            "endpoint": "screen", "query": "91310000MA1XC00010", "subject": None, "action": "bidding",
            "as_of": dt.date(2026, 1, 5), "result": "allow", "measures": []}


def test_a_refused_row_goes_to_the_application_log_and_the_others_are_written(cli, caplog):
    engine = open_engine(cli.url)
    log = QueryLog(engine)
    for query_id in ("a", "b", "c"):
        log.add(**entry(query_id))
    assert log.flush() == 3
    for query_id in ("d", "b", "e"):  # "b" again: the store refuses it (unique query id)
        log.add(**entry(query_id))
    with caplog.at_level(logging.ERROR, logger="xinyong.querylog"):
        assert log.flush() == 2
    assert any("refused by the store" in r.message and '"query_id":"b"' in r.message for r in caplog.records)
    with engine.connect() as c:
        assert sorted(c.execute(select(t.query_log.c.query_id)).scalars()) == ["a", "b", "c", "d", "e"]
    log.add(**entry("f"))
    log.start()
    log.close()  # closing flushes what is left
    with engine.connect() as c:
        assert c.execute(select(t.query_log.c.query_id).where(t.query_log.c.query_id == "f")).scalar() == "f"
    engine.dispose()


def test_query_ids_are_unique_and_in_time_order():
    """The log's unique index takes ids at its end (a random id landed on a random page of an index
    of millions, and the writer sharing the server's cores slowed as the log grew); 80 random bits
    each, so that an id is still not guessable."""
    before = time.time_ns() // 1_000_000
    first = [_query_id() for _ in range(2000)]
    time.sleep(0.002)
    later = [_query_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    every = first + later
    assert len(set(every)) == len(every) and all(len(i) == 32 and int(i, 16) >= 0 for i in every)
    assert all(before <= int(i[:12], 16) <= after for i in every)
    assert max(first) < min(later)  # a millisecond later sorts after
    assert len({i[12:] for i in every}) == len(every)  # the random part alone tells them apart


def test_a_flush_stores_what_a_core_insert_stores(cli):
    """The writer's chunk (one JSON statement on SQLite, executemany on PostgreSQL) stores each value
    as SQLAlchemy's own insert does: read back through the table's types, the same Python values."""
    engine = open_engine(cli.url)
    log = QueryLog(engine)
    rows = [{**entry(f"q{i}"), "key_id": None, "subject": "91310000MA1XC00010" if i % 2 else None,
             "query": "王某某 440305********0271" if i == 3 else "91310000MA1XC00010",
             "measures": ["no_bidding", "no_subsidy"] if i % 3 else [], "as_of": None if i == 4 else dt.date(2026, 1, 5)}
            for i in range(450)]  # over two chunks
    for row in rows:
        log.add(**row)
    assert log.flush() == len(rows)
    with engine.begin() as c:
        c.execute(t.query_log.insert(), [{**row, "query_id": "core-" + row["query_id"],
                                          "at": dt.datetime(2026, 1, 5, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)}
                                         for row in rows])
        stored = {r.query_id: r for r in c.execute(select(t.query_log))}
    compared = ("key_id", "authority", "purpose", "endpoint", "query", "subject", "action", "as_of", "result", "measures")
    for row in rows:
        written, reference = stored[row["query_id"]], stored["core-" + row["query_id"]]
        assert [getattr(written, k) for k in compared] == [getattr(reference, k) for k in compared]
        assert type(written.at) is type(reference.at) and written.at.tzinfo == reference.at.tzinfo
    engine.dispose()
