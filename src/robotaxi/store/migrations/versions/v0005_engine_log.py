"""The engine's input log: every input the engine accepted since its last stored snapshot, replayed on restore.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_log",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_engine_log"),
    )
    with op.batch_alter_table("engine_state") as batch:
        batch.add_column(sa.Column("log_seq", sa.BigInteger, nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("engine_state") as batch:
        batch.drop_column("log_seq")
    op.drop_table("engine_log")
