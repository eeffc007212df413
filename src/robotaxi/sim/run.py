"""Run a :class:`~.scenario.Scenario` end to end: load, simulate, measure, write."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from ..demand import Requests, load_demand
from ..dispatch import Marketplace, Rebalancing, make_policy
from ..errors import DemandError, DispatchError, FleetError, NetworkError, ScenarioError
from ..fleet import Fleet, Operator, Placement
from ..network import RoadNetwork, Router, SpeedProfile, load_network
from ..safety.insim import Disengagements
from ..safety.policy import UnsafeZones, unsafe_zones
from ..safety.records import FIRST_REPORTABLE_DATE as DMV_RULES_START
from .footprint import check_footprint
from .kpis import Kpis, compute_kpis
from .operators import build_marketplace, build_operators, fare_terms
from .outputs import check_output_folder, write_outputs
from .pricing import MarketRun, price_scenario, quote_choice
from .report import DevFigures, render_report
from .result import SimResult
from .scenario import DEFAULT_SCENARIO_TOML, Scenario
from .simulator import SimParams, Simulator

logger = logging.getLogger(__name__)

#: ``stage(name)`` when a stage starts, and ``progress(done, total)`` during the simulation.
StageHook = Callable[[str], None]
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, eq=False)
class SharedInputs:
    """Inputs built once and reused by several runs (a sweep), instead of each run loading its own.

    Each must be exactly what the run would have built itself (see :func:`build_router`, :func:`draw_demand` and
    :func:`draw_forecast_sample`); None means "build it". Runs never modify them.

    Parameters
    ----------
    router : Router, optional
        The scenario's network and routing table (with its speed profile).
    demand : Requests, optional
        The scenario's whole demand (before the time window), drawn with the scenario's seed.
    forecast_sample : Requests, optional
        The independent demand draw behind the ``demand_rates`` rebalancing forecast.
    """

    router: Router | None = None
    demand: Requests | None = None
    forecast_sample: Requests | None = None


@dataclass(frozen=True, slots=True, eq=False)
class RunOutput:
    """What :func:`run_scenario` produced."""

    result: SimResult
    kpis: Kpis
    folder: Path | None
    network: RoadNetwork
    timings_s: dict[str, float]
    market: MarketRun | None = None


def build_router(scenario: Scenario) -> Router:
    """The scenario's network, speed profile and routing table.

    Raises
    ------
    ScenarioError
        If the network or the profile cannot be loaded.
    """
    network, profile = _load_network(scenario)
    return Router(network, profile=profile)


def _load_network(scenario: Scenario) -> tuple[RoadNetwork, SpeedProfile]:
    try:
        network = load_network(None if scenario.network == "helsinki" else scenario.network)
        profile = (
            SpeedProfile.from_file(scenario.speed_profile, scenario.timezone)
            if scenario.speed_profile
            else SpeedProfile(timezone=scenario.timezone)
        )
    except NetworkError as e:
        raise ScenarioError(f"network: {e}") from e
    return network, profile


def draw_demand(scenario: Scenario, network: RoadNetwork) -> Requests:
    """The scenario's whole demand on ``network`` (before the time window), drawn with the scenario's seed."""
    demand_seed = np.random.SeedSequence(scenario.seed).spawn(2)[0]
    try:
        return load_demand(scenario.demand, network, np.random.default_rng(demand_seed))
    except (DemandError, ValueError) as e:
        raise ScenarioError(f"demand: {e}") from e


def needs_forecast_sample(scenario: Scenario) -> bool:
    """Whether the scenario's rebalancing forecast is built from an independent draw of its demand source."""
    rp = scenario.rebalancing
    return rp.enabled and rp.forecast == "demand_rates" and scenario.demand.kind in ("odcounts", "synthetic")


def draw_forecast_sample(scenario: Scenario, network: RoadNetwork) -> Requests | None:
    """The independent demand draw behind the ``demand_rates`` forecast of a stochastic demand source, or None
    when the scenario needs none (rebalancing off, another forecast, or recorded trips)."""
    if not needs_forecast_sample(scenario):
        return None
    other = np.random.SeedSequence(scenario.seed).spawn(3)[2]
    return load_demand(scenario.demand, network, np.random.default_rng(other))


