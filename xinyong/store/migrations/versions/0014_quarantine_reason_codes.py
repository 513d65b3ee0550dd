"""quarantine reasons as a code and parameters, rendered per language

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows quarantined before keep only their English `reason` (pages show it as it is).
    with op.batch_alter_table('quarantine') as batch:
        batch.add_column(sa.Column('reason_code', sa.String(40)))
        batch.add_column(sa.Column('params', sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table('quarantine') as batch:
        batch.drop_column('params')
        batch.drop_column('reason_code')
