"""The safety-aware service area: an autonomous operator leaves the zones where a previous run found its
disengagement rate significantly worse than a threshold (``[operators.safety_policy]``, ``docs/safety.md``).

A two-pass mechanism: run the scenario (with ``[operators.safety]``, or draw the events afterwards with ``robotaxi
safety simulate``), then run it again with::

    [operators.safety_policy]
    previous_run = "out/manhattan_marketplace_disengagements"   # a run folder with safety_events.parquet
    threshold_mpd = 1022                   # zones significantly below this many miles per disengagement leave
    zones = "taxi_zones.geojson"           # optional: default the scenario's [demand] zones

Before the second run starts, :func:`unsafe_zones` computes the operator's miles, events and miles per
disengagement by zone in the previous run (:func:`~.zones.zone_safety`: legs routed as driven, the exact 95 %
interval), and the zones whose interval lies wholly below the threshold are taken out of its service area (an
operator without an area gets "everywhere but those zones"). Requests there go to the other operators, the
marketplace's ordinary rule for a request outside an operator's area. Road outside every zone cannot be taken out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import SafetyError

if TYPE_CHECKING:
    from ..network import Router
    from .zones import ZoneSafety

__all__ = ["POLICY_KEYS", "SafetyPolicy", "UnsafeZones", "parse_safety_policy", "unsafe_zones"]

POLICY_KEYS = ("previous_run", "threshold_mpd", "zones")


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    """A validated ``[operators.safety_policy]`` table."""

    previous_run: Path
    threshold_mpd: float
    zones: Path


def parse_safety_policy(
    table: Any,
    *,
    where: str,
    base_dir: Path,
    zones_file: str | Path | None,
    resolve: Callable[[str, Path, str], Path],
) -> SafetyPolicy:
    """Check every key (``ValueError`` naming ``where`` and the key); input paths are resolved as the scenario's."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table [operators.safety_policy]")
    unknown = sorted(set(table) - set(POLICY_KEYS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known keys here: {', '.join(POLICY_KEYS)})")
    for key in ("previous_run", "threshold_mpd"):
        if key not in table:
            raise ValueError(f"{where}.{key}: missing")
    run = table["previous_run"]
    if not isinstance(run, str) or not run:
        raise ValueError(f"{where}.previous_run: expected the path of a run folder, got {run!r}")
    folder = resolve(run, base_dir, f"{where}.previous_run")
    if not folder.is_dir():
        raise ValueError(f"{where}.previous_run: {folder} is not a folder (a `robotaxi simulate` output)")
    if not (folder / "safety_events.parquet").is_file():
        raise ValueError(
            f"{where}.previous_run: {folder} has no safety_events.parquet (run it with [operators.safety], or draw "
            "events with `robotaxi safety simulate`)"
        )
    thr = table["threshold_mpd"]
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not (np.isfinite(thr) and thr > 0):
        raise ValueError(f"{where}.threshold_mpd: must be a number of miles > 0, got {thr!r}")
    if "zones" in table:
        z = table["zones"]
        if not isinstance(z, str) or not z:
            raise ValueError(f"{where}.zones: expected the path of a zones file, got {z!r}")
        zones = resolve(z, base_dir, f"{where}.zones")
    elif zones_file is not None:
        zones = Path(zones_file)
    else:
        raise ValueError(f"{where}.zones: needed (the scenario's [demand] has no zones file)")
    return SafetyPolicy(folder, float(thr), zones)


@dataclass(frozen=True, slots=True)
class UnsafeZones:
    """What the policy found for one operator: its zones in the previous run, the flagged ones, and the nodes
    they hold (to take out of its area)."""

    operator: str
    policy: SafetyPolicy
    lines: list[ZoneSafety]
    flagged: list[int]
    nodes: NDArray[np.bool_]
    removed: Any = None  # the union of the flagged zones' polygons (shapely), None when none is flagged

    def describe(self) -> str:
        n = len(self.flagged)
        ids = ", ".join(str(z) for z in self.flagged) or "none"
        return (
            f"{n} zone(s) taken out ({ids}): significantly below {self.policy.threshold_mpd:,.0f} miles per "
            f"disengagement in {self.policy.previous_run}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "previous_run": str(self.policy.previous_run),
            "threshold_mpd": self.policy.threshold_mpd,
            "zones_file": str(self.policy.zones),
            "flagged": list(self.flagged),
            "nodes_taken_out": int(self.nodes.sum()),
            "zones": [{"zone": z.zone, "flagged": z.flagged, **z.mpd.as_dict()} for z in self.lines],
        }


def unsafe_zones(operator: str, policy: SafetyPolicy, router: Router) -> UnsafeZones:
    """The zones of ``policy.previous_run`` where ``operator`` disengaged significantly too often.

    Raises
    ------
    SafetyError
        If the previous run cannot be read, is not on this network, or has no vehicle of ``operator`` (the message
        names the operator and the run).
    """
    from ..demand.zones import Zones
    from ..errors import DemandError
    from .runs import RunData, RunInfo, read_events
    from .zones import zone_safety

    what = f"operator {operator!r}: safety_policy.previous_run {policy.previous_run}"
    info = RunInfo.from_folder(policy.previous_run)
    data = RunData.read(info)
    events = read_events(policy.previous_run)
    if events is None:  # checked when parsed; the folder may have changed since
        raise SafetyError(f"{what}: no safety_events.parquet")
    net = router.network
    if data.from_node.size and max(int(data.from_node.max()), int(data.to_node.max())) >= net.n_nodes:
        raise SafetyError(f"{what}: its legs use nodes that are not in this network (another network?)")
    if operator not in set(data.operator_of.values()):
        raise SafetyError(f"{what}: the run has no vehicle of this operator")
    try:
        zones = Zones.from_file(policy.zones)
    except DemandError as e:
        raise SafetyError(f"operator {operator!r}: safety_policy.zones: {e}") from e
    mid_lon = (net.lon[net.tail] + net.lon[net.head]) / 2
    mid_lat = (net.lat[net.tail] + net.lat[net.head]) / 2
    edge_zone = np.asarray(zones.locate(mid_lon, mid_lat), dtype=np.int64)
    try:
        lines = zone_safety(data, events, router, edge_zone, threshold_mpd=policy.threshold_mpd, operators=[operator])
    except ValueError as e:
        raise SafetyError(f"{what}: {e}") from e
    flagged = sorted(z.zone for z in lines if z.flagged and z.zone >= 0)
    node_zone = np.asarray(zones.locate(net.lon, net.lat), dtype=np.int64)
    removed = None
    if flagged:
        import shapely

        geoms = [g for z, g in zip(zones.ids.tolist(), zones.geometries, strict=True) if z in set(flagged)]
        removed = shapely.union_all(np.asarray(geoms, dtype=object))
    return UnsafeZones(operator, policy, lines, flagged, np.isin(node_zone, flagged), removed)
