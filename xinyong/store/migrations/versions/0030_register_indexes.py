"""Fewer index entries per register row: entity_relations' person_id, other_entity_id and
record_id indexed where set; entity_names' entity_id index dropped

Revision ID: 0030
Revises: 0029

A register row's legal representative has no ID number, firm or source record: each of its
relations put a NULL in three indexes that no query reads (a query on one of these columns, by
=, IN or a join, implies it is not NULL, and both engines then use the partial index).
entity_names' own entity_id index repeated the first column of uq_entity_name (entity_id, name),
which serves every lookup by entity. Together a fifth of the cost of inserting a new firm's
names and representative on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

PARTIAL = ("person_id", "other_entity_id", "record_id")


def upgrade() -> None:
    op.drop_index("ix_entity_names_entity_id", table_name="entity_names")
    for column in PARTIAL:
        name = f"ix_entity_relations_{column}"
        op.drop_index(name, table_name="entity_relations")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "entity_relations", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for column in PARTIAL:
        name = f"ix_entity_relations_{column}"
        op.drop_index(name, table_name="entity_relations")
        op.create_index(name, "entity_relations", [column])
    op.create_index("ix_entity_names_entity_id", "entity_names", ["entity_id"])
