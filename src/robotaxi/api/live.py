"""The live service: one dispatch engine on the wall clock, one writer thread, the database as the truth.

Every change goes through the **engine thread**: HTTP handlers put a command (a function of a :class:`Ctx`) on a
queue and wait for its result. The thread takes the commands waiting (and a :class:`~robotaxi.dispatch.Tick` every
``tick_s`` seconds), runs them in order inside **one database transaction**, writes the engine's snapshot in the
same transaction, commits, and only then answers the callers. So:

* a ride request is stored (with the engine's decision about it) before it is confirmed, and whatever was
  confirmed is in the database;
* the engine restored from the stored snapshot agrees with every other table, whenever the process died
  (SIGKILL included): a batch that did not commit was never acknowledged;
* a command refused (bad input: :class:`~robotaxi.errors.ServiceError`, or an engine refusal:
  :class:`~robotaxi.errors.DispatchError`) changes nothing: commands validate completely, then hand the engine one
  input (which itself changes nothing when it raises), then write;
* anything unexpected (a database error) rolls the whole batch back, restores the engine from the last committed
  snapshot and answers every command of the batch with 503: retry.

Reads never touch the engine: handlers read the database (vehicle plans and states are written there).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import queue
import sys
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from ..errors import DispatchError, RobotaxiError, ServiceError, StoreError
from ..store import Database, tables
from ._grouping import GroupedCommand
from .auth import Role, TokenIssuer, load_or_create_secret, new_api_key
from .commands import TelemetryCommand
from .hours import OperatingHours
from .ledger_sync import LedgerSync
from .offers import OfferHub
from .operators import market_rules
from .settings import ServiceSettings

if TYPE_CHECKING:
    from ..dispatch import Decisions, DispatchEngine, Event
    from ..network import RoadNetwork

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: The interpreter's thread switch interval while the service runs (see LiveService.start).
GIL_SWITCH_S = 0.001
#: Commands taken in one transaction at most.
MAX_COMMANDS_PER_BATCH = 512


@dataclass(slots=True)
class Ctx:
    """What a command sees: the open transaction, the engine, the service, and the time of the batch."""

    conn: sa.Connection
    engine: DispatchEngine
    service: LiveService
    now_s: int
    now_ms: int
    dirty: bool = False
    ledger_pending: bool = False
    touched: set[int] = field(default_factory=set)

    reported: set[int] = field(default_factory=set)
    snapshot_saved: bool = False
    #: Messages for operators (offers made and withdrawn), published once the batch has committed.
    notices: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def handle(self, event: Event, then: Callable[[Decisions], None] | None = None) -> Decisions:
        """Hand the engine one input, run ``then`` (the command's own writes), record the decisions.

        A refusal by the engine (:class:`DispatchError`) changes nothing. Once the engine has accepted the input,
        any failure is fatal to the batch (the engine is restored from the last committed snapshot).
        """
        from ._effects import record_decisions

        decisions = self.engine.handle(event)  # raises DispatchError and changes nothing on bad input
        self.dirty = True
        try:
            self.service.log_input(self.conn, "event", event)
            if then is not None:
                then(decisions)
            record_decisions(self, decisions)
        except Exception as e:
            raise EngineDivergedError(f"writing an accepted engine input failed: {e}") from e
        finally:
            self.touched.clear()
            self.reported.clear()
        return decisions


class _Refused(Exception):
    """Internal: leaves a transaction with a rollback, and the answer for its caller."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(str(error))
        self.error = error


class EngineDivergedError(RuntimeError):
    """The engine accepted an input whose database writes failed: the batch must roll back and the engine be
    restored (never a client error)."""


@dataclass(slots=True, eq=False)
class _Command:
    fn: Callable[[Ctx], Any]
    #: A thread's caller (:meth:`LiveService.submit`) ...
    future: Future[Any] | None = None
    #: ... or an event loop's (:meth:`LiveService.run`): answered with one hop to the loop per batch.
    waiter: asyncio.Future[Any] | None = None


def load_network(spec: str) -> RoadNetwork:
    """``helsinki``, ``grid:ROWSxCOLS`` or a network file."""
    from ..network import grid_city
    from ..network import load_network as load

    if spec.startswith("grid:"):
        try:
            rows, cols = (int(x) for x in spec[5:].lower().split("x"))
        except ValueError as e:
            raise ServiceError(f"--network: {spec!r} is not grid:ROWSxCOLS", status=500) from e
        return grid_city(rows, cols)
    return load(None if spec == "helsinki" else spec)


class LiveService:
    """The running platform: database, network, engine thread, token issuer."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.clock = settings.clock
        self._queue: queue.Queue[_Command | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.admin_key: str | None = None
        self.started = False
        self.offers_hub = OfferHub()
        #: Commands taken off the queue while a telemetry batch ran (:meth:`_riders_meanwhile`), for the next batch.
        self._held: list[_Command | None] = []
        #: Telemetry batches in transactions of their own, rides committed in between (PostgreSQL; see _split).
        self._split_telemetry = False

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Open the database, load the network, restore the engine and start the engine thread."""
        from ..network import Router

        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        # The engine thread releases the GIL at every database call; with the default 5 ms switch interval it then
        # waits up to 5 ms to get it back from the event loop each time (dozens of calls per batch). 1 ms keeps
        # the one writer moving while the event loop parses bodies; the process is this service's alone.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.db = Database.open(s.url, sqlite_synchronous=s.sqlite_synchronous)
        # SQLite has one writer lock per database: a second transaction of the engine thread would wait for its own.
        self._split_telemetry = not self.db.is_sqlite
        self.tokens = TokenIssuer(load_or_create_secret(s.data_dir / "jwt-secret"), ttl_s=s.token_ttl_s, clock=s.clock)
        self.network = load_network(s.network)
        self.router = Router(self.network, workers=1)
        self.hours = OperatingHours(s.timezone)
        self.engine = self._load_engine()
        self._bootstrap_admin()
        self.ledger = LedgerSync(s.data_dir, s.ledger_origin, s.checkpoint_interval_s)
        self._thread = threading.Thread(target=self._run, name="robotaxi-engine", daemon=True)
        self._thread.start()
        self.started = True
        logger.info(
            "service started: %s, %s, %d vehicles", self.db.display_url, self.network.name, self.engine.n_vehicles
        )

    def stop(self) -> None:
        """Finish the commands queued, stop the engine thread, close the database."""
        if not self.started:
            return
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.db.close()
        self.started = False

    @property
    def alive(self) -> bool:
        """The engine thread runs and takes commands."""
        return self.started and self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    def _load_engine(self) -> DispatchEngine:
        from ..dispatch import DispatchEngine, EngineParams, make_policy

        with self.db.connect() as conn:
            row = conn.execute(sa.select(tables.engine_state).where(tables.engine_state.c.id == 1)).first()
            last = conn.execute(sa.select(sa.func.max(tables.ride_requests.c.request_id))).scalar_one()
            seq = conn.execute(sa.select(sa.func.max(tables.vehicle_events.c.seq))).scalar_one()
            log = tables.engine_log
            since = int(row.log_seq) if row is not None else 0
            entries = conn.execute(sa.select(log).where(log.c.seq > since).order_by(log.c.seq)).all()
        self._next_request_id = int(last or 0) + 1
        self._next_event_seq = int(seq or 0) + 1
        self._snapshot_at = float("-inf") if row is None else self.clock()
        self._log_seq = int(entries[-1].seq) if entries else since
        if row is None and entries:
            raise StoreError("the engine log holds inputs but there is no engine snapshot to replay them on")
        if row is None:
            now = int(self.clock())
            engine = DispatchEngine(
                self.router,
                make_policy(self.settings.policy),  # type: ignore[arg-type]
                EngineParams(max_wait_s=self.settings.max_wait_s),
                start_s=now,
            )
            with self.db.connect() as conn:
                engine.set_market(market_rules(conn, self.network))
            return engine
        if row.network != self.settings.network:
            raise StoreError(
                f"the database holds an engine on network {row.network!r}, not {self.settings.network!r}",
                hint="start with the same --network, or use another --database",
            )
        try:
            engine = DispatchEngine.restore(row.snapshot, self.router)
        except DispatchError as e:
            raise StoreError(f"the stored engine snapshot cannot be restored: {e}") from e
        try:
            for entry in entries:  # the inputs accepted since the snapshot, in order: the engine is deterministic
                replay(engine, entry.kind, entry.payload)
        except DispatchError as e:
            raise StoreError(f"engine log entry {entry.seq} cannot be replayed: {e}") from e
        if entries:
            logger.info("engine restored: snapshot plus %d logged inputs replayed", len(entries))
        return engine

    def _bootstrap_admin(self) -> None:
        """On first start (no admin credential), create one and write it to ``<data_dir>/admin.key`` (0600)."""
        import os

        with self.db.begin() as conn:
            has = conn.execute(
                sa.select(sa.func.count()).select_from(tables.credentials).where(tables.credentials.c.role == "admin")
            ).scalar_one()
            if has:
                return
            key_id, key, digest = new_api_key()
            conn.execute(
                tables.credentials.insert().values(
                    key_id=key_id,
                    secret_sha256=digest,
                    role=Role.ADMIN.value,
                    subject="admin",
                    created_ms=int(self.clock() * 1000),
                )
            )
        path = self.settings.data_dir / "admin.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        self.admin_key = key
        logger.warning("first start: the admin API key is in %s", path)

    def next_request_id(self) -> int:
        """A new ride request id (only the engine thread calls this)."""
        rid = self._next_request_id
        self._next_request_id += 1
        return rid

    def log_input(self, conn: sa.Connection, kind: str, value: Any) -> None:
        """Append an input the engine accepted to the engine log (only the engine thread calls this)."""
        self._log_seq += 1
        payload = pickle.dumps(value, protocol=5)
        conn.execute(tables.engine_log.insert().values(seq=self._log_seq, kind=kind, payload=payload))

    def next_event_seq(self) -> int:
        """The recording order of a new vehicle event (only the engine thread calls this)."""
        seq = self._next_event_seq
        self._next_event_seq += 1
        return seq

    # ------------------------------------------------------------------ submitting work
    def submit(self, fn: Callable[[Ctx], T]) -> Future[T]:
        """Queue a command for the engine thread."""
        if not self.started or self._stopping.is_set():
            raise ServiceError("the service is shutting down", status=503, code="unavailable")
        fut: Future[T] = Future()
        self._queue.put(_Command(fn, future=fut))
        return fut

    async def run(self, fn: Callable[[Ctx], T]) -> T:
        """Run a command on the engine thread and wait for its committed result."""
        if not self.started or self._stopping.is_set():
            raise ServiceError("the service is shutting down", status=503, code="unavailable")
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Command(fn, waiter=waiter))
        return await waiter

    def call(self, fn: Callable[[Ctx], T], timeout: float = 60.0) -> T:
        """The blocking form of :meth:`run`."""
        return self.submit(fn).result(timeout)

    # ------------------------------------------------------------------ the engine thread
    def _run(self) -> None:
        self.ledger.open()
        try:
            self._loop()
        finally:
            self.ledger.close()

    def _loop(self) -> None:
        tick_s = self.settings.tick_s
        next_tick = self.clock() + tick_s
        while True:
            batch, stop = self._take(max(0.0, next_tick - self.clock()))
            tick = self.clock() >= next_tick
            if tick:
                next_tick = max(next_tick + tick_s, self.clock() + tick_s)
            if batch or tick:
                try:
                    for part, with_tick in _lanes(batch, tick, split_telemetry=self._split_telemetry):
                        if len(part) == 1 and isinstance(part[0].fn, TelemetryCommand) and self._split_telemetry:
                            self._split(part[0])
                        else:
                            self._process(part, with_tick)
                except Exception:  # never let the engine thread die
                    logger.exception("engine thread: unexpected error")
            if stop:
                return

    def _take(self, wait: float) -> tuple[list[_Command], bool]:
        """The commands to run next (those held back while a telemetry batch ran first, then the queue's, waiting
        up to ``wait`` s for one), and whether the service stops after them."""
        batch: list[_Command] = []
        stop = False
        held, self._held = self._held, []
        for cmd in held:  # taken off the queue while a telemetry batch ran: they were first in it
            if cmd is None:
                return batch, True
            batch.append(cmd)
        if not batch:
            try:
                first = self._queue.get(timeout=wait)
                if first is None:
                    stop = True
                else:
                    batch.append(first)
            except queue.Empty:
                pass
        while len(batch) < MAX_COMMANDS_PER_BATCH:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stop = True
                break
            batch.append(more)
        return batch, stop

    def _process(self, batch: list[_Command], tick: bool) -> None:
        from ..dispatch import Tick

        now = self.clock()
        now_s = max(self.engine.now, int(now))
        now_ms = max(now_s * 1000, int(now * 1000))
        results: list[tuple[_Command, bool, Any]] = []
        try:
            with self.db.begin() as conn:
                ctx = Ctx(conn, self.engine, self, now_s, now_ms)
                self.hours.reconcile(ctx)  # operators opening or closing (a tick at least every tick_s)
                for group in _groups(batch):
                    fn = group[0].fn
                    if isinstance(fn, GroupedCommand):
                        outcomes = type(fn).run_group(ctx, [cast(GroupedCommand, c.fn) for c in group])
                        results.extend((c, ok, v) for c, (ok, v) in zip(group, outcomes, strict=True))
                        continue
                    try:
                        results.append((group[0], True, fn(ctx)))
                    except (ServiceError, DispatchError) as e:
                        results.append((group[0], False, _as_service_error(e)))
                if tick:
                    ctx.handle(Tick(now_s))
                if ctx.dirty and now - self._snapshot_at >= self.settings.snapshot_interval_s:
                    self._save_snapshot(ctx)
        except Exception as e:
            logger.exception("engine batch failed; restoring the engine from the last committed snapshot")
            err = ServiceError(
                f"the service could not store this change, retry ({type(e).__name__})", status=503, code="unavailable"
            )
            _answer([(cmd, False, err) for cmd in batch])
            self._restore_engine()
            return
        if ctx.snapshot_saved:
            self._snapshot_at = now
        _answer(results)
        for operator_id, message in ctx.notices:
            self.offers_hub.publish(operator_id, message)
        if ctx.ledger_pending:
            self.ledger.pending = True
        if tick or self.ledger.pending:
            self.ledger.sync(self.db, now)

    def _split(self, cmd: _Command) -> None:
        """A telemetry batch in a transaction of its own, with the ride requests that arrive meanwhile committed and
        answered between its insert and its engine input (PostgreSQL): a rider waits for at most one of those two
        steps, not for the whole batch. The batch stays all or nothing (one transaction; a refusal or a failure
        after the insert rolls it back) and the engine log keeps the order the engine saw: the rides' inputs, then
        the batch's. The rides' transactions can never wait for this one: it holds no lock but the points it
        inserted and the key-share locks of their foreign key, which a ride's vehicle update does not conflict with
        (it changes no key); that is why nothing else runs in this transaction (a tick's writes would lock
        vehicle rows the rides may update)."""
        fn = cast(TelemetryCommand, cmd.fn)
        results: list[tuple[_Command, bool, Any]] = []
        try:
            with self.db.begin() as conn:
                now = self.clock()
                now_s = max(self.engine.now, int(now))
                ctx = Ctx(conn, self.engine, self, now_s, max(now_s * 1000, int(now * 1000)))
                try:
                    checked = fn.check(ctx)
                except (ServiceError, DispatchError) as e:
                    results.append((cmd, False, _as_service_error(e)))
                else:
                    fn.insert(ctx, checked)
                    self._riders_meanwhile()
                    # The rides moved the engine's clock and may have restored the engine: take both as they are.
                    ctx.engine = self.engine
                    ctx.now_s = max(ctx.now_s, self.engine.now)
                    try:
                        results.append((cmd, True, fn.apply(ctx, checked, inserted=True)))
                    except DispatchError as e:  # refused, nothing changed in the engine: undo the insert
                        raise _Refused(_as_service_error(e)) from e
                    if now - self._snapshot_at >= self.settings.snapshot_interval_s:
                        self._save_snapshot(ctx)
        except _Refused as r:
            _answer([(cmd, False, r.error)])
            return
        except Exception as e:
            logger.exception("telemetry batch failed; restoring the engine from the last committed snapshot")
            err = ServiceError(
                f"the service could not store this change, retry ({type(e).__name__})", status=503, code="unavailable"
            )
            _answer([(cmd, False, err)])
            self._restore_engine()
            return
        if ctx.snapshot_saved:
            self._snapshot_at = now
        _answer(results)

    def _riders_meanwhile(self) -> None:
        """Take every command waiting now; run the ride requests among them at once (their own transaction, on
        another connection of the write pool), and keep the others, in order, for the next batch. Commands waiting
        together were all unanswered at once: any order among them is one their callers could have seen."""
        rides: list[_Command] = []
        while True:
            try:
                cmd = self._queue.get_nowait()
            except queue.Empty:
                break
            if cmd is not None and isinstance(cmd.fn, GroupedCommand):
                rides.append(cmd)
            else:
                self._held.append(cmd)
        if rides:
            self._process(rides, False)

    def _restore_engine(self) -> None:
        """Rebuild the engine from the last committed snapshot, retrying until the database answers: the engine
        must never run on with changes that were rolled back."""
        delay = 0.1
        self.hours.invalidate()
        while True:
            try:
                self.engine = self._load_engine()
                return
            except (RobotaxiError, sa.exc.SQLAlchemyError):
                logger.exception("cannot restore the engine yet; retrying in %.1f s", delay)
                if self._stopping.wait(delay):
                    raise
                delay = min(delay * 2, 5.0)

    def _save_snapshot(self, ctx: Ctx) -> None:
        """Store the engine's snapshot as of the last logged input, and drop the log entries it covers."""
        t = tables.engine_state
        values = {
            "saved_ms": ctx.now_ms,
            "engine_now_s": self.engine.now,
            "network": self.settings.network,
            "snapshot": self.engine.snapshot(),
            "log_seq": self._log_seq,
        }
        done = ctx.conn.execute(t.update().where(t.c.id == 1).values(**values)).rowcount
        if not done:
            ctx.conn.execute(t.insert().values(id=1, **values))
        ctx.conn.execute(tables.engine_log.delete().where(tables.engine_log.c.seq <= self._log_seq))
        ctx.snapshot_saved = True


