"""The default backend: worker processes on this machine (:mod:`concurrent.futures`), nothing to install.

The shared inputs (routing table, demand draws) are built once in this process and the workers are *forked* from
it, so each worker sees them without a copy or a pickle: the operating system shares the pages until someone
writes to them, and nobody does (NumPy arrays' data is never touched by reference counting). Where ``fork`` does
not exist (Windows; macOS can but should not), workers are spawned and get one pickled copy each, once.

Forking a process that runs threads is unsafe, so every worker is forked before the caller may start a progress
display (``started``). Each worker runs one run at a time; at most ``workers`` runs are in flight, so when a worker
dies (killed for memory, say) the runs it may have held are known and recorded as failed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import SimulationError
from .runner import DoneHook, RunRecord, RunTask, StartedHook, execute_run, failed_record, shared_for, write_record

#: The shared inputs, in a worker process only: set once by the pool's initializer before any run (with fork they
#: arrive through the forked memory, not a pickle).
_WORKER_INPUTS: dict[str, Any] = {}


def _install(inputs: Mapping[str, Any]) -> None:
    _WORKER_INPUTS.clear()
    _WORKER_INPUTS.update(inputs)


def _run_in_worker(task: RunTask) -> RunRecord:
    return execute_run(task, shared_for(task, _WORKER_INPUTS))


def _ready() -> int:
    return os.getpid()


class LocalBackend:
    """Runs on ``workers`` processes of this machine (default: one per CPU)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers: must be >= 1, got {workers}")
        self.workers = workers

    def run(self, tasks: Sequence[RunTask], inputs: Mapping[str, Any], started: StartedHook, done: DoneHook) -> None:
        n = max(1, min(len(tasks), self.workers or os.cpu_count() or 1))
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(
            max_workers=n, mp_context=mp.get_context(method), initializer=_install, initargs=(inputs,)
        )
        try:
            # The first submit forks every worker (fork pools start them all at once), before any thread exists.
            pool.submit(_ready).result()
            started(n)
            self._drive(pool, tasks, n, done)
        except BaseException:
            for proc in list(getattr(pool, "_processes", {}).values()):  # a run in flight must not outlive us
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    @staticmethod
    def _drive(pool: ProcessPoolExecutor, tasks: Sequence[RunTask], n: int, done: DoneHook) -> None:
        queue = list(reversed(tasks))
        running: dict[Future[RunRecord], RunTask] = {}
        while queue or running:
            while queue and len(running) < n:
                task = queue.pop()
                running[pool.submit(_run_in_worker, task)] = task
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool as e:
                    # A worker died: every run in flight is lost with the pool. Record them; the rest can resume.
                    lost = [task, *running.values()]
                    for t in lost:
                        rec = failed_record(t, None, "its worker process died (killed, e.g. for lack of memory)")
                        write_record(t.folder, rec)
                        done(rec)
                    raise SimulationError(
                        f"a worker process died; {len(lost)} runs in flight recorded as failed, "
                        f"{len(queue)} not started",
                        hint="run the same sweep again to resume it (finished runs are skipped)",
                    ) from e
                done(record)
