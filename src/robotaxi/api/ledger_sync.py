"""Completed trips and reported safety events go to the platform's ledger (``DATA_DIR/ledger.db``, RFC 9162, see
``docs/ledger.md``), and a signed checkpoint follows them.

The database is the first record: a trip or safety event is committed with ``ledger_index`` NULL, then (on the
engine thread, after the commit) appended to the ledger and its index written back. A crash in between loses
nothing: on the next start (and on every tick while something is pending) the rows without an index are appended
again, and the ledger skips records it already holds (appends are idempotent by trip / event id). Checkpoints are
signed with ``DATA_DIR/ledger.key`` (Ed25519, created on first start; the public ``ledger.vkey`` beside it) at most
every ``checkpoint_interval_s`` seconds when the log grew.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..ledger import Ledger, SafetyEvent, SigningKey, TripRecord
from ..store import Database, tables

logger = logging.getLogger(__name__)
#: Rows appended per pass.
BATCH = 1000


def load_or_create_key(data_dir: Path, origin: str) -> SigningKey:
    path = data_dir / "ledger.key"
    if path.is_file():
        return SigningKey.from_file(path)
    key = SigningKey.generate(origin)
    key.to_file(path)
    (data_dir / "ledger.vkey").write_text(str(key.verifier()) + "\n", encoding="ascii")
    return key


class LedgerSync:
    """The engine thread's writer of the ledger (SQLite connections stay in the thread that opened them: open it
    there with :meth:`open`)."""

    def __init__(self, data_dir: Path, origin: str, interval_s: float) -> None:
        self.path = data_dir / "ledger.db"
        self.key = load_or_create_key(data_dir, origin)
        self.verifier = str(self.key.verifier())
        self.interval_s = interval_s
        self._ledger: Ledger | None = None
        self.pending = True  # rows may wait from before a crash: look once at start
        self._signed_at = float("-inf")
        Ledger.open_or_create(self.path, origin=self.key.name).close()  # readers may open it from now on

    def open(self) -> None:
        self._ledger = Ledger.open_or_create(self.path, origin=self.key.name)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def reader(self) -> Ledger:
        """A ledger handle for the calling thread (close it)."""
        return Ledger.open(self.path)

    def sync(self, db: Database, now_s: float) -> None:
        """Append what is pending, write the indices back, sign a checkpoint when due. Failures are logged and
        retried on the next call (nothing is lost: the rows keep ``ledger_index`` NULL)."""
        if self._ledger is None:
            return
        try:
            while self.pending:
                self.pending = self._pass(db)
            self._checkpoint(now_s)
        except Exception:
            logger.exception("ledger: append failed; retrying on the next tick")
            self.pending = True

    def _pass(self, db: Database) -> bool:
        assert self._ledger is not None
        tr, se, op, v = tables.trips, tables.safety_events, tables.operators, tables.vehicles
        with db.connect() as conn:
            trips = list(
                conn.execute(
                    sa.select(tr, op.c.provider_id)
                    .select_from(tr.join(op, tr.c.operator_id == op.c.id))
                    .where(tr.c.ledger_index.is_(None))
                    .order_by(tr.c.end_ms, tr.c.trip_id)
                    .limit(BATCH)
                )
            )
            events = list(
                conn.execute(
                    sa.select(se, op.c.provider_id)
                    .select_from(se.join(v, se.c.device_id == v.c.device_id).join(op, v.c.operator_id == op.c.id))
                    .where(se.c.ledger_index.is_(None))
                    .order_by(se.c.timestamp_ms, se.c.event_id)
                    .limit(BATCH)
                )
            )
        if not trips and not events:
            return False
        records: list[Any] = [_trip_record(r) for r in trips] + [_safety_record(r) for r in events]
        self._ledger.add_records(records)
        with db.begin() as conn:
            for r in trips:
                i = self._ledger.find_id("trip", r.trip_id)
                conn.execute(tr.update().where(tr.c.trip_id == r.trip_id).values(ledger_index=i))
            for r in events:
                i = self._ledger.find_id("safety_event", r.event_id)
                conn.execute(se.update().where(se.c.event_id == r.event_id).values(ledger_index=i))
        return len(trips) == BATCH or len(events) == BATCH

    def _checkpoint(self, now_s: float) -> None:
        assert self._ledger is not None
        last = self._ledger.latest_checkpoint()
        if self._ledger.size == (last.size if last else 0) or now_s - self._signed_at < self.interval_s:
            return
        self._ledger.sign_checkpoint(self.key)
        self._signed_at = now_s


def _trip_record(r: Any) -> TripRecord:
    return TripRecord(
        trip_id=r.trip_id,
        provider_id=r.provider_id,
        vehicle_id=r.device_id,
        start_time_ms=r.start_ms,
        end_time_ms=r.end_ms,
        start_lon=r.start_lon,
        start_lat=r.start_lat,
        end_lon=r.end_lon,
        end_lat=r.end_lat,
        distance_m=r.distance_m,
        duration_s=r.duration_s,
        fare_cents=r.fare_cents,
        currency=r.currency or "USD",
        request_id=str(r.request_id),
        passengers=r.passengers,
    )


def _safety_record(r: Any) -> SafetyEvent:
    return SafetyEvent(
        event_id=r.event_id,
        event_type=r.event_type,
        provider_id=r.provider_id,
        vehicle_id=r.device_id,
        time_ms=r.timestamp_ms,
        lon=r.lon,
        lat=r.lat,
        initiated_by=r.initiated_by,
        driver_present=r.driver_present,
        location_type=r.location_type,
        description=r.description,
        trip_id=r.trip_id,
        injuries=r.injuries,
    )
