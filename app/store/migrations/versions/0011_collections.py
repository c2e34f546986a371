"""collections with readers: registered collections, who may read them, keys limited to
some, the collection a conversation answers from

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_collections")),
    )
    op.create_table(
        "collection_readers",
        sa.Column("collection", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection"],
            ["collections.name"],
            name=op.f("fk_collection_readers_collection_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection", "kind", "subject", name=op.f("pk_collection_readers")
        ),
    )
    with op.batch_alter_table("collection_readers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_readers_subject"), ["subject"], unique=False
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collections", sa.JSON(), nullable=True))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collection", sa.String(length=63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("collection")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("collections")
    with op.batch_alter_table("collection_readers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_readers_subject"))
    op.drop_table("collection_readers")
    op.drop_table("collections")
