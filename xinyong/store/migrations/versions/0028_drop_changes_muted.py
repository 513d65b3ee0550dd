"""changes: SQLite's entity triggers lose the `changes_muted` test that no writer uses any more

Revision ID: 0028
Revises: 0027

Migration 0024 made SQLite's entity-table triggers fire only while `changes_muted` was empty, so
the register's bulk writer could mute them. The writer now drops the triggers inside its
transaction instead (`store.changes.EntityChanges`: the WHEN cost as much as the trigger), so
nothing writes `changes_muted`: the table goes, and the triggers are as 0015 made them, firing
for every row. PostgreSQL never had the table.
"""

from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

# SQLite: the entity tables and the column naming the entity (0024's `MUTED`)
ENTITY_TABLES = [("entities", "id"), ("entity_names", "entity_id"), ("entity_identifiers", "entity_id"),
                 ("entity_relations", "entity_id")]


def _sqlite_triggers(when: str) -> None:
    for table, column in ENTITY_TABLES:
        for event in ("INSERT", "UPDATE"):
            op.execute(f"DROP TRIGGER IF EXISTS changes_{table}_{event.lower()}")
            op.execute(f"CREATE TRIGGER changes_{table}_{event.lower()} AFTER {event} ON {table} {when}"
                       f"BEGIN INSERT INTO changes (kind, ref_id) VALUES ('entity', NEW.{column}); END")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        return
    _sqlite_triggers("")
    op.execute("DROP TABLE changes_muted")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        return
    op.execute("CREATE TABLE changes_muted (muted INTEGER NOT NULL)")
    _sqlite_triggers("WHEN NOT EXISTS (SELECT 1 FROM changes_muted) ")
