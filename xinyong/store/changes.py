"""The change feed (`changes`, migrations 0015 and 0024) written set-wise by bulk writers.

`EntityChanges` (the register) and `ChangeNotingWriter` (evaluation's proposals) each quiet
SQLite's per-row triggers for their own writes and write the feed's rows themselves.

On SQLite every row written to an entity table fires a trigger that inserts a `changes` row: a
register chunk of 5,000 new firms wrote 20,000 of them, each with its index entry. A bulk
writer drops those triggers for its writes and records each entity it touched once, in the
order first touched, in the same transaction. Readers see the same set of changed entities.
On PostgreSQL the statement triggers of migration 0024 already gather a statement's rows at
once: nothing to do there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, text
from sqlalchemy.engine import Connection

from xinyong.store import tables as t
from xinyong.store.bulk import insert_rows


class EntityChanges:
    """`with EntityChanges(connection) as changes: ...; changes.touched(ids)`: inside the block the
    entity tables' row triggers are gone; on leaving it they are back, as they were, and there is
    one `changes` row per touched entity.

    Muting them through `changes_muted` (migration 0024, dropped by 0028) still ran each trigger's
    WHEN for every row written: half the cost of inserting a new firm's rows. Dropped inside the transaction
    (SQLite's DDL is transactional, and the one writer holds the database), no other connection
    ever sees them missing; on an error the caller's rollback brings them back."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.entities: dict[int, None] = {}  # an ordered set
        self.triggers: dict[str, str] = {}  # name: its CREATE statement

    def __enter__(self) -> EntityChanges:
        if not self.sqlite:
            return self
        names = [f"changes_{table}_{event}" for table in ENTITY_TABLES for event in ("insert", "update")]
        self.triggers = dict(self.connection.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN :names ORDER BY name")
            .bindparams(bindparam("names", expanding=True)), {"names": names}).all())
        if self.triggers:
            # a write first: the driver opens the transaction before DML only, and a DROP outside
            # one would be committed at once (the same write lock `Ids` takes)
            self.connection.execute(text("DELETE FROM changes WHERE seq < 0"))
        for name in self.triggers:
            self.connection.exec_driver_sql(f"DROP TRIGGER {name}")
        return self

    def touched(self, entity_ids: Iterable[int]) -> None:
        if self.sqlite:
            self.entities.update(dict.fromkeys(entity_ids))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self.sqlite or kind is not None:
            return  # PostgreSQL's statement triggers gather the changes; an error rolls back
        for sql in self.triggers.values():
            self.connection.exec_driver_sql(sql)
        insert_rows(self.connection, t.changes, ("kind", "ref_id"), (("entity", e) for e in self.entities))


# The tables whose rows are an entity's (migration 0024's `MUTED`)
ENTITY_TABLES = ("entities", "entity_names", "entity_identifiers", "entity_relations")

# What migration 0015's row triggers write in `changes` when a row is inserted: (kind, column).
CHANGE_ON_INSERT = {
    "entities": ("entity", "id"),
    "entity_names": ("entity", "entity_id"),
    "entity_identifiers": ("entity", "entity_id"),
    "entity_relations": ("entity", "entity_id"),
    "listings": ("listing", "id"),
    "listing_evidence": ("listing", "listing_id"),
    "listing_transitions": ("transition", "id"),
    "objections": ("objection", "listing_id"),
}


def _insert_trigger_sql(table: str) -> str:
    kind, column = CHANGE_ON_INSERT[table]
    return (f"CREATE TRIGGER changes_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN INSERT INTO changes (kind, ref_id) VALUES ('{kind}', NEW.{column}); END")


class ChangeNotingWriter:
    """`insert_rows` into tables that `changes` watches, many rows at a time, inside the caller's
    transaction, leaving in `changes` exactly the rows, in the order, that the per-row triggers
    would have left (what `/v1/changes` and screening's refresh read).

    On SQLite a trigger runs a nested INSERT for each row; here the INSERT triggers of `tables`
    are dropped for the transaction (SQLite's DDL is transactional and one writer holds the
    database, so no other connection ever sees them missing), their `changes` rows are written
    with one executemany after each batch, and the triggers are created again, as the migration
    made them, when the block ends (on an error the caller's rollback puts them back). A trigger whose definition
    is not the migration's is left alone and does its own work. On PostgreSQL the triggers stay:
    they are deferred to COMMIT, where they number the changes in commit order."""

    def __init__(self, connection: Connection, tables: Sequence[str]):
        self.connection = connection
        self.suspended: set[str] = set()
        if connection.dialect.name != "sqlite":
            return
        stored = dict(connection.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN :names")
            .bindparams(bindparam("names", expanding=True)),
            {"names": [f"changes_{table}_insert" for table in tables]}).all())
        self.suspended = {table for table in tables if stored.get(f"changes_{table}_insert") == _insert_trigger_sql(table)}

    def __enter__(self) -> ChangeNotingWriter:
        if self.suspended:
            # a write first: the driver opens the transaction before DML only, and a DROP outside
            # one would be committed at once (the same write lock `Ids` takes)
            self.connection.execute(text("DELETE FROM changes WHERE seq < 0"))
        for table in sorted(self.suspended):
            self.connection.execute(text(f"DROP TRIGGER changes_{table}_insert"))
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if error_type is not None:
            return  # the caller's transaction rolls back, and the DROPs with it
        for table in sorted(self.suspended):
            self.connection.execute(text(_insert_trigger_sql(table)))

    def insert(self, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               same: Mapping[str, Any] | None = None) -> None:
        """`insert_rows` (`same`: columns with one value for every row), then the feed's rows."""
        if table.name not in self.suspended:
            insert_rows(self.connection, table, columns, rows, same)
            return
        rows = rows if isinstance(rows, list) else list(rows)
        insert_rows(self.connection, table, columns, rows, same)
        kind, column = CHANGE_ON_INSERT[table.name]
        position = list(columns).index(column)
        # the ids travel as one JSON array, unpacked by SQLite in order: no row bound from Python
        dbapi = self.connection.connection.driver_connection
        dbapi.execute("INSERT INTO changes (kind, ref_id) SELECT ?, value FROM json_each(?) ORDER BY key",
                      (kind, orjson.dumps([row[position] for row in rows]).decode()))
