"""The ``[[operators]]`` and ``[marketplace]`` tables of a scenario, and what they become at run time.

Parsing (:func:`parse_operators`, :func:`parse_marketplace`) checks every key, type and range and reads the
service-area polygons (so an invalid or self-intersecting polygon stops the run before any network is loaded);
:func:`build_operators` then resolves what needs the network (area masks, depots and homes snapped to nodes, an
area without a node) and :func:`build_marketplace` gives the engine its :class:`~robotaxi.dispatch.Marketplace`.
Every error names the operator and the key: ``operators[1] 'downtown': area: feature 0 is not a valid polygon
(Self-intersection[...])``.

An operator table::

    [[operators]]
    name = "downtown-av"
    kind = "autonomous"          # or "human_driven"
    vehicles = 2500              # autonomous; a human-driven pool counts the drivers of its shifts
    capacity = 4
    placement = "demand"         # or "uniform": start nodes (inside the area); or "file" with
    positions = "fleet.csv"      # a CSV/Parquet of the vehicles' lon/lat (robotaxi.fleet.positions): vehicles
                                 # defaults to its rows (of this operator, when it has an operator column)
    area = "areas/downtown.geojson"   # (multi)polygons, WGS84; or area_zones = [4, 12, ...] (TLC LocationIDs of
                                 # the demand's zones file, or of area_zones_file)
    hours = "00:00-24:00"        # local time, may cross midnight ("22:00-06:00")
    safety_driver = false
    pooling = false
    depot = [-74.0110, 40.7060]  # lon, lat (snapped to the nearest node, which must be inside the area)
    [operators.fares]            # the market module's tables (robotaxi.market, docs/marketplace.md), checked by
    base_cents = 250             # its parsers here and handed to it as they are: fares, costs, commission
    per_km_cents = 120
    [operators.costs]
    per_km_cents = 35
    [operators.safety]           # disengagements drawn as the vehicles drive (robotaxi.safety.insim,
    miles_per_disengagement = 13219   # docs/safety.md): rates as in safety profiles, and what one does:
    on_disengagement = "remote"  # "continue" (safety driver), "remote" (wait delay_s) or "stop" (recovery_s)

A human-driven pool::

    [[operators]]
    name = "drivers"
    kind = "human_driven"
    acceptance = 0.85            # probability that a driver accepts an offer
    response_s = [4, 20]         # answer delay range, seconds (uniform)
    offer_timeout_s = 15         # an offer unanswered this long lapses
    [[operators.shifts]]
    hours = "06:00-14:00"
    drivers = 1200
    home = [-73.95, 40.78]       # optional: where this shift's drivers start (else the operator's placement)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ..dispatch import MarketParams, Marketplace, OperatorRules
from ..dispatch.operators import FareQuote
from ..errors import DemandError, FleetError, NetworkError
from ..fleet import Hours, Operator, OperatorKind, Placement, ServiceArea, Shift, parse_hours
from ..fleet.positions import FleetPositions, read_positions
from ..market import OperatorTerms, Pricing, operator_terms, parse_commission, parse_costs, parse_fares
from ..network import DEFAULT_SNAP_LIMIT_M, RoadNetwork
from ..safety.insim import OperatorSafety, parse_operator_safety
from ..safety.policy import SafetyPolicy, UnsafeZones, parse_safety_policy

_OPERATOR_KEYS = (
    "name",
    "kind",
    "vehicles",
    "capacity",
    "placement",
    "positions",
    "area",
    "area_zones",
    "area_zones_file",
    "hours",
    "safety_driver",
    "pooling",
    "depot",
    "fares",
    "costs",
    "commission",
    "shifts",
    "acceptance",
    "response_s",
    "offer_timeout_s",
    "safety",
    "safety_policy",
)
_SHIFT_KEYS = ("hours", "drivers", "home")
_MARKET_KEYS = ("policy", "autonomous_first_min", "max_share", "share_warmup")
_KINDS = {k.value: k for k in OperatorKind}


@dataclass(frozen=True, slots=True)
class ShiftSpec:
    hours: Hours
    drivers: int
    home: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class OperatorSpec:
    """One validated ``[[operators]]`` table (what does not need the network yet)."""

    name: str
    kind: OperatorKind
    vehicles: int
    capacity: int = 4
    placement: str = "demand"
    area: tuple[BaseGeometry, ...] = ()
    area_source: str = ""
    hours: Hours = Hours()  # noqa: RUF009 - frozen, immutable
    safety_driver: bool = False
    pooling: bool = True
    depot: tuple[float, float] | None = None
    fares: Mapping[str, Any] | None = None
    costs: Mapping[str, Any] | None = None
    commission: Mapping[str, Any] | None = None
    shifts: tuple[ShiftSpec, ...] = ()
    acceptance: float = 1.0
    response_s: tuple[int, int] = (0, 0)
    offer_timeout_s: int = 30
    positions: FleetPositions | None = None
    safety: OperatorSafety | None = None
    safety_policy: SafetyPolicy | None = None

    @property
    def human(self) -> bool:
        return self.kind is OperatorKind.HUMAN_DRIVEN

    def terms(self, pricing: Pricing) -> OperatorTerms:
        """The operator's commercial terms for the market module: its own tables, else ``pricing``'s defaults."""
        return operator_terms(
            self.name, self.kind, pricing, fares=self.fares, costs=self.costs, commission=self.commission
        )


class _Where:
    """Names a key in messages: ``operators[0] 'downtown': hours``."""

    def __init__(self, i: int, name: str | None) -> None:
        self.prefix = f"operators[{i}]" + (f" {name!r}" if name else "")

    def __call__(self, key: str) -> str:
        return f"{self.prefix}: {key}"


def _typed(t: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: _Where, default: Any = None) -> Any:
    if key not in t:
        if default is None:
            raise ValueError(f"{where(key)}: missing")
        return default
    v = t[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(v, bool) and bool not in kinds:
        raise ValueError(f"{where(key)}: expected {kinds[0].__name__}, got {v!r}")
    if not isinstance(v, kinds):
        raise ValueError(f"{where(key)}: expected {kinds[0].__name__}, got {type(v).__name__} {v!r}")
    return v


def _lonlat(value: Any, where: _Where, key: str) -> tuple[float, float]:
    ok = isinstance(value, list) and len(value) == 2 and all(isinstance(x, int | float) for x in value)
    if not ok or isinstance(value[0], bool) or not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90):
        raise ValueError(f"{where(key)}: expected [lon, lat] in degrees, got {value!r}")
    return float(value[0]), float(value[1])


def _hours(value: Any, where: _Where, key: str) -> Hours:
    try:
        return parse_hours(value, where(key))
    except FleetError as e:
        raise ValueError(str(e)) from e


def parse_operators(
    tables: Any, base_dir: Path, zones_file: str | Path | None, resolve: Any
) -> tuple[OperatorSpec, ...]:
    """Validate the ``[[operators]]`` array (``resolve(value, base_dir, name)`` finds input files)."""
    if not isinstance(tables, list) or not tables or not all(isinstance(t, Mapping) for t in tables):
        raise ValueError("operators: expected one or more [[operators]] tables")
    out: list[OperatorSpec] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tables):
        name = t.get("name")
        where = _Where(i, name if isinstance(name, str) else None)
        for key in t:
            if key not in _OPERATOR_KEYS:
                raise ValueError(f"{where(key)}: unknown key (known keys here: {', '.join(_OPERATOR_KEYS)})")
        name = _typed(t, "name", str, where)
        if not name:
            raise ValueError(f"{where('name')}: must not be empty")
        if name in seen:
            raise ValueError(f"{where('name')}: {name!r} is already the name of operators[{seen[name]}]")
        seen[name] = i
        out.append(_operator(t, where, name, base_dir, zones_file, resolve))
    return tuple(out)


def _operator(  # noqa: C901, PLR0912 - one check per key
    t: Mapping[str, Any], where: _Where, name: str, base_dir: Path, zones_file: str | Path | None, resolve: Any
) -> OperatorSpec:
    kind_name = _typed(t, "kind", str, where, "autonomous")
    if kind_name not in _KINDS:
        raise ValueError(f"{where('kind')}: expected one of {', '.join(_KINDS)}, got {kind_name!r}")
    kind = _KINDS[kind_name]
    human = kind is OperatorKind.HUMAN_DRIVEN
    capacity = _typed(t, "capacity", int, where, 4)
    if capacity < 1:
        raise ValueError(f"{where('capacity')}: must be >= 1, got {capacity}")
    placement = _typed(t, "placement", str, where, "file" if "positions" in t else "demand")
    if placement not in ("demand", "uniform", "file"):
        raise ValueError(f"{where('placement')}: expected demand, uniform or file, got {placement!r}")
    positions = _positions(t, where, name, placement, base_dir, resolve)
    shifts: tuple[ShiftSpec, ...] = ()
    if human:
        for key in ("area", "area_zones", "hours", "depot", "safety_driver", "safety", "safety_policy"):
            if key in t:
                raise ValueError(f"{where(key)}: not for a human-driven pool (drivers go anywhere, in shifts)")
        shifts = _shifts(t.get("shifts"), where)
        vehicles = sum(s.drivers for s in shifts)
        if "vehicles" in t and t["vehicles"] != vehicles:
            raise ValueError(f"{where('vehicles')}: {t['vehicles']!r} differs from the shifts' drivers ({vehicles})")
    else:
        for key in ("shifts", "acceptance", "response_s", "offer_timeout_s"):
            if key in t:
                raise ValueError(f"{where(key)}: only for a human-driven pool")
        vehicles = _typed(t, "vehicles", int, where, len(positions) if positions is not None else None)
        if positions is not None and vehicles != len(positions):
            raise ValueError(
                f"{where('vehicles')}: {vehicles} differs from the {len(positions)} vehicles in {positions.source}"
            )
        if positions is not None and positions.capacity is not None and (positions.capacity != capacity).any():
            i = int(np.argmax(positions.capacity != capacity))
            raise ValueError(
                f"{where('positions')}: {positions.source} line {int(positions.line[i])} gives capacity "
                f"{int(positions.capacity[i])}, the operator's capacity is {capacity} (one capacity per operator: "
                "split the file into operators by capacity)"
            )
        if vehicles <= 0:
            raise ValueError(f"{where('vehicles')}: an operator needs at least one vehicle, got {vehicles}")
    geoms, source = _area(t, where, base_dir, zones_file, resolve)
    acceptance = float(_typed(t, "acceptance", (int, float), where, 1.0))
    if not 0 <= acceptance <= 1:
        raise ValueError(f"{where('acceptance')}: must be within 0..1, got {acceptance}")
    response = t.get("response_s", [0, 0])
    if isinstance(response, int) and not isinstance(response, bool):
        response = [response, response]
    if not (isinstance(response, list) and len(response) == 2 and all(type(x) is int for x in response)):
        raise ValueError(f"{where('response_s')}: expected [min, max] seconds, got {response!r}")
    if not 0 <= response[0] <= response[1]:
        raise ValueError(f"{where('response_s')}: need 0 <= min <= max, got {response!r}")
    timeout = _typed(t, "offer_timeout_s", int, where, 30)
    if timeout <= 0:
        raise ValueError(f"{where('offer_timeout_s')}: must be > 0, got {timeout}")
    money = _money_tables(t, where, name, kind)
    safety_driver = _typed(t, "safety_driver", bool, where, False)
    safety = (
        parse_operator_safety(t["safety"], operator=name, safety_driver=safety_driver, where=where("safety"))
        if "safety" in t
        else None
    )
    policy = (
        parse_safety_policy(
            t["safety_policy"], where=where("safety_policy"), base_dir=base_dir, zones_file=zones_file, resolve=resolve
        )
        if "safety_policy" in t
        else None
    )
    return OperatorSpec(
        name=name,
        kind=kind,
        vehicles=vehicles,
        capacity=capacity,
        placement=placement,
        area=geoms,
        area_source=source,
        hours=_hours(t["hours"], where, "hours") if "hours" in t else Hours(),
        safety_driver=safety_driver,
        pooling=_typed(t, "pooling", bool, where, not human),
        depot=_lonlat(t["depot"], where, "depot") if "depot" in t else None,
        fares=money["fares"],
        costs=money["costs"],
        commission=money["commission"],
        shifts=shifts,
        acceptance=acceptance,
        response_s=(int(response[0]), int(response[1])),
        offer_timeout_s=timeout,
        positions=positions,
        safety=safety,
        safety_policy=policy,
    )


def _positions(
    t: Mapping[str, Any], where: _Where, name: str, placement: str, base_dir: Path, resolve: Any
) -> FleetPositions | None:
    """The ``positions`` file of ``placement = "file"``, read and checked in full (only this operator's rows)."""
    if placement != "file":
        if "positions" in t:
            raise ValueError(f'{where("positions")}: only with placement = "file" (placement is {placement!r})')
        return None
    if "positions" not in t:
        raise ValueError(f'{where("positions")}: placement = "file" needs a positions file (CSV or Parquet)')
    if t.get("kind", "autonomous") != "autonomous":
        raise ValueError(f"{where('positions')}: only for autonomous operators (drivers start at their shifts' homes)")
    path = resolve(_typed(t, "positions", str, where), base_dir, where("positions"))
    try:
        return read_positions(path).for_operator(name)
    except FleetError as e:
        raise ValueError(f"{where('positions')}: {e}") from e


def _money_tables(
    t: Mapping[str, Any], where: _Where, name: str, kind: OperatorKind
) -> dict[str, Mapping[str, Any] | None]:
    """The ``fares``, ``costs`` and ``commission`` tables, checked by the market module's own parsers (every
    error names the operator and the field) and kept as given: the market module prices the run with them."""
    out: dict[str, Mapping[str, Any] | None] = {}
    for key in ("fares", "costs", "commission"):
        table = t.get(key)
        if table is not None and not isinstance(table, Mapping):
            raise ValueError(f"{where(key)}: expected a table [operators.{key}]")
        out[key] = table
    at = f"{where.prefix}"
    if out["fares"] is not None:
        parse_fares(out["fares"], operator=name, where=f"{at}: fares")
    if out["costs"] is not None:
        parse_costs(out["costs"], operator=name, kind=kind, where=f"{at}: costs")
    if out["commission"] is not None:
        parse_commission(out["commission"], operator=name, where=f"{at}: commission")
    return out


def _shifts(value: Any, where: _Where) -> tuple[ShiftSpec, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, Mapping) for s in value):
        raise ValueError(f"{where('shifts')}: a human-driven pool needs one or more [[operators.shifts]] tables")
    out = []
    for j, s in enumerate(value):
        w = _Where(0, None)
        w.prefix = f"{where.prefix}: shifts[{j}]"
        for key in s:
            if key not in _SHIFT_KEYS:
                raise ValueError(f"{w(key)}: unknown key (known keys here: {', '.join(_SHIFT_KEYS)})")
        drivers = _typed(s, "drivers", int, w)
        if drivers <= 0:
            raise ValueError(f"{w('drivers')}: a shift needs at least one driver, got {drivers}")
        out.append(
            ShiftSpec(
                hours=_hours(_typed(s, "hours", str, w), w, "hours"),
                drivers=drivers,
                home=_lonlat(s["home"], w, "home") if "home" in s else None,
            )
        )
    return tuple(out)


