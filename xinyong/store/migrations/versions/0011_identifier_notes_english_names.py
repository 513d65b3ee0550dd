"""ingest notes apart from identifier warnings; English names of entities

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches') as batch:
        batch.add_column(sa.Column('notes', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('records') as batch:
        batch.add_column(sa.Column('notes', sa.JSON()))
    with op.batch_alter_table('entity_names') as batch:
        batch.add_column(sa.Column('language', sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table('entity_names') as batch:
        batch.drop_column('language')
    with op.batch_alter_table('records') as batch:
        batch.drop_column('notes')
    with op.batch_alter_table('batches') as batch:
        batch.drop_column('notes')
