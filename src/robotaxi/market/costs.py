"""Operator cost models: what running the vehicles costs, and what human drivers earn.

For an operator whose vehicles drove ``D`` metres and spent ``H`` vehicle-seconds in service (MDS states other than
``non_operational`` and ``removed``), and whose revenue after the platform's commission was ``R`` cents::

    distance          = round(per_km * D / 1000)
    vehicle time      = round(per_vehicle_hour * H / 3600)          # depreciation, insurance, parking, cleaning
    remote assistance = round(remote_assistance_per_hour * H / 3600)   # autonomous operators only
    safety drivers    = round(safety_driver_per_hour * H / 3600)       # autonomous operators only
    drivers           = round(driver_share * R)                        # human-driver pools only
    cost              = the sum;  margin = R - cost

Each term is rounded half up to the cent once, over the operator's totals. Remote assistance is costed per
vehicle-hour in service (a remote operator watches a share of the fleet whether or not it carries riders; the rate
is that share of an operator's hourly cost). Human drivers earn ``driver_share`` of the fares their pool earns
after commission (the way ride-hailing platforms pay drivers: the fare minus the platform's service fee), and their
earnings per hour are those earnings over the pool's driver-hours in service; drivers' own vehicle costs can be
put in ``per_km`` / ``per_vehicle_hour`` when the pool bears them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fleet import OperatorKind
from ._money import BP, MAX_CENTS

#: The cost terms, in the order the accounts list them.
COST_TERMS = ("distance", "vehicle_time", "remote_assistance", "safety_drivers", "drivers")


def _half_up(num: int, den: int) -> int:
    return (2 * num + den) // (2 * den)


@dataclass(frozen=True, slots=True)
class CostModel:
    """An operator's costs (see the module docstring).

    Parameters
    ----------
    per_km_cents : int
        Per kilometre driven, riders on board or not (energy, tyres, maintenance).
    per_vehicle_hour_cents : int
        Per vehicle-hour in service.
    remote_assistance_per_hour_cents : int
        Remote assistance per vehicle-hour in service (autonomous operators).
    safety_driver_per_hour_cents : int
        A safety driver on board, per vehicle-hour in service (autonomous operators).
    driver_share_bp : int
        Share of the operator's revenue after commission paid to its drivers, in basis points (human pools).
    """

    per_km_cents: int = 0
    per_vehicle_hour_cents: int = 0
    remote_assistance_per_hour_cents: int = 0
    safety_driver_per_hour_cents: int = 0
    driver_share_bp: int = 0

    def __post_init__(self) -> None:
        for name in (
            "per_km_cents",
            "per_vehicle_hour_cents",
            "remote_assistance_per_hour_cents",
            "safety_driver_per_hour_cents",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_CENTS:
                raise ValueError(f"{name}: must be whole cents in 0..{MAX_CENTS}, got {v!r}")
        s = self.driver_share_bp
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= BP:
            raise ValueError(f"driver_share_bp: must be an integer in 0..{BP}, got {s!r}")

    def cost_terms(self, kind: OperatorKind, *, driven_m: int, service_s: int, revenue_cents: int) -> dict[str, int]:
        """Each cost term in cents (keys :data:`COST_TERMS`), for an operator of ``kind`` over its totals.

        Terms that do not apply to the kind (remote assistance and safety drivers for human-driver pools, the
        drivers' share for autonomous operators) are zero.
        """
        for name, v in (("driven_m", driven_m), ("service_s", service_s), ("revenue_cents", revenue_cents)):
            if v < 0:
                raise ValueError(f"{name}: must be >= 0, got {v}")
        av = kind is OperatorKind.AUTONOMOUS
        return {
            "distance": _half_up(self.per_km_cents * driven_m, 1000),
            "vehicle_time": _half_up(self.per_vehicle_hour_cents * service_s, 3600),
            "remote_assistance": _half_up(self.remote_assistance_per_hour_cents * service_s, 3600) if av else 0,
            "safety_drivers": _half_up(self.safety_driver_per_hour_cents * service_s, 3600) if av else 0,
            "drivers": 0 if av else _half_up(self.driver_share_bp * revenue_cents, BP),
        }
