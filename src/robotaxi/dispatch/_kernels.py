"""Compiled (numba) kernels of the insertion policies' per-decision work: ranking the vehicles nearest each pickup,
timing each candidate's plan (:class:`~.pooling.Pack`) and every (pickup position, dropoff position) of each
(request, vehicle) pair (:func:`~.pooling.grid`).

Each kernel computes what the NumPy function it stands for computes, element by element, with the same integer and
float64 operations in the same order (no fast-math), so decisions are the same; the NumPy functions stay the
reference and are used where these cannot be (a travel-time object without a full table). Legs are timed inside
the kernels from the router's :class:`~robotaxi.network.router.LegTerms`, which every kernel takes as one tuple
(``terms``). A decision calls each kernel once: the
cost of one insertion decision is then the few Python calls around them, not many small NumPy calls.

Compiled on first use and cached on disk (``cache=True``): the first run on a machine pays a few seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

_INF = np.iinfo(np.int64).max // 4
PICKUP = 0
DROPOFF = 1


@njit(cache=True)
def _tt(o: Any, d: Any, terms: Any) -> Any:  # pragma: no cover - compiled
    """One leg's seconds, as :meth:`~robotaxi.network.router.Router.times_at` computes it from ``terms`` (the
    fields of :class:`~robotaxi.network.router.LegTerms` as a tuple)."""
    tab, major, w, fl, fm, over, mode = terms
    b = tab[o, d]
    if mode == 0:
        return np.int64(b)
    if mode == 1:
        return np.int64(np.rint(b * fl))
    drive = b * fl if major.shape[0] == 0 else fl * np.float64(b) + (fm - fl) * np.float64(major[o, d])
    if w.shape[0] != 0:
        drive = drive * (w[o] * w[d])
    r = np.rint(drive)
    if b > 0:
        r = r + over
    return np.int64(r)


@njit(cache=True)
def leg_times(o: Any, d: Any, terms: Any) -> Any:  # pragma: no cover - compiled
    """Seconds of each leg ``o[q] -> d[q]`` (flat arrays), for testing :func:`_tt` against the router."""
    out = np.empty(o.size, np.int64)
    for q in range(o.size):
        out[q] = _tt(o[q], d[q], terms)
    return out


#: Rows ranked at a time (bounds the keys' memory).
_CHUNK = 256


@njit(cache=True)
def nearest(
    to: Any,
    order: Any,
    sel: Any,
    o_all: Any,
    pax_all: Any,
    op_all: Any,
    deadline_all: Any,
    vs: Any,
    anchor_all: Any,
    seats_all: Any,
    op_fleet: Any,
    k: Any,
    by_vehicle_max: Any,
    reach: Any,
    now: Any,
    terms: Any,
) -> Any:  # pragma: no cover - compiled
    """:func:`_nearest_of` for problem rows ``sel`` (pickup ``o_all``, passengers ``pax_all``, operator ``op_all``,
    deadline ``deadline_all``) and vehicles ``vs`` (anchor node ``anchor_all``, free seats ``seats_all``, operator
    ``op_fleet``): the arrays as the caller has them, selected here."""
    return _nearest_of(
        to, order, o_all[sel].astype(np.int64), pax_all[sel].astype(np.int64), op_all[sel].astype(np.int64),
        anchor_all[vs].astype(np.int64), seats_all[vs].astype(np.int64), op_fleet[vs].astype(np.int64), k,
        by_vehicle_max, reach, deadline_all[sel].astype(np.int64), now, terms,
    )  # fmt: skip


@njit(cache=True)
def _nearest_of(
    to: Any,
    order: Any,
    o_rows: Any,
    pax_rows: Any,
    op_rows: Any,
    anchors: Any,
    seats: Any,
    veh_op: Any,
    k: Any,
    by_vehicle_max: Any,
    reach: Any,
    deadline_rows: Any,
    now: Any,
    terms: Any,
) -> Any:  # pragma: no cover - compiled
    """For each row ``q``, the up to ``k`` vehicles ``i`` with ``seats[i] >= pax_rows[q]`` and the operator
    (``op_rows[q] < 0``: any) that have the least free-flow time from ``anchors[i]`` to ``o_rows[q]`` (ties to
    the lower ``i``), as flat ``(q, i)`` pairs, row by row (vehicles in no particular order): what
    :func:`~.pooling._nearest_full` finds with a partition of keys ``time * n + i``. With ``reach``, of those the
    ones that can be at the pickup by ``deadline_rows[q]`` leaving ``anchors[i]`` at ``now`` (legs timed from
    ``terms``), as :func:`~.pooling._call_candidates` keeps them.

    ``to`` is the transposed free-flow table (``to[o, a]`` = ``terms[0][a, o]``). Up to ``by_vehicle_max``
    vehicles are read from ``terms[0]`` row by row (their rows stay in the cache over many pickups); more, with
    ``order`` (each node's nodes by time to it, :func:`~.pooling._node_order`; empty: none), through the pickup's
    nearest nodes up to
    the time at which k vehicles are reached (every vehicle as near as the k-th is read; the rest are further, so
    the keys kept are the same); otherwise every vehicle is read from ``to``."""
    tab = terms[0]
    nr, nv = o_rows.size, anchors.size
    out_q = np.empty(nr * min(k, nv), np.int64)
    out_i = np.empty(nr * min(k, nv), np.int64)
    keys = np.empty(nv, np.int64)
    by_vehicle = nv <= by_vehicle_max and tab.shape[0] > 1
    indexed = not by_vehicle and order.shape[0] > 1
    eta = np.empty((0 if indexed else min(nr, _CHUNK), nv), np.int64)
    first, by_node = _buckets(anchors, seats, order.shape[0] if indexed else 0)
    m = 0
    for lo in range(0, nr, _CHUNK):
        hi = min(nr, lo + _CHUNK)
        if not indexed:
            _fill_eta(eta, lo, hi, o_rows, anchors, tab if by_vehicle else to, by_vehicle)
        for q in range(lo, hi):
            o, pax, op = o_rows[q], pax_rows[q], op_rows[q]
            if indexed:
                c = _collect_near(keys, to, order, o, k, first, by_node, seats, veh_op, pax, op)
            else:
                c = 0
                for i in range(nv):
                    if seats[i] >= pax and (op < 0 or veh_op[i] == op):
                        keys[c] = eta[q - lo, i] * nv + i
                        c += 1
            sel = np.partition(keys[:c], k - 1)[:k] if c > k else keys[:c]  # the k least keys (all distinct)
            for x in range(sel.size):
                i = sel[x] % nv
                if reach and _tt(anchors[i], o, terms) > deadline_rows[q] - now:
                    continue
                out_q[m] = q
                out_i[m] = i
                m += 1
    return out_q[:m], out_i[:m]


@njit(cache=True)
def _buckets(anchors: Any, seats: Any, n_nodes: Any) -> Any:  # pragma: no cover - compiled
    """Positions of the vehicles with a free seat grouped by anchor node (ascending within a node):
    ``by_node[first[x]:first[x + 1]]`` are those at node ``x`` (empty arrays without nodes). A vehicle without a
    seat fits no request."""
    first = np.zeros(n_nodes + 1, np.int64)
    by_node = np.empty(anchors.size if n_nodes else 0, np.int64)
    if n_nodes == 0:
        return first, by_node
    for i in range(anchors.size):
        if seats[i] >= 1:
            first[anchors[i] + 1] += 1
    for x in range(n_nodes):
        first[x + 1] += first[x]
    fill = first[:-1].copy()
    for i in range(anchors.size):
        if seats[i] >= 1:
            a = anchors[i]
            by_node[fill[a]] = i
            fill[a] += 1
    return first, by_node


@njit(cache=True)
def _collect_near(
    keys: Any,
    to: Any,
    order: Any,
    o: Any,
    k: Any,
    first: Any,
    by_node: Any,
    seats: Any,
    veh_op: Any,
    pax: Any,
    op: Any,
) -> Any:  # pragma: no cover - compiled
    """Keys ``time * n + i`` of the vehicles that fit, walking the nodes nearest pickup ``o`` until the time at
    which ``k`` of them are reached has been passed; returns how many were written to ``keys``."""
    nv = seats.size
    c = 0
    seen, total = 0, first[first.size - 1]  # vehicles with a seat looked at, of all
    t_k: Any = -1  # the time at which k vehicles were reached (-1: not yet)
    for x in range(order.shape[1]):
        node = order[o, x]
        t = np.int64(to[o, node])
        if (t_k >= 0 and t > t_k) or seen == total:
            break
        seen += first[node + 1] - first[node]
        for y in range(first[node], first[node + 1]):
            i = by_node[y]
            if seats[i] >= pax and (op < 0 or veh_op[i] == op):
                keys[c] = t * nv + i
                c += 1
        if t_k < 0 and c >= k:
            t_k = t
    return c


@njit(cache=True)
def _fill_eta(eta: Any, lo: Any, hi: Any, o_rows: Any, anchors: Any, table: Any, by_vehicle: Any) -> None:
    """Free-flow times from every anchor to the pickups of rows ``lo..hi-1`` into ``eta``: vehicle by vehicle from
    the table (``table[a, o]``), or pickup by pickup from the transposed table (``table[o, a]``)."""
    if by_vehicle:
        for i in range(anchors.size):
            a = anchors[i]
            for q in range(lo, hi):
                eta[q - lo, i] = table[a, o_rows[q]]
    else:
        for q in range(lo, hi):
            o = o_rows[q]
            for i in range(anchors.size):
                eta[q - lo, i] = table[o, anchors[i]]


@njit(cache=True)
def pack(
    lens: Any,
    origin: Any,
    t0: Any,
    kind: Any,
    req: Any,
    nodes_flat: Any,
    at_stop: Any,
    load0: Any,
    r_pax: Any,
    r_deadline: Any,
    r_latest: Any,
    r_share: Any,
    pickup_s: Any,
    dropoff_s: Any,
    terms: Any,
) -> Any:  # pragma: no cover - compiled
    """The arrays of :class:`~.pooling.Pack` from its vehicles' flat stops (``kind``, ``req``, ``nodes_flat``,
    ``lens[v]`` stops each): ``(nodes, depart, arrive, end, load_before, slack, suffix_slack, has_riders,
    shareable)``, padding included, element for element as the NumPy construction."""
    nv = lens.size
    width = 0
    for v in range(nv):
        width = max(width, lens[v])
    nodes = np.empty((nv, width + 1), np.int64)
    depart = np.empty((nv, width), np.int64)
    arrive = np.empty((nv, width), np.int64)
    end = np.empty(nv, np.int64)
    load_before = np.empty((nv, width + 1), np.int64)
    slack = np.empty((nv, width), np.int64)
    suffix = np.empty((nv, width), np.int64)
    has_riders = np.zeros(nv, np.bool_)
    shareable = np.ones(nv, np.bool_)
    s = 0
    for v in range(nv):
        n = lens[v]
        nodes[v, :] = origin[v]
        for x in range(n):
            nodes[v, x + 1] = nodes_flat[s + x]
        t = t0[v]
        load = np.int64(load0[v])
        load_before[v, 0] = load
        for x in range(width):
            kd = kind[s + x] if x < n else -1
            r = req[s + x] if x < n else -1
            dwell = pickup_s if kd == PICKUP else (dropoff_s if kd == DROPOFF else 0)
            # Standing at stop 0: arrived a dwell before t0, leaves at t0.
            leg = -dwell if x == 0 and at_stop[v] and n > 0 else _tt(nodes[v, x], nodes[v, x + 1], terms)
            t = t + leg + dwell
            depart[v, x] = t
            arrive[v, x] = t - dwell
            pax = r_pax[r] if r >= 0 else 0
            if kd == PICKUP:
                load += pax
                latest = r_deadline[r]
            elif kd == DROPOFF:
                load -= pax
                latest = r_latest[r]
            else:
                latest = _INF
            load_before[v, x + 1] = load
            slack[v, x] = latest - arrive[v, x]
            if PICKUP <= kd <= DROPOFF:  # a rider's stop
                has_riders[v] = True
                if not r_share[r]:
                    shareable[v] = False
        end[v] = depart[v, n - 1] if n > 0 else t0[v]
        low = _INF
        for x in range(width - 1, -1, -1):
            low = min(low, slack[v, x])
            suffix[v, x] = low
        s += n
    return nodes, depart, arrive, end, load_before, slack, suffix, has_riders, shareable


@njit(cache=True)
def grid(
    idx: Any,
    o_rows: Any,
    d_rows: Any,
    pax_rows: Any,
    deadline_rows: Any,
    latest_rows: Any,
    share_rows: Any,
    nodes: Any,
    n_stops: Any,
    t0: Any,
    depart: Any,
    arrive: Any,
    end: Any,
    load_before: Any,
    slack: Any,
    suffix: Any,
    fixed: Any,
    capacity: Any,
    has_riders: Any,
    shareable: Any,
    now: Any,
    pickup_s: Any,
    dropoff_s: Any,
    terms: Any,
) -> Any:  # pragma: no cover - compiled
    """:func:`~.pooling.grid` pair by pair: the cheapest ``(cost, i, j, pickup time)`` of each ``(row, packed
    vehicle idx[q])``, ties to the lowest pickup position then dropoff position; where nothing fits, cost ``_INF``,
    ``i = j = 0`` and the pickup time of position 0 (what NumPy's ``argmin`` over all-``_INF`` costs gives)."""
    nq = idx.size
    c_out = np.empty(nq, np.int64)
    i_out = np.zeros(nq, np.int64)
    j_out = np.zeros(nq, np.int64)
    a_out = np.empty(nq, np.int64)
    for q in range(nq):
        b = idx[q]
        o, d = o_rows[q], d_rows[q]
        pax, deadline, latest = pax_rows[q], deadline_rows[q], latest_rows[q]
        n = n_stops[b]
        cap = capacity[b]
        share_ok = (share_rows[q] and shareable[b]) or not has_riders[b]
        od = _tt(o, d, terms)
        best, bi, bj = _INF, 0, 0
        ap_best = t0[b] + _tt(nodes[b, 0], o, terms)
        for i in range(fixed[b], n + 1 if share_ok else 0):
            a_p = (t0[b] if i == 0 else depart[b, i - 1]) + _tt(nodes[b, i], o, terms)
            if load_before[b, i] + pax > cap or a_p > deadline:
                continue
            d_p = a_p + pickup_s
            # Dropoff right after the pickup (j == i).
            a_d = d_p + od
            if i < n:
                shift = a_d + dropoff_s + _tt(d, nodes[b, i + 1], terms) - arrive[b, i]
                ok = a_d <= latest and shift <= suffix[b, i]
            else:
                shift = a_d + dropoff_s - end[b]
                ok = a_d <= latest
            if ok and max(shift, 0) + a_p - now < best:
                best, bi, bj, ap_best = max(shift, 0) + a_p - now, i, i, a_p
            if i == n:
                continue
            # Dropoff before a later stop j > i: stops i..j-1 pushed back by shift1 and carrying the new rider.
            shift1 = d_p + _tt(o, nodes[b, i + 1], terms) - arrive[b, i]
            ext, j = _later(b, i, n, shift1, d, pax, cap, latest, nodes, depart, arrive, end, load_before, slack,
                            suffix, dropoff_s, terms)  # fmt: skip
            if ext < _INF and ext + a_p - now < best:
                best, bi, bj, ap_best = ext + a_p - now, i, j, a_p
        c_out[q], i_out[q], j_out[q], a_out[q] = best, bi, bj, ap_best
    return c_out, i_out, j_out, a_out


@njit(cache=True)
def _later(
    b: Any,
    i: Any,
    n: Any,
    shift1: Any,
    d: Any,
    pax: Any,
    cap: Any,
    latest: Any,
    nodes: Any,
    depart: Any,
    arrive: Any,
    end: Any,
    load_before: Any,
    slack: Any,
    suffix: Any,
    dropoff_s: Any,
    terms: Any,
) -> Any:  # pragma: no cover - compiled
    """For :func:`grid`: the least plan extension ``max(shift2, 0)`` of a dropoff before a stop ``j > i`` of
    packed vehicle ``b``, and that ``j`` (the first of equal ones); ``(_INF, 0)`` where none fits."""
    best, bj = _INF, 0
    min_slack = _INF
    max_load = load_before[b, i]
    for j in range(i + 1, n + 1):
        min_slack = min(min_slack, slack[b, j - 1])
        max_load = max(max_load, load_before[b, j])
        if min_slack < shift1 or max_load + pax > cap:
            break  # both only get worse further on
        a_d = depart[b, j - 1] + shift1 + _tt(nodes[b, j], d, terms)
        if a_d > latest:
            continue
        if j < n:
            shift2 = a_d + dropoff_s + _tt(d, nodes[b, j + 1], terms) - arrive[b, j]
            if shift2 > suffix[b, j]:
                continue
        else:
            shift2 = a_d + dropoff_s - end[b]
        if max(shift2, 0) < best:
            best, bj = max(shift2, 0), j
    return best, bj
