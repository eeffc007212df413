"""Operators and their vehicles: who runs the fleet, how many cars, how big, and where they start."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import FleetError
from ..network import RoadNetwork


class OperatorKind(Enum):
    """Who drives: the platform treats both alike for dispatch; safety and pricing will differ (next issue)."""

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
    """

    name: str
    vehicles: int
    kind: OperatorKind = OperatorKind.AUTONOMOUS
    capacity: int = 4
    start_nodes: tuple[int, ...] = ()
    placement: Placement = Placement.UNIFORM

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Operator.name must not be empty")
        if self.vehicles <= 0:
            raise ValueError(f"Operator {self.name!r}: vehicles must be > 0, got {self.vehicles}")
        if self.capacity < 1:
            raise ValueError(f"Operator {self.name!r}: capacity must be >= 1, got {self.capacity}")
        if self.start_nodes and len(self.start_nodes) != self.vehicles:
            raise ValueError(
                f"Operator {self.name!r}: {len(self.start_nodes)} start_nodes given for {self.vehicles} vehicles"
            )


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
    """

    operators: tuple[Operator, ...]
    operator: NDArray[np.int16]
    capacity: NDArray[np.int16]
    start_node: NDArray[np.int32]

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
        op_idx, cap, nodes = [], [], []
        for i, op in enumerate(operators):
            op_idx.append(np.full(op.vehicles, i, dtype=np.int16))
            cap.append(np.full(op.vehicles, op.capacity, dtype=np.int16))
            nodes.append(_start_nodes(op, network, rng, node_weights))
        operator: NDArray[np.int16] = np.concatenate(op_idx)
        capacity: NDArray[np.int16] = np.concatenate(cap)
        start: NDArray[np.int32] = np.concatenate(nodes)
        for a in (operator, capacity, start):
            a.setflags(write=False)
        return cls(operators=tuple(operators), operator=operator, capacity=capacity, start_node=start)


def _start_nodes(
    op: Operator, network: RoadNetwork, rng: np.random.Generator, weights: NDArray[np.float64] | None
) -> NDArray[np.int32]:
    n = network.n_nodes
    if op.start_nodes:
        a = np.asarray(op.start_nodes, dtype=np.int64)
        if a.min() < 0 or a.max() >= n:
            raise FleetError(f"operator {op.name!r}: a start node is outside the network's 0..{n - 1}")
        return a.astype(np.int32)
    if op.placement is Placement.WEIGHTED:
        if weights is None or weights.shape != (n,) or not np.all(weights >= 0) or weights.sum() <= 0:
            raise FleetError(f"operator {op.name!r}: weighted placement needs non-negative weights, one per node")
        return rng.choice(n, size=op.vehicles, p=weights / weights.sum()).astype(np.int32)
    return rng.integers(0, n, size=op.vehicles).astype(np.int32)
