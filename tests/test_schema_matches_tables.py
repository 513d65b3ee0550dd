"""The schema the migrations build is the one `store.tables` describes, on both engines.

Queries are written against `store.tables` and the store is built by the Alembic migrations: an
index or column added to one and not the other is silently lost (a query plan that counted on
the index, a column the code writes). Alembic's own comparison of a migrated store with the
metadata must find nothing but the tables that only the change-feed triggers use.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from xinyong.store import tables as t
from xinyong.store.db import open_engine

# written and read by migration 0024's triggers only, never by the code through `store.tables`
TRIGGER_TABLES = {"changes_pending", "changes_flush"}


def test_the_migrated_store_is_what_the_tables_describe(cli, db_url):
    cli("init")
    engine = open_engine(db_url)
    try:
        with engine.connect() as c:
            differences = compare_metadata(MigrationContext.configure(c), t.metadata)
    finally:
        engine.dispose()
    left = [d for d in differences if not (d[0] == "remove_table" and d[1].name in TRIGGER_TABLES)]
    assert left == []
