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
