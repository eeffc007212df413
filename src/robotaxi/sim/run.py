"""Run a :class:`~.scenario.Scenario` end to end: load, simulate, measure, write."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..demand import Requests, load_demand
from ..dispatch import make_policy
from ..errors import DemandError, NetworkError, ScenarioError
from ..fleet import Fleet, Operator, Placement
from ..network import RoadNetwork, Router, SpeedProfile, load_network
from .kpis import compute_kpis
from .outputs import check_output_folder, write_outputs
from .report import render_report
from .result import SimResult
from .scenario import DEFAULT_SCENARIO_TOML, Scenario
from .simulator import Simulator

logger = logging.getLogger(__name__)

#: ``stage(name)`` when a stage starts, and ``progress(done, total)`` during the simulation.
StageHook = Callable[[str], None]
ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, eq=False)
class RunOutput:
    """What :func:`run_scenario` produced."""

    result: SimResult
    kpis: dict[str, Any]
    folder: Path | None
    network: RoadNetwork
    timings_s: dict[str, float]


def prepare(scenario: Scenario, stage: StageHook | None = None) -> tuple[Router, Requests, Fleet]:
    """Load the network, the demand and lay out the fleet (everything before the simulation).

    Raises
    ------
    ScenarioError
        If a data file is missing or unusable (the message names it).
    """
    say = stage or (lambda _name: None)
    demand_seed, fleet_seed = np.random.SeedSequence(scenario.seed).spawn(2)
    say("network")
    try:
        network = load_network(None if scenario.network == "helsinki" else scenario.network)
        profile = SpeedProfile.from_file(scenario.speed_profile) if scenario.speed_profile else None
    except NetworkError as e:
        raise ScenarioError(f"network: {e}") from e
    say("routing table")
    router = Router(network, profile=profile)
    say("demand")
    try:
        requests = load_demand(scenario.demand, network, np.random.default_rng(demand_seed))
    except (DemandError, ValueError) as e:
        raise ScenarioError(f"demand: {e}") from e
    window = requests.window(scenario.sim.start_s, scenario.sim.end_s)
    if len(window) == 0:
        raise ScenarioError(
            f"time: no demand between {scenario.sim.start_s} s and {scenario.sim.end_s} s "
            f"({len(requests):,} requests outside the window)"
        )
    fp = scenario.fleet
    weights = None
    placement = Placement.UNIFORM
    if fp.placement == "demand":
        weights = np.bincount(window.o_node, minlength=network.n_nodes).astype(np.float64)
        placement = Placement.WEIGHTED
    op = Operator(fp.operator, fp.vehicles, kind=fp.kind, capacity=fp.capacity, placement=placement)
    fleet = Fleet.build((op,), network, np.random.default_rng(fleet_seed), node_weights=weights)
    return router, window, fleet


def run_scenario(
    scenario: Scenario,
    *,
    output: Path | None = None,
    write: bool = True,
    stage: StageHook | None = None,
    progress: ProgressHook | None = None,
) -> RunOutput:
    """Run ``scenario`` and (unless ``write=False``) write its outputs to ``output or scenario.output``.

    Raises
    ------
    RobotaxiError
        A ScenarioError for bad input, a SimulationError if the run fails; nothing is written then.
    """
    say = stage or (lambda _name: None)
    if write:  # fail before a long run, not after it, if the folder may not be replaced
        check_output_folder(output or scenario.output)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    router, requests, fleet = prepare(scenario, say)
    timings["prepare"] = time.perf_counter() - t0
    say("simulation")
    sim = Simulator(router, fleet, requests, make_policy(scenario.policy, scenario.policy_params), scenario.sim)
    result = sim.run(progress)
    timings["simulate"] = result.wall_s
    kpis = compute_kpis(result)
    kpis["scenario"] = scenario.name
    folder = None
    if write:
        say("outputs")
        t1 = time.perf_counter()
        html = render_report(result, kpis, title=f"robotaxi simulation: {scenario.name}")
        text = scenario.source.read_text(encoding="utf-8") if scenario.source else DEFAULT_SCENARIO_TOML
        folder = write_outputs(
            result, router.network, output or scenario.output, kpis, report_html=html, scenario_text=text
        )
        timings["write"] = time.perf_counter() - t1
    logger.info("scenario %s: %s", scenario.name, timings)
    return RunOutput(result=result, kpis=kpis, folder=folder, network=router.network, timings_s=timings)
