"""changes: gathered per statement on PostgreSQL; on SQLite a bulk writer may write its own

Revision ID: 0024
Revises: 0023

Migration 0015 wrote one `changes` row per changed row through deferred row triggers: at COMMIT
each fired on its own, took the advisory lock and drew its `seq`. A batch writing 100,000 firms
queued half a million trigger events and ran the function half a million times.

Now each watched table has statement triggers (AFTER INSERT, AFTER UPDATE) that copy the
statement's changed rows from its transition table into `changes_pending`, one row each, in one
INSERT..SELECT. The first such statement of a transaction also writes a row into `changes_flush`,
whose deferred constraint trigger runs once at COMMIT: it takes the same advisory lock, moves the
transaction's pending rows into `changes` in the order they were written (drawing `seq` then, in
commit order, as before) and empties both tables. `changes` holds the same rows as before, one
per changed row; only their `seq` values are drawn differently. A row in `changes_pending` is
never visible to another transaction: it is written and deleted inside the one that made it.

`foreign_lists` keeps its row trigger of 0022 (one row per import). SQLite has no statement
triggers. Its row triggers on the entity tables now fire only while
`changes_muted` is empty. A bulk writer (the register's ingest) puts a row there inside its
transaction, writes, takes the row out and writes one `changes` row per entity it touched, in the
same transaction (`store.changes.EntityChanges`). One writer at a time holds an SQLite database,
so no other writer can see the row; a crash rolls it back with the rest. The entity stays in the
feed as before (screening's refresh and `/v1/changes` read entity changes as a set of entities);
it just has one row per batch chunk instead of one per written row.
On SQLite, entity_relations gets back the triggers it lost when 0021 rebuilt the table (batch mode
copies a table without its triggers): a relation written there never reached the feed, so
screening's refresh missed a new controller until a restart.
"""

from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

CHANGES_LOCK = 7_243_119_015  # 0015's: serialises the drawing of `seq` at commit
ARMED = "xinyong.changes_flush_armed"  # transaction-local: this transaction has its flush queued

# 0015's table: (table, kind of change, column naming what changed, events)
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


# SQLite: the entity tables whose row triggers a bulk writer may mute (0015's names)
MUTED = [("entities", "id"), ("entity_names", "entity_id"), ("entity_identifiers", "entity_id"),
         ("entity_relations", "entity_id")]


def _sqlite_triggers(when: str) -> None:
    for table, column in MUTED:
        for event in ("INSERT", "UPDATE"):
            op.execute(f"DROP TRIGGER IF EXISTS changes_{table}_{event.lower()}")
            op.execute(f"CREATE TRIGGER changes_{table}_{event.lower()} AFTER {event} ON {table} {when}"
                       f"BEGIN INSERT INTO changes (kind, ref_id) VALUES ('entity', NEW.{column}); END")


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        op.execute("CREATE TABLE changes_muted (muted INTEGER NOT NULL)")
        _sqlite_triggers("WHEN NOT EXISTS (SELECT 1 FROM changes_muted) ")
        return
    op.execute("CREATE TABLE changes_pending (id BIGSERIAL PRIMARY KEY, kind VARCHAR(16) NOT NULL, ref_id BIGINT)")
    op.execute("CREATE TABLE changes_flush (id BIGSERIAL PRIMARY KEY)")
    op.execute(f"""
        CREATE FUNCTION xinyong_gather_changes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('INSERT INTO changes_pending (kind, ref_id) SELECT %L, %I FROM changed_rows',
                           TG_ARGV[0], TG_ARGV[1]);
            IF current_setting('{ARMED}', true) IS DISTINCT FROM 'on' AND EXISTS (SELECT 1 FROM changed_rows) THEN
                INSERT INTO changes_flush DEFAULT VALUES;  -- its deferred trigger runs once, at COMMIT
                PERFORM set_config('{ARMED}', 'on', true);
            END IF;
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION xinyong_flush_changes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- at COMMIT (deferred): one transaction at a time draws seq, in commit order
            PERFORM pg_advisory_xact_lock({CHANGES_LOCK});
            INSERT INTO changes (kind, ref_id) SELECT kind, ref_id FROM changes_pending ORDER BY id;
            DELETE FROM changes_pending;
            DELETE FROM changes_flush;
            PERFORM set_config('{ARMED}', 'off', true);  -- SET CONSTRAINTS ... IMMEDIATE may flush early
            RETURN NULL;
        END $$""")
    op.execute("CREATE CONSTRAINT TRIGGER changes_flush AFTER INSERT ON changes_flush "
               "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION xinyong_flush_changes()")
    for table, kind, column, events in WATCHED:
        op.execute(f"DROP TRIGGER changes_{table} ON {table}")
        for event in events.split(" OR "):
            op.execute(f"CREATE TRIGGER changes_{table}_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION xinyong_gather_changes('{kind}', '{column}')")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        _sqlite_triggers("")
        for event in ("insert", "update"):  # as 0021 left it
            op.execute(f"DROP TRIGGER changes_entity_relations_{event}")
        op.execute("DROP TABLE changes_muted")
        return
    for table, kind, column, events in WATCHED:
        for event in events.split(" OR "):
            op.execute(f"DROP TRIGGER changes_{table}_{event.lower()} ON {table}")
        op.execute(f"CREATE CONSTRAINT TRIGGER changes_{table} AFTER {events} ON {table} "
                   f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                   f"EXECUTE FUNCTION xinyong_record_change('{kind}', '{column}')")
    op.execute("DROP TRIGGER changes_flush ON changes_flush")
    op.execute("DROP FUNCTION xinyong_flush_changes()")
    op.execute("DROP FUNCTION xinyong_gather_changes()")
    op.execute("DROP TABLE changes_flush")
    op.execute("DROP TABLE changes_pending")
