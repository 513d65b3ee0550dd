"""screening: API keys, query log, feedback, batch jobs

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('authority', sa.String(length=32), nullable=False, index=True),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False, unique=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('rate_per_second', sa.Float(), nullable=False),
    sa.Column('burst', sa.Integer(), nullable=False),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table('query_log',
    sa.Column('id', BIG_ID, primary_key=True),
    sa.Column('query_id', sa.String(length=32), nullable=False, unique=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), sa.ForeignKey('api_keys.id'), nullable=True),
    sa.Column('authority', sa.String(length=32), nullable=False, index=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('endpoint', sa.String(length=32), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('measures', sa.JSON(), nullable=False),
    )
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('query_id', sa.String(length=32), nullable=True, index=True),
    sa.Column('key_id', sa.Integer(), sa.ForeignKey('api_keys.id'), nullable=False),
    sa.Column('authority', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table('screen_jobs',
    sa.Column('id', sa.String(length=32), primary_key=True),
    sa.Column('key_id', sa.Integer(), sa.ForeignKey('api_keys.id'), nullable=True),
    sa.Column('authority', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('input_format', sa.String(length=8), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in ('screen_jobs', 'feedback', 'query_log', 'api_keys'):
        op.drop_table(table)
