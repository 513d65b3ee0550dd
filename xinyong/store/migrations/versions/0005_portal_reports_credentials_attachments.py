"""web portal: credit reports, subject credentials, objection attachments

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('code', sa.String(length=32), primary_key=True),
    sa.Column('entity_id', sa.Integer(), sa.ForeignKey('entities.id'), nullable=False, index=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table('subject_credentials',
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('entity_id', sa.Integer(), sa.ForeignKey('entities.id'), nullable=False, index=True),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False, unique=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table('objection_attachments',
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('objection_id', sa.Integer(), sa.ForeignKey('objections.id'), nullable=False, index=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    )


def downgrade() -> None:
    for table in ('objection_attachments', 'subject_credentials', 'reports'):
        op.drop_table(table)