def _area(
    t: Mapping[str, Any], where: _Where, base_dir: Path, zones_file: str | Path | None, resolve: Any
) -> tuple[tuple[BaseGeometry, ...], str]:
    if "area" in t and "area_zones" in t:
        raise ValueError(f"{where('area')}: give either area (a GeoJSON file) or area_zones, not both")
    if "area" in t:
        path = resolve(_typed(t, "area", str, where), base_dir, where("area"))
        return _read_polygons(path, where), str(path)
    if "area_zones" not in t:
        if "area_zones_file" in t:
            raise ValueError(f"{where('area_zones_file')}: needs area_zones")
        return (), ""
    ids = t["area_zones"]
    if not isinstance(ids, list) or not ids or not all(type(x) is int for x in ids):
        raise ValueError(f"{where('area_zones')}: expected a list of zone ids (integers), got {ids!r}")
    file = t.get("area_zones_file", zones_file)
    if not isinstance(file, str | Path):
        raise ValueError(f"{where('area_zones_file')}: area_zones needs a zones file (here or demand.zones)")
    path = resolve(file, base_dir, where("area_zones_file")) if "area_zones_file" in t else Path(file)
    from ..demand.zones import Zones

    try:
        zones = Zones.from_file(path)
    except DemandError as e:
        raise ValueError(f"{where('area_zones_file')}: {e}") from e
    pos = zones.index_of(np.asarray(ids, dtype=np.int64))
    if np.any(pos < 0):
        raise ValueError(f"{where('area_zones')}: zone {ids[int(np.argmax(pos < 0))]} is not in {path}")
    geoms = tuple(zones.geometries[int(p)] for p in pos)
    _check_polygons(list(geoms), where)
    return geoms, f"zones {ids} of {path.name}"


