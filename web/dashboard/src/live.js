// The live view (robotaxi serve --dashboard): signs in, opens the feed /v1/dashboard/feed and keeps a model with
// the interface the page's App draws from (see model.js for the replay's): vehicles, open requests, KPIs.
// The feed sends positions once a second; the model glides each vehicle from where it was drawn to its new
// position over that second, so vehicles move smoothly one second behind the platform.

import {gunzip, parsePayload} from './payload.js';

const GLIDE_MS = 1000;

export class LiveModel {
  constructor({meta, arrays}) {
    this.meta = {...meta, start_s: 0, end_s: 0};
    this.a = arrays;
    this.live = true;
    this.nCategories = meta.categories.length;
    this.nVehicles = 0;
    this.nRequests = 0;
    this.capacity = 0;
    this.#grow(256);
    this.registry = []; // index -> {device_id, vehicle_id, operator}
    this.requests = new Map(); // request id -> {lon, lat, requested_ms, status}
    this.closedRequests = new Map(); // recently closed: id -> {outcome, reason}
    this.events = [];
    this.lastKpis = null;
    this.operators = [];
    this.ledger = null;
    this.offsetMs = 0; // server clock - browser clock
    this.updates = 0;
    this.drawn = 0;
    this.moving = 0;
    this.byCategory = new Int32Array(this.nCategories);
    this.openRequests = new Float64Array(1024);
    this.openPositions = new Float32Array(2048);
    this.openAge = new Float32Array(1024);
    this.nOpen = 0;
  }

  #grow(n) {
    if (n <= this.capacity) return;
    const size = Math.max(n, 2 * this.capacity);
    const grow = (old, Ctor, k) => {
      const b = new Ctor(size * k);
      if (old) b.set(old);
      return b;
    };
    this.from = grow(this.from, Float64Array, 2);
    this.to = grow(this.to, Float64Array, 2);
    this.since = grow(this.since, Float64Array, 1);
    this.cat = grow(this.cat, Uint8Array, 1);
    this.op = grow(this.op, Int32Array, 1);
    this.alive = grow(this.alive, Uint8Array, 1);
    this.drawnVehicle = grow(this.drawnVehicle, Int32Array, 1);
    this.positions = grow(this.positions, Float32Array, 2);
    this.categoryOf = grow(this.categoryOf, Uint8Array, 1);
    this.operatorOf = grow(this.operatorOf, Int32Array, 1);
    this.capacity = size;
  }

  /** Server time now, in epoch seconds. */
  now() {
    return (Date.now() + this.offsetMs) / 1000;
  }

  #position(i, at) {
    const f = Math.min(Math.max((at - this.since[i]) / GLIDE_MS, 0), 1);
    return [
      this.from[2 * i] + f * (this.to[2 * i] - this.from[2 * i]),
      this.from[2 * i + 1] + f * (this.to[2 * i + 1] - this.from[2 * i + 1]),
    ];
  }

  /** Take one feed update. */
  apply(m) {
    const at = performance.now();
    this.offsetMs = m.now_ms - Date.now();
    for (const v of m.new_vehicles) {
      this.registry[v.i] = v;
      this.#grow(v.i + 1);
      this.nVehicles = Math.max(this.nVehicles, v.i + 1);
    }
    if (m.snapshot) {
      this.alive.fill(0);
      this.requests.clear();
    }
    for (const [i, lon, lat, cat, op] of m.vehicles) {
      this.#grow(i + 1);
      if (this.alive[i]) {
        const [x, y] = this.#position(i, at);
        this.from[2 * i] = x;
        this.from[2 * i + 1] = y;
      } else {
        this.from[2 * i] = lon;
        this.from[2 * i + 1] = lat;
      }
      this.to[2 * i] = lon;
      this.to[2 * i + 1] = lat;
      this.since[i] = at;
      this.cat[i] = cat;
      this.op[i] = op;
      this.alive[i] = 1;
    }
    for (const i of m.gone) this.alive[i] = 0;
    for (const [id, lon, lat, requested, status] of m.requests) this.requests.set(id, {lon, lat, requested, status});
    for (const [id, outcome, reason] of m.closed) {
      this.requests.delete(id);
      this.closedRequests.set(id, {outcome, reason});
    }
    if (this.closedRequests.size > 5000) this.closedRequests.clear();
    for (const e of m.events) this.events.push(e);
    if (this.events.length > 500) this.events.splice(0, this.events.length - 500);
    this.lastKpis = m.kpis;
    this.operators = m.operators;
    this.ledger = m.ledger;
    this.nRequests = this.requests.size;
    this.updates++;
  }

  /** Positions now (t is ignored: the live view is always at the platform's present, one second behind). */
  update() {
    const at = performance.now();
    const by = this.byCategory.fill(0);
    let j = 0;
    let moving = 0;
    for (let i = 0; i < this.nVehicles; i++) {
      if (!this.alive[i]) continue;
      const [x, y] = this.#position(i, at);
      if (at - this.since[i] < GLIDE_MS && (this.from[2 * i] !== this.to[2 * i] || this.from[2 * i + 1] !== this.to[2 * i + 1])) {
        moving++;
      }
      this.positions[2 * j] = x;
      this.positions[2 * j + 1] = y;
      this.drawnVehicle[j] = i;
      this.categoryOf[j] = this.cat[i];
      this.operatorOf[j] = this.op[i];
      by[this.cat[i]]++;
      j++;
    }
    this.drawn = j;
    this.moving = moving;
    const n = this.requests.size;
    if (this.openRequests.length < n) {
      this.openRequests = new Float64Array(2 * n);
      this.openPositions = new Float32Array(4 * n);
      this.openAge = new Float32Array(2 * n);
    }
    const now = this.now() * 1000;
    let k = 0;
    for (const [id, q] of this.requests) {
      this.openRequests[k] = id;
      this.openPositions[2 * k] = q.lon;
      this.openPositions[2 * k + 1] = q.lat;
      this.openAge[k] = Math.max(0, (now - q.requested) / 1000);
      k++;
    }
    this.nOpen = k;
  }

  kpis() {
    const k = this.lastKpis || {};
    return {
      open: k.open ?? this.nOpen,
      servedPct: null,
      servedPctLastHour: k.served_pct_hour ?? null,
      meanWaitS: k.mean_wait_hour_s ?? null,
      tripsLastHour: k.trips_hour ?? 0,
      closed: k.closed_hour ?? 0,
      served: k.served_hour ?? 0,
    };
  }
}

