"""Operators' DMV permit numbers (for the DMV-format safety reports) and service areas (GeoJSON).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("dmv_permit", sa.String(32), nullable=True))
        batch.add_column(sa.Column("area", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("area")
        batch.drop_column("dmv_permit")
