"""resolution links judgements models

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resolution_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.Column('trained_on', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('duplicate_pairs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_a', sa.Integer(), nullable=False),
    sa.Column('entity_b', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('engine', sa.String(length=8), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_a'], ['entities.id'], ),
    sa.ForeignKeyConstraint(['entity_b'], ['entities.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['resolution_models.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entity_a', 'entity_b', name='uq_duplicate_pair')
    )
    op.create_table('judgements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_key', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=8), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judgements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judgements_record_key'), ['record_key'], unique=False)

    op.create_table('record_links',
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('explanation', sa.JSON(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], ),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], ),
    sa.PrimaryKeyConstraint('record_id')
    )
    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_links_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index('ix_record_links_state', ['state'], unique=False)

    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=12), server_default='register', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_column('origin')

    with op.batch_alter_table('record_links', schema=None) as batch_op:
        batch_op.drop_index('ix_record_links_state')
        batch_op.drop_index(batch_op.f('ix_record_links_entity_id'))

    op.drop_table('record_links')
    with op.batch_alter_table('judgements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_judgements_record_key'))

    op.drop_table('judgements')
    op.drop_table('duplicate_pairs')
    op.drop_table('resolution_models')
