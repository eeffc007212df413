"""Disengagements inside the simulator: drawn as the vehicles drive, acting on the trips.

An autonomous ``[[operators]]`` table of a scenario may carry ``[operators.safety]`` (:func:`parse_operator_safety`):
its miles per disengagement (optionally by DMV location type and hour, as :class:`~.process.DisengagementRates`) and
what a disengagement does:

* ``continue`` (needs ``safety_driver = true``): the safety driver takes over and the vehicle goes on after
  ``delay_s``;
* ``remote`` (driverless): the vehicle waits ``delay_s`` for a remote operator, then goes on; the wait is counted as
  remote-assistance time (and cost, ``remote_operator_per_hour_cents``);
* ``stop`` (driverless): the vehicle stops service until it is recovered (``recovery_s``). The riders it was on its
  way to pick up are handed back to the dispatch engine at once (a ``provider_cancellation``) and re-dispatched to
  other vehicles of any operator; riders on board get out where it stopped
  (:class:`~robotaxi.dispatch.RidersDisembarked`) and ride on with another vehicle of any operator, as a new request
  from there to their destination (see ``docs/safety.md`` for how the KPIs count them).

:class:`Disengagements` is the simulator's hook. Each vehicle carries a Poisson process along its odometer at its
operator's highest rate: the distance to the next *candidate* is exponential, so a leg costs one subtraction and
the random generator is used only at candidates. A candidate is placed on its edge (the leg routed as the simulator
drove it), and kept with probability ``rate(location type, hour) / highest rate`` (thinning, Lewis and Shedler 1979,
as :func:`~.runs.simulate_disengagements` does offline). The process is therefore exactly Poisson over the miles
each vehicle drives, whatever the length of its legs. A leg is drawn when it has been driven (at its arrival, or
where the engine diverted the vehicle): the event keeps its own time and position, and its delay is taken at the end
of that stretch (the vehicle reaches the next stop, or leaves the diversion node, that much later).

Randomness comes from a generator seeded with the scenario's seed (its own stream: a run without safety settings
draws exactly what it drew before), so the same seed gives the same events.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from .process import _PROFILE_KEYS, METRES_PER_MILE, SafetyProfile, _profile
from .records import DisengagementRecord
from .roads import edge_road_classes, location_type
from .runs import EVENT_NAMESPACE, TRIP_NAMESPACE, SafetyEvents
from .stats import miles_per_disengagement
from .vin import simulated_vin

if TYPE_CHECKING:
    from ..network import Router

__all__ = [
    "ACTIONS",
    "SAFETY_KEYS",
    "Disengagements",
    "OperatorSafety",
    "SimSafety",
    "locate",
    "parse_operator_safety",
    "run_safety_kpis",
    "safety_kpis",
]

#: What a disengagement does, per operator.
ACTIONS = ("continue", "remote", "stop")
#: Keys of ``[operators.safety]``: the profile's (but ``driver_present``, which is the operator's ``safety_driver``)
#: and what a disengagement does.
SAFETY_KEYS = tuple(
    sorted(
        (_PROFILE_KEYS - {"driver_present"})
        | {"on_disengagement", "delay_s", "recovery_s", "remote_operator_per_hour_cents"}
    )
)
DEFAULT_DELAY_S = {"continue": 60, "remote": 300}
DEFAULT_RECOVERY_S = 1800
_MAX_WAIT_S = 86_400
#: Seed-sequence key of the safety stream (independent of the simulator's other draws).
_STREAM = 0x5AFE


@dataclass(frozen=True, slots=True)
class OperatorSafety:
    """An operator's disengagement profile and what a disengagement does (``docs/safety.md``).

    ``wait_s`` is the delay (``continue``, ``remote``) or the recovery time (``stop``).
    """

    profile: SafetyProfile
    action: str
    wait_s: int
    remote_operator_per_hour_cents: int = 0

    def as_dict(self) -> dict[str, Any]:
        p = self.profile
        return {
            "permit_number": p.permit_number,
            "driver_present": p.driver_present,
            "can_operate_without_driver": p.can_operate_without_driver,
            "initiators": {k.value: v for k, v in (p.initiators or {}).items()},
            **p.rates.as_dict(),
            "on_disengagement": self.action,
            ("recovery_s" if self.action == "stop" else "delay_s"): self.wait_s,
            "remote_operator_per_hour_cents": self.remote_operator_per_hour_cents,
        }


def _seconds(t: Mapping[str, Any], key: str, default: int, where: str, *, lo: int) -> int:
    if key not in t:
        return default
    v = t[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{where}.{key}: expected whole seconds, got {v!r}")
    if not lo <= v <= _MAX_WAIT_S:
        raise ValueError(f"{where}.{key}: must be within {lo}..{_MAX_WAIT_S} s, got {v}")
    return v


def parse_operator_safety(  # noqa: PLR0912 - one check per key
    table: Any, *, operator: str, safety_driver: bool, where: str
) -> OperatorSafety:
    """Validate an ``[operators.safety]`` table completely; ``ValueError`` names ``where`` and the key.

    ``where`` is how the operator is named in messages (``operators[1] 'island-av': safety``).
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table [operators.safety]")
    unknown = sorted(set(table) - set(SAFETY_KEYS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known keys here: {', '.join(SAFETY_KEYS)})")
    action = table.get("on_disengagement", "continue" if safety_driver else "remote")
    if action not in ACTIONS:
        raise ValueError(f"{where}.on_disengagement: expected one of {', '.join(ACTIONS)}, got {action!r}")
    if action == "continue" and not safety_driver:
        raise ValueError(
            f'{where}.on_disengagement: "continue" needs a safety driver on board (the operator has safety_driver = '
            'false): use "remote" or "stop"'
        )
    if action != "continue" and safety_driver:
        raise ValueError(
            f"{where}.on_disengagement: {action!r} is for driverless vehicles (the operator has safety_driver = "
            'true): use "continue"'
        )
    if action == "stop" and "delay_s" in table:
        raise ValueError(f'{where}.delay_s: not for on_disengagement = "stop" (give recovery_s)')
    if action != "stop" and "recovery_s" in table:
        raise ValueError(f'{where}.recovery_s: only for on_disengagement = "stop" (give delay_s)')
    if action != "remote" and "remote_operator_per_hour_cents" in table:
        raise ValueError(f'{where}.remote_operator_per_hour_cents: only for on_disengagement = "remote"')
    if action == "stop":
        wait = _seconds(table, "recovery_s", DEFAULT_RECOVERY_S, where, lo=1)
    else:
        wait = _seconds(table, "delay_s", DEFAULT_DELAY_S[action], where, lo=0)
    cents = table.get("remote_operator_per_hour_cents", 0)
    if isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= 10_000_000:
        raise ValueError(f"{where}.remote_operator_per_hour_cents: expected whole cents 0..10000000, got {cents!r}")
    capable = table.get("can_operate_without_driver", not safety_driver)
    if not safety_driver and capable is False:
        raise ValueError(
            f"{where}.can_operate_without_driver: false, but the operator has no safety driver (safety_driver = false)"
        )
    rates = {k: v for k, v in table.items() if k in _PROFILE_KEYS}
    rates["driver_present"] = safety_driver
    rates["can_operate_without_driver"] = capable
    try:
        profile = _profile(operator, rates)
    except ValueError as e:
        msg = str(e).removeprefix(f"operators.{operator}")
        raise ValueError(f"{where}{msg if msg.startswith(('.', ':')) else ': ' + msg}") from e
    return OperatorSafety(profile, str(action), wait, int(cents))


def locate(
    router: Router, a: int, b: int, t0: int, t1: int, length_m: float, offset_m: float
) -> tuple[int, float, int] | None:
    """The edge, the fraction along it and the time of the point ``offset_m`` into a leg ``a -> b`` driven from
    ``t0`` to ``t1`` (``length_m`` is what was driven; the route's edges share it). None for a leg that stays put."""
    if a == b:
        return None
    edges = router.path_edges(router.path(a, b))
    net = router.network
    length = net.length_m[edges].astype(np.float64)
    cum = np.cumsum(length) * (length_m / length.sum())
    k = min(int(np.searchsorted(cum, offset_m, side="right")), edges.size - 1)
    before = cum[k - 1] if k else 0.0
    frac = min(max((offset_m - before) / (cum[k] - before), 0.0), 1.0)
    # Time is shared between edges in proportion to free-flow times, as the simulator's motion model does.
    tt = net.travel_time_s[edges].astype(np.float64)
    share = (tt[:k].sum() + frac * tt[k]) / tt.sum()
    return int(edges[k]), float(frac), t0 + int(share * (t1 - t0))


def stop_point(
    router: Router, a: int, b: int, t0: int, t1: int, length_m: float, offset_m: float
) -> tuple[int, int, int]:
    """Where a vehicle that stops at ``offset_m`` into a leg ``a -> b`` (driven from ``t0`` to ``t1``, as
    :func:`locate` places it) comes to a halt: the end node of that edge, when it gets there, and the metres driven
    to there (rounded up, at most ``length_m``)."""
    edges = router.path_edges(router.path(a, b))
    net = router.network
    length = net.length_m[edges].astype(np.float64)
    cum = np.cumsum(length) * (length_m / length.sum())
    k = min(int(np.searchsorted(cum, offset_m, side="right")), edges.size - 1)
    if offset_m > 0 and k and cum[k - 1] == offset_m:
        k -= 1  # exactly at a node: it stops there
    tt = net.travel_time_s[edges].astype(np.float64)
    share = tt[: k + 1].sum() / tt.sum()
    return int(net.head[edges[k]]), t0 + int(share * (t1 - t0)), min(int(length_m), math.ceil(cum[k]))


#: What the simulator tells the hook about a vehicle when an event is kept: passengers on board and the request row
#: of the rider who boarded last (-1 when empty).
OnBoard = Callable[[int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class SimSafety:
    """The events of a run and what they did.

    ``action``, ``delay_s`` (the wait or recovery), ``riders`` (passengers on board), ``redispatched`` (riders
    handed back to the engine before boarding) and ``got_out`` (riders on board who got out and rode on with another
    vehicle) have one value per event; ``redispatched_requests`` are the request rows handed back (each at most once
    per event, in event order). For the riders who got out: ``out_requests`` (their demand rows), ``out_s`` (when),
    ``out_board_s`` (when they boarded the next vehicle, -1 never) and ``out_by`` (operator of the stopped vehicle).
    """

    events: SafetyEvents
    action: list[str]
    delay_s: NDArray[np.int64]
    riders: NDArray[np.int64]
    redispatched: NDArray[np.int64]
    redispatched_requests: NDArray[np.int64]
    redispatched_by: tuple[str, ...]
    settings: Mapping[str, OperatorSafety]
    got_out: NDArray[np.int64]
    out_requests: NDArray[np.int64]
    out_s: NDArray[np.int64]
    out_board_s: NDArray[np.int64]
    out_by: tuple[str, ...]

    def action_array(self) -> NDArray[np.str_]:
        """:attr:`action` as an array (for masks)."""
        return np.asarray(self.action, dtype=str)

    def effects(self) -> dict[str, Any]:
        """The extra columns of ``safety_events.parquet`` for events drawn inside the simulator."""
        return {
            "action": list(self.action),
            "delay_s": self.delay_s.tolist(),
            "riders_on_board": self.riders.tolist(),
            "riders_redispatched": self.redispatched.tolist(),
            "riders_got_out": self.got_out.tolist(),
        }


class Disengagements:
    """The simulator's disengagement hook (see the module documentation).

    Parameters
    ----------
    router : Router
    vehicle_operator : int array
        Operator index of every vehicle.
    names : sequence of str
        Operator names by index.
    settings : mapping of operator index to OperatorSafety
        Operators without an entry never disengage (human drivers, autonomous operators without settings).
    seed : int
    scenario : str
        Scenario name (event and trip ids).
    day : date
        The run's local calendar day (``[demand] date``).
    timezone : str
    """

    def __init__(
        self,
        router: Router,
        vehicle_operator: NDArray[np.integer],
        names: Sequence[str],
        settings: Mapping[int, OperatorSafety],
        *,
        seed: int,
        scenario: str,
        day: dt.date,
        timezone: str,
    ) -> None:
        self.router = router
        self.classes = edge_road_classes(router.network)
        self.names = tuple(names)
        self.settings = dict(settings)
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), _STREAM]))
        self.seed = int(seed)
        self.scenario = scenario
        self.day = day
        self.tz = ZoneInfo(timezone)
        self.request_ids: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._op: list[int] = np.asarray(vehicle_operator, dtype=np.int64).tolist()
        per_metre = [0.0] * len(self.names)
        for i, s in self.settings.items():
            per_metre[i] = s.profile.rates.max_per_mile() / METRES_PER_MILE
        self._per_metre = per_metre
        self._next = [-1.0] * len(self._op)  # metres to each vehicle's next candidate (-1: not drawn yet)
        self._on_board: OnBoard = lambda _v: (0, -1)
        self.rows: list[tuple[Any, ...]] = []
        self.records: list[DisengagementRecord] = []
        self.redispatched: list[int] = []
        self.redispatched_requests: list[int] = []
        self.redispatched_by: list[str] = []
        self.got_out_count: list[int] = []
        self.out: list[tuple[int, int, int, str]] = []  # (demand row, new request id, time, operator)
        #: (vehicle, event index) of vehicles that stopped and whose pending pickups the simulator hands back.
        self.stranded: list[tuple[int, int]] = []
        #: Vehicles stopped part of the way along the leg just drawn: vehicle -> (node, time, metres driven to it).
        self.cut: dict[int, tuple[int, int, int]] = {}

    def bind(self, on_board: OnBoard, request_ids: NDArray[np.int64]) -> None:
        """The simulator's view of who is on board a vehicle, and the external id of every simulated request row
        (for trip ids, as the ledger's); called once, before the run."""
        self._on_board = on_board
        self.request_ids = request_ids

    def on_leg(self, v: int, a: int, b: int, t0: int, t1: int, length_m: int, leg: int) -> int:
        """A vehicle drove ``a -> b`` from ``t0`` to ``t1`` (row ``leg`` of the run's legs): draw its
        disengagements, record them, and return the seconds the vehicle loses (0 without events)."""
        rate = self._per_metre[self._op[v]]
        if rate == 0.0 or length_m <= 0:
            return 0
        gap = self._next[v]
        if gap < 0:
            gap = float(self.rng.exponential(1.0 / rate))
        if gap > length_m:
            self._next[v] = gap - length_m
            return 0
        lost = 0
        x = gap
        while x <= length_m:
            lost += self._candidate(v, a, b, t0, t1, length_m, leg, x)
            if v in self.cut:  # it stopped there: the rest of the leg was not driven (the next gap is drawn afresh)
                self._next[v] = -1.0
                return lost
            x += float(self.rng.exponential(1.0 / rate))
        self._next[v] = x - length_m
        return lost

    def _candidate(self, v: int, a: int, b: int, t0: int, t1: int, length_m: int, leg: int, x: float) -> int:
        op = self._op[v]
        s = self.settings[op]
        where = locate(self.router, a, b, t0, t1, float(length_m), x)
        keep = float(self.rng.uniform())
        if where is None:
            return 0
        edge, frac, time_s = where
        road = str(self.classes[edge])
        loc = location_type(road)
        rates = s.profile.rates
        if keep * rates.max_per_mile() >= rates.per_mile(loc, (time_s // 3600) % 24):
            return 0
        shares = s.profile.initiators or {}
        who = list(shares)
        initiator = who[int(self.rng.choice(len(who), p=[shares[w] for w in who]))] if len(who) > 1 else who[0]
        net = self.router.network
        u, w = int(net.tail[edge]), int(net.head[edge])
        lon = float(net.lon[u] + frac * (net.lon[w] - net.lon[u]))
        lat = float(net.lat[u] + frac * (net.lat[w] - net.lat[u]))
        riders, last = self._on_board(v)
        name = self.names[op]
        k = len(self.records)
        day = self.day + dt.timedelta(days=time_s // 86_400)
        local = dt.datetime.combine(self.day, dt.time()) + dt.timedelta(seconds=time_s)
        mpd = rates.by_location.get(loc, rates.miles_per_disengagement)
        what = {
            "continue": f"the safety driver took over and drove on after {s.wait_s} s",
            "remote": f"the vehicle waited {s.wait_s} s for a remote operator",
            "stop": f"the vehicle stopped service until recovered ({s.wait_s} s)",
        }[s.action]
        self.records.append(
            DisengagementRecord(
                event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{self.scenario}/{self.seed}/sim/{v}/{time_s}/{k}")),
                operator=name,
                date=day,
                initiator=initiator,
                location_type=loc,
                description=(
                    f"Simulated disengagement ({initiator.label}) on a {loc.label.lower()} ({road}), "
                    f"Poisson process at {mpd:,.0f} miles per disengagement; {what}"
                ),
                driver_present=s.profile.driver_present,
                can_operate_without_driver=s.profile.can_operate_without_driver,
                permit_number=s.profile.permit_number,
                vin=simulated_vin(name, v, self.day.year),
                time_ms=int(local.replace(tzinfo=self.tz).timestamp() * 1000),
                lon=lon,
                lat=lat,
                vehicle_id=f"{name}-{v:05d}",
                trip_id=(
                    str(uuid.uuid5(TRIP_NAMESPACE, f"{self.scenario}/{self.seed}/{int(self.request_ids[last])}"))
                    if last >= 0
                    else None
                ),
                road_class=road,
            )
        )
        self.rows.append((v, time_s, leg, x, s.action, s.wait_s, riders))
        self.redispatched.append(0)
        self.got_out_count.append(0)
        if s.action == "stop":
            self.stranded.append((v, k))
            self.cut[v] = stop_point(self.router, a, b, t0, t1, float(length_m), x)
        return s.wait_s

    def handed_back(self, event: int, requests: Sequence[int]) -> None:
        """The simulator handed these request rows of a stopped vehicle back to the engine."""
        self.redispatched[event] += len(requests)
        self.redispatched_requests.extend(int(r) for r in requests)
        self.redispatched_by.extend([self.records[event].operator] * len(requests))

    def got_out(self, event: int, rows: Sequence[int], new_ids: Sequence[int], time_s: int) -> None:
        """Riders on board the vehicle stopped by ``event`` got out at ``time_s``: demand rows ``rows``, riding on
        as the simulator's requests ``new_ids``."""
        self.got_out_count[event] += len(rows)
        who = self.records[event].operator
        self.out.extend((int(r), int(x), int(time_s), who) for r, x in zip(rows, new_ids, strict=True))

    def result(self, board_again: Mapping[int, int] | None = None) -> SimSafety:
        """The events in time order (ties: vehicle, then leg) with their effects; ``board_again`` maps the
        requests of riders who got out (:meth:`got_out`) to when they boarded the next vehicle (-1: never)."""
        again = board_again or {}
        order = sorted(range(len(self.rows)), key=lambda i: (self.rows[i][1], self.rows[i][0], self.rows[i][2], i))
        rows = [self.rows[i] for i in order]
        meta = {
            "seed": self.seed,
            "drawn": "in the simulator",
            "profiles": {self.names[i]: s.as_dict() for i, s in sorted(self.settings.items())},
        }
        events = SafetyEvents(
            records=[self.records[i] for i in order],
            vehicle=np.asarray([r[0] for r in rows], dtype=np.int64),
            time_s=np.asarray([r[1] for r in rows], dtype=np.int64),
            leg=np.asarray([r[2] for r in rows], dtype=np.int64),
            offset_m=np.asarray([r[3] for r in rows], dtype=np.float64),
            metadata=meta,
        )
        return SimSafety(
            events=events,
            action=[str(r[4]) for r in rows],
            delay_s=np.asarray([r[5] for r in rows], dtype=np.int64),
            riders=np.asarray([r[6] for r in rows], dtype=np.int64),
            redispatched=np.asarray([self.redispatched[i] for i in order], dtype=np.int64),
            redispatched_requests=np.asarray(self.redispatched_requests, dtype=np.int64),
            redispatched_by=tuple(self.redispatched_by),
            settings={self.names[i]: s for i, s in sorted(self.settings.items())},
            got_out=np.asarray([self.got_out_count[i] for i in order], dtype=np.int64),
            out_requests=np.asarray([o[0] for o in self.out], dtype=np.int64),
            out_s=np.asarray([o[2] for o in self.out], dtype=np.int64),
            out_board_s=np.asarray([again.get(o[1], -1) for o in self.out], dtype=np.int64),
            out_by=tuple(o[3] for o in self.out),
        )


def safety_kpis(
    safety: SimSafety,
    *,
    leg_vehicle: NDArray[np.integer],
    leg_length_m: NDArray[np.integer],
    vehicle_operator: NDArray[np.integer],
    names: Sequence[str],
    outcome_labels: Sequence[str],
    reason_labels: Sequence[str],
) -> dict[str, Any]:
    """Per operator with safety settings: miles, events, miles per disengagement with its exact 95 % interval,
    vehicle time lost, rider delay, remote assistance, recovery, and the re-dispatched riders' outcomes.

    ``outcome_labels`` / ``reason_labels`` are the final outcome and reason of every request row (for the
    re-dispatched riders: served, or unserved and why).
    """
    ev = safety.events
    ops = np.asarray([r.operator for r in ev.records], dtype=object)
    leg_op = np.asarray(vehicle_operator)[np.asarray(leg_vehicle, dtype=np.int64)]
    lengths = np.asarray(leg_length_m, dtype=np.float64)
    out: dict[str, Any] = {}
    for name, s in safety.settings.items():
        miles = float(lengths[leg_op == names.index(name)].sum()) / METRES_PER_MILE
        mine = ops == name
        k = int(mine.sum())
        mpd = miles_per_disengagement(miles, k)
        delay = safety.delay_s[mine]
        riders = safety.riders[mine]
        wait_h = round(float(delay.sum()) / 3600, 3)
        rows = [
            r for r, by in zip(safety.redispatched_requests.tolist(), safety.redispatched_by, strict=True) if by == name
        ]
        served, unserved = _outcomes(rows, outcome_labels, reason_labels)
        got_out = [i for i, by in enumerate(safety.out_by) if by == name]
        out_rows = safety.out_requests[got_out].tolist()
        out_served, out_unserved = _outcomes(out_rows, outcome_labels, reason_labels)
        street = safety.out_board_s[got_out] - safety.out_s[got_out]
        street = street[safety.out_board_s[got_out] >= 0]
        # Riders on board wait with a vehicle that goes on (continue, remote); out of a stopped one they wait on the
        # street for the next vehicle (those never picked up again are counted as lost, not as delay).
        on_board_delay = float((delay * riders)[safety.action_array()[mine] != "stop"].sum()) if k else 0.0
        out[name] = {
            "on_disengagement": s.action,
            "autonomous_miles": round(miles, 1),
            "disengagements": k,
            "miles_per_disengagement": None if k == 0 else round(mpd.estimate, 1),
            "mpd_interval_95": [round(mpd.low, 1), None if math.isinf(mpd.high) else round(mpd.high, 1)],
            "configured_miles_per_disengagement": s.profile.rates.miles_per_disengagement,
            "with_riders_on_board": int((riders > 0).sum()),
            "vehicle_hours_lost": wait_h,
            "rider_delay_minutes": round((on_board_delay + float(street.sum())) / 60, 1),
            "remote_assistance_hours": wait_h if s.action == "remote" else 0.0,
            "remote_assistance_cents": (
                round(float(delay.sum()) / 3600 * s.remote_operator_per_hour_cents) if s.action == "remote" else 0
            ),
            "recovery_hours": wait_h if s.action == "stop" else 0.0,
            "riders_redispatched": len(rows),
            "redispatched_served": served,
            "redispatched_lost": len(rows) - served,
            "redispatched_unserved_by_reason": dict(sorted(unserved.items())),
            "riders_got_out": len(out_rows),
            "got_out_served": out_served,
            "got_out_lost": len(out_rows) - out_served,
            "got_out_unserved_by_reason": dict(sorted(out_unserved.items())),
            "got_out_wait_mean_s": round(float(street.mean()), 1) if street.size else None,
            "got_out_wait_max_s": int(street.max()) if street.size else None,
        }
    return out


def _outcomes(
    rows: list[int], outcome_labels: Sequence[str], reason_labels: Sequence[str]
) -> tuple[int, dict[str, int]]:
    """How many of ``rows`` were served, and the others counted by ``"outcome: reason"``."""
    served = 0
    unserved: dict[str, int] = {}
    for r in rows:
        if outcome_labels[r] == "served":
            served += 1
        else:
            why = f"{outcome_labels[r]}: {reason_labels[r]}"
            unserved[why] = unserved.get(why, 0) + 1
    return served, unserved


def run_safety_kpis(result: Any) -> dict[str, Any]:
    """:func:`safety_kpis` of a :class:`~robotaxi.sim.result.SimResult` with ``safety`` (``safety_kpis.json``)."""
    from ..sim.result import REASON_LABELS, Outcome

    safety: SimSafety = result.safety
    out = result.outcomes
    outcome = [Outcome(int(x)).label for x in out.outcome.tolist()]
    reason = [REASON_LABELS.get(int(x), str(int(x))) for x in out.reason.tolist()]
    return safety_kpis(
        safety,
        leg_vehicle=result.legs.vehicle,
        leg_length_m=result.legs.length_m,
        vehicle_operator=result.fleet.operator,
        names=[op.name for op in result.fleet.operators],
        outcome_labels=outcome,
        reason_labels=reason,
    )