def _lanes(batch: list[_Command], tick: bool, *, split_telemetry: bool = False) -> list[tuple[list[_Command], bool]]:
    """The batch as transactions: the grouped commands (ride requests) first, in a transaction of their own, then
    the others with the tick. A rider then waits for the batch the engine thread was running when the request came
    in, not also for the telemetry batches that came in with it (1,000 rows each). The commands taken together were
    all waiting, unanswered, at once: any order among them is one their callers could have seen.
    ``split_telemetry``: each telemetry batch last, alone (:meth:`LiveService._split`), in the order received."""
    alone = [c for c in batch if isinstance(c.fn, TelemetryCommand)] if split_telemetry else []
    if alone:
        taken = {id(c) for c in alone}
        rest = [c for c in batch if id(c) not in taken]
        return [*(_lanes(rest, tick) if rest or tick else []), *(([c], False) for c in alone)]
    fast = [c for c in batch if isinstance(c.fn, GroupedCommand)]
    if not fast or len(fast) == len(batch):
        return [(batch, tick)]
    return [(fast, False), ([c for c in batch if not isinstance(c.fn, GroupedCommand)], tick)]


def _groups(batch: list[_Command]) -> list[list[_Command]]:
    """The batch in order, with neighbouring :class:`GroupedCommand`\\ s of one class (and distinct keys) together;
    any other command alone."""
    out: list[list[_Command]] = []
    keys: set[Hashable] = set()
    for cmd in batch:
        fn = cmd.fn
        if isinstance(fn, GroupedCommand):
            last = out[-1][0].fn if out else None
            key = fn.group_key()
            if type(last) is type(fn) and key not in keys:
                out[-1].append(cmd)
                keys.add(key)
                continue
            keys = {key}
        out.append([cmd])
    return out


