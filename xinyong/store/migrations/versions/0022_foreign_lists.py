"""foreign and international lists: their versions and designations

Revision ID: 0022
Revises: 0021

Lists of kind `foreign` (the UN Security Council's consolidated list, OpenSanctions files) and
their designations, kept apart from listings: no due process, no public surface. Importing a
list writes or updates its `foreign_lists` row, which leaves a `changes` row (kind `foreign`)
by the same commit-ordered triggers as migration 0015, so a running server reloads its foreign
names within a second.
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'foreign_lists',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('code', sa.String(40), nullable=False, unique=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('format', sa.String(8), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('list_date', sa.Date()),
        sa.Column('version', sa.String(80), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'foreign_designations',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('list_id', sa.Integer(), sa.ForeignKey('foreign_lists.id'), nullable=False),
        sa.Column('source_id', sa.String(200), nullable=False),
        sa.Column('schema', sa.String(40), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('aliases', sa.JSON(), nullable=False),
        sa.Column('identifiers', sa.JSON(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('listed_on', sa.Date()),
        sa.Column('first_version', sa.String(80), nullable=False),
        sa.Column('list_version', sa.String(80), nullable=False),
        sa.Column('ended_on', sa.Date()),
        sa.Column('ended_version', sa.String(80)),
    )
    op.create_index('ix_foreign_designations_list', 'foreign_designations', ['list_id', 'source_id'])
    if op.get_bind().dialect.name == 'postgresql':  # the function of migration 0015: seq drawn at commit
        op.execute("CREATE CONSTRAINT TRIGGER changes_foreign_lists AFTER INSERT OR UPDATE ON foreign_lists "
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION xinyong_record_change('foreign', 'id')")
    else:
        for event in ("INSERT", "UPDATE"):
            op.execute(f"CREATE TRIGGER changes_foreign_lists_{event.lower()} AFTER {event} ON foreign_lists "
                       f"BEGIN INSERT INTO changes (kind, ref_id) VALUES ('foreign', NEW.id); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS changes_foreign_lists ON foreign_lists")
    else:
        for event in ("INSERT", "UPDATE"):
            op.execute(f"DROP TRIGGER IF EXISTS changes_foreign_lists_{event.lower()}")
    op.drop_index('ix_foreign_designations_list', 'foreign_designations')
    op.drop_table('foreign_designations')
    op.drop_table('foreign_lists')
