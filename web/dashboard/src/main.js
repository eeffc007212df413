// The replay page: a deck.gl map of the run's own road network, vehicles and open requests, a time bar and panels
// that follow the clock. Built by esbuild into src/robotaxi/dashboard/static/dashboard.js (see package.json).

import {Deck, MapView, WebMercatorViewport} from '@deck.gl/core';
import {BitmapLayer, ScatterplotLayer} from '@deck.gl/layers';
import {TileLayer} from '@deck.gl/geo-layers';
import {PointsLayer, SegmentsLayer} from './primitive-layers.js';
import {loadEmbedded} from './payload.js';
import {Replay} from './model.js';

const COLORS = {
  idle: [76, 175, 80],
  to_pickup: [236, 64, 122],
  at_stop: [79, 195, 247],
  with_riders: [30, 136, 229],
  repositioning: [186, 104, 200],
  off_service: [120, 120, 120],
};
const NAMES = {
  idle: 'idle',
  to_pickup: 'to pickup',
  at_stop: 'at a stop',
  with_riders: 'with riders',
  repositioning: 'repositioning',
  off_service: 'off service',
};
const SPEEDS = [1, 10, 60, 120, 300, 600, 1800, 3600];

const $ = (id) => document.getElementById(id);

function clock(t) {
  if (t === null || t === undefined || !Number.isFinite(t)) return '-';
  const s = Math.floor(t);
  const day = Math.floor(s / 86400);
  const r = s - day * 86400;
  const hh = String(Math.floor(r / 3600)).padStart(2, '0');
  const mm = String(Math.floor((r % 3600) / 60)).padStart(2, '0');
  const ss = String(r % 60).padStart(2, '0');
  return `${day > 0 ? `+${day}d ` : ''}${hh}:${mm}:${ss}`;
}

function minutes(s) {
  return s === null ? '-' : `${(s / 60).toFixed(1)} min`;
}

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

class App {
  constructor(replay) {
    this.r = replay;
    this.meta = replay.meta;
    this.t = this.meta.start_s;
    this.playing = false;
    this.speed = 60;
    this.selection = null; // {kind: 'vehicle'|'request', index}
    this.frames = 0;
    this.catColors = this.meta.categories.map((c) => COLORS[c] || [200, 200, 200]);
    this.vehColors = new Uint8Array(4 * replay.nVehicles);
    this.reqColors = new Uint8Array(4 * 1024);
    this.#buildRoads();
    this.#buildDeck();
    this.#buildControls();
    this.#buildPanels();
    this.#render();
    requestAnimationFrame((ts) => this.#frame(ts));
  }

  #buildRoads() {
    const a = this.r.a;
    const m = a.map_a.length;
    // Two vertices per street (plain GL lines, see primitive-layers.js).
    const pos = new Float32Array(4 * m);
    for (let i = 0; i < m; i++) {
      pos[4 * i] = a.node_lon[a.map_a[i]];
      pos[4 * i + 1] = a.node_lat[a.map_a[i]];
      pos[4 * i + 2] = a.node_lon[a.map_b[i]];
      pos[4 * i + 3] = a.node_lat[a.map_b[i]];
    }
    this.roads = new SegmentsLayer({
      id: 'roads',
      data: {length: 2 * m, attributes: {getPosition: {value: pos, size: 2}}},
      getColor: [78, 82, 96, 255],
    });
    let w = Infinity;
    let s = Infinity;
    let e = -Infinity;
    let n = -Infinity;
    for (let i = 0; i < a.node_lon.length; i++) {
      w = Math.min(w, a.node_lon[i]);
      e = Math.max(e, a.node_lon[i]);
      s = Math.min(s, a.node_lat[i]);
      n = Math.max(n, a.node_lat[i]);
    }
    this.bounds = [[w, s], [e, n]];
  }

