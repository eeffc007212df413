// The replay page: a deck.gl map of the run's own road network, vehicles and open requests, a time bar and panels
// that follow the clock. Built by esbuild into src/robotaxi/dashboard/static/dashboard.js (see package.json).

import {Deck, MapView, WebMercatorViewport} from '@deck.gl/core';
import {BitmapLayer, PathLayer, ScatterplotLayer} from '@deck.gl/layers';
import {TileLayer} from '@deck.gl/geo-layers';
import {PointsLayer, SegmentsLayer} from './primitive-layers.js';
import {loadEmbedded} from './payload.js';
import {Replay} from './model.js';
import {LiveFeed, LiveModel} from './live.js';

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
// Operators, in their order in the run (or on the platform): distinct hues, readable on the dark map.
const OPERATOR_COLORS = [
  [255, 167, 38],
  [66, 165, 245],
  [102, 187, 106],
  [239, 83, 80],
  [171, 71, 188],
  [38, 198, 218],
  [255, 238, 88],
  [141, 110, 99],
];
// Riders on board (pooling): none, 1, 2, 3, 4 or more; grey to deep red.
const OCCUPANCY_COLORS = [
  [120, 144, 156],
  [102, 187, 106],
  [255, 238, 88],
  [255, 152, 0],
  [229, 57, 53],
];
const OCCUPANCY_NAMES = ['no rider', '1 rider', '2 riders', '3 riders', '4 or more'];
const EVENT_TEXT = {
  requested: 'requested',
  assigned: 'assigned',
  picked_up: 'picked up',
  rejected: 'rejected',
  expired: 'expired (no pickup in time)',
  cancelled: 'cancelled',
  trip_completed: 'trip completed',
};

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

function money(cents, currency) {
  if (cents === null || cents === undefined) return '-';
  return `${(cents / 100).toLocaleString('en', {minimumFractionDigits: 2, maximumFractionDigits: 2})} ${currency || ''}`.trim();
}