def prepare(
    scenario: Scenario,
    stage: StageHook | None = None,
    inputs: SharedInputs | None = None,
    unsafe: dict[str, UnsafeZones] | None = None,
) -> tuple[Router, Requests, Fleet]:
    """Load the network, the demand and lay out the fleet (everything before the simulation).

    ``inputs`` supplies a router or demand built beforehand (the same as would be built here). ``unsafe``, when
    given, receives what each ``[operators.safety_policy]`` found (the zones taken out of the operator's area).

    Raises
    ------
    ScenarioError
        If a data file is missing or unusable (the message names it).
    """
    say = stage or (lambda _name: None)
    fleet_seed = np.random.SeedSequence(scenario.seed).spawn(2)[1]
    shared = inputs or SharedInputs()
    router = shared.router
    if router is None:
        say("network")
        network, profile = _load_network(scenario)
        say("routing table")
        router = Router(network, profile=profile)
    network = router.network
    say("demand")
    requests = shared.demand if shared.demand is not None else draw_demand(scenario, network)
    window = requests.window(scenario.sim.start_s, scenario.sim.end_s)
    if len(window) == 0:
        raise ScenarioError(
            f"time: no demand between {scenario.sim.start_s} s and {scenario.sim.end_s} s "
            f"({len(requests):,} requests outside the window)"
        )
    fp = scenario.fleet
    weights = None
    if fp is None:
        weights = np.bincount(window.o_node, minlength=network.n_nodes).astype(np.float64)
        found = safety_policies(scenario, router, say)
        if unsafe is not None:
            unsafe.update(found)
        try:
            ops = build_operators(scenario.operators, network, found)
        except FleetError as e:
            raise ScenarioError(str(e)) from e
        fleet = Fleet.build(ops, network, np.random.default_rng(fleet_seed), node_weights=weights)
        return router, window, fleet
    placement = Placement.UNIFORM
    if fp.placement == "demand":
        weights = np.bincount(window.o_node, minlength=network.n_nodes).astype(np.float64)
        placement = Placement.WEIGHTED
    op = Operator(fp.operator, fp.vehicles, kind=fp.kind, capacity=fp.capacity, placement=placement)
    fleet = Fleet.build((op,), network, np.random.default_rng(fleet_seed), node_weights=weights)
    return router, window, fleet


def marketplace(scenario: Scenario, fleet: Fleet, router: Router) -> Marketplace | None:
    """The engine's marketplace for a scenario with ``[[operators]]`` (None for a single ``[fleet]``).

    Raises
    ------
    ScenarioError
        If the objective needs something that is missing (``cheapest`` without the market module's fares).
    """
    if scenario.fleet is not None:
        return None
    fares = None
    if scenario.market.objective == "cheapest":
        terms = fare_terms(scenario.operators, scenario.pricing)
        if terms is None:
            raise ScenarioError(
                "marketplace.policy: 'cheapest' compares the operators' fares: give every [[operators]] table a "
                "fares table ([operators.fares]) or [pricing.fares] defaults (see docs/marketplace.md)"
            )
        from ..market import FareQuoter

        fares = FareQuoter(terms, router)
    try:
        return build_marketplace(fleet.operators, scenario.market, fare=fares)
    except FleetError as e:
        raise ScenarioError(str(e)) from e


def safety_policies(scenario: Scenario, router: Router, say: StageHook) -> dict[str, UnsafeZones]:
    """What each ``[operators.safety_policy]`` takes out of its operator's area (a previous run's flagged zones)."""
    out: dict[str, UnsafeZones] = {}
    for o in scenario.operators:
        if o.safety_policy is not None:
            say(f"safety policy of {o.name} (zones of {o.safety_policy.previous_run.name})")
            out[o.name] = unsafe_zones(o.name, o.safety_policy, router)
            logger.info("safety policy of %s: %s", o.name, out[o.name].describe())
    return out


def disengagements(scenario: Scenario, fleet: Fleet, router: Router, requests: Requests) -> Disengagements | None:
    """The simulator's disengagement hook for the operators with ``[operators.safety]`` (None when there is none).

    Raises
    ------
    ScenarioError
        If the demand has no calendar date (DMV records need one) or one before California's AV rules.
    """
    with_safety = [(i, o) for i, o in enumerate(scenario.operators) if o.safety is not None]
    if not with_safety:
        return None
    i, first = with_safety[0]
    day = requests.day_start
    if day is None or day.date() < DMV_RULES_START:
        raise ScenarioError(
            f"operators[{i}] {first.name!r}: safety: disengagement records need a calendar date "
            + (
                "(the demand has none)"
                if day is None
                else f"on or after {DMV_RULES_START} (the demand's is {day.date()})"
            ),
            hint="set `date = YYYY-MM-DD` in the scenario's [demand] table",
        )
    names = [op.name for op in fleet.operators]
    settings = {names.index(o.name): o.safety for _, o in with_safety if o.safety is not None}
    return Disengagements(
        router,
        fleet.operator,
        names,
        settings,
        seed=scenario.seed,
        scenario=scenario.name,
        day=day.date(),
        timezone=scenario.timezone,
    )


