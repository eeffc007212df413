"""Write-heavy tables: drop the telemetry index on (device_id, timestamp_ms); vehicles at fillfactor 50 on PostgreSQL.

No query reads telemetry by vehicle (the MDS ``/telemetry`` feed and the DMV mileage read it by time, through the
``timestamp_ms`` index; a vehicle's latest point is on its ``vehicles`` row), while every point written had to go
into this index at a random place: with 1,000-point batches it was the largest part of a batch's insert and of its
commit as the table grew (``benchmarks/RESULTS.md``, "Telemetry writes in order").

Every telemetry batch rewrites the position of up to 1,000 vehicles. On PostgreSQL, a full heap page makes each such
UPDATE a new row version elsewhere with a new entry in every index of ``vehicles``, so the primary-key index grew by
a thousand entries a second and the next batch's look-up of its vehicles walked ever longer chains of dead entries.
With half of each page left free, the updates (which change no indexed column) are heap-only (HOT) and the page's
dead versions are pruned as it is read, even without autovacuum. Rows written before this revision move to the
roomier pages as they are updated.

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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE vehicles SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE vehicles RESET (fillfactor)")
    op.create_index("ix_telemetry_device_id_timestamp_ms", "telemetry", ["device_id", "timestamp_ms"])
