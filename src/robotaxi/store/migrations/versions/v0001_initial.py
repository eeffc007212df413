"""The first schema: operators, credentials, vehicles, telemetry, vehicle events, ride requests, trips, engine state.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_MS = sa.BigInteger
_UUID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider_id", _UUID, nullable=False),
        sa.Column("created_ms", _MS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("name", name="uq_operators_name"),
        sa.UniqueConstraint("provider_id", name="uq_operators_provider_id"),
    )
    op.create_table(
        "credentials",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("operator_id", sa.Integer, nullable=True),
        sa.Column("created_ms", _MS, nullable=False),
        sa.Column("revoked_ms", _MS, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_credentials"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_credentials_operator_id_operators"),
    )
    op.create_table(
        "vehicles",
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("operator_id", sa.Integer, nullable=False),
        sa.Column("vehicle_id", sa.String(255), nullable=False),
        sa.Column("vehicle_type", sa.String(32), nullable=False),
        sa.Column("propulsion_types", sa.JSON, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("vehicle_attributes", sa.JSON, nullable=True),
        sa.Column("accessibility_attributes", sa.JSON, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("registered_ms", _MS, nullable=False),
        sa.Column("retire_requested_ms", _MS, nullable=True),
        sa.Column("retired_ms", _MS, nullable=True),
        sa.Column("node", sa.Integer, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("battery_percent", sa.Integer, nullable=True),
        sa.Column("last_event_id", _UUID, nullable=True),
        sa.Column("last_event_ms", _MS, nullable=True),
        sa.Column("last_telemetry_id", _UUID, nullable=True),
        sa.Column("last_telemetry_ms", _MS, nullable=True),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("updated_ms", _MS, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_vehicles"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_vehicles_operator_id_operators"),
        sa.UniqueConstraint("operator_id", "vehicle_id", name="uq_vehicles_operator_id_vehicle_id"),
    )
    op.create_index("ix_vehicles_operator_id", "vehicles", ["operator_id"])
    op.create_table(
        "telemetry",
        sa.Column("telemetry_id", _UUID, nullable=False),
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("timestamp_ms", _MS, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("battery_percent", sa.Integer, nullable=True),
        sa.Column("trip_ids", sa.JSON, nullable=True),
        sa.Column("received_ms", _MS, nullable=False),
        sa.PrimaryKeyConstraint("telemetry_id", name="pk_telemetry"),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_telemetry_device_id_vehicles"),
    )
    op.create_index("ix_telemetry_timestamp_ms", "telemetry", ["timestamp_ms"])
    op.create_index("ix_telemetry_device_id_timestamp_ms", "telemetry", ["device_id", "timestamp_ms"])
    op.create_table(
        "vehicle_events",
        sa.Column("event_id", _UUID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("vehicle_state", sa.String(20), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("timestamp_ms", _MS, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("battery_percent", sa.Integer, nullable=True),
        sa.Column("trip_ids", sa.JSON, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("publication_ms", _MS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_vehicle_events"),
        sa.UniqueConstraint("seq", name="uq_vehicle_events_seq"),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_vehicle_events_device_id_vehicles"),
    )
    op.create_index("ix_vehicle_events_timestamp_ms", "vehicle_events", ["timestamp_ms"])
    op.create_index("ix_vehicle_events_device_id_timestamp_ms", "vehicle_events", ["device_id", "timestamp_ms"])
    op.create_table(
        "ride_requests",
        sa.Column("request_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("trip_id", _UUID, nullable=False),
        sa.Column("rider", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("origin_lon", sa.Float, nullable=False),
        sa.Column("origin_lat", sa.Float, nullable=False),
        sa.Column("destination_lon", sa.Float, nullable=False),
        sa.Column("destination_lat", sa.Float, nullable=False),
        sa.Column("o_node", sa.Integer, nullable=False),
        sa.Column("d_node", sa.Integer, nullable=False),
        sa.Column("passengers", sa.Integer, nullable=False),
        sa.Column("operator_id", sa.Integer, nullable=True),
        sa.Column("max_wait_s", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("requested_ms", _MS, nullable=False),
        sa.Column("direct_s", sa.Integer, nullable=False),
        sa.Column("direct_m", sa.Integer, nullable=False),
        sa.Column("fare_cents", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("device_id", _UUID, nullable=True),
        sa.Column("assigned_ms", _MS, nullable=True),
        sa.Column("quoted_pickup_ms", _MS, nullable=True),
        sa.Column("pickup_ms", _MS, nullable=True),
        sa.Column("pickup_lon", sa.Float, nullable=True),
        sa.Column("pickup_lat", sa.Float, nullable=True),
        sa.Column("dropoff_ms", _MS, nullable=True),
        sa.Column("closed_ms", _MS, nullable=True),
        sa.Column("updated_ms", _MS, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_ride_requests"),
        sa.UniqueConstraint("trip_id", name="uq_ride_requests_trip_id"),
        sa.UniqueConstraint("rider", "idempotency_key", name="uq_ride_requests_rider_idempotency_key"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_ride_requests_operator_id_operators"),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_ride_requests_device_id_vehicles"),
    )
    op.create_index("ix_ride_requests_status", "ride_requests", ["status"])
    op.create_index("ix_ride_requests_device_id", "ride_requests", ["device_id"])
    op.create_table(
        "trips",
        sa.Column("trip_id", _UUID, nullable=False),
        sa.Column("request_id", sa.BigInteger, nullable=False),
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("operator_id", sa.Integer, nullable=False),
        sa.Column("start_ms", _MS, nullable=False),
        sa.Column("end_ms", _MS, nullable=False),
        sa.Column("start_lon", sa.Float, nullable=False),
        sa.Column("start_lat", sa.Float, nullable=False),
        sa.Column("end_lon", sa.Float, nullable=False),
        sa.Column("end_lat", sa.Float, nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=False),
        sa.Column("distance_m", sa.Integer, nullable=False),
        sa.Column("passengers", sa.Integer, nullable=False),
        sa.Column("fare_cents", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("requested_ms", _MS, nullable=False),
        sa.Column("quoted_pickup_ms", _MS, nullable=False),
        sa.Column("dispatch_ms", _MS, nullable=False),
        sa.Column("publication_ms", _MS, nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("trip_id", name="pk_trips"),
        sa.UniqueConstraint("request_id", name="uq_trips_request_id"),
        sa.ForeignKeyConstraint(["request_id"], ["ride_requests.request_id"], name="fk_trips_request_id_ride_requests"),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_trips_device_id_vehicles"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_trips_operator_id_operators"),
    )
    op.create_index("ix_trips_device_id", "trips", ["device_id"])
    op.create_index("ix_trips_end_ms", "trips", ["end_ms"])
    op.create_table(
        "safety_events",
        sa.Column("event_id", _UUID, nullable=False),
        sa.Column("device_id", _UUID, nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("timestamp_ms", _MS, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("initiated_by", sa.String(16), nullable=False),
        sa.Column("driver_present", sa.Boolean, nullable=False),
        sa.Column("location_type", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("trip_id", _UUID, nullable=True),
        sa.Column("injuries", sa.Integer, nullable=False),
        sa.Column("received_ms", _MS, nullable=False),
        sa.Column("ledger_index", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_safety_events"),
        sa.ForeignKeyConstraint(["device_id"], ["vehicles.device_id"], name="fk_safety_events_device_id_vehicles"),
    )
    op.create_index("ix_safety_events_device_id", "safety_events", ["device_id"])
    op.create_index("ix_safety_events_timestamp_ms", "safety_events", ["timestamp_ms"])
    op.create_table(
        "engine_state",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("saved_ms", _MS, nullable=False),
        sa.Column("engine_now_s", _MS, nullable=False),
        sa.Column("network", sa.String(255), nullable=False),
        sa.Column("snapshot", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_engine_state"),
    )


def downgrade() -> None:
    for name in ("engine_state", "safety_events", "trips", "ride_requests", "vehicle_events", "telemetry", "vehicles"):
        op.drop_table(name)
    op.drop_table("credentials")
    op.drop_table("operators")
