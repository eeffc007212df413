"""Trip offers to operators: the operators' offer settings and the offers table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MS = sa.BigInteger
_UUID = sa.String(36)


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("offers", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("offer_timeout_s", sa.Integer, nullable=False, server_default=sa.text("30")))
    op.create_table(
        "offers",
        sa.Column("offer_id", _UUID, nullable=False),
        sa.Column("request_id", sa.BigInteger, nullable=False),
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("operator_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("offered_ms", _MS, nullable=False),
        sa.Column("expires_ms", _MS, nullable=False),
        sa.Column("pickup_eta_ms", _MS, nullable=False),
        sa.Column("closed_ms", _MS, nullable=True),
        sa.PrimaryKeyConstraint("offer_id", name="pk_offers"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["ride_requests.request_id"], name="fk_offers_request_id_ride_requests"
        ),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_offers_device_id_vehicles"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_offers_operator_id_operators"),
    )
    op.create_index("ix_offers_request_id", "offers", ["request_id"])
    op.create_index("ix_offers_operator_id_status", "offers", ["operator_id", "status"])


def downgrade() -> None:
    op.drop_table("offers")
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("offer_timeout_s")
        batch.drop_column("offers")
