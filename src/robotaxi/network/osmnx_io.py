"""Load OSMnx-style graphs: node-link JSON (networkx ``node_link_data``) and GraphML.

Nodes need ``x`` (lon) and ``y`` (lat). Edges need ``length`` (m) and, preferably, a speed (``speed_kph`` /
``speed_kmph``) or ``travel_time`` (s); missing ones fall back to ``maxspeed`` and the highway class defaults of
:mod:`robotaxi.network.osm`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetworkError
from .graph import RoadNetwork
from .osm import parse_maxspeed


def _first(value: Any) -> Any:
    """OSMnx stores merged attributes as lists; take the first."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _edge_speed(attrs: Mapping[str, Any]) -> float | None:
    for key in ("speed_kph", "speed_kmph", "speed_kmh"):
        if attrs.get(key) not in (None, ""):
            return float(_first(attrs[key]))
    return None


def _build(
    path: Path,
    nodes: Iterable[tuple[Any, Mapping[str, Any]]],
    edges: Iterable[tuple[Any, Any, Mapping[str, Any]]],
) -> RoadNetwork:
    index: dict[Any, int] = {}
    ids: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    for i, (nid, attrs) in enumerate(nodes):
        try:
            lon.append(float(attrs["x"]))
            lat.append(float(attrs["y"]))
        except (KeyError, TypeError, ValueError) as e:
            raise NetworkError(f"{path}: node {nid!r} has no numeric x/y coordinates") from e
        index[nid] = i
        try:
            ids.append(int(nid))
        except (TypeError, ValueError):
            ids.append(i)
    tail: list[int] = []
    head: list[int] = []
    length: list[float] = []
    speed: list[float] = []
    ttime: list[float] = []
    for k, (u, v, attrs) in enumerate(edges):
        if u not in index or v not in index:
            raise NetworkError(f"{path}: edge {k} refers to an unknown node ({u!r} -> {v!r})")
        try:
            ln = float(_first(attrs["length"]))
        except (KeyError, TypeError, ValueError) as e:
            raise NetworkError(f"{path}: edge {k} ({u!r} -> {v!r}) has no numeric length") from e
        sp = _edge_speed(attrs)
        tt = attrs.get("travel_time")
        if sp is None and tt not in (None, ""):
            sp = ln / float(tt) * 3.6 if float(tt) > 0 else None
        if sp is None:
            sp = parse_maxspeed(_first(attrs.get("maxspeed")), str(_first(attrs.get("highway", ""))))
        tail.append(index[u])
        head.append(index[v])
        length.append(ln)
        speed.append(sp)
        ttime.append(float(tt) if tt not in (None, "") else ln / (sp / 3.6))
    if not ids:
        raise NetworkError(f"{path}: the graph has no nodes")
    if not tail:
        raise NetworkError(f"{path}: the graph has no edges")
    return RoadNetwork.from_edges(
        name=path.name.split(".")[0],
        node_id=np.asarray(ids),
        lon=lon,
        lat=lat,
        tail=tail,
        head=head,
        length_m=length,
        speed_kmh=speed,
        travel_time_s=ttime,
        source=str(path),
    )


def load_node_link_json(path: str | Path) -> RoadNetwork:
    """Load a networkx node-link JSON graph (as written by OSMnx / ``nx.node_link_data``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise NetworkError(f"network file not found: {p}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NetworkError(f"{p}: not valid JSON: {e}") from e
    if not isinstance(data, dict) or "nodes" not in data:
        raise NetworkError(f"{p}: not a node-link graph (expected a JSON object with 'nodes' and 'links')")
    links = data.get("links", data.get("edges"))
    if not isinstance(data["nodes"], list) or not isinstance(links, list):
        raise NetworkError(f"{p}: 'nodes' and 'links' must be lists")
    try:
        nodes = [(n["id"], n) for n in data["nodes"]]
        edges = [(e["source"], e["target"], e) for e in links]
    except (KeyError, TypeError) as e:
        raise NetworkError(f"{p}: node without 'id' or link without 'source'/'target'") from e
    if not data.get("directed", True):
        edges = edges + [(v, u, a) for u, v, a in edges]
    return _build(p, nodes, edges)


def load_graphml(path: str | Path) -> RoadNetwork:
    """Load a GraphML graph (as written by ``osmnx.save_graphml``)."""
    import networkx as nx  # imported here: only this loader needs it

    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"network file not found: {p}")
    try:
        g = nx.read_graphml(p)
    except Exception as e:  # networkx raises bare exceptions of several kinds for malformed XML
        raise NetworkError(f"{p}: not a readable GraphML file: {e}") from e
    edges = list(g.edges(data=True))
    if not g.is_directed():
        edges = edges + [(v, u, a) for u, v, a in edges]
    return _build(p, list(g.nodes(data=True)), edges)