  #buildDeck() {
    const box = $('map');
    const vp = new WebMercatorViewport({width: box.clientWidth || 800, height: box.clientHeight || 600});
    const {longitude, latitude, zoom} = vp.fitBounds(this.bounds, {padding: 20});
    this.viewState = {longitude, latitude, zoom, pitch: 0, bearing: 0};
    const common = {
      parent: box,
      views: new MapView({repeat: false}),
      viewState: this.viewState,
      useDevicePixels: false,
      // A flat map needs neither multisampling nor a depth test; both cost much under software rendering.
      deviceProps: {webgl: {antialias: false, depth: false}},
      parameters: {depthCompare: 'always', depthWriteEnabled: false},
    };
    // Two decks sharing one view: the streets below are drawn only when the view changes, the live layers on top
    // every frame. Redrawing 7,500 static streets 30+ times a second is the largest cost without a GPU.
    this.mapDeck = new Deck({...common, controller: false, layers: [...this.#tiles(), this.roads]});
    this.deck = new Deck({
      ...common,
      controller: true,
      layers: [],
      onViewStateChange: ({viewState}) => {
        this.viewState = viewState;
        this.mapDeck.setProps({viewState});
        this.deck.setProps({viewState});
      },
      onClick: (info) => this.#pick(info),
      getCursor: ({isHovering, isDragging}) => (isHovering ? 'pointer' : isDragging ? 'grabbing' : 'grab'),
      getTooltip: null,
      onAfterRender: () => {
        this.renders = (this.renders || 0) + 1;
        if (this.renders === 1) document.body.dataset.rendered = 'true';
      },
    });
  }

  /** Raster tiles behind the streets, only when the user named a tile server (robotaxi dashboard --tiles URL). */
  #tiles() {
    const url = this.meta.tiles;
    if (!url) return [];
    return [
      new TileLayer({
        id: 'tiles',
        data: url,
        minZoom: 0,
        maxZoom: 19,
        tileSize: 256,
        renderSubLayers: (props) => {
          const {west, south, east, north} = props.tile.bbox;
          return new BitmapLayer(props, {data: null, image: props.data, bounds: [west, south, east, north], opacity: 0.6});
        },
      }),
    ];
  }

  #buildControls() {
    const seek = $('seek');
    seek.min = String(this.meta.start_s);
    seek.max = String(this.meta.end_s);
    seek.value = String(this.t);
    seek.addEventListener('input', () => this.seek(Number(seek.value)));
    $('play').addEventListener('click', () => (this.playing ? this.pause() : this.play()));
    const sel = $('speed');
    for (const s of SPEEDS) sel.append(el('option', {value: String(s)}, `${s}x`));
    sel.value = String(this.speed);
    sel.addEventListener('change', () => this.setSpeed(Number(sel.value)));
    document.addEventListener('keydown', (ev) => {
      if (ev.code === 'Space' && ev.target === document.body) {
        ev.preventDefault();
        this.playing ? this.pause() : this.play();
      }
    });
    $('detail-close').addEventListener('click', () => this.select(null));
  }

