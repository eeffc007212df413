"""Fare quotes before a trip: what a rider would pay for the direct route, for matching and rider choice.

:class:`FareQuoter` is the seam through which the market's fares reach the engine (the ``cheapest`` objective of
the marketplace) and a rider-choice model: ``quoter(operator, o_node, d_node, now_s)`` prices, for each request
row, the fastest route from pickup to dropoff (its length, and its time when leaving at ``now_s``) with the
operator's fare schedule and, when a :class:`~robotaxi.market.SurgePricer` is attached, the multiplier it publishes
now in the pickup's zone. A quote is the fare of an unshared ride: the pooled discount is known only once the
ride was shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MarketError
from ..network import TravelTimes
from ._money import I64
from .surge import SurgePricer
from .trips import OperatorTerms


class FareQuoter:
    """``quoter(operator, o_node, d_node, now_s) -> fares in cents``, one per request row.

    Parameters
    ----------
    terms : sequence of OperatorTerms
        Indexed by the engine's operator index.
    travel : TravelTimes
        Routes on the network the nodes belong to (time-of-day factors at ``now_s``, epoch seconds).
    pricer : SurgePricer, optional
        Its current multipliers apply; no surge without it.
    zone_of_node : array of int, optional
        The pricer's zone of every node (-1: none); required with ``pricer``.
    """

    def __init__(
        self,
        terms: Sequence[OperatorTerms],
        travel: TravelTimes,
        *,
        pricer: SurgePricer | None = None,
        zone_of_node: Any = None,
    ) -> None:
        if not terms:
            raise MarketError("fare quotes: no operators' terms")
        self.terms = tuple(terms)
        self.travel = travel
        self.pricer = pricer
        self.zone_of_node: NDArray[np.int64] | None = None
        if pricer is not None:
            if zone_of_node is None:
                raise MarketError("fare quotes: a surge pricer needs zone_of_node")
            zones = np.asarray(zone_of_node, dtype=np.int64)
            if zones.shape != (travel.n_nodes,):
                raise MarketError(
                    f"fare quotes: zone_of_node has shape {zones.shape}, the network {travel.n_nodes} nodes"
                )
            if zones.size and (int(zones.min()) < -1 or int(zones.max()) >= pricer.n_zones):
                raise MarketError(f"fare quotes: zone_of_node values must be -1 or in 0..{pricer.n_zones - 1}")
            self.zone_of_node = zones

    def surge_bp(self, o_node: Any) -> I64:
        """The multiplier published now at each pickup (neutral without a pricer or outside every zone)."""
        o = np.asarray(o_node, dtype=np.int64)
        if self.pricer is None or self.zone_of_node is None:
            return np.full(o.shape, 10_000, dtype=np.int64)
        zone = self.zone_of_node[o]
        current = self.pricer.current_bp
        out: I64 = np.where(zone >= 0, current[np.maximum(zone, 0)], self.pricer.params.neutral_bp)
        return out

    def __call__(self, operator: int, o_node: Any, d_node: Any, now_s: int) -> I64:
        if not 0 <= operator < len(self.terms):
            raise MarketError(f"fare quotes: operator index {operator} outside 0..{len(self.terms) - 1}")
        o = np.asarray(o_node, dtype=np.int64)
        d = np.asarray(d_node, dtype=np.int64)
        metres = self.travel.distances(o, d).astype(np.int64)
        seconds = self.travel.times(o, d, now_s).astype(np.int64)
        return self.terms[operator].fares.fare_cents(metres, seconds, surge_bp=self.surge_bp(o))