// ------------------------------------------------------------------------------------------------ connection
/** The feed's WebSocket: sign in, receive the network, then updates; reconnect when the socket drops. */
export class LiveFeed {
  constructor({onNetwork, onUpdate, onMessage, onStatus, onRefused}) {
    this.handlers = {onNetwork, onUpdate, onMessage, onStatus, onRefused};
    this.apiKey = null;
    this.token = null;
    this.ws = null;
    this.retries = 0;
    this.stopped = false;
  }

  /** Sign in with an API key (rtk_...: exchanged at /v1/auth/token) or a bearer token. */
  async signIn(credential) {
    const text = credential.trim();
    if (!text) throw new Error('give an admin or regulator API key (rtk_...) or a bearer token');
    if (text.startsWith('rtk_')) {
      this.apiKey = text;
      this.token = await this.#exchange();
    } else {
      this.apiKey = null;
      this.token = text;
    }
    this.stopped = false;
    this.#open();
  }

  async #exchange() {
    const r = await fetch('/v1/auth/token', {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({api_key: this.apiKey}),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error_description || `sign-in failed (HTTP ${r.status})`);
    return body.access_token;
  }

  #open() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/dashboard/feed`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let lastError = null;
    let gotNetwork = false;
    this.handlers.onStatus('connecting');
    ws.onopen = () => ws.send(JSON.stringify({token: this.token}));
    ws.onmessage = async (ev) => {
      if (typeof ev.data !== 'string') {
        this.retries = 0;
        gotNetwork = true;
        const network = parsePayload(await gunzip(new Uint8Array(ev.data)));
        this.handlers.onNetwork(network);
        this.handlers.onStatus('live');
        return;
      }
      const m = JSON.parse(ev.data);
      if (m.type === 'update') this.handlers.onUpdate(m);
      else if (m.type === 'error' && !gotNetwork) lastError = m;
      else {
        if (m.type === 'error') lastError = m;
        this.handlers.onMessage(m);
      }
    };
    ws.onclose = async (ev) => {
      if (this.ws !== ws || this.stopped) return;
      if (ev.code === 4403 || (ev.code === 4401 && !this.apiKey)) {
        this.stopped = true;
        this.handlers.onRefused(lastError ? lastError.error_description : `refused (${ev.code})`);
        return;
      }
      // Expired token with a key at hand, a restart of the server, a dropped connection: try again.
      this.handlers.onStatus('reconnecting');
      const wait = Math.min(1000 * 2 ** this.retries, 15000);
      this.retries++;
      setTimeout(async () => {
        try {
          if (this.apiKey) this.token = await this.#exchange();
          this.#open();
        } catch (err) {
          this.stopped = true;
          this.handlers.onRefused(err.message);
        }
      }, wait);
    };
  }

  /** Ask for one vehicle's plan and trips (the answer comes through onMessage). */
  askVehicle(deviceId) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({type: 'vehicle', device_id: deviceId}));
  }
}
