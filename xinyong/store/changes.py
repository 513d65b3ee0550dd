"""The change feed (`changes`, migrations 0015 and 0024) written set-wise by a bulk writer.

On SQLite every row written to an entity table fires a trigger that inserts a `changes` row: a
register chunk of 5,000 new firms wrote 20,000 of them, each with its index entry. A bulk
writer mutes those triggers for its writes and records each entity it touched once, in the
order first touched, in the same transaction. Readers see the same set of changed entities.
On PostgreSQL the statement triggers of migration 0024 already gather a statement's rows at
once: nothing to do there.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection

from xinyong.store import tables as t
from xinyong.store.bulk import insert_rows


class EntityChanges:
    """`with EntityChanges(connection) as changes: ...; changes.touched(ids)`: inside the block the
    entity tables' row triggers are quiet; on leaving it, one `changes` row per touched entity."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.muting = connection.dialect.name == "sqlite"
        self.entities: dict[int, None] = {}  # an ordered set

    def __enter__(self) -> EntityChanges:
        if self.muting:
            self.connection.execute(text("INSERT INTO changes_muted (muted) VALUES (1)"))
        return self

    def touched(self, entity_ids: Iterable[int]) -> None:
        if self.muting:
            self.entities.update(dict.fromkeys(entity_ids))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self.muting:
            return
        self.connection.execute(text("DELETE FROM changes_muted"))
        if kind is None:
            insert_rows(self.connection, t.changes, ("kind", "ref_id"), (("entity", e) for e in self.entities))
