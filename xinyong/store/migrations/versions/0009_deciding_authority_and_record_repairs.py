"""who decided each due-process step, late decisions, repairs of a record's publicity, extensions

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('listings') as batch:
        batch.add_column(sa.Column('extended_years', sa.Integer()))
    with op.batch_alter_table('listing_transitions') as batch:
        batch.add_column(sa.Column('authority', sa.String(32)))
    with op.batch_alter_table('objections') as batch:
        batch.add_column(sa.Column('authority', sa.String(32)))
        batch.add_column(sa.Column('late', sa.Boolean()))
    with op.batch_alter_table('repairs') as batch:
        batch.alter_column('listing_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('record_key', sa.Text()))
        batch.add_column(sa.Column('accepted_on', sa.Date()))
        batch.add_column(sa.Column('authority', sa.String(32)))
        batch.add_column(sa.Column('late', sa.Boolean()))
        batch.create_index('ix_repairs_record_key', ['record_key'])
    # one application waiting per record, as per listing (0006)
    op.create_index('uq_repairs_pending_record', 'repairs', ['record_key'], unique=True,
                    sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_index('uq_repairs_pending_record', table_name='repairs')
    with op.batch_alter_table('repairs') as batch:
        batch.drop_index('ix_repairs_record_key')
        batch.drop_column('late')
        batch.drop_column('authority')
        batch.drop_column('accepted_on')
        batch.drop_column('record_key')
        batch.alter_column('listing_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('objections') as batch:
        batch.drop_column('late')
        batch.drop_column('authority')
    with op.batch_alter_table('listing_transitions') as batch:
        batch.drop_column('authority')
    with op.batch_alter_table('listings') as batch:
        batch.drop_column('extended_years')
