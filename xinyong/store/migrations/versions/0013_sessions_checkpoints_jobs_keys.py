"""server-side sessions, signed chain checkpoints, report seals, key expiry, job heartbeats

Revision ID: 0013
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('id_sha256', sa.String(64), primary_key=True),
        sa.Column('data', sa.JSON, nullable=False),
        sa.Column('subject_entity_id', sa.Integer, sa.ForeignKey('entities.id')),
        sa.Column('api_key_id', sa.Integer, sa.ForeignKey('api_keys.id')),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_web_sessions_subject_entity_id', 'web_sessions', ['subject_entity_id'])
    op.create_index('ix_web_sessions_api_key_id', 'web_sessions', ['api_key_id'])
    op.create_index('ix_web_sessions_last_seen', 'web_sessions', ['last_seen'])
    op.create_table(
        'chain_checkpoints',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('seq', sa.Integer, nullable=False),
        sa.Column('hash', sa.String(64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('public_key', sa.String(64), nullable=False),
        sa.Column('signature', sa.String(128), nullable=False),
    )
    op.create_index('ix_chain_checkpoints_seq', 'chain_checkpoints', ['seq'])
    with op.batch_alter_table('reports') as batch:
        batch.add_column(sa.Column('sealed_seq', sa.Integer))
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True)))
    with op.batch_alter_table('screen_jobs') as batch:
        batch.add_column(sa.Column('worker_pid', sa.Integer))
        batch.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True)))
        batch.add_column(sa.Column('resume', sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table('screen_jobs') as batch:
        batch.drop_column('resume')
        batch.drop_column('heartbeat_at')
        batch.drop_column('worker_pid')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('expires_at')
    with op.batch_alter_table('reports') as batch:
        batch.drop_column('sealed_seq')
    op.drop_table('chain_checkpoints')
    op.drop_table('web_sessions')
