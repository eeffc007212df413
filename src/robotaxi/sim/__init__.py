"""Simulation: the discrete-event digital twin that drives the dispatch engine, its outputs and reports."""

from .motion import Motion as Motion
from .motion import Position as Position
from .result import Outcome as Outcome
from .result import RequestOutcomes as RequestOutcomes
from .result import SimResult as SimResult
from .result import VehicleEvents as VehicleEvents
from .simulator import SimParams as SimParams
from .simulator import Simulator as Simulator
