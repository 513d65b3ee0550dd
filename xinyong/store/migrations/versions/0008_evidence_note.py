"""what the evidence of a listing says about a test the rule could not make

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('listing_evidence') as batch:
        batch.add_column(sa.Column('note', sa.Text))


def downgrade() -> None:
    with op.batch_alter_table('listing_evidence') as batch:
        batch.drop_column('note')
