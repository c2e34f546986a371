"""data quality: document fingerprints, quarantined files, the check of each finding

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:19:06.062636
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The check of findings stored before this revision, told by their wording; the rest
# were load errors or loader warnings.
_OLD_FINDINGS = {
    "possible prompt injection:%": "injection",
    "near-empty:%": "near_empty",
    "% chunks are shorter than %": "short_chunks",
    "garbled text%": "garbled",
    "same content as %": "duplicate",
}


def upgrade() -> None:
    # NULL fingerprints: existing documents get theirs on the next ingest of their folder.
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.JSON(), nullable=True))

    with op.batch_alter_table("ingest_issues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("check", sa.String(length=32), nullable=False, server_default="load")
        )

    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quarantined", sa.Integer(), nullable=False, server_default="0")
        )

    issues = sa.table("ingest_issues", sa.column("check", sa.String), sa.column("reason", sa.Text))
    for pattern, check in _OLD_FINDINGS.items():
        op.execute(issues.update().where(issues.c.reason.like(pattern)).values(check=check))


def downgrade() -> None:
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.drop_column("quarantined")

    with op.batch_alter_table("ingest_issues", schema=None) as batch_op:
        batch_op.drop_column("check")

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("text_hash")
