"""one pending repair application per listing

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('uq_repairs_pending', 'repairs', ['listing_id'], unique=True,
                    sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_index('uq_repairs_pending', table_name='repairs')
