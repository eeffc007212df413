"""A compact cache file for a loaded network (one ``.npz``), so a city loads in milliseconds the second time."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import NetworkError
from .graph import PruneReport, RoadNetwork, _ro

CACHE_FORMAT = 1
_ARRAYS = ("node_id", "lon", "lat", "x", "y", "indptr", "head", "length_m", "speed_kmh", "travel_time_s")


def save_network(network: RoadNetwork, path: str | Path) -> Path:
    """Write ``network`` to ``path`` (npz, uncompressed for load speed); atomic (write then rename)."""
    p = Path(path)
    meta = {
        "format": CACHE_FORMAT,
        "name": network.name,
        "crs": network.crs,
        "source": network.source,
        "prune": network.prune.as_dict(),
    }
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(
            fh,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            **{k: getattr(network, k) for k in _ARRAYS},
        )
    os.replace(tmp, p)
    return p


def load_network_cache(path: str | Path) -> RoadNetwork:
    """Read a network written by :func:`save_network`."""
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            raise NetworkError(f"{p}: the network cache file is empty (0 bytes)", hint="delete it and rebuild it")
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != CACHE_FORMAT:
                raise NetworkError(f"{p}: cache format {meta.get('format')} is not {CACHE_FORMAT}; rebuild it")
            arrays = {k: _ro(z[k]) for k in _ARRAYS}
    except FileNotFoundError as e:
        raise NetworkError(f"network cache not found: {p}") from e
    except IsADirectoryError as e:
        raise NetworkError(f"{p}: is a folder, not a network cache file") from e
    except EOFError as e:  # np.load of a truncated file; click would print a bare "Aborted."
        raise NetworkError(f"{p}: the network cache file is truncated", hint="delete it and rebuild it") from e
    except (KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NetworkError(f"{p}: not a robotaxi network cache: {e}") from e
    except OSError as e:
        raise NetworkError(f"cannot read the network cache {p}: {e.strerror}") from e
    return RoadNetwork(
        name=meta["name"],
        crs=meta["crs"],
        source=meta["source"],
        prune=PruneReport(**meta["prune"]),
        node_id=arrays["node_id"],
        lon=arrays["lon"],
        lat=arrays["lat"],
        x=arrays["x"],
        y=arrays["y"],
        indptr=arrays["indptr"],
        head=arrays["head"],
        length_m=arrays["length_m"],
        speed_kmh=arrays["speed_kmh"],
        travel_time_s=arrays["travel_time_s"],
    )
