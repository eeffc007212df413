"""Parameter sweeps: one base scenario, many runs with overrides, in parallel on this machine or on Ray."""

from .local import LocalBackend as LocalBackend
from .runner import Backend as Backend
from .runner import RunRecord as RunRecord
from .runner import SweepOutcome as SweepOutcome
from .runner import run_sweep as run_sweep
from .spec import RunSpec as RunSpec
from .spec import SweepSpec as SweepSpec
from .spec import apply_override as apply_override
from .spec import dump_toml as dump_toml


def ray_backend(address: str | None = None, workers: int | None = None) -> Backend:
    """The Ray backend (Ray itself is imported when the sweep starts: ``pip install 'robotaxi[ray]'``)."""
    from ._ray import RayBackend

    return RayBackend(address, workers)
