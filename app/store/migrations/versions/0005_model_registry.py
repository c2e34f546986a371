"""model registry: chat models pinned by hash, their activations, answer lineage

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("architecture", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.BigInteger(), nullable=True),
        sa.Column("quantization", sa.String(length=32), nullable=False),
        sa.Column("context_length", sa.Integer(), nullable=True),
        sa.Column("chat_template", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eval_report", sa.JSON(), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_models")),
        sa.UniqueConstraint("name", name=op.f("uq_chat_models_name")),
    )
    op.create_table(
        "model_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("previous", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_activations")),
    )
    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_activations_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("model_sha256")
    with op.batch_alter_table("model_activations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_activations_created_at"))
    op.drop_table("model_activations")
    op.drop_table("chat_models")
