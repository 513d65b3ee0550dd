"""The query log written behind the request: a bad row cannot block the rows behind it."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from xinyong.services.screening.querylog import QueryLog
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
