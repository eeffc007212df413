"""The Ray backend (``robotaxi sweep --ray``; ``pip install 'robotaxi[ray]'``).

Each shared input (routing table, demand draws) is put into Ray's object store once, by this process; the runs get
references to them, so a worker node fetches each input once and its workers read the NumPy arrays in place
(zero-copy, read-only). Each run is one task of one CPU, never retried (a run that fails, or whose worker dies, is
recorded as failed). Runs write their outputs into the sweep's folder themselves, so on a cluster of several
machines that folder must be on a file system they all see.

Without an address a local Ray instance is started with ``workers`` CPUs (no dashboard) and stopped at the end; an
instance that is already running (``ray.init`` by the caller) is used as it is and left running.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SimulationError
from ..sim.run import SharedInputs
from .runner import DoneHook, RunRecord, RunTask, StartedHook, execute_run, failed_record, write_record


def _run_task(task: RunTask, router: Any, demand: Any, forecast: Any) -> RunRecord:
    # Ray resolves the object references given as arguments: these are the objects themselves.
    return execute_run(task, SharedInputs(router=router, demand=demand, forecast_sample=forecast))


class RayBackend:
    """Runs on a Ray cluster at ``address`` (``"auto"``, ``"ray://host:10001"``...), or a local instance."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers

    def run(self, tasks: Sequence[RunTask], inputs: Mapping[str, Any], started: StartedHook, done: DoneHook) -> None:
        try:
            import ray
        except ImportError as e:
            raise SimulationError(
                "the Ray backend needs Ray, which is not installed", hint="pip install 'robotaxi[ray]'"
            ) from e
        ours = not ray.is_initialized()
        if ours:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(
                    num_cpus=self.workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        pending: dict[Any, RunTask] = {}
        try:
            refs = {key: ray.put(value) for key, value in inputs.items()}
            remote = ray.remote(num_cpus=1, max_retries=0)(_run_task)
            pending |= {
                remote.remote(
                    task,
                    refs[task.keys.router],
                    refs[task.keys.demand],
                    refs[task.keys.forecast] if task.keys.forecast else None,
                ): task
                for task in tasks
            }
            started(int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        record: RunRecord = ray.get(ref)
                    except ray.exceptions.RayError as e:  # the worker died, or Ray lost the task
                        record = failed_record(task, None, f"Ray: {type(e).__name__}: {e}")
                        write_record(task.folder, record)
                    done(record)
        except BaseException:
            for ref in pending:  # interrupted: runs in flight must not go on writing into the sweep's folder
                ray.cancel(ref, force=True)
            if ours:
                ray.shutdown()
            raise
        if ours:
            ray.shutdown()
