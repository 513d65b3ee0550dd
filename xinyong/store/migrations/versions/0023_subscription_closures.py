"""watchlists: a person's watch closes when the legal basis to watch them ends

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # entity key -> {"on", "reason", "seq"}: the persons this subscription no longer watches
    op.add_column('subscriptions', sa.Column('closed', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('closed')