def replay(engine: DispatchEngine, kind: str, payload: bytes) -> None:
    """Apply one logged input again (the bytes are the platform's own log, never a client's)."""
    value = pickle.loads(payload)
    if kind == "event":
        engine.handle(value)
    elif kind == "market":
        engine.set_market(value)
    else:
        raise DispatchError(f"unknown engine log entry kind {kind!r}")


def _answer(results: list[tuple[_Command, bool, Any]]) -> None:
    """Answer the callers of a batch: threads directly, the event loop's callers in one hop per loop (one wake-up
    of the loop for the whole batch, not one per caller)."""
    hops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for cmd, ok, value in results:
        if cmd.waiter is not None:
            hops.setdefault(cmd.waiter.get_loop(), []).append((cmd.waiter, ok, value))
        elif cmd.future is not None:
            _settle(cmd.future, ok, value)
    for loop, answers in hops.items():
        try:
            loop.call_soon_threadsafe(_settle_waiters, answers)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            logger.debug("an event loop went away before its answers")


def _settle_waiters(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for waiter, ok, value in answers:
        if waiter.done():  # the caller went away (cancelled: a client disconnect)
            continue
        if ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)


def _settle(fut: Future[Any], ok: bool, value: Any) -> None:
    """Answer a caller; one that went away (its future cancelled: a client disconnect) is not an error."""
    try:
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
    except InvalidStateError:
        logger.debug("a caller went away before its answer")


def _as_service_error(e: Exception) -> ServiceError:
    if isinstance(e, ServiceError):
        return e
    return ServiceError(str(e), status=409, code="refused_by_dispatch")


def wall_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)