function localClock(epochS) {
  // The live view shows the viewer's local time of day.
  const d = new Date(epochS * 1000);
  return clock(d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds());
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
  constructor(replay, feed = null) {
    this.r = replay;
    this.meta = replay.meta;
    this.live = Boolean(replay.live);
    this.feed = feed;
    this.t = this.live ? replay.now() : this.meta.start_s;
    this.playing = this.live;
    this.colorBy = 'state';
    this.speed = 60;
    this.selection = null; // {kind: 'vehicle'|'request', index}
    this.frames = 0;
    this.catColors = this.meta.categories.map((c) => COLORS[c] || [200, 200, 200]);
    this.vehColors = new Uint8Array(4 * Math.max(replay.nVehicles, 256));
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
    this.mapDeck = new Deck({...common, controller: false, layers: [...this.#tiles(), this.roads, ...this.#areas()]});
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

  /** Service areas as outlines in their operator's colour (a marketplace run whose operators have areas). */
  #areas() {
    const paths = [];
    for (const area of this.meta.areas || []) {
      for (const path of area.paths) paths.push({path, color: this.#operatorColor(area.index)});
    }
    if (!paths.length) return [];
    return [
      new PathLayer({
        id: 'areas',
        data: paths,
        getPath: (d) => d.path,
        getColor: (d) => [...d.color, 220],
        getWidth: 2,
        widthUnits: 'pixels',
      }),
    ];
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
    const by = $('color-by');
    by.addEventListener('change', () => {
      this.colorBy = by.value;
      this.#legend();
      this.#render();
    });
    $('detail-close').addEventListener('click', () => this.select(null));
    if (this.live) {
      for (const id of ['play', 'seek', 'speed-label']) $(id).hidden = true;
      $('live-status').hidden = false;
      return;
    }
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
  }

  #buildPanels() {
    $('title').textContent = this.live ? 'robotaxi live' : this.meta.name;
    $('subtitle').textContent = this.live
      ? `${this.meta.network}: the platform now`
      : `${this.meta.network}: ${this.r.nVehicles.toLocaleString('en')} vehicles, ` +
        `${this.r.nRequests.toLocaleString('en')} requests`;
    const list = $('states');
    this.meta.categories.forEach((c, i) => {
      const row = el('div', {class: 'state-row'});
      const sw = el('span', {class: 'swatch'});
      sw.style.background = `rgb(${this.catColors[i].join(',')})`;
      row.append(sw, el('span', {class: 'state-name'}, NAMES[c] || c), el('span', {class: 'num', id: `state-${c}`}, '0'));
      list.append(row);
    });
    const ops = this.#operatorNames();
    $('color-by-operator').disabled = ops.length === 0;
    $('color-by-occupancy').disabled = !this.r.onboardOf;
    const key = $('occupancy-key');
    OCCUPANCY_NAMES.forEach((name, i) => {
      const row = el('div', {class: 'state-row'});
      const sw = el('span', {class: 'swatch'});
      sw.style.background = `rgb(${OCCUPANCY_COLORS[i].join(',')})`;
      row.append(sw, el('span', {class: 'state-name'}, name), el('span', {class: 'num', id: `onboard-${i}`}, '0'));
      key.append(row);
    });
    if (this.live) {
      $('row-served').hidden = true;
      $('row-trips').hidden = false;
      $('events-panel').hidden = false;
      $('ledger').textContent = 'waiting for the feed';
      return;
    }
    this.#buildOperatorTable();
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

  /** Operator names, in index order (the run's [[operators]], or the platform's operators). */
  #operatorNames() {
    if (this.live) return (this.r.operators || []).map((o) => o.name);
    return this.meta.operators ? this.meta.operators.map((o) => o.name) : [];
  }

  #operatorColor(k) {
    return OPERATOR_COLORS[((k % OPERATOR_COLORS.length) + OPERATOR_COLORS.length) % OPERATOR_COLORS.length];
  }

  /** The per-operator table: vehicles, trips and revenue (so far in a replay, over the last hour live). */
  #buildOperatorTable() {
    const names = this.#operatorNames();
    const box = $('operators');
    box.hidden = names.length === 0;
    const table = $('operator-table');
    table.replaceChildren();
    const head = el('tr');
    $('operators-title').textContent = this.live ? 'Operators, last hour' : 'Operators, so far';
    for (const h of ['operator', 'vehicles', 'trips', 'revenue']) head.append(el('th', {}, h));
    table.append(head);
    names.forEach((name, k) => {
      const tr = el('tr', {'data-operator': name});
      const sw = el('span', {class: 'swatch'});
      sw.style.background = `rgb(${this.#operatorColor(k).join(',')})`;
      const cell = el('td');
      cell.append(sw, document.createTextNode(` ${name}`));
      tr.append(cell, el('td', {class: 'num op-vehicles'}, '0'), el('td', {class: 'num op-trips'}, '0'),
        el('td', {class: 'num op-revenue'}, '-'));
      table.append(tr);
    });
    this.operatorRows = names.length;
    const areas = this.meta.areas || [];
    $('areas-note').textContent = areas.length
      ? `service areas outlined (${areas.map((a) => a.operator).join(', ')})`
      : '';
  }

  #updateOperators() {
    const names = this.#operatorNames();
    if (names.length !== this.operatorRows) this.#buildOperatorTable();
    if (!names.length) return;
    const rows = $('operator-table').querySelectorAll('tr[data-operator]');
    const currency = this.meta.currency || '';
    if (this.live) {
      this.r.operators.forEach((o, k) => {
        rows[k].querySelector('.op-vehicles').textContent = o.vehicles.toLocaleString('en');
        rows[k].querySelector('.op-trips').textContent = o.trips_hour.toLocaleString('en');
        rows[k].querySelector('.op-revenue').textContent = money(o.revenue_hour_cents, currency);
      });
      return;
    }
    const per = this.r.operatorTotals(this.t);
    per.forEach((o, k) => {
      rows[k].querySelector('.op-vehicles').textContent = o.vehicles.toLocaleString('en');
      rows[k].querySelector('.op-trips').textContent = o.trips.toLocaleString('en');
      rows[k].querySelector('.op-revenue').textContent = o.revenueCents === null ? '-' : money(o.revenueCents, currency);
    });
  }

  /** The colour key beside the map: states, or operators. */
  #legend() {
    $('states').classList.toggle('dim', this.colorBy !== 'state');
    $('occupancy-key').hidden = this.colorBy !== 'occupancy';
    $('operators').classList.toggle('keyed', this.colorBy === 'operator');
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
    if (this.live) {
      this.t = this.r.now();
      this.#render();
    } else if (this.playing) {
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
    if (this.vehColors.length < 4 * n) this.vehColors = new Uint8Array(8 * n);
    const col = this.vehColors;
    const byOperator = this.colorBy === 'operator' && r.operatorOf;
    const onboard = this.colorBy === 'occupancy' ? r.onboardOf : null;
    const counts = [0, 0, 0, 0, 0];
    for (let j = 0; j < n; j++) {
      let c;
      if (onboard) {
        const k = Math.min(onboard[j], 4);
        counts[k]++;
        c = OCCUPANCY_COLORS[k];
      } else c = byOperator ? this.#operatorColor(r.operatorOf[j]) : this.catColors[r.categoryOf[j]];
      col[4 * j] = c[0];
      col[4 * j + 1] = c[1];
      col[4 * j + 2] = c[2];
      col[4 * j + 3] = 235;
    }
    if (onboard) counts.forEach((x, k) => ($(`onboard-${k}`).textContent = x.toLocaleString('en')));
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
        // Bigger points for small fleets; 4 px keeps a city-wide fleet of thousands readable.
        pointSize: n < 500 ? 8 : n < 3000 ? 6 : 4,
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
    if (this.live) {
      const q = r.requests.get(s.index);
      return q ? [q.lon, q.lat] : null;
    }
    const node = r.a.req_o_node[s.index];
    return [r.a.node_lon[node], r.a.node_lat[node]];
  }

  #updatePanels() {
    const r = this.r;
    const k = r.kpis(this.t);
    this.lastKpis = k;
    $('clock').textContent = this.live ? localClock(this.t) : clock(this.t);
    $('seek').value = String(Math.round(this.t));
    $('kpi-open').textContent = k.open.toLocaleString('en');
    $('kpi-served').textContent = k.servedPct === null ? '-' : `${k.servedPct.toFixed(1)} %`;
    $('kpi-served-hour').textContent = k.servedPctLastHour === null ? '-' : `${k.servedPctLastHour.toFixed(1)} %`;
    $('kpi-wait').textContent = minutes(k.meanWaitS);
    $('kpi-vehicles').textContent = r.drawn.toLocaleString('en');
    this.meta.categories.forEach((c, i) => {
      $(`state-${c}`).textContent = r.byCategory[i].toLocaleString('en');
    });
    this.#updateOperators();
    if (this.live) this.#updateLive(k);
    else if (this.selection && this.playing) this.#showDetail();
  }

  #updateLive(k) {
    const r = this.r;
    $('kpi-trips').textContent = k.tripsLastHour.toLocaleString('en');
    if (r.updates === this.shownUpdates) return;
    this.shownUpdates = r.updates;
    const list = $('events');
    list.replaceChildren();
    for (const e of r.events.slice(-12).reverse()) {
      const [ms, kind, request, vehicle, fare] = e;
      const who = vehicle !== null && vehicle !== undefined && r.registry[vehicle] ? ` (vehicle ${r.registry[vehicle].vehicle_id})` : '';
      const paid = kind === 'trip_completed' && fare !== null && fare !== undefined ? `, ${money(fare, this.meta.currency)}` : '';
      list.append(el('li', {'data-kind': kind}, `${localClock(ms / 1000)} ride ${request} ${EVENT_TEXT[kind] || kind}${who}${paid}`));
    }
    const led = r.ledger;
    const box = $('ledger');
    box.replaceChildren();
    if (!led) box.textContent = 'waiting for the feed';
    else if (led.error) box.textContent = led.error;
    else if (!led.note) box.textContent = `${led.size.toLocaleString('en')} entries, no checkpoint signed yet`;
    else {
      box.append(
        el('div', {}, `${led.checkpoint_size.toLocaleString('en')} of ${led.size.toLocaleString('en')} entries in the latest checkpoint`),
        el('pre', {id: 'ledger-note'}, led.note),
      );
    }
    if (this.selection && this.selection.kind === 'request') this.#showDetail();
  }

  /** A message of the feed that is not an update (the answer to a vehicle click, an error). */
  /** Live: the platform's service areas (sent with the first snapshot and whenever an admin changes one). */
  setAreas(areas) {
    this.meta.areas = areas;
    this.mapDeck.setProps({layers: [...this.#tiles(), this.roads, ...this.#areas()]});
  }

  onFeedMessage(m) {
    if (m.type === 'vehicle' && this.selection && this.selection.kind === 'vehicle') {
      const entry = this.r.registry[this.selection.index];
      if (entry && entry.device_id === m.device_id) {
        this.vehicleAnswer = m;
        this.#showDetail();
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ details
  #pick(info) {
    if (!info || !info.layer || info.index < 0) return;
    if (this.live && info.layer.id === 'vehicles') {
      const i = this.r.drawnVehicle[info.index];
      this.vehicleAnswer = null;
      this.select({kind: 'vehicle', index: i});
      this.feed.askVehicle(this.r.registry[i].device_id);
      return;
    }
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
    if (this.live) {
      if (s.kind === 'vehicle') this.#liveVehicleDetail(s.index, body);
      else this.#liveRequestDetail(s.index, body);
    } else if (s.kind === 'vehicle') this.#vehicleDetail(s.index, body);
    else this.#requestDetail(s.index, body);
  }

  #liveVehicleDetail(i, body) {
    const entry = this.r.registry[i];
    $('detail-title').textContent = `Vehicle ${entry.vehicle_id}`;
    body.dataset.vehicle = entry.vehicle_id;
    const m = this.vehicleAnswer && this.vehicleAnswer.device_id === entry.device_id ? this.vehicleAnswer : null;
    const ops = this.#operatorNames();
    body.append(el('p', {class: 'muted'}, `operator ${ops[entry.operator] ?? entry.operator}, device ${entry.device_id}`));
    if (!m) {
      body.append(el('p', {class: 'muted'}, 'asking the platform...'));
      return;
    }
    body.append(el('p', {id: 'vehicle-state'}, `now: ${m.state}`));
    body.append(el('h3', {}, `Plan (${m.plan.length} stops)`));
    const ul = el('ul', {class: 'plan'});
    for (const stop of m.plan) ul.append(el('li', {}, `${stop.kind}${stop.trip_id ? ` (trip ${stop.trip_id.slice(0, 8)})` : ''}`));
    body.append(ul);
    body.append(el('h3', {}, `Last trips (${m.trips.length})`));
    const table = el('table', {class: 'trips', id: 'vehicle-trips'});
    const head = el('tr');
    for (const h of ['ride', 'start', 'end', 'km', 'fare']) head.append(el('th', {}, h));
    table.append(head);
    for (const t of m.trips) {
      const tr = el('tr', {'data-request': String(t.request_id)});
      tr.append(
        el('td', {}, String(t.request_id)),
        el('td', {}, localClock(t.start_ms / 1000)),
        el('td', {}, localClock(t.end_ms / 1000)),
        el('td', {}, (t.distance_m / 1000).toFixed(1)),
        el('td', {}, money(t.fare_cents, this.meta.currency)),
      );
      table.append(tr);
    }
    body.append(table);
  }

  #liveRequestDetail(id, body) {
    const r = this.r;
    $('detail-title').textContent = `Ride ${id}`;
    body.dataset.request = String(id);
    const ul = el('ul', {class: 'timeline', id: 'request-timeline'});
    for (const e of r.events) {
      if (e[2] !== id) continue;
      const who = e[3] !== null && e[3] !== undefined && r.registry[e[3]] ? ` (vehicle ${r.registry[e[3]].vehicle_id})` : '';
      ul.append(el('li', {'data-step': e[1]}, `${localClock(e[0] / 1000)} ${EVENT_TEXT[e[1]] || e[1]}${who}`));
    }
    body.append(ul);
    const open = r.requests.get(id);
    const closed = r.closedRequests.get(id);
    const status = open ? open.status : closed ? `${closed.outcome}${closed.reason ? `: ${closed.reason.replaceAll('_', ' ')}` : ''}` : 'unknown';
    body.append(el('p', {class: 'muted', id: 'request-outcome'}, `status: ${status}`));
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
/** What tests and benchmarks drive the page through (window.robotaxiReplay). */
function makeApi(app, replay, loadMs) {
  const vehicleId = (v) => (replay.live ? replay.registry[v].vehicle_id : replay.a.veh_id[v]);
  const api = {
    app,
    replay,
    loadMs,
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
    /** The drawn vehicles: index, id, page coordinates, category and operator. */
    drawnVehicles() {
      const out = [];
      for (let j = 0; j < replay.drawn; j++) {
        const v = replay.drawnVehicle[j];
        const [x, y] = api.screenXY(replay.positions[2 * j], replay.positions[2 * j + 1]);
        const operator = replay.operatorOf ? replay.operatorOf[j] : -1;
        out.push({index: v, id: vehicleId(v), x, y, lon: replay.positions[2 * j], lat: replay.positions[2 * j + 1],
          category: replay.meta.categories[replay.categoryOf[j]], operator});
      }
      return out;
    },
    /** The open requests: row, id, page coordinates. */
    openRequests() {
      const out = [];
      for (let k = 0; k < replay.nOpen; k++) {
        const q = replay.openRequests[k];
        const [x, y] = api.screenXY(replay.openPositions[2 * k], replay.openPositions[2 * k + 1]);
        out.push({row: q, id: replay.live ? q : Number(replay.a.req_id[q]), x, y});
      }
      return out;
    },
    /** Number of objects in a deck.gl layer as last drawn ('vehicles', 'requests', 'roads', 'areas'). */
    layerLength(id) {
      const layer = [...app.deck.props.layers, ...app.mapDeck.props.layers].find((l) => l.id === id);
      if (!layer) return null;
      const data = layer.props.data;
      return Array.isArray(data) ? data.length : data.length;
    },
    /** The colour of the drawn vehicle j (RGB), as handed to the GPU. */
    vehicleColor(j) {
      return Array.from(app.vehColors.subarray(4 * j, 4 * j + 3));
    },
  };
  return api;
}

async function startReplay() {
  const t0 = performance.now();
  const replay = new Replay(await loadEmbedded());
  const app = new App(replay);
  window.robotaxiReplay = makeApi(app, replay, performance.now() - t0);
  document.body.dataset.ready = 'true';
}

function startLive() {
  const form = $('signin');
  form.hidden = false;
  document.body.dataset.mode = 'live';
  let app = null;
  let model = null;
  const feed = new LiveFeed({
    onNetwork: (network) => {
      if (app) return; // a reconnection: the map stays, the next snapshot replaces the rest
      model = new LiveModel(network);
      app = new App(model, feed);
      window.robotaxiReplay = makeApi(app, model, 0);
      document.body.dataset.ready = 'true';
    },
    onUpdate: (m) => {
      model.apply(m);
      if (m.areas) app.setAreas(m.areas);
      document.body.dataset.updates = String(model.updates);
    },
    onMessage: (m) => app && app.onFeedMessage(m),
    onStatus: (status) => {
      $('live-status').textContent = status;
      document.body.dataset.feed = status;
    },
    onRefused: (text) => {
      form.hidden = false;
      $('signin-error').textContent = text;
      document.body.dataset.feed = 'refused';
    },
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    try {
      await feed.signIn($('signin-key').value);
      form.hidden = true;
    } catch (err) {
      $('signin-error').textContent = err.message;
      document.body.dataset.feed = 'refused';
    }
  });
}

function start() {
  // The live page (robotaxi serve --dashboard) carries no payload: it gets everything from the feed.
  const data = document.getElementById('replay-data');
  return data && data.textContent.trim() === '' ? startLive() : startReplay();
}

Promise.resolve()
  .then(start)
  .catch((err) => {
    console.error(err);
    const box = document.getElementById('fatal');
    box.hidden = false;
    box.textContent = `The dashboard could not start: ${err.message}`;
  });
