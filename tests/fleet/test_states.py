"""The MDS passenger-services state machine and fleet layout."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.errors import FleetError, IllegalTransitionError
from robotaxi.fleet import (
    TRANSITIONS,
    EventType,
    Fleet,
    Operator,
    Placement,
    VehicleState,
    check_transitions,
    next_state,
    restore,
)
from robotaxi.network import RoadNetwork

from ..conftest import shared_file

S, E = VehicleState, EventType


def test_a_whole_trip_walks_the_mds_states() -> None:
    s = S.NON_OPERATIONAL
    seen = []
    for ev in (E.SERVICE_START, E.RESERVATION_START, E.RESERVATION_STOP, E.TRIP_START, E.TRIP_STOP, E.TRIP_END):
        s = next_state(s, ev)
        seen.append(s)
    assert seen == [S.AVAILABLE, S.RESERVED, S.STOPPED, S.ON_TRIP, S.STOPPED, S.AVAILABLE]
    assert next_state(S.AVAILABLE, E.SERVICE_END) == S.NON_OPERATIONAL


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.RESERVED, E.TRIP_END),  # the rider never boarded
        (S.AVAILABLE, E.TRIP_START),
        (S.ON_TRIP, E.PASSENGER_CANCELLATION),  # too late to cancel: the rider is on board
        (S.NON_OPERATIONAL, E.RESERVATION_START),
        (S.REMOVED, E.SERVICE_START),
        (S.ON_TRIP, E.SERVICE_END),
    ],
)
def test_illegal_transitions_raise(state: VehicleState, event: EventType) -> None:
    with pytest.raises(IllegalTransitionError, match=event.mds):
        next_state(state, event)


def test_every_target_state_is_allowed_by_the_mds_schema() -> None:
    # event.yaml lists, per resulting vehicle_state, the event types that may lead there.
    allowed = {
        S.AVAILABLE: {
            "driver_cancellation",
            "passenger_cancellation",
            "provider_cancellation",
            "service_start",
            "trip_end",
        },
        S.NON_OPERATIONAL: {"maintenance", "maintenance_end", "recommissioned", "service_end"},
        S.RESERVED: {"reservation_start"},
        S.ON_TRIP: {"trip_enter_jurisdiction", "trip_resume", "trip_start"},
        S.STOPPED: {"reservation_stop", "trip_stop"},
        S.REMOVED: {"decommissioned", "maintenance_pick_up"},
        S.ELSEWHERE: {"trip_leave_jurisdiction"},
        S.NON_CONTACTABLE: {"comms_lost"},
    }
    for (_src, ev), dst in TRANSITIONS.items():
        assert ev.mds in allowed[dst], (ev.mds, dst.mds)


def _event_yaml_targets(text: str) -> dict[str, set[str]]:
    """``vehicle_state -> allowed event_types`` from MDS ``event.yaml`` (its oneOf list; no YAML library needed)."""
    targets: dict[str, set[str]] = {}
    state = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("const:"):
            state = stripped.split(":", 1)[1].strip()
            targets[state] = set()
        elif state is not None and stripped.startswith("- ") and not stripped.startswith("- title"):
            targets[state].add(stripped[2:].strip())
        elif stripped.startswith("if:"):
            break
    return targets


@pytest.mark.integration
def test_every_transition_is_allowed_by_the_mds_event_yaml() -> None:
    """The same check against the MDS 2.0 file itself (../shared/mds-openapi), not a copy of it."""
    text = shared_file("mds-openapi/models/modes/passenger-services/event.yaml").read_text(encoding="utf-8")
    allowed = _event_yaml_targets(text)
    assert set(allowed) == {s.mds for s in VehicleState}
    for (_src, ev), dst in TRANSITIONS.items():
        assert ev.mds in allowed[dst.mds], (ev.mds, dst.mds)
    assert all("comms_restored" in allowed[s.mds] for s in VehicleState if s is not S.NON_CONTACTABLE)


def test_comms_restored_returns_to_the_reported_state() -> None:
    lost = next_state(S.ON_TRIP, E.COMMS_LOST)
    assert lost == S.NON_CONTACTABLE
    assert restore(lost, S.ON_TRIP) == S.ON_TRIP
    with pytest.raises(IllegalTransitionError):
        restore(S.AVAILABLE, S.ON_TRIP)
    with pytest.raises(IllegalTransitionError):
        next_state(S.NON_CONTACTABLE, E.COMMS_RESTORED)


def test_vectorised_check_names_the_offender() -> None:
    states = np.array([S.AVAILABLE, S.AVAILABLE], dtype=np.int8)
    assert check_transitions(states, E.RESERVATION_START).tolist() == [S.RESERVED, S.RESERVED]
    with pytest.raises(IllegalTransitionError, match="1 vehicles: trip_end from reserved"):
        check_transitions(np.array([S.ON_TRIP, S.RESERVED], dtype=np.int8), E.TRIP_END)


def test_operator_validation() -> None:
    with pytest.raises(ValueError, match="vehicles must be > 0"):
        Operator("acme", 0)
    with pytest.raises(ValueError, match="capacity"):
        Operator("acme", 2, capacity=0)
    with pytest.raises(ValueError, match="start_nodes"):
        Operator("acme", 2, start_nodes=(1,))


def test_fleet_layout_is_seeded(grid3: RoadNetwork) -> None:
    ops = (Operator("a", 5), Operator("b", 3, capacity=6, start_nodes=(0, 1, 2)))
    f1 = Fleet.build(ops, grid3, np.random.default_rng(7))
    f2 = Fleet.build(ops, grid3, np.random.default_rng(7))
    assert np.array_equal(f1.start_node, f2.start_node)
    assert f1.operator.tolist() == [0] * 5 + [1] * 3
    assert f1.capacity.tolist() == [4] * 5 + [6] * 3
    assert f1.start_node[5:].tolist() == [0, 1, 2]
    assert len(f1) == 8


def test_fleet_errors(grid3: RoadNetwork) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(FleetError, match="at least one operator"):
        Fleet.build((), grid3, rng)
    with pytest.raises(FleetError, match="unique"):
        Fleet.build((Operator("a", 1), Operator("a", 1)), grid3, rng)
    with pytest.raises(FleetError, match="outside"):
        Fleet.build((Operator("a", 1, start_nodes=(99,)),), grid3, rng)
    with pytest.raises(FleetError, match="weights"):
        Fleet.build((Operator("a", 1, placement=Placement.WEIGHTED),), grid3, rng)
    w = np.zeros(grid3.n_nodes)
    w[4] = 1.0
    f = Fleet.build((Operator("a", 3, placement=Placement.WEIGHTED),), grid3, rng, node_weights=w)
    assert f.start_node.tolist() == [4, 4, 4]
