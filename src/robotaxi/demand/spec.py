"""The ``[demand]`` table of a scenario file, and the one call that turns it into requests.

A scenario names its demand with a small table, for example::

    [demand]
    kind = "odcounts"
    path = "../shared/data/nyc_manhattan_pyhailing/trips.csv"
    zones = "../shared/data/nyc_tlc_taxi_zones/taxi_zones.geojson"
    weekday = 2

:meth:`DemandSpec.from_mapping` validates it (a ``ValueError`` names the bad key), :func:`load_demand` runs it.
Every kind maps to one source class through the typed registry :data:`SOURCE_BUILDERS`; options are the keyword
arguments of that class, so the documentation of each class is the documentation of its options.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..network import RoadNetwork
from . import _parse
from .generic import KNOWN_LAYOUTS, TableSource, detect_layout
from .odcounts import ODCountsColumns, ODCountsSource
from .records import ColumnMapping
from .requests import Requests
from .source import DemandResult, DemandSource, Seed, as_generator
from .synthetic import SyntheticSource
from .tlc import TLCSource
from .validation import LoadReport

#: Keys of the ``[demand]`` table that are not source options.
_TOP_KEYS = ("kind", "path", "zones", "columns", "rejects")
#: Source options that name files: resolved against the scenario's folder like ``path``.
_PATH_OPTIONS = ("service_area", "osm_path")


def _date(value: Any, key: str) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as e:
            raise ValueError(f"demand.{key}: expected a date YYYY-MM-DD, got {value!r}") from e
    raise ValueError(f"demand.{key}: expected a date YYYY-MM-DD, got {value!r}")


def _build_odcounts(spec: DemandSpec) -> DemandSource:
    opts = dict(spec.options)
    if "date" in opts:
        opts["date"] = _date(opts["date"], "date")
    cols = ODCountsColumns(**dict(spec.columns)) if spec.columns else ODCountsColumns()
    if spec.zones is None:
        raise ValueError("demand.zones: the odcounts kind needs the zone polygons file")
    return ODCountsSource(path=_need_path(spec), zones=spec.zones, columns=cols, rejects=spec.rejects, **opts)


def _build_synthetic(spec: DemandSpec) -> DemandSource:
    opts = dict(spec.options)
    if "date" in opts:
        opts["date"] = _date(opts["date"], "date")
    if "hourly_profile" in opts:
        opts["hourly_profile"] = tuple(opts["hourly_profile"])
    if spec.path is not None:
        opts.setdefault("osm_path", spec.path)
    if spec.columns or spec.zones is not None or spec.rejects is not None:
        raise ValueError("demand: the synthetic kind takes no columns, zones or rejects")
    return SyntheticSource(**opts)


def _build_requests(spec: DemandSpec) -> DemandSource:
    if spec.options or spec.columns or spec.zones is not None:
        raise ValueError("demand: the requests kind (a robotaxi requests Parquet) takes no options")
    return RequestsFileSource(_need_path(spec))


def _record_opts(spec: DemandSpec) -> dict[str, Any]:
    opts = dict(spec.options)
    if "date" in opts:
        opts["date"] = _date(opts["date"], "date")
    for key in ("service_area",):
        if key in opts and opts[key] is not None:
            opts[key] = Path(opts[key])
    return opts


def _build_tlc(spec: DemandSpec) -> DemandSource:
    if spec.columns:
        raise ValueError('demand.columns: the tlc kind detects its columns; use kind = "csv" to map them yourself')
    return TLCSource(path=_need_path(spec), zones=spec.zones, rejects=spec.rejects, **_record_opts(spec))


def _build_table(spec: DemandSpec) -> DemandSource:
    path = _need_path(spec)
    if spec.columns:
        try:
            cols = ColumnMapping(**dict(spec.columns))
        except ValueError as e:
            raise ValueError(f"demand.{e}") from e
    else:
        cols = _layout_of(path, spec.kind)
    is_parquet = path.name.lower().endswith((".parquet", ".pq", ".parq"))
    if is_parquet != (spec.kind == "parquet"):
        raise ValueError(f"demand.path: {path.name} does not look like a {spec.kind} file")
    return TableSource(path=path, columns=cols, zones=spec.zones, rejects=spec.rejects, **_record_opts(spec))


def _layout_of(path: Path, kind: str) -> ColumnMapping:
    """The mapping of a file in a known layout (HIVE...), read from its header; else a clear error."""
    found = detect_layout(_parse.header(path)) if path.is_file() else None
    if found is None:
        known = ", ".join(f"{n} ({', '.join(m.used().values())})" for n, m in KNOWN_LAYOUTS.items())
        raise ValueError(
            f"demand.columns: the {kind} kind needs a column mapping (at least time = ...) unless the file has a "
            f"known layout: {known}"
        )
    return found[1]


def _need_path(spec: DemandSpec) -> Path:
    if spec.path is None:
        raise ValueError(f"demand.path: the {spec.kind} kind needs a file path")
    return spec.path


@dataclass(frozen=True, slots=True)
class RequestsFileSource:
    """Requests materialised earlier by ``robotaxi demand build`` (the format the simulator reads fastest).

    The nodes in the file must refer to the network they are replayed on; the network's name is checked.
    """

    path: Path

    @property
    def kind(self) -> str:
        """``"requests"``."""
        return "requests"

    def load(self, network: RoadNetwork, rng: Any) -> DemandResult:
        """Read the requests (``rng`` is unused: the file is already one draw).

        Raises
        ------
        DemandError
            If the file is not a requests Parquet, or was built for another network.
        """
        from ..errors import DemandError

        req = Requests.from_parquet(self.path)
        if req.network and req.network != network.name:
            raise DemandError(
                f"{self.path}: the requests were built for the {req.network!r} network, not {network.name!r}",
                hint="rebuild them with robotaxi demand build on this network",
            )
        nodes = (req.o_node, req.d_node)
        if len(req) and any(int(v.min()) < 0 or int(v.max()) >= network.n_nodes for v in nodes):
            raise DemandError(
                f"{self.path}: node indices outside 0..{network.n_nodes - 1} of the {network.name} network"
            )
        n = len(req)
        return DemandResult(req, LoadReport(source=str(self.path), rows_read=n, accepted=n, requests=n))


#: kind -> builder of the source object (a typed registry, never import strings). Extended by the readers below.
SOURCE_BUILDERS: dict[str, Callable[[DemandSpec], DemandSource]] = {
    "odcounts": _build_odcounts,
    "tlc": _build_tlc,
    "csv": _build_table,
    "parquet": _build_table,
    "synthetic": _build_synthetic,
    "requests": _build_requests,
}


@dataclass(frozen=True, slots=True)
class DemandSpec:
    """A validated ``[demand]`` table.

    Parameters
    ----------
    kind : str
        One of :data:`SOURCE_BUILDERS`: "odcounts", "tlc", "csv", "parquet", "synthetic", "requests".
    path : Path or None
        The demand file (for "synthetic": an optional OSM extract for the weights).
    zones : Path or None
        Zone polygons (odcounts; zone-based TLC files).
    columns : mapping of str to str
        Column mapping ("csv"/"parquet": field -> file column) or names ("odcounts": see ODCountsColumns).
    options : mapping of str to Any
        Keyword arguments of the kind's source class (weekday, date, scale, n_requests, ...).
    rejects : Path or None
        Write rejected rows to this CSV.

    Raises
    ------
    ValueError
        On an unknown kind or option or an invalid value; the message names the key.
    """

    kind: str
    path: Path | None = None
    zones: Path | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    rejects: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_BUILDERS:
            raise ValueError(f"demand.kind: unknown kind {self.kind!r} (known: {', '.join(sorted(SOURCE_BUILDERS))})")
        for key in ("path", "zones", "rejects"):
            value = getattr(self, key)
            if value is not None:
                if not isinstance(value, str | Path) or not str(value):
                    raise ValueError(f"demand.{key}: expected a file path, got {value!r}")
                object.__setattr__(self, key, Path(value))
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items()):
            raise ValueError('demand.columns: expected a table of field = "column name" strings')
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        self.source()  # validate the options now, not when the simulation starts

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, base_dir: str | Path | None = None) -> DemandSpec:
        """Parse a ``[demand]`` table.

        Relative file paths (``path``, ``zones``, ``rejects`` and the ``service_area`` / ``osm_path`` options) are
        resolved against ``base_dir``, the scenario's folder.
        """
        if "kind" not in table:
            raise ValueError("demand.kind: missing (one of " + ", ".join(sorted(SOURCE_BUILDERS)) + ")")
        paths: dict[str, Path | None] = {}
        for key in ("path", "zones", "rejects"):
            value = table.get(key)
            if value is not None and not isinstance(value, str | Path):
                raise ValueError(f"demand.{key}: expected a file path, got {value!r}")
            p = Path(value) if value is not None else None
            if p is not None and base_dir is not None and not p.is_absolute():
                p = Path(base_dir) / p
            paths[key] = p
        columns = table.get("columns", {})
        if not isinstance(columns, Mapping):
            raise ValueError("demand.columns: expected a table")
        options = {k: v for k, v in table.items() if k not in _TOP_KEYS}
        for key in _PATH_OPTIONS:
            value = options.get(key)
            if isinstance(value, str | Path) and base_dir is not None and not Path(value).is_absolute():
                options[key] = Path(base_dir) / value
        return cls(
            kind=str(table["kind"]),
            path=paths["path"],
            zones=paths["zones"],
            columns=dict(columns),
            options=options,
            rejects=paths["rejects"],
        )

    def source(self) -> DemandSource:
        """The source object this spec describes."""
        try:
            return SOURCE_BUILDERS[self.kind](self)
        except TypeError as e:
            # An unknown keyword: name it the way the user wrote it.
            raise ValueError(_unknown_option(self, e)) from e
        except ValueError as e:
            if str(e).startswith("demand"):
                raise
            raise ValueError(f"demand ({self.kind}): {e}") from e

    def replace(self, **changes: Any) -> DemandSpec:
        """A copy with some fields changed (the spec itself is immutable)."""
        return dataclasses.replace(self, **changes)


def _unknown_option(spec: DemandSpec, e: TypeError) -> str:
    msg = str(e)
    if "unexpected keyword argument" in msg:
        name = msg.rsplit("argument", 1)[-1].strip(" '\"")
        where = "demand.columns" if name not in spec.options else "demand"
        return f"{where}.{name}: unknown option for kind {spec.kind!r}"
    return f"demand ({spec.kind}): {msg}"


def _as_spec(spec: DemandSpec | Mapping[str, Any]) -> DemandSpec:
    return spec if isinstance(spec, DemandSpec) else DemandSpec.from_mapping(spec)


def build_demand(spec: DemandSpec | Mapping[str, Any], network: RoadNetwork, seed: Seed = 0) -> DemandResult:
    """Run a demand spec: the requests and the validation report.

    Parameters
    ----------
    spec : DemandSpec or mapping
        The spec, or a ``[demand]`` table (relative paths are taken as they are).
    network : RoadNetwork
        The network the requests are snapped to.
    seed : int, numpy.random.Generator or None
        Same seed, same requests.

    Returns
    -------
    DemandResult
        Requests and load report.

    Raises
    ------
    ValueError
        If ``spec`` is a mapping that does not validate.
    DemandError
        If the demand file is missing or malformed.
    """
    return _as_spec(spec).source().load(network, as_generator(seed))


def load_demand(spec: DemandSpec | Mapping[str, Any], network: RoadNetwork, seed: Seed = 0) -> Requests:
    """The requests a demand spec describes, snapped to ``network`` (same seed, same requests).

    Parameters
    ----------
    spec : DemandSpec or mapping
        The spec, or a ``[demand]`` table.
    network : RoadNetwork
        The network the requests are snapped to.
    seed : int, numpy.random.Generator or None
        Same seed, same requests.

    Returns
    -------
    Requests
        The requests (the report is logged; :func:`build_demand` returns it).

    Raises
    ------
    ValueError
        If ``spec`` is a mapping that does not validate.
    DemandError
        If the demand file is missing or malformed.
    """
    return build_demand(spec, network, seed).requests
