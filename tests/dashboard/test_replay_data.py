"""The run-folder adapter: legs follow the router, requests are linked, odd rows and columns are tolerated."""

from __future__ import annotations

import itertools
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotaxi.dashboard import CATEGORIES, DashboardError, ReplayData, _payload, find_network, load_replay
from robotaxi.dashboard.replay_data import riders_on_board
from robotaxi.network import Router, load_network
from robotaxi.sim import Scenario, run_scenario

from .conftest import MORNING

pytestmark = pytest.mark.integration


def _walk(data: ReplayData, e: int, offset: int) -> list[int]:
    a = data.arrays
    nodes = [int(a["ev_node"][e])]
    for k in range(int(a["ev_path_len"][e])):
        u = nodes[-1]
        nodes.append(int(a["csr_head"][a["csr_indptr"][u] + a["path_slots"][offset + k]]))
    return nodes


def test_every_leg_is_the_fastest_route_between_consecutive_events(morning_replay: ReplayData) -> None:
    data = morning_replay
    a = data.arrays
    net = load_network(None)
    router = Router(net, workers=1)
    offsets = np.concatenate([[0], np.cumsum(a["ev_path_len"].astype(np.int64))])
    legs = 0
    for v in range(data.n_vehicles):
        lo, hi = int(a["veh_ev_start"][v]), int(a["veh_ev_start"][v + 1])
        assert np.all(np.diff(a["ev_time"][lo:hi]) >= 0), "events of a vehicle are in time order"
        for e in range(lo, hi - 1):
            a_node, b_node = int(a["ev_node"][e]), int(a["ev_node"][e + 1])
            if a_node == b_node:
                assert a["ev_path_len"][e] == 0
                continue
            legs += 1
            nodes = _walk(data, e, int(offsets[e]))
            assert nodes[0] == a_node
            assert nodes[-1] == b_node
            time = sum(int(router.times(p, q)) for p, q in itertools.pairwise(nodes))
            assert time == int(router.times(a_node, b_node))
            assert nodes == router.path(a_node, b_node).tolist()
        assert a["ev_path_len"][hi - 1] == 0, "the last event of a vehicle starts no leg"
    assert legs == data.meta["legs"]
    assert legs > 100


def test_events_link_to_their_requests(morning_run: Path, morning_replay: ReplayData) -> None:
    a = morning_replay.arrays
    ev = pq.read_table(morning_run / "vehicle_events.parquet")
    trips = [t for t in ev.column("trip_id").to_pylist() if t is not None]
    linked = a["ev_req"] >= 0
    assert int(linked.sum()) == len(trips)
    assert sorted(a["req_id"][a["ev_req"][linked]].tolist()) == sorted(trips)
    assert np.all(np.diff(a["req_time"]) >= 0), "requests are in time order"


