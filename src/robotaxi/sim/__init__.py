"""Simulation: the discrete-event digital twin that drives the dispatch engine, its outputs and reports."""

from .kpis import compute_kpis as compute_kpis
from .motion import Motion as Motion
from .motion import Position as Position
from .outputs import write_outputs as write_outputs
from .report import render_report as render_report
from .result import Outcome as Outcome
from .result import RequestOutcomes as RequestOutcomes
from .result import SimResult as SimResult
from .result import VehicleEvents as VehicleEvents
from .run import RunOutput as RunOutput
from .run import prepare as prepare
from .run import run_scenario as run_scenario
from .scenario import DEFAULT_SCENARIO_TOML as DEFAULT_SCENARIO_TOML
from .scenario import FleetParams as FleetParams
from .scenario import Scenario as Scenario
from .simulator import SimParams as SimParams
from .simulator import Simulator as Simulator
