"""Pricing a finished run: surge from the run's own state, fares per completed trip, per-operator accounts.

Without rider choice, prices change nothing that happens in a run, so the run is priced after it ends: :func:`price_run`
reconstructs what the surge rule would have seen at the start of every surge interval, from the run's outputs:

* **open requests** at a boundary ``b``: requests made at or before ``b`` and not yet assigned at ``b`` (assigned
  after it; or never assigned and still waiting: a cancelled request waits until its deadline, a rejected one is
  closed at once), counted in the zone of their pickup;
* **available vehicles** at ``b``: vehicles whose MDS state at ``b`` is ``available``, counted where they will be
  free: the end node of the last leg they started at or before ``b`` (a repositioning vehicle at its target, as the
  engine counts supply), or their start node;

feeds the counts to a :class:`~robotaxi.market.SurgePricer` interval by interval, and prices every served request
with its operator's terms, the multiplier of its request time and pickup zone, and the pooled discount when the
rider shared the vehicle (:func:`robotaxi.sim.kpis.pooled_mask`). Everything is deterministic: the same run gives
the same cents. With rider choice (:mod:`robotaxi.sim.choice`) prices do change the run: the surge is then the table
published live while it ran, and the run is priced with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import DispatchError, MarketError, ScenarioError
from ..fleet import VehicleState
from ..market import (
    MarketAccounts,
    OperatorActivity,
    OperatorTerms,
    PricedTrips,
    Pricing,
    SurgePricer,
    SurgeTable,
    account,
    price_trips,
)
from ..network import Router
from .choice import QuoteChoice
from .kpis import pooled_mask
from .result import Outcome, SimResult

if TYPE_CHECKING:
    from .scenario import Scenario

I64 = NDArray[np.int64]

_OFF = (int(VehicleState.NON_OPERATIONAL), int(VehicleState.REMOVED))
_BUSY = (int(VehicleState.RESERVED), int(VehicleState.STOPPED), int(VehicleState.ON_TRIP))


@dataclass(frozen=True, slots=True, eq=False)
class MarketRun:
    """A run's money.

    Attributes
    ----------
    trips : PricedTrips
        One row per served request, in request order.
    request_rows : ndarray of int64
        The request row (index into ``result.requests``) of each priced trip.
    accounts : MarketAccounts
        Per-operator accounts, reconciled.
    surge : SurgeTable or None
        The multipliers that priced the trips (None when surge is off).
    zone_names : tuple of str
        The surge zones' names (empty without surge).
    refused : int or None
        With rider choice, how many riders refused their quote (lost demand); None without it.
    """

    trips: PricedTrips
    request_rows: I64
    accounts: MarketAccounts
    surge: SurgeTable | None
    zone_names: tuple[str, ...] = ()
    refused: int | None = None

    def fare_by_request(self, n_requests: int) -> I64:
        """The fare of every request row, -1 where nothing was priced (unserved)."""
        out = np.full(n_requests, -1, dtype=np.int64)
        out[self.request_rows] = self.trips.fare_cents
        return out

    def fares_table(self, result: SimResult, operator_names: tuple[str, ...]) -> pa.Table:
        """``fares.parquet``: one row per served request with its money."""
        t = self.trips
        names = pa.array(list(operator_names))
        return pa.table(
            {
                "request_id": result.requests.request_id[self.request_rows],
                "operator": pa.DictionaryArray.from_arrays(pa.array(t.operator.astype(np.int16)), names),
                "time_s": t.time_s,
                "distance_m": t.distance_m,
                "duration_s": t.duration_s,
                "surge": t.surge_bp / 10_000,
                "pooled": t.pooled,
                "fare_cents": t.fare_cents,
                "commission_cents": t.commission_cents,
                "operator_cents": t.operator_cents,
            }
        )


def operator_activity(result: SimResult) -> list[OperatorActivity]:
    """Per operator: vehicles, vehicle-seconds in service and busy (from the MDS events), metres driven and empty.

    Time counts inside the demand window ``[start_s, end_s)``, plus the busy time after it (finishing the window's
    trips). The idle time after the window, until the simulation's last event, is not counted: every vehicle stays
    in service until the run ends, an artefact of ending the run that no operator would pay for (it would make a
    short window's vehicle-hours, costs and utilisation depend on how long its last trip took). Distances count
    every leg driven.
    """
    fleet, ev, legs = result.fleet, result.events, result.legs
    n_ops = len(fleet.operators)
    order = np.lexsort((np.arange(len(ev)), ev.vehicle))
    v, t, s = ev.vehicle[order], ev.time_s[order].astype(np.int64), ev.state[order].astype(np.int64)
    same = v[1:] == v[:-1]
    t0, t1 = t[:-1], np.where(same, t[1:], t[:-1])  # each state holds from its event to the vehicle's next one
    inside = np.maximum(np.minimum(t1, result.end_s) - np.maximum(t0, result.start_s), 0)
    after = np.maximum(t1 - np.maximum(t0, result.end_s), 0)
    op, state = fleet.operator[v[:-1]].astype(np.int64), s[:-1]
    on = ~np.isin(state, _OFF)
    busy = np.isin(state, _BUSY)
    # Sums of integer seconds and metres in float64 are exact below 2**53 (~285 million vehicle-years).
    busy_dur = (inside + after).astype(np.float64)
    service = np.bincount(op[on], weights=np.where(busy, busy_dur, inside)[on].astype(np.float64), minlength=n_ops)
    busy_s = np.bincount(op[busy], weights=busy_dur[busy], minlength=n_ops)
    lop = fleet.operator[legs.vehicle].astype(np.int64)
    metres = legs.length_m.astype(np.float64)
    empty = legs.load == 0
    driven = np.bincount(lop, weights=metres, minlength=n_ops)
    empty_m = np.bincount(lop[empty], weights=metres[empty], minlength=n_ops)
    vehicles = np.bincount(fleet.operator.astype(np.int64), minlength=n_ops)
    return [
        OperatorActivity(
            vehicles=int(vehicles[k]),
            service_s=round(float(service[k])),
            busy_s=round(float(busy_s[k])),
            driven_m=round(float(driven[k])),
            empty_m=round(float(empty_m[k])),
        )
        for k in range(n_ops)
    ]


def open_requests_at(
    result: SimResult, zone_of_node: NDArray[np.integer], n_zones: int, boundaries: I64, max_wait_s: int
) -> I64:
    """Open requests per (boundary, zone of the pickup): made at or before the boundary, not assigned yet."""
    r, o = result.requests, result.outcomes
    made = r.time_s.astype(np.int64)
    wait = np.where(r.max_wait_s >= 0, r.max_wait_s, max_wait_s).astype(np.int64)
    closed = np.where(
        o.assigned_s >= 0, o.assigned_s, np.where(o.outcome == Outcome.CANCELLED, made + wait, made)
    ).astype(np.int64)
    zone = zone_of_node[r.o_node].astype(np.int64)
    keep = (zone >= 0) & (closed > made)
    # Boundaries b_k with made <= b_k < closed: k in [first, last) by binary search; a difference array per zone.
    first = np.searchsorted(boundaries, made[keep], side="left")
    last = np.searchsorted(boundaries, closed[keep], side="left")
    delta = np.zeros((boundaries.size + 1, n_zones), dtype=np.int64)
    np.add.at(delta, (first, zone[keep]), 1)
    np.add.at(delta, (last, zone[keep]), -1)
    counts: I64 = np.cumsum(delta, axis=0)[:-1]
    return counts


def available_vehicles_at(result: SimResult, zone_of_node: NDArray[np.integer], n_zones: int, boundaries: I64) -> I64:
    """Available vehicles per (boundary, zone where they will be free)."""
    ev, legs, fleet = result.events, result.legs, result.fleet
    n_v = len(fleet)
    vehicles = np.arange(n_v, dtype=np.int64)
    big = np.int64(1) << 40
    # Vehicle events sorted by (vehicle, time, log order): the state after the last event at or before b.
    e_order = np.lexsort((np.arange(len(ev)), ev.time_s, ev.vehicle))
    e_key = ev.vehicle[e_order].astype(np.int64) * big + ev.time_s[e_order]
    e_state = ev.state[e_order].astype(np.int64)
    l_order = np.lexsort((np.arange(len(legs)), legs.start_s, legs.vehicle))
    l_key = legs.vehicle[l_order].astype(np.int64) * big + legs.start_s[l_order]
    l_to = legs.to_node[l_order].astype(np.int64)
    out = np.zeros((boundaries.size, n_zones), dtype=np.int64)
    if e_key.size == 0:
        return out  # no vehicle ever came into service
    # A sentinel row after each sorted key array keeps the look-ups in range when a vehicle has no row (no legs).
    e_key, e_state = np.r_[e_key, np.int64(-1)], np.r_[e_state, np.int64(-1)]
    l_key, l_to = np.r_[l_key, np.int64(-1)], np.r_[l_to, np.int64(0)]
    for k, b in enumerate(boundaries.tolist()):
        probe = vehicles * big + b
        i = np.searchsorted(e_key[:-1], probe, side="right") - 1
        has = e_key[i] // big == vehicles  # i == -1 reads the sentinel, which matches no vehicle
        free = has & (e_state[i] == int(VehicleState.AVAILABLE))
        j = np.searchsorted(l_key[:-1], probe, side="right") - 1
        moved = l_key[j] // big == vehicles
        node = np.where(moved, l_to[j], fleet.start_node.astype(np.int64))
        zone = zone_of_node[node[free]].astype(np.int64)
        out[k] = np.bincount(zone[zone >= 0], minlength=n_zones)
    return out


def surge_of_run(
    result: SimResult, pricing: Pricing, zone_of_node: NDArray[np.integer], n_zones: int, max_wait_s: int
) -> SurgeTable:
    """The surge table the run would have published: counts at every interval start, fed to a SurgePricer."""
    if pricing.surge is None:
        raise ValueError("surge_of_run: the pricing has no surge")
    params = pricing.surge.params
    last = int(result.requests.time_s.max()) if len(result.requests) else result.start_s
    boundaries = np.arange(result.start_s, max(last, result.start_s) + 1, params.interval_s, dtype=np.int64)
    open_ = open_requests_at(result, zone_of_node, n_zones, boundaries, max_wait_s)
    free = available_vehicles_at(result, zone_of_node, n_zones, boundaries)
    pricer = SurgePricer(params, n_zones, start_s=result.start_s)
    for k in range(boundaries.size):
        pricer.update(open_[k], free[k])
    return pricer.table()


def price_run(
    result: SimResult,
    pricing: Pricing,
    terms: tuple[OperatorTerms, ...],
    *,
    zone_of_node: NDArray[np.integer] | None = None,
    zone_names: tuple[str, ...] = (),
    max_wait_s: int = 600,
    surge: SurgeTable | None = None,
    refused: int | None = None,
) -> MarketRun:
    """Price every served request of ``result`` and account for every operator (``terms`` in fleet order).

    ``zone_of_node`` (with ``zone_names``, one per zone) are the surge zones; surge is off without them or when
    ``pricing.surge`` is None. ``max_wait_s`` is the engine's default max wait (when a cancelled request stopped
    counting as open). ``surge``: the table published live during the run (rider choice,
    :class:`~robotaxi.sim.choice.QuoteChoice`), used instead of one rebuilt from the outputs; ``refused``: how
    many riders refused their quote.

    Raises
    ------
    MarketError
        If ``terms`` do not match the fleet's operators, or the money does not reconcile.
    """
    names = tuple(op.name for op in result.fleet.operators)
    if tuple(t.name for t in terms) != names:
        raise MarketError(f"price_run: terms for {[t.name for t in terms]}, the fleet's operators are {list(names)}")
    if surge is None and pricing.surge is not None and zone_of_node is not None:
        surge = surge_of_run(result, pricing, zone_of_node, len(zone_names), max_wait_s)
    rows = np.flatnonzero(result.served)
    o, r = result.outcomes, result.requests
    zone = zone_of_node[r.o_node[rows]].astype(np.int64) if surge is not None and zone_of_node is not None else -1
    trips = price_trips(
        result.fleet.operator[o.vehicle[rows]],
        o.ride_m[rows],
        (o.dropoff_s[rows] - o.board_s[rows]),
        terms,
        default_commission=pricing.commission,
        time_s=r.time_s[rows],
        zone=zone,
        surge=surge,
        pooled=pooled_mask(result)[rows],
    )
    last_hour = int(max(result.last_event_s, result.end_s) // 3600)
    accounts = account(trips, terms, operator_activity(result), currency=pricing.currency, hours=max(24, last_hour + 1))
    return MarketRun(
        trips=trips,
        request_rows=rows.astype(np.int64),
        accounts=accounts,
        surge=surge,
        zone_names=zone_names if surge is not None else (),
        refused=refused,
    )


def surge_zones(pricing: Pricing, router: Router, demand_zones: str | Path | None) -> tuple[I64, tuple[str, ...]]:
    """The surge zones of ``[pricing.surge]``: each node's zone (-1: none) and the zones' names.

    ``zones = "demand"`` uses the demand's zone polygons, ``"grid"`` square cells of ``cell_m`` metres, ``"auto"``
    the polygons when the demand has them, else the grid (the same zonings as rebalancing).

    Raises
    ------
    ScenarioError
        If the polygons cannot be read or no zone has a node.
    """
    if pricing.surge is None:
        raise ValueError("surge_zones: the pricing has no surge")
    from ..dispatch import rebalance as rb

    s = pricing.surge
    use_demand = s.zones == "demand" or (s.zones == "auto" and demand_zones is not None)
    try:
        if use_demand:
            if demand_zones is None:
                raise ScenarioError("pricing.surge.zones: 'demand' needs demand.zones (a zone polygons file)")
            zoning = rb.Zoning.from_geojson(router.network, router, Path(demand_zones))
        else:
            zoning = rb.Zoning.grid(router.network, router, s.cell_m)
    except (DispatchError, ValueError) as e:
        raise ScenarioError(f"pricing.surge.zones: {e}") from e
    return zoning.zone_of_node.astype(np.int64), tuple(zoning.names)


def quote_choice(scenario: Scenario, router: Router) -> QuoteChoice | None:
    """The run's rider choice (``[pricing.choice]``), with its live surge over the scenario's surge zones."""
    pricing = scenario.pricing
    if pricing is None or pricing.choice is None:
        return None
    zone_of_node, names = (None, ()) if pricing.surge is None else surge_zones(pricing, router, scenario.demand.zones)
    return QuoteChoice(
        pricing, scenario.terms, router, zone_of_node=zone_of_node, zone_names=names, start_s=scenario.sim.start_s
    )


def price_scenario(
    result: SimResult,
    pricing: Pricing,
    terms: tuple[OperatorTerms, ...],
    router: Router,
    *,
    demand_zones: str | Path | None = None,
    max_wait_s: int = 600,
    choice: QuoteChoice | None = None,
) -> MarketRun:
    """:func:`price_run` with the scenario's surge zones built on ``router``'s network (or those of ``choice``, the
    rider choice of the run, whose live surge table then prices the trips)."""
    if choice is not None:
        zones = choice.zone_of_node
        names = choice.zone_names
        refused = int(choice.refused.sum())
        return price_run(
            result, pricing, terms, zone_of_node=zones, zone_names=names, max_wait_s=max_wait_s,
            surge=choice.surge_table(), refused=refused,
        )  # fmt: skip
    zone_of_node, names = (None, ()) if pricing.surge is None else surge_zones(pricing, router, demand_zones)
    return price_run(result, pricing, terms, zone_of_node=zone_of_node, zone_names=names, max_wait_s=max_wait_s)