def _read_polygons(path: Path, where: _Where) -> tuple[BaseGeometry, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where('area')}: cannot read GeoJSON {path}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{where('area')}: {path} is not a GeoJSON object")
    kind = data.get("type")
    if kind == "FeatureCollection":
        raw = [f.get("geometry") if isinstance(f, dict) else None for f in data.get("features") or []]
    elif kind == "Feature":
        raw = [data.get("geometry")]
    else:
        raw = [data]
    geoms = []
    for i, g in enumerate(raw):
        try:
            geoms.append(shape(g))
        except (AttributeError, TypeError, ValueError, KeyError, shapely.errors.GEOSException) as e:
            raise ValueError(f"{where('area')}: feature {i} of {path} is not a geometry ({e})") from e
    _check_polygons(geoms, where)
    return tuple(geoms)


def _check_polygons(geoms: list[BaseGeometry], where: _Where) -> None:
    # The checks of ServiceArea.from_geometries that need no network, so that they fail at parse time.
    try:
        ServiceArea.check_geometries(geoms, where("area"))
    except FleetError as e:
        raise ValueError(str(e)) from e


def parse_marketplace(t: Mapping[str, Any]) -> MarketParams:
    for key in t:
        if key not in _MARKET_KEYS:
            raise ValueError(f"marketplace.{key}: unknown key (known keys here: {', '.join(_MARKET_KEYS)})")
    d = MarketParams()
    policy = t.get("policy", d.objective)
    if not isinstance(policy, str):
        raise ValueError(f"marketplace.policy: expected a string, got {policy!r}")
    minutes = t.get("autonomous_first_min", d.autonomous_first_s / 60)
    share = t.get("max_share", d.max_share)
    warm = t.get("share_warmup", d.share_warmup)
    for key, v in (("autonomous_first_min", minutes), ("max_share", share)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"marketplace.{key}: expected a number, got {v!r}")
    if isinstance(warm, bool) or not isinstance(warm, int):
        raise ValueError(f"marketplace.share_warmup: expected an integer, got {warm!r}")
    if minutes < 0:
        raise ValueError(f"marketplace.autonomous_first_min: must be >= 0, got {minutes}")
    return MarketParams(
        objective=policy,  # type: ignore[arg-type]  # checked by MarketParams
        autonomous_first_s=round(60 * float(minutes)),
        max_share=float(share),
        share_warmup=warm,
    )


