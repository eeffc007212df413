"""The service's tables (SQLAlchemy Core), one :class:`~sqlalchemy.MetaData` for SQLite and PostgreSQL.

Times are integer epoch **milliseconds** (MDS timestamps), positions WGS84 degrees, ids of MDS objects
(``device_id``, ``provider_id``, ``trip_id``, ``event_id``, ``telemetry_id``) lower-case UUID strings. The schema is
created and upgraded only by the Alembic migrations shipped in :mod:`robotaxi.store.migrations`; a test checks that
the migrations produce exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

_MS = sa.BigInteger
_UUID = sa.String(36)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("provider_id", _UUID, nullable=False, unique=True),
    sa.Column("created_ms", _MS, nullable=False),
    sa.Column("offers", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("offer_timeout_s", sa.Integer, nullable=False, server_default=sa.text("30")),
    sa.Column("dmv_permit", sa.String(32), nullable=True),
    sa.Column("area", sa.JSON, nullable=True),
    sa.Column("fares", sa.JSON, nullable=True),
    sa.Column("hours", sa.String(11), nullable=True),
)
"""Operators (MDS providers). ``id`` is also the operator index the dispatch engine knows (0, 1, ...). ``offers``:
the platform offers each trip to the operator, who accepts or declines it within ``offer_timeout_s``. ``dmv_permit``:
its California DMV permit number (the DMV reports need it). ``area``: its service area as GeoJSON (null: everywhere).
``fares``: its fare schedule (the ``[fares]`` keys of ``robotaxi.market``; null: the platform's). ``hours``: its daily
operating hours ``"HH:MM-HH:MM"`` in the platform's time zone, may cross midnight (null: all day)."""

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=True),
    sa.Column("created_ms", _MS, nullable=False),
    sa.Column("revoked_ms", _MS, nullable=True),
)
"""API keys (only the SHA-256 of the secret is kept); exchanged for bearer tokens at ``/v1/auth/token``."""

vehicles = sa.Table(
    "vehicles",
    metadata,
    sa.Column("device_id", _UUID, primary_key=True),
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=False, index=True),
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
    sa.UniqueConstraint("operator_id", "vehicle_id"),
    # Half of each page free: position updates stay on their page (HOT), see migration 0007.
    postgresql_with={"fillfactor": 50},
)
"""Docked vehicles: registration (MDS vehicle), current MDS state, last position and the engine's stop plan."""

telemetry = sa.Table(
    "telemetry",
    metadata,
    sa.Column("telemetry_id", _UUID, primary_key=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=False),
    sa.Column("timestamp_ms", _MS, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("battery_percent", sa.Integer, nullable=True),
    sa.Column("trip_ids", sa.JSON, nullable=True),
    sa.Column("received_ms", _MS, nullable=False),
    # By time only: nothing reads telemetry by vehicle (migration 0007 dropped the (device_id, timestamp_ms) index,
    # which every point entered at a random place).
    sa.Index(None, "timestamp_ms"),
)

vehicle_events = sa.Table(
    "vehicle_events",
    metadata,
    sa.Column("event_id", _UUID, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=False),
    sa.Column("vehicle_state", sa.String(20), nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("timestamp_ms", _MS, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("battery_percent", sa.Integer, nullable=True),
    sa.Column("trip_ids", sa.JSON, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("publication_ms", _MS, nullable=False),
    sa.Index(None, "timestamp_ms"),
    sa.Index(None, "device_id", "timestamp_ms"),
)
"""MDS vehicle events (``seq``: the order they were recorded in, for events of the same millisecond): reported by
the operator (``source='operator'``) or derived by the platform from its own decisions (``'platform'``:
``reservation_start`` on an assignment, ``passenger_cancellation``, ``decommissioned``)."""

ride_requests = sa.Table(
    "ride_requests",
    metadata,
    sa.Column("request_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("trip_id", _UUID, nullable=False, unique=True),
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
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=True),
    sa.Column("max_wait_s", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("requested_ms", _MS, nullable=False),
    sa.Column("direct_s", sa.Integer, nullable=False),
    sa.Column("direct_m", sa.Integer, nullable=False),
    sa.Column("fare_cents", sa.BigInteger, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=True, index=True),
    sa.Column("assigned_ms", _MS, nullable=True),
    sa.Column("quoted_pickup_ms", _MS, nullable=True),
    sa.Column("pickup_ms", _MS, nullable=True),
    sa.Column("pickup_lon", sa.Float, nullable=True),
    sa.Column("pickup_lat", sa.Float, nullable=True),
    sa.Column("dropoff_ms", _MS, nullable=True),
    sa.Column("closed_ms", _MS, nullable=True),
    sa.Column("updated_ms", _MS, nullable=False),
    sa.UniqueConstraint("rider", "idempotency_key"),
)
"""Ride requests. The idempotency key is unique per rider: a retried request never books twice."""

trips = sa.Table(
    "trips",
    metadata,
    sa.Column("trip_id", _UUID, primary_key=True),
    sa.Column("request_id", sa.BigInteger, sa.ForeignKey("ride_requests.request_id"), nullable=False, unique=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=False, index=True),
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=False),
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
    sa.Index(None, "end_ms"),
)
"""Completed trips (MDS trips), written when the vehicle reports ``trip_end`` (or ``trip_resume``) for the rider."""

safety_events = sa.Table(
    "safety_events",
    metadata,
    sa.Column("event_id", _UUID, primary_key=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=False, index=True),
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
    sa.Index(None, "timestamp_ms"),
)
"""Disengagements and collisions reported by operators (California DMV fields, like the ledger's ``SafetyEvent``).
``ledger_index`` is set once the record is in the ledger (trips likewise)."""

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("offer_id", _UUID, primary_key=True),
    sa.Column("request_id", sa.BigInteger, sa.ForeignKey("ride_requests.request_id"), nullable=False, index=True),
    sa.Column("device_id", _UUID, sa.ForeignKey("vehicles.device_id"), nullable=False),
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("offered_ms", _MS, nullable=False),
    sa.Column("expires_ms", _MS, nullable=False),
    sa.Column("pickup_eta_ms", _MS, nullable=False),
    sa.Column("closed_ms", _MS, nullable=True),
    sa.Index(None, "operator_id", "status"),
)
"""Trip offers to operators that answer them (``operators.offers``): ``pending`` until the operator accepts or
declines by ``expires_ms``, else ``lapsed``; ``withdrawn`` when the rider cancels first (or the platform could no
longer keep the pickup time)."""

engine_state = sa.Table(
    "engine_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("saved_ms", _MS, nullable=False),
    sa.Column("engine_now_s", _MS, nullable=False),
    sa.Column("network", sa.String(255), nullable=False),
    sa.Column("snapshot", sa.LargeBinary, nullable=False),
    sa.Column("log_seq", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)
"""One row (``id = 1``): the dispatch engine's snapshot, as of the ``engine_log`` entry ``log_seq``. The engine
restored from it, with the log entries after ``log_seq`` replayed, agrees with every other table."""

engine_log = sa.Table(
    "engine_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)
"""Every input the engine accepted (``kind`` ``event``: a pickled engine event; ``market``: its operators' rules),
written in the transaction of the rows its decisions changed; entries up to the snapshot's ``log_seq`` are
deleted when a snapshot is stored. The engine is deterministic given its inputs, so replaying them rebuilds it."""
