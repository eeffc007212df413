"""The live view of the operations dashboard: ``robotaxi serve --dashboard``.

Two additions to the service, made by :func:`register`:

* ``GET /dashboard``: the dashboard page (the replay page's HTML and deck.gl bundle, in live mode). The page holds
  no data; it is an empty shell like a sign-in form, so it needs no token. It asks for an API key (or a bearer
  token), exchanges it at ``POST /v1/auth/token`` and opens the feed.
* ``WS /v1/dashboard/feed``: the **feed**. Browsers cannot set an ``Authorization`` header on a WebSocket, so the
  first message the client sends is ``{"token": "<bearer token>"}`` (never a query parameter: URLs end up in
  logs). Only **admins and regulators** are admitted; any other role is told why and the socket is closed with
  code 4403, a missing, malformed or expired token with 4401. The socket is closed with 4401 when the token
  expires (the page gets a new one and reconnects).

What the feed sends, once admitted:

1. one **binary** message: the road network (node positions and every street once) in the replay payload format
   (:mod:`robotaxi.dashboard._payload`) with a header naming the network, the display categories and the service's
   maximum wait;
2. every ``interval_s`` (1 s) one **JSON** message ``{"type": "update", ...}``: the vehicles whose position,
   state or operator changed (``[index, lon, lat, category, operator]``; the first message after admission, and
   after a client fell behind, is a full ``"snapshot": true``), vehicles gone (retired), the open requests that
   appeared or changed and those that closed (with how), the events since the last message (requested, assigned,
   picked up, rejected, expired, cancelled, trip completed), the KPIs (requests open, served % and mean wait over
   the last hour, trips and revenue per operator over the last hour, vehicles by category) and the ledger's latest
   signed checkpoint.

The client may ask ``{"type": "vehicle", "device_id": ...}`` and gets ``{"type": "vehicle", ...}``: the vehicle's
state, its stop plan and its last trips.

**How it reads the platform.** The feed never touches the engine: as every other read of the service it reads the
database (vehicles carry their last reported position, MDS state and plan; requests their status), once per
interval and only while someone watches, in a worker thread. One reader serves every client; each client has a
short queue, and one that falls behind is dropped to a full snapshot rather than slowing the others. Reads are
bounded at the service's scale: the open requests through the ``status`` index, requests of the last hour through
a request-id window that only moves forward, trips through the ``end_ms`` index.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
import sqlalchemy as sa
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response

from ..errors import ServiceError
from ..store import tables
from .auth import Principal, Role

if TYPE_CHECKING:
    from ..store import Database
    from .live import LiveService

logger = logging.getLogger(__name__)

#: Roles the feed admits.
VIEWERS = (Role.ADMIN, Role.REGULATOR)
#: Display categories, in the replay's order (robotaxi.dashboard.CATEGORIES).
CATEGORIES = ("idle", "to_pickup", "at_stop", "with_riders", "repositioning", "off_service")
_CAT = {c: i for i, c in enumerate(CATEGORIES)}
_STATE_CATEGORY = {
    "available": "idle",
    "reserved": "to_pickup",
    "stopped": "at_stop",
    "on_trip": "with_riders",
    "non_operational": "off_service",
    "non_contactable": "off_service",
}
#: Request statuses that are still waiting for a vehicle at the pickup.
OPEN = ("open", "assigned")
#: WebSocket close codes (the 4000-4999 range is the application's).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
#: Updates a client may have waiting before it is resynchronised with a snapshot.
QUEUE = 4
#: How long a client has to send its token.
AUTH_TIMEOUT_S = 30.0
HOUR_MS = 3_600_000
#: Events kept for the page's ticker per update.
MAX_EVENTS = 200


def category(state: str, plan: Any) -> int:
    """The display category of a vehicle in MDS ``state`` with stop ``plan`` (a list, or its JSON text: an available
    vehicle driving to a reposition stop is repositioning). The plan is decoded only for an available vehicle with
    stops: decoding 5,000 plans a second was most of a read's time."""
    name = _STATE_CATEGORY.get(state, "off_service")
    if name == "idle" and isinstance(plan, str) and plan.strip() not in ("", "[]", "null"):
        plan = json.loads(plan)
    first = plan[0] if isinstance(plan, list) and plan else None
    if name == "idle" and isinstance(first, dict) and first.get("kind") == "reposition":
        name = "repositioning"
    return _CAT[name]


