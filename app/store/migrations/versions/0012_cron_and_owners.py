"""source schedules by cron expression; collection owners

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cron", sa.String(length=120), nullable=True))
    op.create_table(
        "collection_owners",
        sa.Column("collection", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection"],
            ["collections.name"],
            name=op.f("fk_collection_owners_collection_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection", "kind", "subject", name=op.f("pk_collection_owners")),
    )
    with op.batch_alter_table("collection_owners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_owners_subject"), ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collection_owners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_owners_subject"))
    op.drop_table("collection_owners")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("cron")
