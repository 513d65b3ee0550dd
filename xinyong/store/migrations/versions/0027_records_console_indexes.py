"""records: indexes for the console's record lists at national scale

Revision ID: 0027
Revises: 0024

The console lists an authority's records as received (first versions, by batch) and, apart,
their corrections and revocations (later versions). At 1,000,000 entities (3.9 million record
versions) the first list counted its 2.5 million rows through the table (7 s) and the second
walked every first version of the authority to find the few later ones (51 s). Now the batch
index carries the version, so counting first versions reads the index alone, and a partial
index holds only the later versions, from which the corrections list starts.
"""

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_records_batch', table_name='records')
    op.create_index('ix_records_batch', 'records', ['batch_id', 'version'])
    op.create_index('ix_records_later_versions', 'records', ['record_key'],
                    postgresql_where=sa.text('version > 1'), sqlite_where=sa.text('version > 1'))


def downgrade() -> None:
    op.drop_index('ix_records_later_versions', table_name='records')
    op.drop_index('ix_records_batch', table_name='records')
    op.create_index('ix_records_batch', 'records', ['batch_id'])
