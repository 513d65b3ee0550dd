"""ownership and control: a relation's role, share, source record and the name of a firm party

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('entity_relations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(32)))
        batch_op.add_column(sa.Column('share', sa.Float()))
        batch_op.add_column(sa.Column('other_name', sa.Text()))
        batch_op.add_column(sa.Column('record_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_entity_relations_record_id', 'records', ['record_id'], ['id'])
        batch_op.create_index('ix_entity_relations_record_id', ['record_id'], unique=False)
        batch_op.create_index('ix_entity_relations_other_entity_id', ['other_entity_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('entity_relations', schema=None) as batch_op:
        batch_op.drop_index('ix_entity_relations_other_entity_id')
        batch_op.drop_index('ix_entity_relations_record_id')
        batch_op.drop_constraint('fk_entity_relations_record_id', type_='foreignkey')
        batch_op.drop_column('record_id')
        batch_op.drop_column('other_name')
        batch_op.drop_column('share')
        batch_op.drop_column('role')
