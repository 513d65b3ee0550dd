"""Each engine's fast path for many rows inside the caller's transaction.

SQLite: one prepared statement and executemany, or the rows as one JSON array that SQLite
unpacks. PostgreSQL: COPY, and updates as one statement over arrays. Values arrive ready for the
wire (JSON already serialised, dates as ISO text, times pre-rendered).
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Connection


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], same: Mapping[str, Any] | None = None) -> None:
    """`rows` (values of `columns`) into `table`. `same` (it may be empty): columns whose value is
    the same in every row, given once and not in the rows; the caller also vouches that the rows'
    values are JSON's (integers, strings, None). SQLite then binds the shared values once and gets
    the rows as one JSON array, which it unpacks (`json_each`): binding every value of every row
    through the driver cost more than the insert (555,300 listings: 9 values a row bound, 2.7 s of
    CPU; 6 bound once and 3 a row in JSON, 1.1 s)."""
    dbapi = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        names = ", ".join([*columns, *(same or {})])
        extra = tuple((same or {}).values())  # after the row's own values, as the column names
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, *extra) if extra else row)
        return
    cursor = dbapi.cursor()
    try:
        if same is not None:
            cursor.execute(json_rows_insert(table, columns, same),
                           (*same.values(), orjson.dumps(rows if isinstance(rows, list) else list(rows)).decode()))
        else:
            placeholders = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", rows)
    finally:
        cursor.close()


def json_rows_insert(table: Table, columns: Sequence[str], same: Mapping[str, Any] | None = None) -> str:
    """SQLite: `INSERT INTO table` of rows given as one JSON array of arrays (values of `columns`),
    bound last, after the values of `same`: one statement, one step of the driver for all the rows."""
    same = same or {}
    names = ", ".join([*same, *columns])
    picked = ", ".join([*("?" for _ in same), *(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))])
    return f"INSERT INTO {table.name} ({names}) SELECT {picked} FROM json_each(?) ORDER BY key"


def update_rows(connection: Connection, table: Table, columns: Sequence[str], key: str,
                rows: Sequence[Sequence[Any]], keep_null: Collection[str] = ()) -> None:
    """`UPDATE table SET columns... WHERE key = ...` for each row (the new values, then the key), a
    None in a column of `keep_null` leaving its stored value. SQLite: one prepared executemany.
    PostgreSQL: one statement over the rows sent as arrays, so its statement triggers fire once
    (a key may appear only once). Values ready for the wire, as `insert_rows`."""
    def value(column: str, new: str) -> str:
        return f"COALESCE({new}, {table.name}.{column})" if column in keep_null else new

    cursor = connection.connection.driver_connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            names = [*columns, key]
            arrays = ", ".join(f"%s::{_sql_type(connection, table, name)}[]" for name in names)
            assignments = ", ".join(f"{column} = {value(column, 'v.' + column)}" for column in columns)
            cursor.execute(f"UPDATE {table.name} SET {assignments} FROM unnest({arrays}) AS v ({', '.join(names)}) "
                           f"WHERE {table.name}.{key} = v.{key}", [list(values) for values in zip(*rows)])
            return
        assignments = ", ".join(f"{column} = {value(column, '?')}" for column in columns)
        cursor.executemany(f"UPDATE {table.name} SET {assignments} WHERE {key} = ?", rows)
    finally:
        cursor.close()


def select_in(connection: Connection, table: Table, columns: Sequence[str], key: str, values: Sequence[Any],
              equal: Mapping[str, Any] | None = None, order_by: str | None = None) -> list[tuple]:
    """`SELECT columns FROM table WHERE key IN values AND column = value...` (a None value: IS NULL),
    through the driver: compiling hundreds of bound values cost SQLAlchemy more than the query. One
    query with an array on PostgreSQL; one per 900 values on SQLite (under its bound-parameter limit),
    each ordered by `order_by`."""
    equal = equal or {}
    postgresql = connection.dialect.name == "postgresql"
    mark = "%s" if postgresql else "?"
    conditions = "".join(f" AND {column} IS NULL" if value is None else f" AND {column} = {mark}"
                         for column, value in equal.items())
    params = [value for value in equal.values() if value is not None]
    order = f" ORDER BY {order_by}" if order_by else ""
    query = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} "
    cursor = connection.connection.driver_connection.cursor()
    try:
        if postgresql:
            cursor.execute(f"{query}= ANY(%s::{_sql_type(connection, table, key)}[]){conditions}{order}",
                           [list(values), *params])
            return cursor.fetchall()
        found: list[tuple] = []
        for start in range(0, len(values), 900):
            part = values[start:start + 900]
            cursor.execute(f"{query}IN ({', '.join('?' * len(part))}){conditions}{order}", [*part, *params])
            found += cursor.fetchall()
        return found
    finally:
        cursor.close()


def _sql_type(connection: Connection, table: Table, column: str) -> str:
    return table.c[column].type.compile(dialect=connection.dialect)


def render_value(connection: Connection, column: Any, value: Any) -> Any:
    """A value as the engine's driver wants it, the way SQLAlchemy itself would bind it."""
    dialect = connection.dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value


