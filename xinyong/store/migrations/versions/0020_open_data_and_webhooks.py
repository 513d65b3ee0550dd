"""open data: public facts and their change log; watchlists and webhook deliveries

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'public_facts',
        sa.Column('fact_id', sa.String(80), primary_key=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('entity', sa.String(40), nullable=False, index=True),
        sa.Column('hash', sa.String(32), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
    )
    op.create_table(
        'public_events',
        sa.Column('seq', BIG, primary_key=True),
        sa.Column('event_id', sa.String(40), nullable=False, unique=True),
        sa.Column('type', sa.String(32), nullable=False),
        sa.Column('entity', sa.String(40), nullable=False, index=True),
        sa.Column('fact_id', sa.String(80), nullable=False),
        sa.Column('op', sa.String(8), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('change', sa.JSON(), nullable=False),
    )
    op.create_table(
        'subscriptions',
        sa.Column('id', sa.String(32), primary_key=True),
        sa.Column('key_id', sa.Integer(), sa.ForeignKey('api_keys.id'), nullable=False, index=True),
        sa.Column('authority', sa.String(32), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('secret', sa.String(64), nullable=False),
        sa.Column('entities', sa.JSON(), nullable=False),
        sa.Column('purpose', sa.String(32)),
        sa.Column('legal_basis', sa.Text()),
        sa.Column('from_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True)),
    )
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('subscription_id', sa.String(32), sa.ForeignKey('subscriptions.id'), nullable=False, index=True),
        sa.Column('event_seq', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.String(40), nullable=False),
        sa.Column('state', sa.String(12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_status', sa.Integer()),
        sa.Column('last_error', sa.Text()),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True)),
        sa.UniqueConstraint('subscription_id', 'event_seq', name='uq_delivery'),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['state', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_due', 'webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_table('subscriptions')
    op.drop_table('public_events')
    op.drop_table('public_facts')
