"""A ride request that arrives while a telemetry batch runs: on PostgreSQL the engine thread commits and answers it
between the batch's insert and its engine input (``LiveService._split``); on SQLite (one writer lock) after the
batch. Either way the batch is all or nothing and a restarted service rebuilds exactly the engine that ran.

The fixture: the 6x6 grid city of ``conftest``, two vehicles, a at node 0 and b at node 35; the batch moves a to
node 34 and b to node 2; the rider asks for a ride from node 1 to node 7. Before the batch a is nearest the pickup,
after it b: the vehicle assigned tells which the engine saw first.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from robotaxi.api import LiveService, create_app
from robotaxi.api import commands as cmds
from robotaxi.api._bulk import insert_telemetry, update_positions
from robotaxi.api.commands import OperatorRef
from robotaxi.api.rides import request_ride
from robotaxi.api.schemas import RideRequestIn, TelemetryBatch
from robotaxi.store import tables

from .conftest import FakeClock, Platform, make_settings, node_location

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> Iterator[tuple[Platform, Any]]:
    clock = FakeClock()
    # No snapshot after the first: a restart replays every input from the engine log, in the order logged.
    settings = make_settings(tmp_path / "data", database_url, clock, snapshot_interval_s=3600.0)
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        yield Platform(client, service, clock), settings


def _ride(o: int, d: int) -> RideRequestIn:
    return RideRequestIn.model_validate({"origin": node_location(o), "destination": node_location(d)})


def _batch(p: Platform, a: str, b: str) -> TelemetryBatch:
    t = p.now_ms
    return TelemetryBatch.model_validate(
        {
            "data": [
                {"device_id": a, "timestamp": t, "location": node_location(34)},
                {"device_id": b, "timestamp": t, "location": node_location(2)},
            ]
        }
    )


def _operator(p: Platform, name: str) -> OperatorRef:
    with p.service.db.connect() as conn:
        row = conn.execute(sa.select(tables.operators).where(tables.operators.c.name == name)).one()
    return OperatorRef(int(row.id), str(row.name), str(row.provider_id))


def _stored(p: Platform) -> dict[str, Any]:
    with p.service.db.connect() as conn:
        tele = conn.execute(sa.select(sa.func.count()).select_from(tables.telemetry)).scalar_one()
        v = tables.vehicles
        cars = dict(conn.execute(sa.select(v.c.device_id, v.c.node)).all())
        rr = tables.ride_requests
        rides = dict(conn.execute(sa.select(rr.c.idempotency_key, rr.c.device_id)).all())
    return {"telemetry": tele, "nodes": cars, "rides": rides}


def _ride_during_insert(p: Platform, monkeypatch: pytest.MonkeyPatch) -> list[Future[Any]]:
    """Make the next telemetry insert submit a ride request (1 -> 7) right after it stored its points: the list
    receives that ride's future."""
    ride: list[Future[Any]] = []
    insert = insert_telemetry

    def inserting(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        insert(conn, rows)
        ride.append(p.service.submit(request_ride("alice", "k1", _ride(1, 7))))

    monkeypatch.setattr(cmds, "insert_telemetry", inserting)
    return ride


def test_a_ride_during_a_telemetry_batch(setup: tuple[Platform, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    p, settings = setup
    op = p.operator("waymo")
    a, b = p.vehicle(op, node=0), p.vehicle(op, node=35)
    ride = _ride_during_insert(p, monkeypatch)
    seen: dict[str, bool] = {}
    update = update_positions

    def updating(conn: sa.Connection, rows: list[dict[str, Any]], updated_ms: int) -> None:
        seen["ride answered first"] = ride[0].done()
        update(conn, rows, updated_ms)

    monkeypatch.setattr(cmds, "update_positions", updating)
    assert p.service.call(cmds.telemetry(_operator(p, "waymo"), _batch(p, a, b))) == 2
    split = not p.service.db.is_sqlite
    assert seen == {"ride answered first": split}
    out, created = ride[0].result(30)
    assert created
    assert out.status == "assigned"
    assert out.vehicle is not None
    assert out.vehicle.device_id == (a if split else b)  # the engine saw the ride before the batch on PostgreSQL
    assert _stored(p) == {"telemetry": 2, "nodes": {a: 34, b: 2}, "rides": {"k1": out.vehicle.device_id}}
    before = p.service.engine.snapshot()
    p.service.stop()
    service = LiveService(settings)
    with TestClient(create_app(service)):
        assert service.engine.snapshot() == before


def test_a_failed_telemetry_batch_keeps_the_ride_committed_meanwhile(
    setup: tuple[Platform, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, settings = setup
    op = p.operator("waymo")
    a, b = p.vehicle(op, node=0), p.vehicle(op, node=35)
    ride = _ride_during_insert(p, monkeypatch)

    def failing(conn: sa.Connection, rows: list[dict[str, Any]], updated_ms: int) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(cmds, "update_positions", failing)
    with pytest.raises(Exception, match="could not store this change") as err:
        p.service.call(cmds.telemetry(_operator(p, "waymo"), _batch(p, a, b)))
    assert getattr(err.value, "status", None) == 503
    out, _ = ride[0].result(30)
    # The ride is answered (before the batch on PostgreSQL, after its failure on SQLite) and stored; nothing of the
    # batch is: no point, no position, and the engine restored from the database without it.
    assert out.status == "assigned"
    assert out.vehicle is not None
    assert out.vehicle.device_id == a
    assert _stored(p) == {"telemetry": 0, "nodes": {a: 0, b: 35}, "rides": {"k1": a}}
    p.service.call(lambda ctx: None)  # the engine thread answers first, then restores the engine: let it finish
    before = p.service.engine.snapshot()  # equal to the engine the database holds (below): without the batch
    p.service.stop()
    service = LiveService(settings)
    with TestClient(create_app(service)):
        assert service.engine.snapshot() == before


def test_a_telemetry_batch_the_engine_refuses_after_its_insert(
    setup: tuple[Platform, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine refuses the batch's update after its points were inserted (and, on PostgreSQL, after a ride was
    committed meanwhile): the batch is answered 409 and undone (no point, no position, the engine as before), the
    ride stands, and a restarted service rebuilds the same engine."""
    from robotaxi.dispatch import VehiclesUpdated
    from robotaxi.errors import DispatchError

    p, settings = setup
    op = p.operator("waymo")
    a, b = p.vehicle(op, node=0), p.vehicle(op, node=35)
    ride = _ride_during_insert(p, monkeypatch)
    engine = p.service.engine
    real = engine.handle

    def refusing(event: Any) -> Any:
        if isinstance(event, VehiclesUpdated):
            raise DispatchError("vehicle update refused (test)")
        return real(event)

    monkeypatch.setattr(engine, "handle", refusing)
    with pytest.raises(Exception, match=r"vehicle update refused \(test\)") as err:
        p.service.call(cmds.telemetry(_operator(p, "waymo"), _batch(p, a, b)))
    assert getattr(err.value, "status", None) == 409
    split = not p.service.db.is_sqlite
    assert len(ride) == int(split)  # PostgreSQL inserts the points before the engine input; SQLite after it
    if not ride:
        ride.append(p.service.submit(request_ride("alice", "k1", _ride(1, 7))))
    out, created = ride[0].result(30)
    assert created
    assert out.status == "assigned"
    assert out.vehicle is not None
    assert out.vehicle.device_id == a  # the engine never saw the batch: a is still the nearer
    assert _stored(p) == {"telemetry": 0, "nodes": {a: 0, b: 35}, "rides": {"k1": a}}
    monkeypatch.undo()  # the engine's own handle again, before its state is compared
    assert p.service.engine is engine  # a refusal changes nothing: no restore was needed
    before = engine.snapshot()
    p.service.stop()
    service = LiveService(settings)
    with TestClient(create_app(service)):
        assert service.engine.snapshot() == before