def test_requests_close_at_pickup_deadline_or_decision(morning_run: Path, morning_replay: ReplayData) -> None:
    a, meta = morning_replay.arrays, morning_replay.meta
    outcome = np.asarray(meta["outcome_labels"])[a["req_outcome"]]
    served, cancelled, rejected = outcome == "served", outcome == "cancelled", outcome == "rejected"
    assert served.any(), "the fixture has every outcome"
    assert cancelled.any()
    assert rejected.any()
    assert np.array_equal(a["req_close"][served], a["req_pickup"][served])
    assert np.array_equal(a["req_close"][cancelled], a["req_time"][cancelled] + 240)
    assert np.array_equal(a["req_close"][rejected], a["req_time"][rejected])


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_extra_columns_and_rebalancing_rows_are_tolerated(morning_run: Path, tmp_path: Path) -> None:
    run = _copy_run(morning_run, tmp_path / "run")
    ev = pq.read_table(run / "vehicle_events.parquet").to_pydict()
    # Vehicle 3's first idle stretch: it drives empty to another node and back (a rebalancing round trip), in rows
    # whose trip is null or -1, with event names the current simulator does not write.
    rows = [i for i, v in enumerate(ev["vehicle_id"]) if v == 3]
    i = next(k for k, nxt in itertools.pairwise(rows) if ev["vehicle_state"][k] == "available"
             and ev["time_s"][nxt] - ev["time_s"][k] > 400)  # fmt: skip
    t0, home = ev["time_s"][i], ev["node"][i]
    away = (home + 50) % 700
    extra = [(t0 + 10, home, None), (t0 + 100, away, -1), (t0 + 200, home, None)]
    for t, node, trip in extra:
        for k in ev:
            ev[k].append(ev[k][i])
        ev["time_s"][-1], ev["node"][-1], ev["trip_id"][-1] = t, node, trip
        ev["event_type"][-1] = "rebalance_move"
    ev["zone"] = [7] * len(ev["time_s"])
    pq.write_table(pa.table({k: v for k, v in ev.items() if k != "timestamp"}), run / "vehicle_events.parquet")
    req = pq.read_table(run / "requests.parquet")
    pq.write_table(req.append_column("price_cents", pa.array([100] * req.num_rows)), run / "requests.parquet")

    base = load_replay(morning_run)
    data = load_replay(run)
    assert data.meta["legs"] == base.meta["legs"] + 2
    a = data.arrays
    v = int(np.searchsorted(a["veh_id"], 3))
    lo, hi = a["veh_ev_start"][v], a["veh_ev_start"][v + 1]
    times = a["ev_time"][lo:hi].tolist()
    k = lo + times.index(t0 + 10)
    repositioning = CATEGORIES.index("repositioning")
    assert a["ev_cat"][k] == repositioning
    assert a["ev_cat"][k + 1] == repositioning
    assert a["ev_cat"][k + 2] == CATEGORIES.index("idle"), "back home it is idle again"
    assert a["ev_req"][k] == -1
    assert a["ev_req"][k + 1] == -1
    assert "rebalance_move" in data.meta["event_labels"]


def test_payload_round_trip_is_exact_and_deterministic(morning_replay: ReplayData) -> None:
    blob = _payload.encode(morning_replay)
    assert blob == _payload.encode(morning_replay)
    meta, arrays = _payload.decode(blob)
    assert meta["name"] == "helsinki-morning"
    assert arrays.keys() == morning_replay.arrays.keys()
    for name, arr in morning_replay.arrays.items():
        assert arrays[name].dtype == arr.dtype, name
        assert np.array_equal(arrays[name], arr), name


def test_the_page_assets_ship_with_the_package() -> None:
    static = resources.files("robotaxi.dashboard").joinpath("static")
    bundle = static.joinpath("dashboard.js").read_text(encoding="utf-8")
    assert "deck.gl" in bundle.lower() or "deckgl" in bundle.lower()
    assert "</script" not in bundle.lower(), "the bundle is inlined in a <script> element"
    assert "__PAYLOAD__" in static.joinpath("index.html").read_text(encoding="utf-8")
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"dashboard/static/*"' in pyproject


def test_network_is_found_from_the_scenario_through_parent_folders(tmp_path: Path) -> None:
    net_file = tmp_path / "data" / "city.json"
    net_file.parent.mkdir()
    net_file.write_text("{}", encoding="utf-8")
    run = tmp_path / "out" / "city"
    run.mkdir(parents=True)
    (run / "scenario.toml").write_text('[network]\npath = "data/city.json"\n', encoding="utf-8")
    assert Path(find_network(run)).resolve() == net_file.resolve()
    (run / "scenario.toml").write_text('[network]\npath = "helsinki"\n', encoding="utf-8")
    assert find_network(run) == "helsinki"
    (run / "scenario.toml").write_text('[network]\npath = "nowhere.json"\n', encoding="utf-8")
    with pytest.raises(DashboardError, match=r"nowhere\.json.*not found"):
        find_network(run)
    (run / "scenario.toml").unlink()
    with pytest.raises(DashboardError, match=r"no scenario\.toml"):
        find_network(run)


def test_folders_that_are_not_runs_are_refused(morning_run: Path, tmp_path: Path) -> None:
    with pytest.raises(DashboardError, match="run folder not found"):
        load_replay(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DashboardError, match="is not a folder"):
        load_replay(tmp_path / "file.txt")
    with pytest.raises(DashboardError, match=r"missing vehicle_events\.parquet, requests\.parquet"):
        load_replay(tmp_path)
    run = _copy_run(morning_run, tmp_path / "broken")
    (run / "requests.parquet").write_bytes(b"not parquet")
    with pytest.raises(DashboardError, match=r"cannot read .*requests\.parquet"):
        load_replay(run)