@dataclass(slots=True)
class _Vehicle:
    index: int
    lon: float
    lat: float
    cat: int
    operator: int


@dataclass(slots=True)
class _Request:
    lon: float
    lat: float
    requested_ms: int
    status: str
    device: str | None


@dataclass(slots=True)
class Reading:
    """One read of the platform: the full state and the change since the previous read."""

    now_ms: int
    vehicles: dict[str, _Vehicle]
    open: dict[int, _Request]
    changed: list[list[Any]]
    gone: list[int]
    new_vehicles: list[dict[str, Any]]
    req_changed: list[list[Any]]
    req_closed: list[list[Any]]
    events: list[list[Any]]
    kpis: dict[str, Any]
    operators: list[dict[str, Any]]
    ledger: dict[str, Any] | None
    areas: list[dict[str, Any]] = field(default_factory=list)
    areas_changed: bool = False

    def update(self) -> dict[str, Any]:
        """The message for a client that has the previous reading (``areas`` only when they changed)."""
        return {
            **({"areas": self.areas} if self.areas_changed else {}),
            "type": "update",
            "snapshot": False,
            "now_ms": self.now_ms,
            "new_vehicles": self.new_vehicles,
            "vehicles": self.changed,
            "gone": self.gone,
            "requests": self.req_changed,
            "closed": self.req_closed,
            "events": self.events,
            "kpis": self.kpis,
            "operators": self.operators,
            "ledger": self.ledger,
        }

    def snapshot(self, registry: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The message for a new client: everything, as of this reading."""
        return {
            **self.update(),
            "snapshot": True,
            "areas": self.areas,
            "new_vehicles": [registry[d] for d in self.vehicles],
            "vehicles": [[v.index, v.lon, v.lat, v.cat, v.operator] for v in self.vehicles.values()],
            "gone": [],
            "requests": [[r, q.lon, q.lat, q.requested_ms, q.status] for r, q in self.open.items()],
            "closed": [],
        }


@dataclass
class FeedReader:
    """Reads the platform's state from the database and what changed since the previous read (one per app;
    called from one worker thread at a time)."""

    service: LiveService
    vehicles: dict[str, _Vehicle] = field(default_factory=dict)
    open: dict[int, _Request] = field(default_factory=dict)
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    low_id: int = 0
    max_id: int | None = None
    trips_seen: dict[str, int] = field(default_factory=dict)
    last_ms: int | None = None
    ledger: dict[str, Any] | None = None
    ledger_read_at: float = float("-inf")
    areas_key: str | None = None
    areas: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> Reading:
        svc = self.service
        now_ms = int(svc.clock() * 1000)
        since = self.last_ms if self.last_ms is not None else now_ms - 60_000
        with _snapshot(svc.db) as conn:
            rows = self._query(conn, now_ms, since)
            kpis = self._kpis(conn, now_ms)
        ledger = self._ledger()
        events: list[list[Any]] = []
        current, changed, new_vehicles = self._vehicles(rows["vehicles"])
        gone = [v.index for d, v in self.vehicles.items() if d not in current]
        now_open, req_changed, req_closed = self._requests(rows["open"], rows["closed"], now_ms, events)
        self._trip_events(rows["trips"], now_ms, events)
        if self.last_ms is None:
            events = []  # the first read sets the baseline: nothing "happened" yet
        events.sort(key=lambda e: (e[0], e[2]))
        # Revenue is null when no trip was priced (a service without a fare schedule), not zero.
        per_op = {int(op): (int(n), None if c is None else int(c)) for op, n, c in rows["hour"]}
        n_by_op: dict[int, int] = {}
        by_cat = [0] * len(CATEGORIES)
        for v in current.values():
            n_by_op[v.operator] = n_by_op.get(v.operator, 0) + 1
            by_cat[v.cat] += 1
        operators = [
            {
                "id": op,
                "name": name,
                "vehicles": n_by_op.get(op, 0),
                "trips_hour": per_op.get(op, (0, None))[0],
                "revenue_hour_cents": per_op.get(op, (0, None))[1],
            }
            for op, name in sorted(rows["names"])
        ]
        kpis.update(vehicles=len(current), by_category=by_cat, trips_hour=sum(n for n, _ in per_op.values()))
        areas_changed = self._areas(rows["areas"])
        self.vehicles, self.open, self.last_ms = current, now_open, now_ms
        return Reading(
            now_ms, current, now_open, changed, gone, new_vehicles, req_changed, req_closed, events[-MAX_EVENTS:],
            kpis, operators, ledger, self.areas, areas_changed,
        )  # fmt: skip

    def _areas(self, rows: list[tuple[int, str, str]]) -> bool:
        """Outlines of the operators' service areas (set by admins while the platform runs); True if they changed.

        ``rows`` hold each area's stored JSON text: an unchanged platform costs one string comparison per read.
        """
        from ..dashboard.replay_data import outline_paths
        from .operators import area_geometries

        key = repr(rows)
        if key == self.areas_key:
            return False
        self.areas_key = key
        # Colours follow the vehicles': the page indexes operators by their id.
        self.areas = [
            {
                "operator": name,
                "index": i,
                "paths": outline_paths(area_geometries(json.loads(text), f"operator {name!r}: area")),
            }
            for i, name, text in rows
        ]
        return True

    def _query(self, conn: sa.Connection, now_ms: int, since: int) -> dict[str, list[Any]]:
        V, RR, TR, OP = tables.vehicles, tables.ride_requests, tables.trips, tables.operators
        out: dict[str, list[Any]] = {}
        # Areas as text: compared each read, parsed only when one changed (they can be large zone unions).
        area_text = sa.cast(OP.c.area, sa.Text).label("area")
        ops = list(conn.execute(sa.select(OP.c.id, OP.c.name, area_text).order_by(OP.c.id)))
        out["names"] = [(int(r.id), str(r.name)) for r in ops]
        out["areas"] = [(int(r.id), str(r.name), r.area) for r in ops if r.area is not None and r.area != "null"]
        out["vehicles"] = list(
            conn.execute(
                sa.select(
                    V.c.device_id,
                    V.c.vehicle_id,
                    V.c.operator_id,
                    V.c.state,
                    V.c.lon,
                    V.c.lat,
                    sa.cast(V.c.plan, sa.Text).label("plan"),  # decoded only where needed (category())
                ).where(V.c.state != "removed")
            )
        )
        out["open"] = list(
            conn.execute(
                sa.select(
                    RR.c.request_id, RR.c.origin_lon, RR.c.origin_lat, RR.c.requested_ms, RR.c.status, RR.c.device_id
                ).where(RR.c.status.in_(OPEN))
            )
        )
        still = {int(o.request_id) for o in out["open"]}
        left = [r for r in self.open if r not in still]
        # Requests made and closed between two reads (a rejection at once) never were in the open set.
        top = conn.execute(sa.select(sa.func.max(RR.c.request_id))).scalar_one()
        if self.max_id is not None and top is not None and top > self.max_id:
            left += [
                int(r)
                for r in conn.execute(
                    sa.select(RR.c.request_id).where(RR.c.request_id > self.max_id, RR.c.status.not_in(OPEN))
                ).scalars()
            ]
        self.max_id = int(top) if top is not None else (self.max_id or 0)
        out["closed"] = (
            list(
                conn.execute(
                    sa.select(
                        RR.c.request_id, RR.c.status, RR.c.reason, RR.c.device_id, RR.c.pickup_ms, RR.c.requested_ms
                    ).where(RR.c.request_id.in_(left))
                )
            )
            if left
            else []
        )
        out["hour"] = list(
            conn.execute(
                sa.select(TR.c.operator_id, sa.func.count(), sa.func.sum(TR.c.fare_cents))
                .where(TR.c.end_ms > now_ms - HOUR_MS)
                .group_by(TR.c.operator_id)
            )
        )
        out["trips"] = list(
            conn.execute(
                sa.select(TR.c.trip_id, TR.c.request_id, TR.c.device_id, TR.c.end_ms, TR.c.fare_cents).where(
                    TR.c.end_ms > since - 60_000
                )
            )
        )
        return out

    def _vehicles(self, rows: list[Any]) -> tuple[dict[str, _Vehicle], list[list[Any]], list[dict[str, Any]]]:
        current: dict[str, _Vehicle] = {}
        changed: list[list[Any]] = []
        new_vehicles: list[dict[str, Any]] = []
        for row in rows:
            device = str(row.device_id)
            old = self.vehicles.get(device)
            if device not in self.registry:
                self.registry[device] = {
                    "i": len(self.registry),
                    "device_id": device,
                    "vehicle_id": str(row.vehicle_id),
                    "operator": int(row.operator_id),
                }
            if old is None:
                new_vehicles.append(self.registry[device])
            v = _Vehicle(
                self.registry[device]["i"], float(row.lon), float(row.lat), category(str(row.state), row.plan),
                int(row.operator_id),
            )  # fmt: skip
            current[device] = v
            if old is None or (old.lon, old.lat, old.cat, old.operator) != (v.lon, v.lat, v.cat, v.operator):
                changed.append([v.index, v.lon, v.lat, v.cat, v.operator])
        return current, changed, new_vehicles

    def _requests(
        self, open_rows: list[Any], closed_rows: list[Any], now_ms: int, events: list[list[Any]]
    ) -> tuple[dict[int, _Request], list[list[Any]], list[list[Any]]]:
        now_open: dict[int, _Request] = {}
        changed: list[list[Any]] = []
        for row in open_rows:
            rid = int(row.request_id)
            q = _Request(
                float(row.origin_lon), float(row.origin_lat), int(row.requested_ms), str(row.status),
                None if row.device_id is None else str(row.device_id),
            )  # fmt: skip
            now_open[rid] = q
            before = self.open.get(rid)
            if before is None or before.status != q.status or before.device != q.device:
                changed.append([rid, q.lon, q.lat, q.requested_ms, q.status])
                if before is None:
                    events.append([q.requested_ms, "requested", rid, None])
                if q.status == "assigned" and q.device is not None:
                    events.append([now_ms, "assigned", rid, self._index(q.device)])
        closed: list[list[Any]] = []
        for row in closed_rows:
            rid, status = int(row.request_id), str(row.status)
            if rid not in self.open:
                events.append([int(row.requested_ms), "requested", rid, None])
            device = None if row.device_id is None else self._index(str(row.device_id))
            if row.pickup_ms is not None:
                closed.append([rid, "served", None])
                events.append([int(row.pickup_ms), "picked_up", rid, device])
            else:
                closed.append([rid, status, row.reason])
                events.append([now_ms, status, rid, device])
        return now_open, changed, closed

    def _trip_events(self, rows: list[Any], now_ms: int, events: list[list[Any]]) -> None:
        for row in rows:
            tid = str(row.trip_id)
            if tid in self.trips_seen:
                continue
            self.trips_seen[tid] = int(row.end_ms)
            fare = None if row.fare_cents is None else int(row.fare_cents)
            device = self._index(str(row.device_id))
            events.append([int(row.end_ms), "trip_completed", int(row.request_id), device, fare])
        horizon = now_ms - 5 * 60_000
        self.trips_seen = {t: e for t, e in self.trips_seen.items() if e > horizon}

    def _index(self, device: str) -> int | None:
        entry = self.registry.get(device)
        return None if entry is None else int(entry["i"])

    def _kpis(self, conn: sa.Connection, now_ms: int) -> dict[str, Any]:
        """Requests open, and over the last hour: served % of the requests closed and mean wait of the pickups."""
        RR = tables.ride_requests
        hour_ago = now_ms - HOUR_MS
        # A request closed in the last hour was made at most max_wait (plus a margin for late pickups) earlier.
        cutoff = hour_ago - 2 * self.service.settings.max_wait_s * 1000 - 60_000
        low = conn.execute(
            sa.select(sa.func.min(RR.c.request_id)).where(RR.c.request_id >= self.low_id, RR.c.requested_ms >= cutoff)
        ).scalar_one()
        if low is not None:
            self.low_id = int(low)
        picked = RR.c.pickup_ms > hour_ago
        failed = sa.and_(
            RR.c.pickup_ms.is_(None), RR.c.closed_ms > hour_ago, RR.c.status.in_(("rejected", "expired", "cancelled"))
        )
        row = conn.execute(
            sa.select(
                sa.func.count().filter(picked),
                sa.func.count().filter(failed),
                sa.func.sum(RR.c.pickup_ms - RR.c.requested_ms).filter(picked),
            ).where(RR.c.request_id >= self.low_id)
        ).one()
        n_open = conn.execute(sa.select(sa.func.count()).select_from(RR).where(RR.c.status.in_(OPEN))).scalar_one()
        served, failed_n, wait_ms = int(row[0]), int(row[1]), row[2]
        closed = served + failed_n
        return {
            "open": int(n_open),
            "served_hour": served,
            "closed_hour": closed,
            "served_pct_hour": 100.0 * served / closed if closed else None,
            "mean_wait_hour_s": float(wait_ms) / 1000.0 / served if served and wait_ms is not None else None,
        }

    def _ledger(self) -> dict[str, Any] | None:
        """The ledger's latest signed checkpoint (read at most every 5 s)."""
        now = time.monotonic()
        if now - self.ledger_read_at < 5.0:
            return self.ledger
        self.ledger_read_at = now
        try:
            with self.service.ledger.reader() as ledger:
                cp = ledger.latest_checkpoint()
                size = ledger.size
        except Exception:  # the ledger is not essential to the view: say so, keep feeding
            logger.exception("dashboard feed: cannot read the ledger")
            self.ledger = {"size": None, "note": None, "error": "the ledger cannot be read"}
            return self.ledger
        self.ledger = {"size": size, "checkpoint_size": None if cp is None else cp.size,
                       "note": None if cp is None else cp.note}  # fmt: skip
        return self.ledger

    def vehicle(self, device_id: str) -> dict[str, Any]:
        """One vehicle's state, plan and last trips (for a click on the map)."""
        V, TR = tables.vehicles, tables.trips
        with self.service.db.connect() as conn:
            row = conn.execute(sa.select(V).where(V.c.device_id == device_id)).first()
            if row is None:
                raise ServiceError(f"device_id: no vehicle {device_id}", status=404, code="unknown_vehicle")
            trips = conn.execute(
                sa.select(TR.c.trip_id, TR.c.request_id, TR.c.start_ms, TR.c.end_ms, TR.c.distance_m, TR.c.fare_cents)
                .where(TR.c.device_id == device_id)
                .order_by(TR.c.end_ms.desc())
                .limit(20)
            ).all()
        return {
            "type": "vehicle",
            "device_id": device_id,
            "vehicle_id": row.vehicle_id,
            "operator": int(row.operator_id),
            "state": row.state,
            "position_ms": row.last_telemetry_ms,
            "plan": row.plan,
            "trips": [
                {"trip_id": t.trip_id, "request_id": int(t.request_id), "start_ms": int(t.start_ms),
                 "end_ms": int(t.end_ms), "distance_m": int(t.distance_m),
                 "fare_cents": None if t.fare_cents is None else int(t.fare_cents)}
                for t in trips
            ],
        }  # fmt: skip


