"""changes: a commit-ordered sequence of what screening and /v1/changes follow

Revision ID: 0015
Revises: 0014

Every write that changes what a screening answer or a consumer of `/v1/changes` sees (an
entity, its names, identifiers or relations; a listing, its evidence, transitions or
objections) leaves a row in `changes`, written by triggers in the same transaction.

On PostgreSQL the triggers are deferred constraint triggers: they fire at COMMIT, take a
transaction-scoped advisory lock and only then draw the next `seq`. The lock is held until the
commit is visible, so sequence numbers are handed out in commit order: a transaction that
started first and commits last gets the higher numbers, and a reader that has seen `seq` N has
seen every change numbered below N. On SQLite one writer at a time holds the database, so
plain triggers give the same order.

A later migration that rebuilds one of the watched tables on SQLite (`batch_alter_table` copies
the table and drops the old one, triggers included) must create its triggers again.

Existing listing transitions are copied in with `seq` equal to their id, so a `/v1/changes`
cursor handed out before this migration (a transition id) means the same after it.
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

CHANGES_LOCK = 7_243_119_015  # pg_advisory_xact_lock key: serialises the drawing of `seq` at commit

# (table, kind of change, column naming what changed, events)
WATCHED = [
    ("entities", "entity", "id", "INSERT OR UPDATE"),
    ("entity_names", "entity", "entity_id", "INSERT OR UPDATE"),
    ("entity_identifiers", "entity", "entity_id", "INSERT OR UPDATE"),
    ("entity_relations", "entity", "entity_id", "INSERT OR UPDATE"),
    ("listings", "listing", "id", "INSERT OR UPDATE"),
    ("listing_evidence", "listing", "listing_id", "INSERT"),
    ("listing_transitions", "transition", "id", "INSERT"),
    ("objections", "objection", "listing_id", "INSERT OR UPDATE"),
]


def upgrade() -> None:
    op.create_table(
        'changes',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer, 'sqlite'), primary_key=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('ref_id', sa.BigInteger().with_variant(sa.Integer, 'sqlite')),
    )
    op.create_index('ix_changes_kind_seq', 'changes', ['kind', 'seq'])
    op.execute("INSERT INTO changes (seq, kind, ref_id) SELECT id, 'transition', id FROM listing_transitions")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("SELECT setval(pg_get_serial_sequence('changes', 'seq'), "
                   "COALESCE((SELECT max(seq) FROM changes), 0) + 1, false)")
        op.execute(f"""
            CREATE FUNCTION xinyong_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- at COMMIT (deferred): one transaction at a time draws seq, in commit order
                PERFORM pg_advisory_xact_lock({CHANGES_LOCK});
                INSERT INTO changes (kind, ref_id) VALUES (TG_ARGV[0], (to_jsonb(NEW) ->> TG_ARGV[1])::bigint);
                RETURN NULL;
            END $$""")
        for table, kind, column, events in WATCHED:
            op.execute(f"CREATE CONSTRAINT TRIGGER changes_{table} AFTER {events} ON {table} "
                       f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                       f"EXECUTE FUNCTION xinyong_record_change('{kind}', '{column}')")
    else:
        for table, kind, column, events in WATCHED:
            for event in events.split(" OR "):
                op.execute(f"CREATE TRIGGER changes_{table}_{event.lower()} AFTER {event} ON {table} "
                           f"BEGIN INSERT INTO changes (kind, ref_id) VALUES ('{kind}', NEW.{column}); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, _, _, _ in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS changes_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS xinyong_record_change()")
    else:
        for table, _, _, events in WATCHED:
            for event in events.split(" OR "):
                op.execute(f"DROP TRIGGER IF EXISTS changes_{table}_{event.lower()}")
    op.drop_index('ix_changes_kind_seq', 'changes')
    op.drop_table('changes')