def test_a_run_on_another_network_is_refused(morning_run: Path, grid3: object) -> None:
    from robotaxi.network import RoadNetwork

    assert isinstance(grid3, RoadNetwork)
    with pytest.raises(DashboardError, match="outside the network"):
        load_replay(morning_run, network=grid3)


def test_ledger_checkpoint_is_read_and_verified(morning_run: Path, tmp_path: Path) -> None:
    from robotaxi.ledger import Ledger, SigningKey

    key = SigningKey.generate("robotaxi.test/ledger")
    path = tmp_path / "trips.db"
    with Ledger.open_or_create(path, origin=key.name) as ledger:
        ledger.append([b"trip one", b"trip two", b"trip three"])
        note = ledger.sign_checkpoint(key)
    data = load_replay(morning_run, ledger=path)
    assert data.meta["ledger"]["size"] == 3
    assert data.meta["ledger"]["note"] == note
    assert data.meta["ledger"]["verified"] is True
    with pytest.raises(DashboardError, match="ledger file not found"):
        load_replay(morning_run, ledger=tmp_path / "none.db")


def test_riders_on_board_restart_at_each_vehicle() -> None:
    labels = ["trip_start", "trip_stop", "trip_resume", "trip_end", "reservation_stop", ""]
    # Vehicle 0 (pooled): board, pick up another, board, drop one (stop, resume), drop the last (stop, end).
    # Vehicle 1 (one rider): its count starts at zero again, whatever vehicle 0 ended with.
    event = np.array([0, 4, 0, 1, 2, 1, 3, 5, 4, 0, 1, 3], dtype=np.int64)
    veh = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=np.int64)
    assert riders_on_board(event, labels, veh).tolist() == [1, 1, 2, 1, 1, 0, 0, 0, 0, 1, 0, 0]
    # A vehicle whose count would start above zero (vehicle 0 ends with a rider on board) does not leak into the next.
    assert riders_on_board(event[:3].copy(), labels, veh[:3].copy()).tolist() == [1, 1, 2]
    both = np.r_[event[:3], event[7:]]
    assert riders_on_board(both, labels, np.r_[veh[:3], veh[7:]]).tolist() == [1, 1, 2, 0, 0, 1, 0, 0]


def test_riders_on_board_of_a_pooled_run_match_its_requests(tmp_path: Path) -> None:
    """Insertion pooling on the Helsinki morning: the page's riders on board after each vehicle event equal the
    requests that vehicle had boarded and not yet dropped off at that time (from requests.parquet)."""
    scenario = MORNING.replace('policy = "batch"', 'policy = "insertion"').replace("vehicles = 25", "vehicles = 12")
    (tmp_path / "s.toml").write_text(scenario, encoding="utf-8")
    run_scenario(Scenario.from_file(tmp_path / "s.toml"), output=tmp_path / "run")
    data = load_replay(tmp_path / "run")
    a = data.arrays
    req = pq.read_table(tmp_path / "run" / "requests.parquet").to_pydict()
    rides: dict[int, list[tuple[int, int]]] = {}
    for v, b, d in zip(req["vehicle"], req["board_s"], req["dropoff_s"], strict=True):
        if v is not None and b is not None and d is not None:
            rides.setdefault(int(v), []).append((int(b), int(d)))
    onboard = a["ev_onboard"]
    assert int(onboard.max()) >= 2  # riders shared a vehicle
    checked = 0
    for k, vid in enumerate(a["veh_id"].tolist()):
        lo, hi = int(a["veh_ev_start"][k]), int(a["veh_ev_start"][k + 1])
        times = a["ev_time"][lo:hi]
        for e in range(lo, hi):
            t = int(a["ev_time"][e])
            if np.count_nonzero(times == t) > 1:
                continue  # several events in one second: the order among them decides, not the times
            want = sum(1 for b, d in rides.get(vid, []) if b <= t < d)
            assert int(onboard[e]) == want, (vid, t)
            checked += 1
    assert checked > 1000