class Ids:
    """Primary keys for rows about to be written in bulk, taken without a round trip per row.

    PostgreSQL: from the table's own sequence (`nextval`), as many as asked or `step` at a time,
    so other writers can never take the same ones (ids left over at the end are a gap, as a
    rolled-back insert leaves). SQLite: one writer at a time; the transaction takes the write lock
    first (a DELETE of nothing), then counts on from the highest id: no other process can insert
    until it commits. Rows must be written in the same transaction.
    """

    def __init__(self, connection: Connection, table: Table, step: int = 500):
        self.connection, self.table, self.step = connection, table, step
        self.postgresql = connection.dialect.name == "postgresql"
        self.free: list[int] = []
        self.next: int | None = None

    def _start(self) -> int:
        c, table = self.connection, self.table
        c.execute(table.delete().where(table.c.id < 0))  # the write lock (SQLite's RESERVED), no row changed
        return (c.execute(select(func.max(table.c.id))).scalar() or 0) + 1

    def _reserve(self, n: int) -> None:
        taken = self.connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": self.table.name, "n": n}).scalars().all()
        self.free = sorted([*self.free, *taken], reverse=True)  # the smallest last: taken first

    def take(self) -> int:
        return self.take_many(1, spare=self.step)[0]

    def take_many(self, n: int, spare: int = 0) -> list[int]:
        """`n` ids in increasing order; PostgreSQL reserves `max(n, spare)` when it has too few left."""
        if not self.postgresql:
            if self.next is None:
                self.next = self._start()
            ids = list(range(self.next, self.next + n))
            self.next += n
            return ids
        if len(self.free) < n:
            self._reserve(max(n - len(self.free), spare))
        return [self.free.pop() for _ in range(n)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off for a bulk write (put back as it was when it ends).
    Such a write builds and drops millions of short-lived containers (result rows, proposals'
    evidence, a batch's cells and records, a dump's facts): surviving a few collections, they set off full passes
    over the whole process, ~3 s of a full evaluation's 30 s of CPU at 1,000,000 entities, a third
    of the CPU of validating a 200,000-row file. Reference counting still frees them at once; only
    cycles wait. Writes at once in `serve`'s threads: the first to end puts the collector back,
    and the others may finish with it running (slower, never wrong)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- bulk sessions on SQLite ----------------------------------------------------------------------

# SQLite's default page cache (2 MB) is far smaller than what one evaluation writes (hundreds of MB
# of index and table pages at a million entities): dirty pages then spill into the WAL in the middle
# of the transaction and are read back from it, which tripled the CPU time of writing proposals.
# The cap only bounds what the run may use; pages are taken as they are touched.
BULK_CACHE_KIB = 1024 * 1024


@contextmanager
def bulk_session(connection: Connection, cache_kib: int = BULK_CACHE_KIB, temp_in_memory: bool = True) -> Iterator[None]:
    """A page cache sized for a bulk transaction (and temporary b-trees in memory unless told not
    to), on SQLite, for this connection until the block ends (wrap the transaction: its commit still
    has the cache); the connection's own settings are put back. Nothing on other engines."""
    if connection.dialect.name != "sqlite":
        yield
        return
    dbapi = connection.connection.driver_connection
    saved = {name: dbapi.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "temp_store")}
    dbapi.execute(f"PRAGMA cache_size = -{cache_kib}")
    if temp_in_memory:
        dbapi.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        for name, value in saved.items():
            dbapi.execute(f"PRAGMA {name} = {int(value)}")