def epoch_of_day_start(requests: Requests, timezone: str) -> int:
    """Epoch second of the demand's ``day_start`` (local midnight in ``timezone``; 1970-01-01 if it has none)."""
    day = requests.day_start or dt.datetime(1970, 1, 1)
    return int(day.replace(tzinfo=ZoneInfo(timezone)).timestamp())


def build_rebalancing(
    scenario: Scenario, router: Router, requests: Requests, epoch0: int, sample: Requests | None = None
) -> Rebalancing | None:
    """The scenario's rebalancing set-up (zones, forecast, algorithm), or None when it is off.

    The ``demand_rates`` forecast is built from an independent draw of a stochastic demand source (same source,
    another seed: the source's expected rates, not the day being simulated); for recorded trips it is built from the
    records' own zone-by-hour totals, which the docs call out as an oracle of hourly totals. ``sample`` is that
    independent draw when it was made beforehand (:func:`draw_forecast_sample`).
    """
    rp = scenario.rebalancing
    if not rp.enabled:
        return None
    from ..dispatch import rebalance as rb

    network = router.network
    zones_file = scenario.demand.zones
    use_demand = rp.zones == "demand" or (rp.zones == "auto" and zones_file is not None)
    try:
        if use_demand:
            if zones_file is None:
                raise ScenarioError("rebalancing.zones: 'demand' needs demand.zones (a zone polygons file)")
            zoning = rb.Zoning.from_geojson(network, router, Path(zones_file))
        else:
            zoning = rb.Zoning.grid(network, router, rp.cell_m)
    except DispatchError as e:
        raise ScenarioError(f"rebalancing: {e}") from e
    forecast: rb.DemandForecast
    if rp.forecast == "moving_average":
        forecast = rb.MovingAverageForecast(zoning.n_zones, window_s=rp.window_s)
    else:
        if sample is None:
            sample = draw_forecast_sample(scenario, network)
        drawn = requests if sample is None else sample
        forecast = rb.RateTableForecast.from_requests(
            zoning, drawn.o_node, drawn.time_s % 86_400, n_days=1.0, slots=24, timezone=scenario.timezone
        )
    params = rb.RebalanceParams(
        interval_s=rp.interval_s,
        horizon_s=rp.horizon_s,
        max_share=rp.max_share,
        max_travel_s=rp.max_travel_s,
        unassigned_targets=rp.unassigned_targets,
    )
    return Rebalancing(rb.ZoneFlowRebalancer(params), zoning, forecast, horizon_s=rp.horizon_s)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def scenario_inputs(scenario: Scenario, network: RoadNetwork, requests: Requests) -> list[tuple[str, str]]:
    """What a run was given, as (label, value) rows for the report: network, demand, time, fleet and dispatch."""
    d = scenario.demand
    demand = d.kind + (f" from {d.path.name}" if d.path is not None else "")
    opts = ", ".join(f"{k} {v}" for k, v in d.options.items())
    rp = scenario.policy_params
    ep = scenario.engine
    rows = [
        (
            "Road network",
            f"{network.name}: {network.n_nodes:,} nodes, {network.n_edges:,} edges, {network.total_km:,.0f} km of road",
        ),
        (
            "Travel times",
            scenario.speed_profile.name if scenario.speed_profile else "free flow (no time-of-day profile)",
        ),
        ("Demand", demand + (f" ({opts})" if opts else "") + f": {len(requests):,} requests in the window"),
        ("Time window", f"{_clock(scenario.sim.start_s)}-{_clock(scenario.sim.end_s)} {scenario.timezone}"),
        ("Fleet", _fleet_text(scenario)),
        (
            "Dispatch",
            f"{scenario.policy}, batches of {rp.batch_seconds} s, {rp.candidates} candidate vehicles per "
            f"request, {rp.rounds} round(s)",
        ),
        (
            "Riders",
            f"wait at most {ep.max_wait_s / 60:g} min"
            + (f", delay at most {ep.max_delay_s / 60:g} min" if ep.max_delay_s >= 0 else "")
            + f"; boarding {ep.pickup_dwell_s} s, alighting {ep.dropoff_dwell_s} s",
        ),
    ]
    rb = scenario.rebalancing
    rows.append(
        (
            "Rebalancing",
            f"every {rb.interval_s / 60:g} min towards {rb.zones} zones ({rb.forecast} forecast), "
            f"at most {rb.max_share:.0%} of the fleet and {rb.max_travel_s / 60:g} min per move",
        )
        if rb.enabled
        else ("Rebalancing", "off")
    )
    rows.append(("Seed", str(scenario.seed)))
    return rows