@contextlib.contextmanager
def _snapshot(db: Database) -> Iterator[sa.Connection]:
    """A read-only connection whose reads all see one committed state (the engine thread commits a request, its
    assignment and the vehicle's new state together; reads in separate snapshots could show half of it)."""
    with db.connect() as conn:
        if not db.is_sqlite:
            yield conn.execution_options(isolation_level="REPEATABLE READ")
            return
        # pysqlite starts no transaction for SELECTs: each would see its own snapshot. WAL readers never block.
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.exec_driver_sql("ROLLBACK")


def network_payload(service: LiveService) -> bytes:
    """The road network in the replay payload format (what the page draws the map from)."""
    from ..dashboard import ReplayData
    from ..dashboard._payload import encode
    from ..dashboard.replay_data import network_arrays

    net = service.network
    arrays = {k: v for k, v in network_arrays(net).items() if k in ("node_lon", "node_lat", "map_a", "map_b")}
    meta = {
        "live": True,
        "name": "live platform",
        "network": net.name,
        "categories": list(CATEGORIES),
        "max_wait_s": service.settings.max_wait_s,
        "currency": service.settings.currency,
    }
    return encode(ReplayData(meta=meta, arrays=arrays))


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    fresh: bool = True


class LiveFeed:
    """The feed of one app: the clients, and one reader task that runs while any client is connected."""

    def __init__(self, service: LiveService, interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s}")
        self.service = service
        self.interval_s = interval_s
        self.reader = FeedReader(service)
        self.clients: set[_Client] = set()
        self._task: asyncio.Task[None] | None = None
        self._network: bytes | None = None
        self.reads = 0

    def network(self) -> bytes:
        if self._network is None:
            self._network = network_payload(self.service)
        return self._network

    def join(self) -> _Client:
        client = _Client()
        self.clients.add(client)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="dashboard-feed")
        return client

    def leave(self, client: _Client) -> None:
        self.clients.discard(client)
        if not self.clients and self._task is not None:
            self._task.cancel()  # nobody watches: stop reading now (not at the next interval)

    async def _run(self) -> None:
        while self.clients:
            started = time.monotonic()
            try:
                reading = await asyncio.to_thread(self.reader.read)
            except Exception:
                logger.exception("dashboard feed: reading the platform failed; retrying")
                reading = None
            if reading is not None:
                self.reads += 1
                self._publish(reading)
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _publish(self, reading: Reading) -> None:
        update: dict[str, Any] | None = None
        snapshot: dict[str, Any] | None = None
        for c in list(self.clients):
            if c.fresh:
                snapshot = snapshot or reading.snapshot(self.reader.registry)
                message = snapshot
            else:
                update = update or reading.update()
                message = update
            if c.queue.full():  # fell behind: drop what waits, send everything next time
                while not c.queue.empty():
                    c.queue.get_nowait()
                c.fresh = True
                continue
            c.queue.put_nowait(message)
            c.fresh = False


