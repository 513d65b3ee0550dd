"""why a listing ended

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Listings that ended before this column existed: the reason follows from the final state and
# the audited transition's reason (an upheld objection or a revoked/moved record).
BACKFILL = """
UPDATE listings SET end_reason = CASE
    WHEN state = 'expired' THEN 'term_expired'
    WHEN state = 'repaired' THEN 'repaired'
    WHEN EXISTS (SELECT 1 FROM objections o WHERE o.listing_id = listings.id AND o.state = 'upheld')
        THEN 'withdrawn_objection'
    ELSE 'withdrawn_record' END
WHERE state IN ('expired', 'repaired', 'withdrawn')
"""


def upgrade() -> None:
    with op.batch_alter_table('listings') as batch:
        batch.add_column(sa.Column('end_reason', sa.String(32)))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('listings') as batch:
        batch.drop_column('end_reason')