def run_scenario(
    scenario: Scenario,
    *,
    output: Path | None = None,
    write: bool = True,
    stage: StageHook | None = None,
    progress: ProgressHook | None = None,
    inputs: SharedInputs | None = None,
    scenario_text: str | None = None,
    report: bool = True,
) -> RunOutput:
    """Run ``scenario`` and (unless ``write=False``) write its outputs to ``output or scenario.output``.

    ``inputs`` are parts built beforehand and shared between runs (a sweep); ``scenario_text`` is written as the
    run's ``scenario.toml`` (default: the scenario's source file, or the embedded default); ``report=False`` skips
    ``report.html`` (its plots take seconds, more than a small run).

    Raises
    ------
    RobotaxiError
        A ScenarioError for bad input, a SimulationError if the run fails; nothing is written then.
    """
    shared = inputs or SharedInputs()
    net = shared.router.network if shared.router is not None else None
    check_footprint(scenario, network=net)  # refuse, quoting the estimate, a run that cannot fit in memory (issue 11)
    say = stage or (lambda _name: None)
    if write:  # fail before a long run, not after it, if the folder may not be replaced
        check_output_folder(output or scenario.output)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    unsafe: dict[str, UnsafeZones] = {}
    router, requests, fleet = prepare(scenario, say, shared, unsafe)
    timings["prepare"] = time.perf_counter() - t0
    epoch0 = epoch_of_day_start(requests, scenario.timezone)
    rebalancing = build_rebalancing(scenario, router, requests, epoch0, shared.forecast_sample)
    say("simulation")
    params = SimParams(start_s=scenario.sim.start_s, end_s=scenario.sim.end_s, epoch0_s=epoch0, seed=scenario.seed)
    policy = make_policy(scenario.policy, scenario.policy_params)
    engine_market = marketplace(scenario, fleet, router)
    choice = quote_choice(scenario, router)  # riders who see quotes ([pricing.choice]), else None
    safety = disengagements(scenario, fleet, router, requests)  # [operators.safety] tables, else None
    sim = Simulator(
        router, fleet, requests, policy, params, scenario.engine, rebalancing, engine_market, choice, safety
    )
    result = sim.run(progress)
    timings["simulate"] = result.wall_s
    kpis = compute_kpis(result, scenario.name)
    market = None
    if scenario.pricing is not None:  # fares, commission and per-operator accounts (docs/marketplace.md)
        market = price_scenario(
            result,
            scenario.pricing,
            scenario.terms,
            router,
            demand_zones=scenario.demand.zones,
            choice=choice,
            max_wait_s=scenario.engine.max_wait_s,
        )
    folder = None
    if write:
        say("outputs")
        t1 = time.perf_counter()
        html = (
            render_report(
                result,
                kpis,
                title=f"robotaxi simulation: {scenario.name}",
                inputs=scenario_inputs(scenario, router.network, requests)
                + [(f"Safety policy ({name})", u.describe()) for name, u in unsafe.items()],
                network=router.network,
                dev=DevFigures(dict(timings)),
                market=market,
            )
            if report
            else None
        )
        text = scenario_text
        if text is None:
            text = scenario.source.read_text(encoding="utf-8") if scenario.source else DEFAULT_SCENARIO_TOML
        folder = write_outputs(
            result,
            router.network,
            output or scenario.output,
            kpis,
            report_html=html,
            scenario_text=text,
            market=market,
            safety_policy={name: u.as_dict() for name, u in unsafe.items()} or None,
        )
        timings["write"] = time.perf_counter() - t1
    logger.info("scenario %s: %s", scenario.name, timings)
    return RunOutput(result=result, kpis=kpis, folder=folder, network=router.network, timings_s=timings, market=market)


def _fleet_text(scenario: Scenario) -> str:
    fl = scenario.fleet
    if fl is not None:
        return (
            f"{fl.vehicles:,} {fl.kind.value} vehicles of {fl.capacity} seats ({fl.operator}), placed by {fl.placement}"
        )
    parts = []
    for o in scenario.operators:
        where = "anywhere" if not o.area else "in its area"
        when = (
            f"shifts {', '.join(f'{_clock(s.hours.start_s)}-{_clock(s.hours.end_s)}' for s in o.shifts)}"
            if o.shifts
            else ("all day" if o.hours.all_day else f"{_clock(o.hours.start_s)}-{_clock(o.hours.end_s)}")
        )
        parts.append(f"{o.name}: {o.vehicles:,} {o.kind.value} ({where}, {when})")
    return "; ".join(parts) + f"; matching: {scenario.market.objective}"