async def _authenticate(ws: WebSocket, service: LiveService) -> tuple[Principal, int] | None:
    """The viewer the first message's token speaks for and its expiry (epoch s); ``None`` after refusing."""
    try:
        first = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await _refuse(ws, CLOSE_UNAUTHORIZED, "unauthorized", f'send {{"token": ...}} within {AUTH_TIMEOUT_S:g} s')
        return None
    try:
        body = json.loads(first)
    except json.JSONDecodeError:
        body = None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        await _refuse(ws, CLOSE_UNAUTHORIZED, "unauthorized", 'the first message must be {"token": "<bearer token>"}')
        return None
    try:
        who = service.tokens.verify(token)
    except ServiceError as e:
        await _refuse(ws, CLOSE_UNAUTHORIZED, e.code, str(e))
        return None
    if who.role not in VIEWERS:
        allowed = ", ".join(r.value for r in VIEWERS)
        await _refuse(
            ws, CLOSE_FORBIDDEN, "forbidden", f"role {who.role.value} may not watch the dashboard ({allowed} only)"
        )
        return None
    exp = int(jwt.decode(token, options={"verify_signature": False})["exp"])  # verified above
    return who, exp


async def _refuse(ws: WebSocket, code: int, error: str, description: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "error": error, "error_description": description})
        await ws.close(code=code, reason=description[:120])


