"""Fare quotes on the direct route of a 3x3 grid city (200 m blocks, 20 s each), with and without surge."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.errors import MarketError
from robotaxi.fleet import OperatorKind
from robotaxi.market import FareQuoter, FareSchedule, OperatorTerms, SurgeParams, SurgePricer
from robotaxi.network import RoadNetwork, Router

ALPHA = OperatorTerms(
    "alpha", OperatorKind.AUTONOMOUS, FareSchedule(base_cents=100, per_km_cents=100, per_minute_cents=60)
)
POOL = OperatorTerms("pool", OperatorKind.HUMAN_DRIVEN, FareSchedule(per_km_cents=200, minimum_cents=300))
#: Nodes 5, 7 and 8 are zone 1, the rest zone 0.
ZONES = np.array([0, 0, 0, 0, 0, 1, 0, 1, 1])


def test_quotes_price_the_direct_route(grid3: RoadNetwork) -> None:
    quote = FareQuoter([ALPHA, POOL], Router(grid3))
    # 0 -> 8: 4 blocks, 800 m in 80 s: alpha 100 + 80 + 80 = 260; pool 160, raised to its 300 minimum. 0 -> 1: 200 m.
    assert quote(0, np.array([0, 0]), np.array([8, 1]), 0).tolist() == [260, 100 + 20 + 20]
    assert quote(1, np.array([0]), np.array([8]), 0).tolist() == [300]


def test_quotes_follow_the_pricers_current_surge(grid3: RoadNetwork) -> None:
    pricer = SurgePricer(SurgeParams(smoothing=1.0, sensitivity=1.0, step_bp=100), n_zones=2)
    quote = FareQuoter([ALPHA], Router(grid3), pricer=pricer, zone_of_node=ZONES)
    assert quote(0, np.array([0, 8]), np.array([8, 0]), 0).tolist() == [260, 260]
    pricer.update([2, 0], [1, 5])  # zone 0: ratio 2 -> 2.0x; zone 1: 1.0x
    assert quote.surge_bp(np.array([0, 8])).tolist() == [20_000, 10_000]
    assert quote(0, np.array([0, 8]), np.array([8, 0]), 0).tolist() == [520, 260]


def test_bad_quoters(grid3: RoadNetwork) -> None:
    router = Router(grid3)
    pricer = SurgePricer(SurgeParams(), n_zones=2)
    with pytest.raises(MarketError, match="no operators"):
        FareQuoter([], router)
    with pytest.raises(MarketError, match="zone_of_node"):
        FareQuoter([ALPHA], router, pricer=pricer)
    with pytest.raises(MarketError, match="shape"):
        FareQuoter([ALPHA], router, pricer=pricer, zone_of_node=ZONES[:3])
    with pytest.raises(MarketError, match="values"):
        FareQuoter([ALPHA], router, pricer=pricer, zone_of_node=ZONES * 5)
    with pytest.raises(MarketError, match="operator index 1"):
        FareQuoter([ALPHA], router)(1, np.array([0]), np.array([1]), 0)
