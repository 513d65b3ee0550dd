"""changes: on PostgreSQL, one `entity` row per entity a transaction touched, as on SQLite

Revision ID: 0029
Revises: 0028

0024's statement triggers gather one `changes_pending` row per changed row, and its commit-time
flush moved every one of them into `changes`: a register file of 100,000 firms left about a
million `entity` rows (a firm's entity, names, identifiers, representatives, each inserted and
updated), for 100,000 entities. Their readers (screening's refresh, the index's catch-up count)
take entity changes as a set of entities, and SQLite's bulk writer already leaves one row per
entity (`store.changes.EntityChanges`). The flush now keeps an entity's first row of the
transaction, in the order written; every other kind is moved row for row as before.
"""

from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

CHANGES_LOCK = 7_243_119_015  # 0015's: serialises the drawing of `seq` at commit
ARMED = "xinyong.changes_flush_armed"


def _flush_function(moved: str) -> None:
    op.execute(f"""
        CREATE OR REPLACE FUNCTION xinyong_flush_changes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- at COMMIT (deferred): one transaction at a time draws seq, in commit order
            PERFORM pg_advisory_xact_lock({CHANGES_LOCK});
            {moved}
            DELETE FROM changes_pending;
            DELETE FROM changes_flush;
            PERFORM set_config('{ARMED}', 'off', true);  -- SET CONSTRAINTS ... IMMEDIATE may flush early
            RETURN NULL;
        END $$""")


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    _flush_function("""INSERT INTO changes (kind, ref_id)
            SELECT kind, ref_id FROM (
                SELECT id, kind, ref_id,
                       row_number() OVER (PARTITION BY kind, ref_id ORDER BY id) AS nth
                FROM changes_pending) pending
            WHERE kind <> 'entity' OR nth = 1
            ORDER BY id;""")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    _flush_function("INSERT INTO changes (kind, ref_id) SELECT kind, ref_id FROM changes_pending ORDER BY id;")