  #buildPanels() {
    $('title').textContent = this.meta.name;
    $('subtitle').textContent =
      `${this.meta.network}: ${this.r.nVehicles.toLocaleString('en')} vehicles, ` +
      `${this.r.nRequests.toLocaleString('en')} requests`;
    const list = $('states');
    this.meta.categories.forEach((c, i) => {
      const row = el('div', {class: 'state-row'});
      const sw = el('span', {class: 'swatch'});
      sw.style.background = `rgb(${this.catColors[i].join(',')})`;
      row.append(sw, el('span', {class: 'state-name'}, NAMES[c] || c), el('span', {class: 'num', id: `state-${c}`}, '0'));
      list.append(row);
    });
    const led = this.meta.ledger;
    const box = $('ledger');
    if (!led) {
      box.textContent = 'no ledger given (robotaxi dashboard RUN --ledger PATH)';
    } else if (!led.note) {
      box.textContent = `${led.path}: ${led.size} entries, no checkpoint signed yet`;
    } else {
      box.append(
        el('div', {}, `${led.size.toLocaleString('en')} trips, checkpoint ${led.verified ? 'verified' : 'NOT verified'}`),
        el('pre', {id: 'ledger-note'}, led.note),
      );
    }
  }

  // ------------------------------------------------------------------------------------------------ clock
  play() {
    if (this.t >= this.meta.end_s) this.t = this.meta.start_s;
    this.playing = true;
    this.lastTs = null;
    $('play').textContent = 'Pause';
  }

  pause() {
    this.playing = false;
    $('play').textContent = 'Play';
    this.#updatePanels();
  }

  setSpeed(s) {
    this.speed = s;
    $('speed').value = String(s);
  }

  seek(t) {
    this.t = Math.min(Math.max(t, this.meta.start_s), this.meta.end_s);
    this.#render();
  }

  #frame(ts) {
    this.frames++;
    if (this.playing) {
      if (this.lastTs !== null) {
        // Cap the step: a tab in the background should not jump hours ahead when it comes back.
        const dt = Math.min(ts - this.lastTs, 250) / 1000;
        this.t += dt * this.speed;
        if (this.t >= this.meta.end_s) {
          this.t = this.meta.end_s;
          this.pause();
        }
      }
      this.lastTs = ts;
      this.#render();
    }
    requestAnimationFrame((x) => this.#frame(x));
  }

  // ------------------------------------------------------------------------------------------------ drawing
  #render() {
    const r = this.r;
    r.update(this.t);
    const n = r.drawn;
    const col = this.vehColors;
    for (let j = 0; j < n; j++) {
      const c = this.catColors[r.categoryOf[j]];
      col[4 * j] = c[0];
      col[4 * j + 1] = c[1];
      col[4 * j + 2] = c[2];
      col[4 * j + 3] = 235;
    }
    const m = r.nOpen;
    if (this.reqColors.length < 4 * m) this.reqColors = new Uint8Array(8 * m);
    const maxWait = this.meta.max_wait_s || 600;
    for (let j = 0; j < m; j++) {
      // Yellow when new, red as the wait nears the maximum.
      const f = Math.min(r.openAge[j] / maxWait, 1);
      this.reqColors[4 * j] = 255;
      this.reqColors[4 * j + 1] = Math.round(235 * (1 - f));
      this.reqColors[4 * j + 2] = 40;
      this.reqColors[4 * j + 3] = 255;
    }
    const layers = [
      new PointsLayer({
        id: 'requests',
        data: {
          length: m,
          attributes: {
            getPosition: {value: r.openPositions.subarray(0, 2 * m), size: 2},
            getColor: {value: this.reqColors.subarray(0, 4 * m), size: 4, normalized: true},
          },
        },
        pointSize: 7,
        ring: true,
        pickable: true,
      }),
      new PointsLayer({
        id: 'vehicles',
        data: {
          length: n,
          attributes: {
            getPosition: {value: r.positions.subarray(0, 2 * n), size: 2},
            getColor: {value: col.subarray(0, 4 * n), size: 4, normalized: true},
          },
        },
        pointSize: 4,
        pickable: true,
      }),
    ];
    const mark = this.#selectionPosition();
    if (mark) {
      layers.push(
        new ScatterplotLayer({
          id: 'selection',
          data: [mark],
          getPosition: (d) => d,
          getRadius: 9,
          radiusUnits: 'pixels',
          filled: false,
          stroked: true,
          getLineColor: [255, 255, 255],
          lineWidthUnits: 'pixels',
          getLineWidth: 2,
        }),
      );
    }
    this.deck.setProps({layers});
    // Text panels at most ~8 times a second while playing (each change costs a layout); at once after a seek.
    const now = performance.now();
    if (!this.playing || !(now - (this.panelsAt || 0) < 125)) {
      this.panelsAt = now;
      this.#updatePanels();
    }
  }

  #selectionPosition() {
    const s = this.selection;
    if (!s) return null;
    const r = this.r;
    if (s.kind === 'vehicle') {
      for (let j = 0; j < r.drawn; j++) {
        if (r.drawnVehicle[j] === s.index) return [r.positions[2 * j], r.positions[2 * j + 1]];
      }
      return null;
    }
    const node = r.a.req_o_node[s.index];
    return [r.a.node_lon[node], r.a.node_lat[node]];
  }

  #updatePanels() {
    const r = this.r;
    const k = r.kpis(this.t);
    this.lastKpis = k;
    $('clock').textContent = clock(this.t);
    $('seek').value = String(Math.round(this.t));
    $('kpi-open').textContent = k.open.toLocaleString('en');
    $('kpi-served').textContent = k.servedPct === null ? '-' : `${k.servedPct.toFixed(1)} %`;
    $('kpi-served-hour').textContent = k.servedPctLastHour === null ? '-' : `${k.servedPctLastHour.toFixed(1)} %`;
    $('kpi-wait').textContent = minutes(k.meanWaitS);
    $('kpi-vehicles').textContent = r.drawn.toLocaleString('en');
    this.meta.categories.forEach((c, i) => {
      $(`state-${c}`).textContent = r.byCategory[i].toLocaleString('en');
    });
    if (this.selection && this.playing) this.#showDetail();
  }

  // ------------------------------------------------------------------------------------------------ details
  #pick(info) {
    if (!info || !info.layer || info.index < 0) return;
    if (info.layer.id === 'vehicles') this.select({kind: 'vehicle', index: this.r.drawnVehicle[info.index]});
    else if (info.layer.id === 'requests') this.select({kind: 'request', index: this.r.openRequests[info.index]});
  }

  select(sel) {
    this.selection = sel;
    $('detail').hidden = !sel;
    if (sel) this.#showDetail();
    this.#render();
  }

  #showDetail() {
    const s = this.selection;
    const body = $('detail-body');
    body.replaceChildren();
    if (s.kind === 'vehicle') this.#vehicleDetail(s.index, body);
    else this.#requestDetail(s.index, body);
  }

  #vehicleDetail(v, body) {
    const r = this.r;
    const a = r.a;
    const c = r.cursor[v];
    const state = c >= 0 ? this.meta.state_labels[a.ev_state[c]] : 'not in service yet';
    $('detail-title').textContent = `Vehicle ${a.veh_id[v]}`;
    body.dataset.vehicle = String(a.veh_id[v]);
    body.append(el('p', {class: 'muted'}, `now: ${state}`));
    const next = r.upcomingEvents(v, this.t);
    if (next.length) {
      body.append(el('h3', {}, 'Plan (next events)'));
      const ul = el('ul', {class: 'plan'});
      for (const e of next) {
        const req = a.ev_req[e];
        const what = this.meta.event_labels[a.ev_event[e]] || this.meta.state_labels[a.ev_state[e]];
        ul.append(el('li', {}, `${clock(a.ev_time[e])} ${what}${req >= 0 ? ` (request ${a.req_id[req]})` : ''}`));
      }
      body.append(ul);
    }
    const trips = r.vehicleRequests(v);
    body.append(el('h3', {}, `Trips (${trips.length})`));
    const table = el('table', {class: 'trips', id: 'vehicle-trips'});
    const head = el('tr');
    for (const h of ['request', 'requested', 'pickup', 'drop-off', 'outcome']) head.append(el('th', {}, h));
    table.append(head);
    for (const q of trips) {
      const tr = el('tr', {'data-request': String(a.req_id[q])});
      if (a.req_time[q] <= this.t && (a.req_dropoff[q] < 0 || a.req_dropoff[q] > this.t)) tr.className = 'current';
      tr.append(
        el('td', {}, String(a.req_id[q])),
        el('td', {}, clock(a.req_time[q])),
        el('td', {}, a.req_pickup[q] >= 0 ? clock(a.req_pickup[q]) : '-'),
        el('td', {}, a.req_dropoff[q] >= 0 ? clock(a.req_dropoff[q]) : '-'),
        el('td', {}, this.meta.outcome_labels[a.req_outcome[q]]),
      );
      tr.addEventListener('click', () => this.select({kind: 'request', index: q}));
      table.append(tr);
    }
    body.append(table);
  }

  #requestDetail(q, body) {
    const a = this.r.a;
    const outcome = this.meta.outcome_labels[a.req_outcome[q]];
    const reason = this.meta.reason_labels[a.req_reason[q]];
    $('detail-title').textContent = `Request ${a.req_id[q]}`;
    body.dataset.request = String(a.req_id[q]);
    const ul = el('ul', {class: 'timeline', id: 'request-timeline'});
    const step = (key, t, text) => ul.append(el('li', {'data-step': key}, `${clock(t)} ${text}`));
    step('requested', a.req_time[q], 'requested');
    const v = a.req_vehicle[q];
    if (a.req_assigned[q] >= 0) step('assigned', a.req_assigned[q], `assigned to vehicle ${v >= 0 ? a.veh_id[v] : '?'}`);
    if (a.req_pickup[q] >= 0) step('pickup', a.req_pickup[q], 'vehicle at the pickup');
    if (a.req_board[q] >= 0) step('board', a.req_board[q], 'rider on board');
    if (a.req_dropoff[q] >= 0) step('dropoff', a.req_dropoff[q], 'dropped off');
    if (outcome !== 'served') step(outcome, a.req_close[q], `${outcome}${reason ? `: ${reason.replaceAll('_', ' ')}` : ''}`);
    body.append(ul);
    body.append(el('p', {class: 'muted', id: 'request-outcome'}, `outcome: ${outcome}`));
  }
}