def register(app: FastAPI, *, interval_s: float = 1.0) -> LiveFeed:
    """Add the dashboard page and its feed to ``app`` (whose ``state.service`` is the live service)."""
    service: LiveService = app.state.service
    feed = LiveFeed(service, interval_s)
    app.state.dashboard_feed = feed

    @app.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
    def dashboard_page() -> HTMLResponse:
        from ..dashboard.page import live_html

        return HTMLResponse(live_html(), headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    def no_icon() -> Response:
        return Response(status_code=204)  # browsers ask for it; the page has none

    @app.websocket("/v1/dashboard/feed")
    async def dashboard_feed(ws: WebSocket) -> None:
        await ws.accept()
        admitted = await _authenticate(ws, service)
        if admitted is None:
            return
        who, exp = admitted
        logger.info("dashboard feed: %s %s connected", who.role.value, who.subject)
        await ws.send_bytes(await asyncio.to_thread(feed.network))
        client = feed.join()
        try:
            await _serve_client(ws, feed, client, exp)
        finally:
            feed.leave(client)

    return feed


async def _serve_client(ws: WebSocket, feed: LiveFeed, client: _Client, exp: int) -> None:
    service = feed.service

    async def send() -> None:
        while True:
            remaining = exp - service.clock()
            if remaining <= 0:
                await _refuse(ws, CLOSE_UNAUTHORIZED, "invalid_token", "the bearer token has expired")
                return
            try:
                message = await asyncio.wait_for(client.queue.get(), min(remaining, 5.0))
            except TimeoutError:
                continue
            await ws.send_json(message)

    async def receive() -> None:
        while True:
            text = await ws.receive_text()
            try:
                ask = json.loads(text)
            except json.JSONDecodeError:
                ask = None
            if not isinstance(ask, dict) or ask.get("type") != "vehicle" or not isinstance(ask.get("device_id"), str):
                await ws.send_json({"type": "error", "error": "bad_param",
                                    "error_description": 'ask {"type": "vehicle", "device_id": "<uuid>"}'})  # fmt: skip
                continue
            try:
                answer = await asyncio.to_thread(feed.reader.vehicle, ask["device_id"][:64])
            except ServiceError as e:
                answer = {"type": "error", "error": e.code, "error_description": str(e)}
            await ws.send_json(answer)

    tasks = [asyncio.ensure_future(send()), asyncio.ensure_future(receive())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()  # not awaited: a cancelled handler must not wait here
    for t in done:
        exc = None if t.cancelled() else t.exception()
        if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
            logger.warning("dashboard feed: client ended with %r", exc)
