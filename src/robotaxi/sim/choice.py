"""Rider choice in a simulation: each rider sees a quote (fare and pickup ETA) when first matched, and takes it or not.

With ``[pricing.choice]`` the simulator hands every first assignment of a request to :class:`QuoteChoice`:

* the **quote** is the operator's fare for the fastest route from pickup to dropoff, leaving now, surged by the
  multiplier published now in the pickup's zone (:class:`~robotaxi.market.FareQuoter`), and the **ETA** is the
  time until the assigned vehicle reaches the pickup;
* the rider accepts with the logit probability of :class:`~robotaxi.market.RiderChoice`, drawn from a generator
  seeded by ``[pricing.choice] seed`` (so a run is reproducible); a rider who refuses cancels at once
  (``RequestsCancelled``), the vehicle is free again, and the request ends ``cancelled`` with the reason
  ``quote_declined``: lost demand, counted in the KPIs' ``cancelled_by_reason``;
* a request re-opened later (a driver withdrew) is not quoted again: its rider already said yes.

**Live surge.** With ``[pricing.surge]``, a :class:`~robotaxi.market.SurgePricer` is updated at the first tick at or
after every interval start, from the engine's own state: its open requests by pickup zone, and its free vehicles
(idle, or repositioning: counted at their target) by zone. Quotes use it, and the run is priced with the table it
published (:meth:`QuoteChoice.surge_table`), not with one rebuilt afterwards: with rider choice prices change what
happens, so the fares must be the ones quoted while it happened.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..dispatch import DispatchEngine
from ..market import FareQuoter, OperatorTerms, Pricing, SurgePricer, SurgeTable
from ..network import TravelTimes

I64 = NDArray[np.int64]


class QuoteChoice:
    """Quotes and riders' decisions for one run (see the module docstring).

    Parameters
    ----------
    pricing : Pricing
        Must have ``choice``; ``surge`` is optional.
    terms : sequence of OperatorTerms
        In the fleet's operator order.
    travel : TravelTimes
    zone_of_node : array of int, optional
        Surge zones of the nodes (-1: none); required with surge.
    zone_names : tuple of str
        One name per surge zone.
    start_s : int
        The run's first interval start (seconds since the demand's day start).
    """

    def __init__(
        self,
        pricing: Pricing,
        terms: Sequence[OperatorTerms],
        travel: TravelTimes,
        *,
        zone_of_node: NDArray[np.integer] | None = None,
        zone_names: tuple[str, ...] = (),
        start_s: int = 0,
    ) -> None:
        if pricing.choice is None:
            raise ValueError("QuoteChoice: the pricing has no rider choice")
        self.model = pricing.choice.model
        self.rng = np.random.default_rng(pricing.choice.seed)
        self.o_node = np.empty(0, dtype=np.int64)
        self.d_node = np.empty(0, dtype=np.int64)
        self.pricer: SurgePricer | None = None
        self.zone_of_node: I64 | None = None
        self.zone_names: tuple[str, ...] = ()
        if pricing.surge is not None and zone_of_node is not None and zone_names:
            self.pricer = SurgePricer(pricing.surge.params, len(zone_names), start_s=start_s)
            self.zone_of_node = np.asarray(zone_of_node, dtype=np.int64)
            self.zone_names = tuple(zone_names)
        self.quoter = FareQuoter(terms, travel, pricer=self.pricer, zone_of_node=self.zone_of_node)
        self._next_s = start_s
        self.quoted = np.zeros(0, dtype=bool)
        self.refused = np.zeros(0, dtype=bool)
        self.quote_cents = np.zeros(0, dtype=np.int64)

    def bind(self, o_node: NDArray[np.integer], d_node: NDArray[np.integer]) -> None:
        """The run's requests: pickup and dropoff node of every row (the simulator's request ids are its rows)."""
        self.o_node = np.asarray(o_node, dtype=np.int64)
        self.d_node = np.asarray(d_node, dtype=np.int64)
        n = self.o_node.size
        self.quoted = np.zeros(n, dtype=bool)
        self.refused = np.zeros(n, dtype=bool)
        self.quote_cents = np.full(n, -1, dtype=np.int64)

    def add_rows(self, o_node: list[int], d_node: list[int]) -> None:
        """Requests that continue rides already quoted (riders out of a stopped vehicle, from ``o_node``): they
        count as open demand where they wait, and are never quoted again."""
        k = len(o_node)
        self.o_node = np.concatenate((self.o_node, np.asarray(o_node, np.int64)))
        self.d_node = np.concatenate((self.d_node, np.asarray(d_node, np.int64)))
        self.quoted = np.concatenate((self.quoted, np.ones(k, bool)))
        self.refused = np.concatenate((self.refused, np.zeros(k, bool)))
        self.quote_cents = np.concatenate((self.quote_cents, np.full(k, -1, np.int64)))

    def on_tick(self, t: int, epoch0: int, engine: DispatchEngine) -> None:
        """Publish the surge of every interval that started at or before ``t`` (local seconds) from the engine."""
        if self.pricer is None or self.zone_of_node is None or t < self._next_s:
            return
        zones, n_z = self.zone_of_node, self.pricer.n_zones
        ids, _deadlines = engine.open_requests()
        oz = zones[self.o_node[ids]]
        _v, nodes, _ready = engine.fleet.free(epoch0 + t)
        vz = zones[nodes]
        open_ = np.bincount(oz[oz >= 0], minlength=n_z)
        free = np.bincount(vz[vz >= 0], minlength=n_z)
        step = self.pricer.params.interval_s
        while self._next_s <= t:  # an interval without a tick repeats the counts of the next tick
            self.pricer.update(open_, free)
            self._next_s += step

    def decide(
        self,
        now_epoch: int,
        rows: NDArray[np.integer],
        vehicles: NDArray[np.integer],
        pickup_epoch: NDArray[np.integer],
        operator: NDArray[np.integer],
    ) -> I64:
        """The rows (of first assignments in ``rows``) whose riders refuse their quote; quotes every new row once."""
        new = ~self.quoted[rows]
        if not new.any():
            return np.empty(0, dtype=np.int64)
        new_rows: I64 = np.asarray(rows, dtype=np.int64)[new]
        vehicles = np.asarray(vehicles, dtype=np.int64)[new]
        pickup = np.asarray(pickup_epoch, dtype=np.int64)[new]
        ops = np.asarray(operator, dtype=np.int64)[vehicles]
        fares = np.empty(new_rows.size, dtype=np.int64)
        for k in np.unique(ops).tolist():
            sel = ops == k
            fares[sel] = self.quoter(int(k), self.o_node[new_rows[sel]], self.d_node[new_rows[sel]], now_epoch)
        eta = np.maximum(pickup - now_epoch, 0)
        accepted = self.model.accept(fares, eta, self.rng)
        self.quoted[new_rows] = True
        self.quote_cents[new_rows] = fares
        refused: I64 = new_rows[~accepted]
        self.refused[refused] = True
        return refused

    def surge_table(self) -> SurgeTable | None:
        """The multipliers published during the run (None without surge)."""
        return self.pricer.table() if self.pricer is not None else None