# ---------------------------------------------------------------------- at run time
def build_operators(
    specs: tuple[OperatorSpec, ...], network: RoadNetwork, unsafe: Mapping[str, UnsafeZones] | None = None
) -> tuple[Operator, ...]:
    """The fleet's operators on ``network``: area masks, depot and homes snapped to nodes.

    ``unsafe`` (``[operators.safety_policy]``, :func:`robotaxi.safety.policy.unsafe_zones`) takes zones out of an
    operator's area (an operator without an area gets everywhere but them).

    Raises
    ------
    FleetError
        Naming the operator and the key (an area without a node, a depot outside the area or off the network).
    """
    out = []
    for i, s in enumerate(specs):
        where = _Where(i, s.name)
        area = None
        if s.area:
            area = ServiceArea.from_geometries(list(s.area), network, what=where("area"), source=s.area_source)
        if unsafe and s.name in unsafe and unsafe[s.name].flagged:
            u = unsafe[s.name]
            mask = (area.mask if area is not None else np.ones(network.n_nodes, dtype=bool)) & ~u.nodes
            if not mask.any():
                raise FleetError(f"{where('safety_policy')}: {u.describe()}, which leaves no node in the area")
            source = f"{area.source if area is not None else 'everywhere'} but {u.describe()}"
            outline = area.outline.difference(u.removed) if area is not None and area.outline is not None else None
            area = ServiceArea(mask, source, outline)
        depot = _snap(network, s.depot, where("depot")) if s.depot else -1
        start: tuple[int, ...] = ()
        if s.positions is not None:
            try:
                nodes = s.positions.snap(network, DEFAULT_SNAP_LIMIT_M)
            except FleetError as e:
                raise FleetError(f"{where('positions')}: {e}") from e
            if area is not None and not area.mask[nodes].all():
                bad = int(np.argmin(area.mask[nodes]))
                raise FleetError(
                    f"{where('positions')}: {s.positions.source} line {int(s.positions.line[bad])}: the vehicle at "
                    f"lon={s.positions.lon[bad]:.6f}, lat={s.positions.lat[bad]:.6f} starts outside the operator's area"
                )
            start = tuple(int(x) for x in nodes)
        if area is not None and depot >= 0 and not area.mask[depot]:
            if unsafe and s.name in unsafe and unsafe[s.name].nodes[depot]:
                raise FleetError(
                    f"{where('depot')}: the node nearest {s.depot} is in a zone the safety policy takes out of the "
                    f"area ({unsafe[s.name].describe()}); move the depot"
                )
            raise FleetError(f"{where('depot')}: the node nearest {s.depot} is outside the operator's area")
        shifts = tuple(
            Shift(sh.hours, sh.drivers, _snap(network, sh.home, where(f"shifts[{j}].home")) if sh.home else -1)
            for j, sh in enumerate(s.shifts)
        )
        try:
            out.append(
                Operator(
                    s.name,
                    s.vehicles,
                    kind=s.kind,
                    capacity=s.capacity,
                    placement=Placement.WEIGHTED if s.placement == "demand" else Placement.UNIFORM,
                    start_nodes=start,
                    area=area,
                    hours=s.hours,
                    safety_driver=s.safety_driver,
                    pooling=s.pooling,
                    depot=depot,
                    shifts=shifts,
                    acceptance=s.acceptance,
                    response_s=s.response_s,
                    offer_timeout_s=s.offer_timeout_s,
                )
            )
        except ValueError as e:
            raise FleetError(f"{where.prefix}: {e}") from e
    return tuple(out)


