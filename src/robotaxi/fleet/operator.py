"""Operators and their vehicles: who runs the fleet, how many cars, how big, where they start, and (for the
marketplace) where and when they may serve and how their drivers answer offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import FleetError
from ..network import RoadNetwork
from .area import Hours, ServiceArea


class OperatorKind(Enum):
    """Who drives. A human-driven operator's drivers get *offers* they accept or decline (see
    :class:`~robotaxi.dispatch.OperatorRules`); autonomous vehicles take what they are given."""

    AUTONOMOUS = "autonomous"
    HUMAN_DRIVEN = "human_driven"


class Placement(Enum):
    """Seeded rules that spread start positions over the network when none are given.

    ``uniform``: each vehicle on a node drawn uniformly at random. ``weighted``: drawn in proportion to per-node
    weights the caller supplies (e.g. expected request origins), so the fleet starts where demand will be.
    """

    UNIFORM = "uniform"
    WEIGHTED = "weighted"


@dataclass(frozen=True, slots=True)
class Shift:
    """A group of human drivers working the same daily hours.

    Parameters
    ----------
    hours : Hours
        When they are on duty (local time, may cross midnight).
    drivers : int
        How many (> 0).
    home_node : int
        Where they start (a node index); -1: spread by the operator's ``placement``.
    """

    hours: Hours
    drivers: int
    home_node: int = -1

    def __post_init__(self) -> None:
        if self.drivers <= 0:
            raise ValueError(f"shift drivers: must be > 0, got {self.drivers}")


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator and its vehicles.

    Parameters
    ----------
    name : str
        Operator name (unique within a fleet).
    vehicles : int
        Number of vehicles (> 0).
    kind : OperatorKind
        Autonomous or human-driven.
    capacity : int
        Seats per vehicle (>= 1); a request with more passengers is never given to this operator.
    start_nodes : tuple of int, optional
        Explicit start node per vehicle (node indices of the network); empty = use ``placement``.
    placement : Placement
        Rule used when ``start_nodes`` is empty.
    area : ServiceArea, optional
        Nodes the operator may serve (pickup and dropoff both inside, idle and repositioning vehicles never
        outside); None: everywhere.
    hours : Hours
        Daily operating hours (local time); all day by default. Human-driven operators use ``shifts`` instead.
    safety_driver : bool
        A safety driver is on board (autonomous operators; recorded for the market's cost model and reports).
    pooling : bool
        Whether its vehicles may carry riders of different requests at once (pooling policies only).
    depot : int
        Node its vehicles return to when its hours end (-1: they go off service where they are).
    shifts : tuple of Shift
        Human-driven operators: the driver groups; ``vehicles`` must equal their total.
    acceptance : float
        Human-driven: probability that a driver accepts an offer (0..1).
    response_s : (int, int)
        Human-driven: a driver answers after a delay drawn uniformly from this range (seconds, inclusive).
    offer_timeout_s : int
        Human-driven: an offer not answered within this many seconds lapses (the request goes back to matching).
    """

    name: str
    vehicles: int
    kind: OperatorKind = OperatorKind.AUTONOMOUS
    capacity: int = 4
    start_nodes: tuple[int, ...] = ()
    placement: Placement = Placement.UNIFORM
    area: ServiceArea | None = field(default=None, compare=False)
    hours: Hours = field(default_factory=Hours)
    safety_driver: bool = False
    pooling: bool = True
    depot: int = -1
    shifts: tuple[Shift, ...] = ()
    acceptance: float = 1.0
    response_s: tuple[int, int] = (0, 0)
    offer_timeout_s: int = 30

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Operator.name must not be empty")
        what = f"operator {self.name!r}"
        if self.vehicles <= 0:
            raise ValueError(f"{what}: vehicles must be > 0, got {self.vehicles}")
        if self.capacity < 1:
            raise ValueError(f"{what}: capacity must be >= 1, got {self.capacity}")
        if self.start_nodes and len(self.start_nodes) != self.vehicles:
            raise ValueError(f"{what}: {len(self.start_nodes)} start_nodes given for {self.vehicles} vehicles")
        self._check_market(what)

    def _check_market(self, what: str) -> None:
        if self.shifts:
            if self.kind is not OperatorKind.HUMAN_DRIVEN:
                raise ValueError(f"{what}: shifts: only a human-driven operator has driver shifts")
            total = sum(s.drivers for s in self.shifts)
            if total != self.vehicles:
                raise ValueError(f"{what}: vehicles ({self.vehicles}) must equal the shifts' drivers ({total})")
        if not 0.0 <= self.acceptance <= 1.0:
            raise ValueError(f"{what}: acceptance must be within 0..1, got {self.acceptance}")
        lo, hi = self.response_s
        if not 0 <= lo <= hi:
            raise ValueError(f"{what}: response_s must be [min, max] with 0 <= min <= max, got {self.response_s}")
        if self.offer_timeout_s <= 0:
            raise ValueError(f"{what}: offer_timeout_s must be > 0, got {self.offer_timeout_s}")
        if (
            self.area is not None
            and self.depot >= 0
            and (self.depot >= self.area.mask.size or not self.area.mask[self.depot])
        ):
            raise ValueError(f"{what}: depot: node {self.depot} is outside the operator's service area")

    @property
    def human(self) -> bool:
        """Human-driven: assignments are offers the driver may decline."""
        return self.kind is OperatorKind.HUMAN_DRIVEN


