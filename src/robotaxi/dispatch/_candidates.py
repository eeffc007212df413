"""Candidate pruning: the k free vehicles with the smallest pickup ETA for each request, as (row, vehicle, eta)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .problem import MatchProblem

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


def free_groups(p: MatchProblem) -> tuple[I32, I32, I64, I64, I64]:
    """Free vehicles grouped by (node, ready time): ``(vehicles, group_node, group_ready, group_start, group_count)``.

    Idle vehicles share the group of their node (ready now); a repositioning vehicle forms a group at its target.
    """
    vs, nodes, ready = p.fleet.free(p.now)
    if vs.size == 0:
        e = np.empty(0, np.int64)
        return vs, nodes, e, e, e
    change = np.ones(vs.size, dtype=bool)
    change[1:] = (nodes[1:] != nodes[:-1]) | (ready[1:] != ready[:-1])
    starts = np.flatnonzero(change).astype(np.int64)
    counts = np.diff(np.append(starts, vs.size)).astype(np.int64)
    return vs, nodes[starts], ready[starts], starts, counts


def group_etas(p: MatchProblem, g_node: I32, g_ready: I64, rows: I64) -> I32:
    """Pickup ETA (seconds after ``now``) from every group to each request in ``rows``: an R x G matrix (int32:
    these matrices are large, and a pickup is hours away at most)."""
    if g_ready.size and int(g_ready.max()) == p.now:
        return p.travel.times_to(p.o_node[rows], g_node, p.now)
    t = p.travel.times_to(p.o_node[rows], g_node, g_ready)
    t += (g_ready - p.now).astype(np.int32)[None, :]
    return t


Groups = tuple[I32, I32, I64, I64, I64]


def k_nearest(
    p: MatchProblem,
    k: int,
    *,
    rows_subset: I64 | None = None,
    taken: NDArray[np.bool_] | None = None,
    groups: Groups | None = None,
) -> tuple[I64, I32, I64]:
    """Up to ``k`` feasible candidate vehicles per request, by ETA (ties by vehicle index).

    ETAs are exact table look-ups from every group of free vehicles to each pickup, so "nearest" means nearest in
    driving time, not as the crow flies. Only pairs whose pickup meets the request's deadline, in a vehicle with
    enough seats and of an operator the request accepts, are returned.

    ``rows_subset`` restricts the search to some problem rows (returned rows still index the whole problem);
    ``taken`` (one flag per vehicle) hides vehicles already matched in an earlier round; ``groups`` is
    :func:`free_groups` of ``p`` when the caller already has it (several calls in one decision).
    """
    vs, g_node, g_ready, starts, counts = free_groups(p) if groups is None else groups
    if taken is not None and vs.size:
        keep = ~taken[vs]
        grp = np.repeat(np.arange(starts.size), counts)[keep]
        vs = vs[keep]
        uniq, first, cnt = np.unique(grp, return_index=True, return_counts=True)
        g_node, g_ready = g_node[uniq], g_ready[uniq]
        starts, counts = first.astype(np.int64), cnt.astype(np.int64)
    sub = np.arange(len(p), dtype=np.int64) if rows_subset is None else rows_subset
    n_req = sub.size
    empty = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64))
    if g_node.size == 0 or n_req == 0:
        return empty
    eta_all = group_etas(p, g_node, g_ready, sub)
    kk = min(k, g_node.size)
    if kk < g_node.size:
        near = np.argpartition(eta_all, kk - 1, axis=1)[:, :kk]
    else:
        near = np.broadcast_to(np.arange(g_node.size), (n_req, g_node.size))
    # Expand each (request, group) to the first min(count, k) vehicles of the group.
    take = np.minimum(counts[near], k).ravel()
    pos = np.repeat(near.ravel(), take)
    local = np.repeat(np.repeat(np.arange(n_req, dtype=np.int64), near.shape[1]), take)
    group_start = np.cumsum(take) - take
    offset = np.arange(pos.size) - np.repeat(group_start, take)
    veh = vs[starts[pos] + offset]
    eta = eta_all[local, pos].astype(np.int64)
    rows = sub[local]
    fleet = p.fleet
    op = p.operator[rows]
    ok = (
        (p.now + eta <= p.deadline_s[rows])
        & (fleet.capacity[veh] >= p.passengers[rows])
        & ((op < 0) | (fleet.operator[veh] == op))
    )
    rows, veh, eta = rows[ok], veh[ok], eta[ok]
    if p.market is not None:
        ok = p.market.ok(rows, veh, eta)
        rows, veh, eta = rows[ok], veh[ok], eta[ok]
    order = np.lexsort((veh, eta, rows))
    rows, veh, eta = rows[order], veh[order], eta[order]
    first = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(rows.size) - first) < k
    return rows[keep], veh[keep].astype(np.int32), eta[keep]