def _snap(network: RoadNetwork, lonlat: tuple[float, float], what: str) -> int:
    try:
        return int(network.snap(np.asarray([lonlat[0]]), np.asarray([lonlat[1]]))[0])
    except NetworkError as e:
        raise FleetError(f"{what}: {e}") from e


def fare_terms(specs: tuple[OperatorSpec, ...], pricing: Pricing | None = None) -> tuple[OperatorTerms, ...] | None:
    """Every operator's terms for fare quotes: its own tables, else ``pricing``'s defaults; None when an operator
    has no fares at all (``cheapest`` cannot compare it)."""
    if not all(s.fares is not None or (pricing is not None and pricing.fares is not None) for s in specs):
        return None
    return tuple(s.terms(pricing or Pricing()) for s in specs)


def build_marketplace(
    operators: tuple[Operator, ...], params: MarketParams, fare: FareQuote | None = None
) -> Marketplace:
    """The engine's view of the operators."""
    rules = tuple(
        OperatorRules(
            name=op.name,
            area=None if op.area is None else op.area.mask,
            offers=op.human,
            offer_timeout_s=op.offer_timeout_s,
            pooling=op.pooling,
            autonomous=not op.human,
        )
        for op in operators
    )
    try:
        return Marketplace(rules, params, fare)
    except ValueError as e:
        raise FleetError(str(e)) from e
