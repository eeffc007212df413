"""Drop the telemetry index on (device_id, timestamp_ms).

No query reads telemetry by vehicle (the MDS ``/telemetry`` feed and the DMV mileage read it by time, through the
``timestamp_ms`` index; a vehicle's latest point is on its ``vehicles`` row), while every point written had to go
into this index at a random place: with 1,000-point batches it was the largest part of a batch's insert and of its
commit as the table grew (``benchmarks/RESULTS.md``, "Telemetry writes in order").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_telemetry_device_id_timestamp_ms", table_name="telemetry")


def downgrade() -> None:
    op.create_index("ix_telemetry_device_id_timestamp_ms", "telemetry", ["device_id", "timestamp_ms"])
