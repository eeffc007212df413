"""The open marketplace inside the engine: who may serve whom, and what a match costs across operators.

The engine is given a :class:`Marketplace`: one :class:`OperatorRules` per operator index (service area as a node
mask, whether its assignments are offers to human drivers, pooling allowed, offer timeout) and the platform's
matching objective (:class:`MarketParams`). For every decision it builds a :class:`PairRules`, which every policy
consults for the feasibility of each (vehicle, request) pair and, in the batch assignment, for the cost of a pair.

Feasibility of a pair (vehicle ``v`` of operator ``j``, request ``r``), on top of seats, time windows and the
request's own operator constraint:

* ``j``'s area holds both the pickup and the dropoff node (no area: everywhere);
* ``v`` is on duty (vehicles off duty are not dispatchable at all: see :class:`~.events.VehiclesOffDuty`);
* ``j`` does not allow pooling: ``v`` has no rider in its plan;
* ``j`` makes offers (human drivers): ``v`` is idle (not repositioning), has not declined ``r`` before, and
  ``now + offer_timeout_s + eta <= deadline(r)``: the driver may take the whole timeout to answer and the rider is
  still picked up in time, so an offer never makes a rider wait past the deadline.

Cost of a pair in the batch assignment (seconds; the solver first maximises the number of matched requests, then
minimises the total cost):

* ``fastest``: the pickup ETA;
* ``autonomous_first``: ETA, plus ``autonomous_first_s`` for a human-driven vehicle: a robotaxi is preferred
  whenever it arrives at most that much later than the best human driver (exactly so for one request; in a batch
  the sum over the batch is minimised);
* ``cheapest``: the rider's fare quoted by the ``fare`` seam (integer cents; in a scenario the market module's
  ``FareQuoter``: each operator's fare schedule over the fastest route at decision time), times 10,000, plus the
  ETA: the cheapest operator wins, the ETA breaks ties (a fare difference of one cent outweighs any ETA);
* operator share targets (``max_share``, with any objective): an operator whose share of the trips assigned so far
  has reached ``max_share`` (after the first ``share_warmup`` trips) takes no new request in this batch. The share
  is checked once per batch, so it may overshoot by at most one batch's trips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from .problem import FleetView

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
B = NDArray[np.bool_]
ObjectiveName = Literal["fastest", "autonomous_first", "cheapest"]
#: ``quote(operator, o_node, d_node, now_s) -> fare in integer cents`` for each request row (vectorised): the seam
#: through which the market module's fares reach the ``cheapest`` objective (``robotaxi.market.FareQuoter``). It is
#: not part of the engine's snapshot (it holds a router): pass it again to ``DispatchEngine.restore``.
FareQuote = Callable[[int, I32, I32, int], I64]
_CHEAP_SCALE = 10_000


@dataclass(frozen=True, slots=True, eq=False)
class OperatorRules:
    """What the engine needs to know about one operator.

    Parameters
    ----------
    name : str
    area : bool array (one per node), optional
        Nodes the operator may serve; None: everywhere.
    offers : bool
        Its assignments are offers to human drivers, answered with :class:`~.events.OffersAnswered`.
    offer_timeout_s : int
        Seconds an offer waits for its answer before it lapses.
    pooling : bool
        Its vehicles may take a request while other riders are in their plan.
    autonomous : bool
        A robotaxi (for ``autonomous_first``).
    """

    name: str
    area: B | None = None
    offers: bool = False
    offer_timeout_s: int = 30
    pooling: bool = True
    autonomous: bool = True

    def __post_init__(self) -> None:
        if self.offer_timeout_s <= 0:
            raise ValueError(f"operator {self.name!r}: offer_timeout_s must be > 0")
        if self.area is not None:
            a = np.array(self.area, dtype=bool)
            if a.ndim != 1 or not a.any():
                raise ValueError(f"operator {self.name!r}: area must be one boolean per node, some True")
            a.setflags(write=False)
            object.__setattr__(self, "area", a)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """The platform's matching objective (``[marketplace]`` in a scenario).

    Parameters
    ----------
    objective : {"fastest", "autonomous_first", "cheapest"}
    autonomous_first_s : int
        ``autonomous_first``: how much later (seconds) a robotaxi may arrive than the best human driver and still
        be preferred (>= 0).
    max_share : float
        At most this share of the platform's trips to one operator (0 < x <= 1; 1 = no target).
    share_warmup : int
        Trips assigned before the share target applies (a share of the first few trips means little).
    """

    objective: ObjectiveName = "fastest"
    autonomous_first_s: int = 120
    max_share: float = 1.0
    share_warmup: int = 100

    def __post_init__(self) -> None:
        if self.objective not in get_args(ObjectiveName):
            raise ValueError(
                f"marketplace.policy: expected one of {', '.join(get_args(ObjectiveName))}, got {self.objective!r}"
            )
        if self.autonomous_first_s < 0:
            raise ValueError(f"marketplace.autonomous_first_min: must be >= 0, got {self.autonomous_first_s} s")
        if not 0 < self.max_share <= 1:
            raise ValueError(f"marketplace.max_share: must be in (0, 1], got {self.max_share}")
        if self.share_warmup < 0:
            raise ValueError(f"marketplace.share_warmup: must be >= 0, got {self.share_warmup}")


@dataclass(frozen=True, slots=True, eq=False)
class Marketplace:
    """Every operator's rules (by operator index) and the matching objective.

    Parameters
    ----------
    operators : tuple of OperatorRules
    params : MarketParams
    fare : FareQuote, optional
        Fares for the ``cheapest`` objective (required by it).
    """

    operators: tuple[OperatorRules, ...]
    params: MarketParams = field(default_factory=MarketParams)
    fare: FareQuote | None = None

    def __post_init__(self) -> None:
        if not self.operators:
            raise ValueError("Marketplace: at least one operator")
        names = [o.name for o in self.operators]
        if len(set(names)) != len(names):
            raise ValueError(f"Marketplace: operator names repeat: {names}")
        sizes = {o.area.size for o in self.operators if o.area is not None}
        if len(sizes) > 1:
            raise ValueError("Marketplace: areas of different network sizes")
        if self.params.objective == "cheapest" and self.fare is None:
            raise ValueError("marketplace.policy: 'cheapest' needs fares (the market module's fare quote)")

    @property
    def n(self) -> int:
        return len(self.operators)

    def masks(self, n_nodes: int) -> B:
        """(operators x nodes) area masks (True everywhere for operators without an area)."""
        out = np.ones((self.n, n_nodes), dtype=bool)
        for j, o in enumerate(self.operators):
            if o.area is not None:
                out[j] = o.area
        return out


@dataclass(slots=True, eq=False)
class PairRules:
    """The marketplace's feasibility and cost of (vehicle, request) pairs for one decision (see the module notes).

    ``rows`` are problem rows (positions in the :class:`~.problem.MatchProblem`), ``veh`` dense vehicle indices.
    """

    market: Marketplace
    now: int
    cover: B  # (operators x problem rows): the operator's area holds the pickup and the dropoff
    request: I64  # dense request index of each problem row
    deadline: I64
    o_node: I32
    d_node: I32
    operator_of: NDArray[np.int16]  # per vehicle
    idle: B  # per vehicle: idle (empty plan, in the free index)
    riderless: B  # per vehicle: no rider in its plan
    declined: I64  # sorted keys request * 2**32 + vehicle of declined offers
    closed: B  # per operator: over its share target in this decision
    offers: B  # per operator
    pooling: B  # per operator
    timeout: I64  # per operator: offer timeout (0 for operators without offers)
    human: B  # per operator
    fares: dict[int, I64] = field(default_factory=dict)  # operator -> fare per problem row (cheapest), lazily

    @classmethod
    def build(
        cls,
        market: Marketplace,
        now: int,
        request: I64,
        o_node: I32,
        d_node: I32,
        deadline: I64,
        fleet: FleetView,
        *,
        masks: B,
        riderless: B,
        idle: B,
        declined: I64,
        trips: I64,
    ) -> PairRules:
        ops = market.operators
        cover = masks[:, o_node] & masks[:, d_node]
        p = market.params
        total = int(trips.sum())
        closed = np.zeros(len(ops), dtype=bool)
        if p.max_share < 1 and total >= max(p.share_warmup, 1):
            closed = trips >= p.max_share * total
        return cls(
            market=market,
            now=now,
            cover=cover,
            request=request,
            deadline=deadline,
            o_node=o_node,
            d_node=d_node,
            operator_of=fleet.operator,
            idle=idle,
            riderless=riderless,
            declined=declined,
            closed=closed,
            offers=np.asarray([o.offers for o in ops], dtype=bool),
            pooling=np.asarray([o.pooling for o in ops], dtype=bool),
            timeout=np.asarray([o.offer_timeout_s if o.offers else 0 for o in ops], dtype=np.int64),
            human=np.asarray([not o.autonomous for o in ops], dtype=bool),
        )

    def rows_for(self, operator: int, rows: I64) -> I64:
        """The rows among ``rows`` whose trip lies in ``operator``'s area (and that it may still take)."""
        out: I64 = rows[:0] if self.closed[operator] else rows[self.cover[operator, rows]]
        return out

    def ok(self, rows: I64, veh: I32 | I64, eta: I64) -> B:
        """Feasibility of each pair (rows[i], veh[i]) whose pickup ETA (seconds after now) is ``eta[i]``."""
        op = self.operator_of[veh].astype(np.int64)
        out: B = self.cover[op, rows] & ~self.closed[op]
        out &= self.pooling[op] | self.riderless[veh]
        off = self.offers[op]
        if off.any():
            out &= ~off | (self.idle[veh] & (self.now + self.timeout[op] + eta <= self.deadline[rows]))
            if self.declined.size:
                key = self.request[rows].astype(np.int64) * (1 << 32) + np.asarray(veh, np.int64)
                out &= ~np.isin(key, self.declined)
        return out

    def ok1(self, row: int, v: int, eta: int) -> bool:
        """:meth:`ok` for one pair."""
        return bool(self.ok(np.asarray([row], np.int64), np.asarray([v], np.int64), np.asarray([eta], np.int64))[0])

    def vehicle_ok(self, row: int, candidates: B) -> B:
        """Of the vehicles flagged in ``candidates``, those that may take problem row ``row`` (any ETA that meets
        the deadline: the pooling policies check the windows themselves). Vehicles of operators that make offers
        are excluded: pooled offers are not supported."""
        op = self.operator_of.astype(np.int64)
        ok_op = self.cover[:, row] & ~self.closed & ~self.offers
        out: B = candidates & ok_op[op] & (self.pooling[op] | self.riderless)
        return out

    def cost(self, rows: I64, veh: I32 | I64, eta: I64) -> NDArray[np.float64]:
        """The batch assignment's cost of each pair (see the module notes)."""
        p = self.market.params
        op = self.operator_of[veh].astype(np.int64)
        c = eta.astype(np.float64)
        if p.objective == "autonomous_first":
            c = c + np.where(self.human[op], float(p.autonomous_first_s), 0.0)
        elif p.objective == "cheapest":
            fare = np.zeros(rows.size, dtype=np.int64)
            for j in np.unique(op).tolist():
                sel = op == j
                fare[sel] = self._fares(int(j))[rows[sel]]
            c = c + fare.astype(np.float64) * _CHEAP_SCALE
        return c

    def _fares(self, operator: int) -> I64:
        got = self.fares.get(operator)
        if got is None:
            quote = self.market.fare
            if quote is None:  # Marketplace refuses 'cheapest' without fares
                raise ValueError("cheapest: no fare quote")
            got = np.asarray(quote(operator, self.o_node, self.d_node, self.now), dtype=np.int64)
            self.fares[operator] = got
        out: I64 = got
        return out

    def weighted(self) -> bool:
        """Whether costs differ from the ETA (the batch assignment then passes them to the solver)."""
        return self.market.params.objective != "fastest"
