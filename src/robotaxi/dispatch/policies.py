"""Dispatch policies behind one Protocol, and the typed registry that names them.

``immediate`` and ``batch`` serve one request per vehicle at a time (the unpooled special case of stop plans): they
consider free vehicles, that is idle ones and those driving empty to a repositioning target, never one that has a
rider in its plan. A vehicle already driving to a pickup is committed: the rider has been given that vehicle and an
ETA. The pooling policies (``insertion``, ``pool``) live in :mod:`.pooling` and see every vehicle's plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from ._candidates import free_groups, k_nearest
from .operators import PairRules
from .problem import Assignment, MatchProblem

PolicyName = Literal["immediate", "batch", "insertion", "pool"]
_BIG = np.iinfo(np.int64).max // 4


class DispatchPolicy(Protocol):
    """How open requests are matched to vehicles.

    Attributes
    ----------
    name : str
        Registry name.
    on_arrival : bool
        True: the engine asks the policy as soon as requests arrive (and whenever a vehicle frees up), and the
        policy decides them one by one in arrival order (the engine relies on this to give the right reject reason).
        False: only on clock ticks.
    tick_seconds : int
        How often the caller should send ticks (0 = the policy needs none).
    """

    @property
    def name(self) -> str: ...

    @property
    def on_arrival(self) -> bool: ...

    @property
    def tick_seconds(self) -> int: ...

    def match(self, problem: MatchProblem) -> Assignment:
        """Choose vehicles for some of ``problem``'s requests."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Parameters shared by the policies.

    Parameters
    ----------
    batch_seconds : int
        Batch interval of the batch policies (> 0).
    candidates : int
        k: vehicles considered per request (> 0); larger is slower and rarely better past ~10.
    rounds : int
        Batch matching rounds: requests left unmatched after a round try again with the k nearest of the vehicles
        still free (>= 1).
    solver_time_s : float
        Time budget of the exact pooling solver per batch (> 0); past it, the greedy solution is used.
    """

    batch_seconds: int = 30
    candidates: int = 8
    rounds: int = 4
    solver_time_s: float = 2.0

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds: must be >= 1, got {self.rounds}")
        if self.batch_seconds <= 0:
            raise ValueError(f"batch_seconds: must be > 0, got {self.batch_seconds}")
        if self.candidates <= 0:
            raise ValueError(f"candidates: must be > 0, got {self.candidates}")
        if not self.solver_time_s > 0:
            raise ValueError(f"solver_time_s: must be > 0, got {self.solver_time_s}")


@dataclass(frozen=True, slots=True)
class ImmediateNearest:
    """Each request, on arrival and in arrival order, gets the free vehicle with the smallest pickup ETA.

    Ties go to an idle vehicle before a repositioning one, then the lower node index, then the lower vehicle index.
    The ETA scan covers every node holding an idle vehicle (one table column look-up), so the nearest vehicle is
    exact, not pruned. In a mixed fleet, a party goes to the nearest vehicle with enough seats.
    """

    params: PolicyParams = PolicyParams()

    @property
    def name(self) -> str:
        return "immediate"

    @property
    def on_arrival(self) -> bool:
        return True

    @property
    def tick_seconds(self) -> int:
        return 0

    def match(self, problem: MatchProblem) -> Assignment:  # noqa: PLR0912 - one pass over the requests
        n = len(problem)
        fleet = problem.fleet
        now = problem.now
        reachable = np.zeros(n, dtype=bool)
        nodes = np.flatnonzero(fleet.idle_count).astype(np.int32)
        left = fleet.idle_count[nodes].astype(np.int64)
        r_veh, r_node, r_ready = fleet.repositioning_vehicles(now)
        r_free = np.ones(r_veh.size, dtype=bool)
        if nodes.size == 0 and r_veh.size == 0:
            return Assignment.none(n)
        free: dict[int, list[int]] = {}  # vehicles still free at each node touched in this call
        rows: list[int] = []
        vehicles: list[int] = []
        picks: list[int] = []
        for i in range(n):
            o = np.int64(problem.o_node[i])
            latest = int(problem.deadline_s[i]) - now
            pax, op = int(problem.passengers[i]), int(problem.operator[i])
            best: tuple[int, int, int] | None = None  # (eta, vehicle, node position or -1-rep position)
            if nodes.size:
                eta = problem.travel.times(nodes, o, now).astype(np.int64)
                eta[left <= 0] = _BIG
                found = _pick_idle(problem, nodes, eta, free, latest, pax, op, i)
                if found is not None:
                    best = (int(eta[found[0]]), found[1], found[0])
            if r_veh.size:
                eta_r = problem.travel.times(r_node, o, r_ready).astype(np.int64) + (r_ready - now)
                ok = r_free & (eta_r <= latest) & (fleet.capacity[r_veh] >= pax)
                if op >= 0:
                    ok &= fleet.operator[r_veh] == op
                if problem.market is not None:
                    ok &= problem.market.ok(np.full(r_veh.size, i, np.int64), r_veh, eta_r)
                if ok.any():
                    j = int(np.flatnonzero(ok)[np.argmin(eta_r[ok])])
                    if best is None or int(eta_r[j]) < best[0]:
                        if best is not None:  # give the idle vehicle back
                            free[int(nodes[best[2]])].insert(0, best[1])
                            free[int(nodes[best[2]])].sort()
                        best = (int(eta_r[j]), int(r_veh[j]), -1 - j)
            if best is None:
                continue
            reachable[i] = True
            if best[2] >= 0:
                left[best[2]] -= 1
            else:
                r_free[-1 - best[2]] = False
            rows.append(i)
            vehicles.append(best[1])
            picks.append(now + best[0])
        return Assignment(
            rows=np.asarray(rows, dtype=np.int64),
            vehicles=np.asarray(vehicles, dtype=np.int32),
            pickup_s=np.asarray(picks, dtype=np.int64),
            reachable=reachable,
        )


def _pick_idle(
    problem: MatchProblem,
    nodes: NDArray[np.int32],
    eta: NDArray[np.int64],
    free: dict[int, list[int]],
    latest: int,
    passengers: int,
    operator: int,
    row: int,
) -> tuple[int, int] | None:
    """(node position, vehicle) of the nearest free idle vehicle with enough seats within ``latest`` s, or None."""
    first = int(np.argmin(eta))
    cap = problem.fleet.capacity
    ops = problem.fleet.operator
    # The nearest node first (the common case); only if its vehicles are all unsuitable (a mixed fleet), the others
    # by increasing ETA, ties by node. Nodes come by ETA: past the deadline, nothing can do.
    for j in itertools.chain((first,), _by_eta_after(eta, first)):
        if eta[j] > latest:
            return None
        node = int(nodes[j])
        at = free.get(node)
        if at is None:
            at = free[node] = list(problem.fleet.idle_vehicles_at(node))
        market = problem.market
        for k, v in enumerate(at):
            if cap[v] >= passengers and (operator < 0 or ops[v] == operator):
                if market is not None and not market.ok1(row, v, int(eta[j])):
                    continue
                del at[k]
                return j, int(v)
    return None


@dataclass(frozen=True, slots=True)
class BatchAssignment:
    """Every ``batch_seconds``, all open requests against all free vehicles, minimising total pickup ETA.

    Each request keeps only its k best feasible candidates (``params.candidates``), and a private "stay unmatched"
    column at a cost larger than any set of real ETAs could add up to, so the solver first matches as many
    requests as possible and then minimises their total pickup time. The sparse rectangular problem is solved
    with SciPy's ``min_weight_full_bipartite_matching`` (LAPJVsp: Jonker & Volgenant 1987 on sparse graphs).
    """

    params: PolicyParams = PolicyParams()

    @property
    def name(self) -> str:
        return "batch"

    @property
    def on_arrival(self) -> bool:
        return False

    @property
    def tick_seconds(self) -> int:
        return self.params.batch_seconds

    def match(self, problem: MatchProblem) -> Assignment:
        n = len(problem)
        reachable = np.zeros(n, dtype=bool)
        taken = np.zeros(problem.fleet.size, dtype=bool)
        todo = np.arange(n, dtype=np.int64)
        out_r, out_v, out_e = [], [], []
        market = problem.market
        # Pruning to k candidates can leave a request unmatched while farther free vehicles that could still reach
        # it in time are free: re-run on the leftovers against the leftover vehicles, a few rounds at most.
        for _ in range(self.params.rounds):
            if market is None:
                rows, veh, eta = k_nearest(problem, self.params.candidates, rows_subset=todo, taken=taken)
            else:
                rows, veh, eta = _k_nearest_by_operator(problem, market, self.params.candidates, todo, taken)
            if rows.size == 0:
                break
            reachable[rows] = True
            cost = None if market is None or not market.weighted() else market.cost(rows, veh, eta)
            r_sel, v_sel, e_sel = solve_assignment(rows, veh, eta, n, cost=cost)
            out_r.append(r_sel)
            out_v.append(v_sel)
            out_e.append(e_sel)
            taken[v_sel] = True
            todo = np.setdiff1d(np.unique(rows), r_sel)
            if todo.size == 0:
                break
        if not out_r:
            return Assignment.none(n)
        r_all = np.concatenate(out_r)
        order = np.argsort(r_all)
        return Assignment(
            rows=r_all[order],
            vehicles=np.concatenate(out_v)[order],
            pickup_s=problem.now + np.concatenate(out_e)[order].astype(np.int64),
            reachable=reachable,
        )


def _k_nearest_by_operator(
    problem: MatchProblem, market: PairRules, k: int, todo: NDArray[np.int64], taken: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    """The k nearest feasible vehicles of *each* operator for each request its area covers (the marketplace): the
    solver then weighs operators against each other with the pair costs, so the best vehicle of every operator
    must be among the candidates, not only the k nearest of the whole fleet."""
    op_of = problem.fleet.operator
    groups = free_groups(problem)
    parts: list[tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]] = []
    for j in range(market.market.n):
        rows_j = market.rows_for(j, todo)
        if rows_j.size == 0:
            continue
        parts.append(k_nearest(problem, k, rows_subset=rows_j, taken=taken | (op_of != j), groups=groups))
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64)
    rows = np.concatenate([x[0] for x in parts])
    veh = np.concatenate([x[1] for x in parts])
    eta = np.concatenate([x[2] for x in parts])
    order = np.lexsort((veh, eta, rows))
    return rows[order], veh[order], eta[order]


def _by_eta_after(eta: NDArray[np.int64], first: int) -> Iterator[int]:
    """Positions by increasing ETA (ties by position) except ``first``; sorted only if someone asks (lazily)."""
    for x in np.argsort(eta, kind="stable").tolist():
        if x != first:
            yield x


def solve_assignment(
    rows: NDArray[np.int64],
    veh: NDArray[np.int32],
    eta: NDArray[np.int64],
    n_rows: int,
    *,
    cost: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    """Minimum-total-cost matching over candidate pairs (the ETA unless ``cost`` is given), maximising the number
    matched first.

    Returns the chosen (row, vehicle, eta) pairs, sorted by row.
    """
    uniq, col = np.unique(veh, return_inverse=True)
    n_cols = uniq.size
    # +1 keeps every stored weight positive (a stored zero may be read as "no edge"); a constant per matched
    # row does not change which matching is optimal once every row is matched (real or dummy).
    cost = (eta.astype(np.float64) if cost is None else cost.astype(np.float64)) + 1.0
    dummy = float(cost.max() + 1.0) * (n_rows + 1)
    data = np.concatenate((cost, np.full(n_rows, dummy)))
    r = np.concatenate((rows, np.arange(n_rows)))
    c = np.concatenate((col, n_cols + np.arange(n_rows)))
    graph = csr_matrix((data, (r, c)), shape=(n_rows, n_cols + n_rows))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < n_cols
    row_ind, col_ind = row_ind[real].astype(np.int64), col_ind[real]
    chosen_v = uniq[col_ind].astype(np.int32)
    # Look up the ETA of each chosen pair.
    key = rows.astype(np.int64) * (int(veh.max()) + 1) + veh
    order = np.argsort(key)
    want = row_ind * (int(veh.max()) + 1) + chosen_v
    e = eta[order[np.searchsorted(key[order], want)]].astype(np.int64)
    srt = np.argsort(row_ind)
    return row_ind[srt], chosen_v[srt], e[srt]


def _pooling(name: str) -> Callable[[PolicyParams], DispatchPolicy]:
    def make(params: PolicyParams) -> DispatchPolicy:
        from .pooling import BatchPooling, InsertionPolicy  # pooling imports this module: import on first use

        if name == "insertion":
            return InsertionPolicy(params)
        return BatchPooling(params)

    return make


#: The typed registry: scenario files and the CLI name a policy; this turns the name into an object.
POLICIES: Mapping[PolicyName, Callable[[PolicyParams], DispatchPolicy]] = {
    "immediate": ImmediateNearest,
    "batch": BatchAssignment,
    "insertion": _pooling("insertion"),
    "pool": _pooling("pool"),
}


def make_policy(name: PolicyName, params: PolicyParams | None = None) -> DispatchPolicy:
    """The policy registered as ``name``."""
    return POLICIES[name](params or PolicyParams())
