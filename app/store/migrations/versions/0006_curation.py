"""curation: curated examples (approved answers as plain messages), datasets and their rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:46:19.729825
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "curated_examples",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("collection", sa.String(length=63), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("turns", sa.JSON(), nullable=False),
        sa.Column("passages", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("model_answer", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("feedback_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stale_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_curated_examples")),
        sa.UniqueConstraint("message_id", name=op.f("uq_curated_examples_message_id")),
    )
    with op.batch_alter_table("curated_examples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_curated_examples_collection"), ["collection"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_curated_examples_status"), ["status"], unique=False)

    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("collection", sa.String(length=63), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("n_examples", sa.Integer(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_held_out", sa.Integer(), nullable=False),
        sa.Column("held_out", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "dataset_rows",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("example_id", sa.String(length=32), nullable=False),
        sa.Column("split", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_rows_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "example_id", name=op.f("pk_dataset_rows")),
    )


def downgrade() -> None:
    op.drop_table("dataset_rows")
    op.drop_table("datasets")
    with op.batch_alter_table("curated_examples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_curated_examples_status"))
        batch_op.drop_index(batch_op.f("ix_curated_examples_collection"))

    op.drop_table("curated_examples")
