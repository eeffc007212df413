"""Small drivers for engine tests: dock vehicles, send requests and vehicle events with few words."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robotaxi.dispatch import (
    Decisions,
    DispatchEngine,
    EngineParams,
    PolicyName,
    RequestsArrived,
    VehiclesDocked,
    VehiclesUpdated,
    make_policy,
)
from robotaxi.fleet import EventType
from robotaxi.network import Router


def vid(i: int) -> str:
    """The external id the helpers give vehicle ``i``."""
    return f"v{i}"


def engine(
    router: Router,
    policy: PolicyName,
    nodes: Sequence[int],
    *,
    max_wait_s: int = 600,
    capacity: int | Sequence[int] = 4,
    **params: int,
) -> DispatchEngine:
    """An engine with vehicles ``v0..`` docked at ``nodes`` and in service at time 0."""
    e = DispatchEngine(router, make_policy(policy), EngineParams(max_wait_s=max_wait_s, **params))
    ids = [vid(i) for i in range(len(nodes))]
    e.handle(VehiclesDocked(0, ids, nodes, capacity=capacity))
    e.handle(VehiclesUpdated(0, ids, EventType.SERVICE_START, nodes))
    return e


def arrive(
    e: DispatchEngine,
    t: int,
    ids: Sequence[int],
    o: Sequence[int],
    d: Sequence[int] | None = None,
    **kw: object,
) -> Decisions:
    """Requests ``ids`` from ``o`` to ``d`` (default: the node after ``o``) at time ``t``."""
    dd = [(x + 1) % e.travel.n_nodes for x in o] if d is None else d
    return e.handle(RequestsArrived(t, ids, o, dd, **kw))  # type: ignore[arg-type]


def update(e: DispatchEngine, t: int, v: int, event: EventType | int, node: int, request: int = -1) -> Decisions:
    """Vehicle ``v`` reports ``event`` at ``node``."""
    return e.handle(VehiclesUpdated(t, [vid(v)], np.int8(event), [node], [request]))


def pick_up_and_drop(e: DispatchEngine, t: int, v: int, request: int, o: int, d: int) -> int:
    """Drive vehicle ``v``'s plan for ``request`` by hand (arrive, board, arrive, alight); returns the end time."""
    dw = e.params
    update(e, t, v, EventType.RESERVATION_STOP, o, request)
    t += dw.pickup_dwell_s
    update(e, t, v, EventType.TRIP_START, o, request)
    t += int(e.travel.times(o, d, t))
    update(e, t, v, EventType.TRIP_STOP, d, request)
    t += dw.dropoff_dwell_s
    update(e, t, v, EventType.TRIP_END, d, request)
    return t