@dataclass(frozen=True, slots=True, eq=False)
class Fleet:
    """All vehicles of all operators as columns; vehicle ``i`` has index ``i`` everywhere in the platform.

    Build one with :meth:`build`. Arrays are read-only.

    Attributes
    ----------
    operators : tuple of Operator
    operator : ndarray of int16
        Index into ``operators`` for each vehicle.
    capacity : ndarray of int16
        Seats per vehicle.
    start_node : ndarray of int32
        Start node index per vehicle.
    shift : ndarray of int16, optional
        Index into its operator's ``shifts`` for each human driver, -1 for vehicles without shifts (None: all -1).
    """

    operators: tuple[Operator, ...]
    operator: NDArray[np.int16]
    capacity: NDArray[np.int16]
    start_node: NDArray[np.int32]
    shift: NDArray[np.int16] | None = None

    def __len__(self) -> int:
        return int(self.operator.size)

    @classmethod
    def build(
        cls,
        operators: tuple[Operator, ...],
        network: RoadNetwork,
        rng: np.random.Generator,
        *,
        node_weights: NDArray[np.float64] | None = None,
    ) -> Fleet:
        """Lay out the vehicles of ``operators`` on ``network``.

        Raises
        ------
        FleetError
            If there is no operator, names repeat, a start node is not in the network, or ``weighted``
            placement is asked for without usable weights.
        """
        if not operators:
            raise FleetError("a fleet needs at least one operator")
        names = [op.name for op in operators]
        if len(set(names)) != len(names):
            raise FleetError(f"operator names must be unique, got {names}")
        op_idx, cap, nodes, shifts = [], [], [], []
        for i, op in enumerate(operators):
            if op.depot >= network.n_nodes or (op.area is not None and op.area.mask.size != network.n_nodes):
                raise FleetError(f"operator {op.name!r}: its depot or area does not fit this network")
            op_idx.append(np.full(op.vehicles, i, dtype=np.int16))
            cap.append(np.full(op.vehicles, op.capacity, dtype=np.int16))
            nodes.append(_start_nodes(op, network, rng, node_weights))
            sh = np.full(op.vehicles, -1, dtype=np.int16)
            at = 0
            for j, s in enumerate(op.shifts):
                sh[at : at + s.drivers] = j
                if s.home_node >= 0 and not op.start_nodes:
                    nodes[-1][at : at + s.drivers] = s.home_node
                at += s.drivers
            shifts.append(sh)
        operator: NDArray[np.int16] = np.concatenate(op_idx)
        capacity: NDArray[np.int16] = np.concatenate(cap)
        start: NDArray[np.int32] = np.concatenate(nodes)
        shift: NDArray[np.int16] = np.concatenate(shifts)
        for a in (operator, capacity, start, shift):
            a.setflags(write=False)
        return cls(operators=tuple(operators), operator=operator, capacity=capacity, start_node=start, shift=shift)

    def on_duty(self, local_s: int) -> NDArray[np.bool_]:
        """Which vehicles are on duty at local time ``local_s``: their operator's hours, or their shift's."""
        out = np.zeros(len(self), dtype=bool)
        shift = self.shift if self.shift is not None else np.full(len(self), -1, np.int16)
        for i, op in enumerate(self.operators):
            mine = self.operator == i
            if op.shifts:
                for j, s in enumerate(op.shifts):
                    out[mine & (shift == j)] = s.hours.is_open(local_s)
            else:
                out[mine] = op.hours.is_open(local_s)
        return out


def _start_nodes(
    op: Operator, network: RoadNetwork, rng: np.random.Generator, weights: NDArray[np.float64] | None
) -> NDArray[np.int32]:
    n = network.n_nodes
    if op.area is not None and not op.start_nodes:
        # Autonomous vehicles start inside their area: draw among its nodes only.
        inside = op.area.mask
        w = inside.astype(np.float64)
        if op.placement is Placement.WEIGHTED and weights is not None and weights.shape == (n,):
            w = np.where(inside, np.maximum(weights, 0), 0.0)
            if w.sum() <= 0:
                w = inside.astype(np.float64)
        return rng.choice(n, size=op.vehicles, p=w / w.sum()).astype(np.int32)
    if op.start_nodes:
        a = np.asarray(op.start_nodes, dtype=np.int64)
        if a.min() < 0 or a.max() >= n:
            raise FleetError(f"operator {op.name!r}: a start node is outside the network's 0..{n - 1}")
        if op.area is not None and not op.area.mask[a].all():
            raise FleetError(f"operator {op.name!r}: a start node is outside its service area")
        return a.astype(np.int32)
    if op.placement is Placement.WEIGHTED:
        if weights is None or weights.shape != (n,) or not np.all(weights >= 0) or weights.sum() <= 0:
            raise FleetError(f"operator {op.name!r}: weighted placement needs non-negative weights, one per node")
        return rng.choice(n, size=op.vehicles, p=weights / weights.sum()).astype(np.int32)
    return rng.integers(0, n, size=op.vehicles).astype(np.int32)
