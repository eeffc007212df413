// The replay model: where every vehicle is and what state it is in at a time t, which requests are open, and the
// KPIs that follow the clock. Everything is computed from the compact arrays of the payload (see
// robotaxi/dashboard/replay_data.py); nothing is precomputed per frame.

export const HIDDEN = 255;

function upperBound(a, x, lo = 0, hi = a.length) {
  // first index with a[i] > x
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lowerBound(a, x, lo = 0, hi = a.length) {
  // first index with a[i] >= x
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Replay {
  constructor({meta, arrays}) {
    this.meta = meta;
    this.a = arrays;
    const a = arrays;
    this.nVehicles = a.veh_id.length;
    this.nRequests = a.req_time.length;
    this.nCategories = meta.categories.length;
    // Offsets of each event's leg in path_slots.
    const nEv = a.ev_time.length;
    this.pathOff = new Float64Array(nEv + 1);
    for (let i = 0; i < nEv; i++) this.pathOff[i + 1] = this.pathOff[i] + a.ev_path_len[i];
    // Per-vehicle cursor: index of the last event at or before the current time (-1: not yet in the run).
    this.cursor = new Int32Array(this.nVehicles).fill(-1);
    this.legEv = new Int32Array(this.nVehicles).fill(-1); // event whose leg is decoded in legNodes/legCum
    this.legNodes = new Array(this.nVehicles);
    this.legCum = new Array(this.nVehicles);
    this.legSeg = new Int32Array(this.nVehicles); // segment of the decoded leg reached last frame
    this.t = -Infinity;
    // Outputs of update(): the drawn vehicles, compacted.
    this.drawn = 0;
    this.moving = 0;
    this.drawnVehicle = new Int32Array(this.nVehicles);
    this.positions = new Float32Array(2 * this.nVehicles);
    this.categoryOf = new Uint8Array(this.nVehicles);
    this.onboardOf = a.ev_onboard ? new Uint8Array(this.nVehicles) : null; // riders on board (pooling)
    this.byCategory = new Int32Array(this.nCategories);
    // Operators (a marketplace run): each vehicle's operator, and each operator's completed trips and fares in
    // drop-off order, so the panel at time t is a binary search per operator.
    this.nOperators = (meta.operators || []).length;
    this.operatorOf = new Int32Array(this.nVehicles).fill(-1);
    this.byOperator = new Int32Array(this.nOperators);
    this.#indexRequests();
    this.#indexOperators();
  }

  #indexOperators() {
    const a = this.a;
    this.opDropoff = [];
    this.opFareSum = [];
    if (!this.nOperators || !a.req_operator) return;
    const rows = Array.from({length: this.nOperators}, () => []);
    for (let i = 0; i < this.nRequests; i++) {
      const k = a.req_operator[i];
      if (k >= 0 && k < this.nOperators && a.req_dropoff[i] >= 0) rows[k].push(i);
    }
    const priced = Boolean(this.meta.priced);
    for (const list of rows) {
      list.sort((x, y) => a.req_dropoff[x] - a.req_dropoff[y]);
      const times = new Int32Array(list.length);
      const sums = new Float64Array(list.length + 1);
      list.forEach((r, j) => {
        times[j] = a.req_dropoff[r];
        sums[j + 1] = sums[j] + (priced && a.req_fare[r] > 0 ? a.req_fare[r] : 0);
      });
      this.opDropoff.push(times);
      this.opFareSum.push(sums);
    }
  }

  /** Per operator at time t: vehicles on the map, trips completed and riders' fares of those trips so far. */
  operatorTotals(t) {
    const priced = Boolean(this.meta.priced);
    const out = [];
    for (let k = 0; k < this.nOperators; k++) {
      const times = this.opDropoff[k];
      const n = times ? upperBound(times, t) : 0;
      out.push({vehicles: this.byOperator[k], trips: n, revenueCents: priced && times ? this.opFareSum[k][n] : null});
    }
    return out;
  }

  #indexRequests() {
    const a = this.a;
    const n = this.nRequests;
    let maxOpen = 0;
    const served = a.req_outcome; // codes; the label table says which is "served"
    const servedCode = this.meta.outcome_labels.indexOf('served');
    const close = new Int32Array(n);
    const pick = [];
    for (let i = 0; i < n; i++) {
      close[i] = a.req_close[i];
      maxOpen = Math.max(maxOpen, a.req_close[i] - a.req_time[i]);
      if (served[i] === servedCode && a.req_pickup[i] >= 0) pick.push(i);
    }
    this.maxOpen = maxOpen;
    this.sortedClose = close.sort();
    pick.sort((x, y) => a.req_pickup[x] - a.req_pickup[y]);
    this.servedPickup = new Int32Array(pick.length);
    this.servedWaitSum = new Float64Array(pick.length + 1);
    pick.forEach((r, k) => {
      this.servedPickup[k] = a.req_pickup[r];
      this.servedWaitSum[k + 1] = this.servedWaitSum[k] + (a.req_pickup[r] - a.req_time[r]);
    });
    // Requests of each vehicle (counting sort), in request-time order.
    const nv = this.nVehicles;
    this.vehReqStart = new Int32Array(nv + 1);
    for (let i = 0; i < n; i++) if (a.req_vehicle[i] >= 0) this.vehReqStart[a.req_vehicle[i] + 1]++;
    for (let v = 0; v < nv; v++) this.vehReqStart[v + 1] += this.vehReqStart[v];
    this.vehReq = new Int32Array(this.vehReqStart[nv]);
    const fill = this.vehReqStart.slice(0, nv);
    for (let i = 0; i < n; i++) {
      const v = a.req_vehicle[i];
      if (v >= 0) this.vehReq[fill[v]++] = i;
    }
    this.openRequests = new Int32Array(1024);
    this.openPositions = new Float32Array(2048);
    this.openAge = new Float32Array(1024);
    this.nOpen = 0;
  }

  // ------------------------------------------------------------------------------------------------ vehicles
  #decodeLeg(v, e) {
    // Walk the CSR adjacency with the leg's out-edge slots; cumulative free-flow times split the leg's duration.
    const a = this.a;
    const len = a.ev_path_len[e];
    const nodes = new Int32Array(len + 1);
    const cum = new Float64Array(len + 1);
    let u = a.ev_node[e];
    nodes[0] = u;
    const off = this.pathOff[e];
    for (let k = 0; k < len; k++) {
      const edge = a.csr_indptr[u] + a.path_slots[off + k];
      u = a.csr_head[edge];
      nodes[k + 1] = u;
      cum[k + 1] = cum[k] + a.edge_time[edge];
    }
    this.legEv[v] = e;
    this.legNodes[v] = nodes;
    this.legCum[v] = cum;
    this.legSeg[v] = 0;
  }

  /** Move the replay to time t: vehicle positions and categories, open requests. */
  update(t) {
    // One tight loop over the fleet, arrays held in locals: this runs every frame for every vehicle.
    this.t = t;
    const a = this.a;
    const evTime = a.ev_time;
    const evCat = a.ev_cat;
    const evNode = a.ev_node;
    const evLen = a.ev_path_len;
    const start = a.veh_ev_start;
    const lon = a.node_lon;
    const lat = a.node_lat;
    const cursor = this.cursor;
    const out = this.positions;
    const byCategory = this.byCategory.fill(0);
    const vehOp = a.veh_operator;
    const evOnboard = a.ev_onboard;
    const onboard = this.onboardOf;
    const byOperator = this.byOperator.fill(0);
    const nOps = this.nOperators;
    let j = 0;
    let moving = 0;
    for (let v = 0; v < this.nVehicles; v++) {
      const lo = start[v];
      const last = start[v + 1] - 1;
      let c = cursor[v];
      if (c >= lo && evTime[c] <= t) {
        while (c < last && evTime[c + 1] <= t) c++; // playing forward: step
      } else {
        c = upperBound(evTime, t, lo, last + 1) - 1; // a seek
        if (c < lo) c = -1;
      }
      cursor[v] = c;
      if (c < 0) continue;
      const cat = evCat[c];
      if (cat === HIDDEN) continue;
      if (evLen[c] > 0 && c < last) {
        // Driving the leg from event c to event c + 1.
        if (this.legEv[v] !== c) this.#decodeLeg(v, c);
        const nodes = this.legNodes[v];
        const cum = this.legCum[v];
        const t0 = evTime[c];
        const span = evTime[c + 1] - t0;
        const target = span > 0 ? ((t - t0) / span) * cum[cum.length - 1] : 0;
        const nSeg = nodes.length - 1;
        let k = this.legSeg[v];
        if (k >= nSeg || cum[k] > target) k = 0;
        while (k < nSeg - 1 && cum[k + 1] <= target) k++;
        this.legSeg[v] = k;
        const seg = cum[k + 1] - cum[k];
        const f = seg > 0 ? Math.min(Math.max((target - cum[k]) / seg, 0), 1) : 0;
        const p = nodes[k];
        const q = nodes[k + 1];
        out[2 * j] = lon[p] + f * (lon[q] - lon[p]);
        out[2 * j + 1] = lat[p] + f * (lat[q] - lat[p]);
        moving++;
      } else {
        const node = evNode[c];
        out[2 * j] = lon[node];
        out[2 * j + 1] = lat[node];
      }
      this.drawnVehicle[j] = v;
      this.categoryOf[j] = cat;
      if (onboard) onboard[j] = evOnboard[c];
      byCategory[cat]++;
      if (vehOp) {
        const k = vehOp[v];
        this.operatorOf[j] = k;
        if (k >= 0 && k < nOps) byOperator[k]++;
      }
      j++;
    }
    this.drawn = j;
    this.moving = moving;
    this.#updateOpen(t);
  }

  #updateOpen(t) {
    const a = this.a;
    const lo = lowerBound(a.req_time, t - this.maxOpen);
    const hi = upperBound(a.req_time, t);
    let n = 0;
    for (let i = lo; i < hi; i++) {
      if (a.req_close[i] > t) {
        if (n >= this.openRequests.length) this.#growOpen();
        const node = a.req_o_node[i];
        this.openRequests[n] = i;
        this.openPositions[2 * n] = a.node_lon[node];
        this.openPositions[2 * n + 1] = a.node_lat[node];
        this.openAge[n] = t - a.req_time[i];
        n++;
      }
    }
    this.nOpen = n;
  }

  #growOpen() {
    const size = this.openRequests.length * 2;
    const grow = (old, k) => {
      const b = new old.constructor(size * k);
      b.set(old);
      return b;
    };
    this.openRequests = grow(this.openRequests, 1);
    this.openPositions = grow(this.openPositions, 2);
    this.openAge = grow(this.openAge, 1);
  }

  // ------------------------------------------------------------------------------------------------ KPIs
  /** KPIs at time t: open requests, served % of the requests closed so far, mean wait of pickups in the last hour. */
  kpis(t) {
    const closed = upperBound(this.sortedClose, t);
    const served = upperBound(this.servedPickup, t);
    const hourAgo = upperBound(this.servedPickup, t - 3600);
    const n = served - hourAgo;
    const closedHour = closed - upperBound(this.sortedClose, t - 3600);
    return {
      servedPctLastHour: closedHour > 0 ? (100 * n) / closedHour : null,
      open: this.nOpen,
      closed,
      served,
      servedPct: closed > 0 ? (100 * served) / closed : null,
      meanWaitS: n > 0 ? (this.servedWaitSum[served] - this.servedWaitSum[hourAgo]) / n : null,
      pickupsLastHour: n,
    };
  }

  // ------------------------------------------------------------------------------------------------ details
  vehicleRequests(v) {
    return this.vehReq.subarray(this.vehReqStart[v], this.vehReqStart[v + 1]);
  }

  /** Events of vehicle v after time t (its plan as far as the run knows it), at most `limit`. */
  upcomingEvents(v, t, limit = 6) {
    const a = this.a;
    const out = [];
    const hi = a.veh_ev_start[v + 1];
    for (let e = upperBound(a.ev_time, t, a.veh_ev_start[v], hi); e < hi && out.length < limit; e++) out.push(e);
    return out;
  }
}