// ------------------------------------------------------------------------------------------------ start-up
async function start() {
  const t0 = performance.now();
  const replay = new Replay(await loadEmbedded());
  const app = new App(replay);
  const api = {
    app,
    replay,
    loadMs: performance.now() - t0,
    play: () => app.play(),
    pause: () => app.pause(),
    seek: (t) => app.seek(t),
    setSpeed: (s) => app.setSpeed(s),
    time: () => app.t,
    snapshot() {
      const byCategory = {};
      replay.meta.categories.forEach((c, i) => (byCategory[c] = replay.byCategory[i]));
      return {t: app.t, drawn: replay.drawn, moving: replay.moving, byCategory, ...replay.kpis(app.t), frames: app.frames};
    },
    /** Page coordinates (CSS pixels) of a longitude/latitude on the map. */
    screenXY(lon, lat) {
      const [x, y] = app.deck.getViewports()[0].project([lon, lat]);
      const box = document.getElementById('map').getBoundingClientRect();
      return [box.left + x, box.top + y];
    },
    /** The drawn vehicles: index, id, page coordinates and category. */
    drawnVehicles() {
      const out = [];
      for (let j = 0; j < replay.drawn; j++) {
        const v = replay.drawnVehicle[j];
        const [x, y] = api.screenXY(replay.positions[2 * j], replay.positions[2 * j + 1]);
        out.push({index: v, id: replay.a.veh_id[v], x, y, category: replay.meta.categories[replay.categoryOf[j]]});
      }
      return out;
    },
    /** The open requests: row, id, page coordinates. */
    openRequests() {
      const out = [];
      for (let k = 0; k < replay.nOpen; k++) {
        const q = replay.openRequests[k];
        const [x, y] = api.screenXY(replay.openPositions[2 * k], replay.openPositions[2 * k + 1]);
        out.push({row: q, id: Number(replay.a.req_id[q]), x, y});
      }
      return out;
    },
    /** Number of objects in a deck.gl layer as last drawn ('vehicles', 'requests', 'roads'). */
    layerLength(id) {
      const layer = [...app.deck.props.layers, ...app.mapDeck.props.layers].find((l) => l.id === id);
      return layer ? layer.props.data.length : null;
    },
  };
  window.robotaxiReplay = api;
  document.body.dataset.ready = 'true';
}

start().catch((err) => {
  console.error(err);
  const box = document.getElementById('fatal');
  box.hidden = false;
  box.textContent = `The replay could not start: ${err.message}`;
});
