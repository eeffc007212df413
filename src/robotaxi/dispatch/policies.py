"""Dispatch policies behind one Protocol, and the typed registry that names them.

Both policies assign only *idle* vehicles (MDS ``available``). A vehicle already driving to a pickup is committed:
it is never re-assigned, because the rider has been given that vehicle and an ETA, and a live service would have
to take the promise back (see ``docs/simulation.md`` for the trade-off).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from ._candidates import k_nearest
from .problem import Matching, MatchProblem

PolicyName = Literal["immediate", "batch"]


class DispatchPolicy(Protocol):
    """How open requests are matched to idle vehicles.

    Attributes
    ----------
    name : str
        Registry name.
    on_arrival : bool
        True: the engine asks the policy as soon as requests arrive, and the policy decides them one by one in
        arrival order (the engine relies on this to give the right reject reason). False: only on clock ticks.
    tick_seconds : int
        How often the caller should send ticks (0 = the policy needs none).
    """

    @property
    def name(self) -> str: ...

    @property
    def on_arrival(self) -> bool: ...

    @property
    def tick_seconds(self) -> int: ...

    def match(self, problem: MatchProblem) -> Matching:
        """Choose vehicles for some of ``problem``'s requests (each vehicle at most once)."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyParams:
    """Parameters shared by the policies.

    Parameters
    ----------
    batch_seconds : int
        Batch interval of the ``batch`` policy (> 0).
    candidates : int
        k: idle vehicles considered per request (> 0); larger is slower and rarely better past ~10.
    rounds : int
        Batch matching rounds: requests left unmatched after a round try again with the k nearest of the vehicles
        still free (>= 1).
    """

    batch_seconds: int = 30
    candidates: int = 8
    rounds: int = 4

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.batch_seconds <= 0:
            raise ValueError(f"batch_seconds must be > 0, got {self.batch_seconds}")
        if self.candidates <= 0:
            raise ValueError(f"candidates must be > 0, got {self.candidates}")


@dataclass(frozen=True, slots=True)
class ImmediateNearest:
    """Each request, on arrival and in arrival order, gets the idle vehicle with the smallest ETA (the baseline).

    Ties go to the lower node index, then the lower vehicle id. The ETA scan covers every node holding an idle
    vehicle (one table column look-up), so the nearest vehicle is exact, not pruned. In a mixed fleet, a party goes
    to the nearest vehicle with enough seats.
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

    def match(self, problem: MatchProblem) -> Matching:
        n = len(problem)
        reachable = np.zeros(n, dtype=bool)
        nodes = problem.idle.nodes()
        if nodes.size == 0:
            return Matching.none(n)
        left = problem.idle.count[nodes].astype(np.int64)
        # Vehicles still free at each node touched in this call, by increasing id (copied on first use).
        free: dict[int, list[int]] = {}
        rows: list[int] = []
        vehicles: list[int] = []
        etas: list[int] = []
        for i in range(n):
            eta = problem.router.times(nodes, np.int64(problem.o_node[i]), problem.now).astype(np.int64)
            eta[left <= 0] = np.iinfo(np.int64).max // 2
            latest = int(problem.deadline_s[i]) - problem.now
            found = self._pick(problem, nodes, eta, left, free, latest, int(problem.passengers[i]))
            if found is None:
                continue
            j, v = found
            reachable[i] = True
            left[j] -= 1
            rows.append(i)
            vehicles.append(v)
            etas.append(int(eta[j]))
        return Matching(
            rows=np.asarray(rows, dtype=np.int64),
            vehicles=np.asarray(vehicles, dtype=np.int32),
            eta_s=np.asarray(etas, dtype=np.int32),
            reachable=reachable,
        )

    @staticmethod
    def _pick(
        problem: MatchProblem,
        nodes: np.ndarray,
        eta: np.ndarray,
        left: np.ndarray,
        free: dict[int, list[int]],
        latest: int,
        passengers: int,
    ) -> tuple[int, int] | None:
        """(node position, vehicle) of the nearest free vehicle with enough seats within ``latest`` s, or None."""
        first = int(np.argmin(eta))
        cap = problem.idle.capacity
        # The nearest node first (the common case); only if its vehicles are all too small for the party (a mixed
        # fleet), the others by increasing ETA, ties by node. Nodes come by ETA: past the deadline, nothing can do.
        for j in itertools.chain((first,), _by_eta_after(eta, first)):
            if left[j] <= 0 or eta[j] > latest:
                return None
            node = int(nodes[j])
            at = free.get(node)
            if at is None:
                at = free[node] = list(problem.idle.vehicles_at(node))
            for k, v in enumerate(at):
                if cap[v] >= passengers:
                    del at[k]
                    return j, int(v)
        return None


@dataclass(frozen=True, slots=True)
class BatchAssignment:
    """Every ``batch_seconds``, all open requests against all idle vehicles, minimising total ETA.

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

    def match(self, problem: MatchProblem) -> Matching:
        n = len(problem)
        reachable = np.zeros(n, dtype=bool)
        taken = np.zeros(problem.idle.capacity.size, dtype=bool)
        todo = np.arange(n, dtype=np.int64)
        out_r, out_v, out_e = [], [], []
        # Pruning to k candidates can leave a request unmatched while farther idle vehicles that could still reach
        # it in time are free: re-run on the leftovers against the leftover vehicles, a few rounds at most.
        for _ in range(self.params.rounds):
            rows, veh, eta = k_nearest(problem, self.params.candidates, rows_subset=todo, taken=taken)
            if rows.size == 0:
                break
            reachable[rows] = True
            r_sel, v_sel, e_sel = solve_assignment(rows, veh, eta, n)
            out_r.append(r_sel)
            out_v.append(v_sel)
            out_e.append(e_sel)
            taken[v_sel] = True
            todo = np.setdiff1d(np.unique(rows), r_sel)
            if todo.size == 0:
                break
        if not out_r:
            return Matching.none(n)
        r_all = np.concatenate(out_r)
        order = np.argsort(r_all)
        return Matching(
            rows=r_all[order],
            vehicles=np.concatenate(out_v)[order],
            eta_s=np.concatenate(out_e)[order],
            reachable=reachable,
        )


def _by_eta_after(eta: np.ndarray, first: int) -> Iterator[int]:
    """Positions by increasing ETA (ties by position) except ``first``; sorted only if someone asks (lazily)."""
    for x in np.argsort(eta, kind="stable").tolist():
        if x != first:
            yield x


def solve_assignment(
    rows: np.ndarray, veh: np.ndarray, eta: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-total-ETA matching over candidate pairs, maximising the number matched first.

    Returns the chosen (row, vehicle, eta) pairs, sorted by row.
    """
    uniq, col = np.unique(veh, return_inverse=True)
    n_cols = uniq.size
    # +1 keeps every stored weight positive (a stored zero may be read as "no edge"); a constant per matched
    # row does not change which matching is optimal once every row is matched (real or dummy).
    cost = eta.astype(np.float64) + 1.0
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
    e = eta[order[np.searchsorted(key[order], want)]].astype(np.int32)
    srt = np.argsort(row_ind)
    return row_ind[srt], chosen_v[srt], e[srt]


#: The typed registry: scenario files and the CLI name a policy; this turns the name into an object.
POLICIES: Mapping[PolicyName, Callable[[PolicyParams], DispatchPolicy]] = {
    "immediate": ImmediateNearest,
    "batch": BatchAssignment,
}


def make_policy(name: PolicyName, params: PolicyParams | None = None) -> DispatchPolicy:
    """The policy registered as ``name``."""
    return POLICIES[name](params or PolicyParams())
