"""Candidate pruning: the k idle vehicles with the smallest ETA for each request, as (row, vehicle, eta) triples."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .problem import MatchProblem

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


def k_nearest(
    p: MatchProblem, k: int, *, rows_subset: I64 | None = None, taken: NDArray[np.bool_] | None = None
) -> tuple[I64, I32, I32]:
    """Up to ``k`` feasible candidate vehicles per request, by ETA (ties by vehicle id).

    ETAs are exact table look-ups from every node holding an idle vehicle to each pickup (an R x U matrix, U the
    number of such nodes), so "nearest" means nearest in driving time, not as the crow flies. Only pairs whose
    pickup would meet the request's deadline, in a vehicle with enough seats, are returned.

    ``rows_subset`` restricts the search to some problem rows (returned rows still index the whole problem);
    ``taken`` (one flag per vehicle) hides vehicles already matched in an earlier round.
    """
    vs, nodes, starts, counts = p.idle.by_node()
    if taken is not None and vs.size:
        keep = ~taken[vs]
        node_of = np.repeat(nodes, counts)[keep]
        vs = vs[keep]
        uniq, first, cnt = np.unique(node_of, return_index=True, return_counts=True)
        nodes, starts, counts = uniq.astype(np.int32), first.astype(np.int64), cnt.astype(np.int64)
    sub = np.arange(len(p), dtype=np.int64) if rows_subset is None else rows_subset
    n_req = sub.size
    empty = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32))
    if nodes.size == 0 or n_req == 0:
        return empty
    free_flow = p.router.times(nodes[None, :], p.o_node[sub][:, None])
    kk = min(k, nodes.size)
    if kk < nodes.size:
        near = np.argpartition(free_flow, kk - 1, axis=1)[:, :kk]
    else:
        near = np.broadcast_to(np.arange(nodes.size), (n_req, nodes.size))
    # Expand each (request, node) to the first min(count, k) vehicles parked there.
    take = np.minimum(counts[near], k).ravel()
    pos = np.repeat(near.ravel(), take)
    rows = np.repeat(np.repeat(np.arange(n_req, dtype=np.int64), near.shape[1]), take)
    group_start = np.cumsum(take) - take
    offset = np.arange(pos.size) - np.repeat(group_start, take)
    veh = vs[starts[pos] + offset]
    eta = p.router.profile.apply(free_flow[rows, pos], p.now)
    rows = sub[rows]
    ok = (p.now + eta.astype(np.int64) <= p.deadline_s[rows]) & (p.idle.capacity[veh] >= p.passengers[rows])
    rows, veh, eta = rows[ok], veh[ok], eta[ok]
    # Keep the k best per request.
    order = np.lexsort((veh, eta, rows))
    rows, veh, eta = rows[order], veh[order], eta[order]
    first = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(rows.size) - first) < k
    return rows[keep], veh[keep].astype(np.int32), eta[keep].astype(np.int32)
