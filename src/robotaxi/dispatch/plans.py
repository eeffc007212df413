"""Vehicle stop plans: ordered pickups, dropoffs and repositioning targets, and their timing.

A stop is a tuple ``(kind, request, node)``: ``kind`` is :data:`PICKUP`, :data:`DROPOFF` or :data:`REPOSITION`,
``request`` the engine's dense request index (-1 for a repositioning target). A vehicle drives its plan in order.
Timing, the one rule used by the engine, every policy and the simulator:

* the vehicle leaves ``leg = (node, t0)`` for the first stop and arrives after ``times(node, stop, depart=t0)``;
* at a pickup it dwells ``pickup_dwell_s`` (boarding), at a dropoff ``dropoff_dwell_s`` (alighting), at a
  repositioning target not at all; it then leaves for the next stop at once;
* a vehicle already stopped at its first stop (``at_stop``) leaves it at ``t0`` (its leg starts at the end of the
  dwell).

Time windows: a pickup must be reached by the request's deadline (request time + max wait); a dropoff by its latest
dropoff (request time + direct ride time + max delay, after Alonso-Mora et al., PNAS 2017, where the delay
``Delta`` counts the wait too).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..network.travel import TravelTimes

PICKUP = 0
DROPOFF = 1
REPOSITION = 2
KIND_NAMES = ("pickup", "dropoff", "reposition")

Stop = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Dwell:
    """Seconds a vehicle stands at a pickup (boarding) and at a dropoff (alighting)."""

    pickup_s: int = 30
    dropoff_s: int = 30

    def __post_init__(self) -> None:
        if self.pickup_s < 0 or self.dropoff_s < 0:
            raise ValueError("dwell times must be >= 0")

    def at(self, kind: int) -> int:
        """Dwell at a stop of ``kind``."""
        return self.pickup_s if kind == PICKUP else self.dropoff_s if kind == DROPOFF else 0


def schedule(
    travel: TravelTimes, node: int, t0: int, stops: list[Stop], dwell: Dwell, *, at_stop: bool = False
) -> list[tuple[int, int]]:
    """``(arrival, departure)`` at each stop of a plan driven from ``(node, t0)``.

    With ``at_stop`` the vehicle is standing at ``stops[0]`` and leaves it at ``t0`` (arrival is reported as
    ``t0`` minus the dwell).
    """
    out: list[tuple[int, int]] = []
    t = t0
    here = node
    for i, (kind, _req, stop_node) in enumerate(stops):
        if i == 0 and at_stop:
            out.append((t0 - dwell.at(kind), t0))
            here = stop_node
            continue
        if stop_node != here:
            t += travel.time1(here, stop_node, t)
        arrive = t
        t = arrive + dwell.at(kind)
        out.append((arrive, t))
        here = stop_node
    return out
