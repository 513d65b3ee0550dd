"""The query log, written behind the request.

Answers are logged in batches by one writer thread, at least every `interval` seconds
(default 0.5) and on close. What a crash can lose is what was answered since the last
flush: at most `interval` seconds of queries, plus one failed flush, which is retried on
the next tick while the buffer is below `max_buffer`. A row the store refuses (bad data)
is written to the application log instead, so that it cannot block the rows behind it.

A flush converts each value by its column type's own bind processor (the same stored form as a
Core insert; SQLAlchemy's per-row work on a list of dicts cost ~20 us a row in the writer thread,
GIL held, which the event loop answering requests waited for), then hands a chunk to the driver:
on SQLite as one JSON parameter of one statement (see `_insert_many`), elsewhere to `executemany`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from xinyong.store import tables as t
from xinyong.store.bulk import json_rows_insert

log = logging.getLogger("xinyong.querylog")
# A flush at 2,500 answers a second is ~1,250 rows, ~30 ms of Python holding the GIL: written in
# chunks with a pause between them, it delays no answer by more than a chunk's worth.
CHUNK = 200
PAUSE_SECONDS = 0.002
COLUMNS = ("query_id", "at", "key_id", "authority", "purpose", "endpoint", "query", "subject", "action", "as_of",
           "result", "measures")


class QueryLog:
    def __init__(self, engine: Engine, interval: float = 0.5, max_buffer: int = 1_000_000):
        self.engine = engine
        self.interval = interval
        self.max_buffer = max_buffer
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the buffer
        self._writing = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._insert: tuple[str, list[str], list[tuple[str, Any]], bool] | None = None

    def add(self, *, query_id: str, key_id: int | None, authority: str, purpose: str, endpoint: str, query: str,
            subject: str | None, action: str | None, as_of: dt.date | None, result: str,
            measures: list[str]) -> None:
        query = query.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL: it would fail every flush
        row = {"query_id": query_id, "at": dt.datetime.now(dt.timezone.utc), "key_id": key_id,
               "authority": authority, "purpose": purpose, "endpoint": endpoint, "query": query, "subject": subject,
               "action": action, "as_of": as_of, "result": result,
               # a tuple, so that the entry holds no container the cyclic collector keeps tracking
               "measures": tuple(measures)}
        with self._lock:
            self._buffer.append(row)

    def flush(self) -> int:
        """Write what is buffered. One writer at a time: a caller that flushes (to read its own
        answer back) waits for a write in progress, so it never reads before that commit."""
        with self._writing:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                with self.engine.begin() as c:
                    for start in range(0, len(rows), CHUNK):
                        if start:  # between chunks, the event loop gets the interpreter back
                            time.sleep(PAUSE_SECONDS)
                        self._insert_many(c, rows[start:start + CHUNK])
            except OperationalError:  # the store is unreachable: keep everything for the next try
                self._requeue(rows)
                raise
            except SQLAlchemyError:  # a row the store refuses must not block the others
                return self._one_by_one(rows)
            return len(rows)

    def _insert_many(self, c: Connection, rows: list[dict[str, Any]]) -> None:
        if self._insert is None:  # compiled once, for this store's dialect
            dialect = c.dialect
            compiled = t.query_log.insert().compile(dialect=dialect, column_keys=list(COLUMNS))
            names = list(compiled.positiontup) if compiled.positional else list(COLUMNS)
            processors = [(name, processor) for name in names
                          if (processor := t.query_log.c[name].type.dialect_impl(dialect).bind_processor(dialect))]
            self._insert = (str(compiled), names, processors, compiled.positional)
        sql, names, processors, positional = self._insert
        if processors:
            rows = [{**row, **{name: process(row[name]) for name, process in processors}} for row in rows]
        if c.dialect.name == "sqlite":
            # one statement over the chunk as JSON (`store.bulk.json_rows_insert`): the driver's executemany
            # steps once a row, giving the GIL back and waiting for it again each time; with the event
            # loop busy on a core of its own that wait is the interpreter's switch interval (5 ms), so
            # the writer fell behind (~5,000 answers a second), its buffer grew without end and the
            # collector's full passes over it made the answers' p99 rise round after round
            c.exec_driver_sql(json_rows_insert(t.query_log, names),
                              (orjson.dumps([[row[name] for name in names] for row in rows]).decode(),))
            return
        c.exec_driver_sql(sql, [tuple(row[name] for name in names) for row in rows] if positional else rows)

    def _one_by_one(self, rows: list[dict[str, Any]]) -> int:
        written = 0
        for position, row in enumerate(rows):
            try:
                with self.engine.begin() as c:
                    c.execute(t.query_log.insert(), [row])
                written += 1
            except OperationalError:
                self._requeue(rows[position:])
                raise
            except SQLAlchemyError as exc:  # kept in the application log instead, never silently dropped
                log.error("query log entry refused by the store (%s): %s", type(exc).__name__,
                          orjson.dumps(row, default=str).decode())
        return written

    def _requeue(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            room = max(0, self.max_buffer - len(self._buffer))
            self._buffer[:0] = rows[:room]
        log.exception("query log write failed; %d entries kept for the next try", min(room, len(rows)))
        for row in rows[room:]:  # beyond the buffer's bound: into the application log, not lost silently
            log.error("query log entry not written (buffer full): %s", orjson.dumps(row, default=str).decode())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="query-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - logged in flush; keep the writer alive
                pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
