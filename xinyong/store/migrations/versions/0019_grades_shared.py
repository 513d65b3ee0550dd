"""supervision grades shared with an authority

Revision ID: 0019
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'grades_shared',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('entity_id', sa.Integer(), sa.ForeignKey('entities.id'), nullable=False),
        sa.Column('grade', sa.String(8), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('points', sa.JSON(), nullable=False),
        sa.Column('pack_version', sa.String(40), nullable=False),
        sa.Column('authority', sa.String(40), nullable=False),
        sa.Column('purpose', sa.String(40), nullable=False),
        sa.Column('actor', sa.String(200), nullable=False),
        sa.Column('shared_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_grades_shared_entity_id', 'grades_shared', ['entity_id'])


def downgrade() -> None:
    op.drop_index('ix_grades_shared_entity_id', table_name='grades_shared')
    op.drop_table('grades_shared')
