"""The service's settings: one typed, validated object, built by the CLI (or a test) and injected."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..market.fares import FareSchedule


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """How ``robotaxi serve`` runs.

    Parameters
    ----------
    data_dir : Path
        Where the SQLite file (by default), the token-signing secret and the first admin key live.
    database_url : str, optional
        ``sqlite:///PATH`` or ``postgresql://...``; default ``sqlite:///<data_dir>/robotaxi.db``.
    network : str
        ``helsinki`` (the embedded default), ``grid:ROWSxCOLS`` (a synthetic grid city, for tests and demos) or a
        network file (``robotaxi.network.load_network``).
    policy : str
        Dispatch policy name (``immediate``, ``batch``, ``insertion``, ``pool``).
    tick_s : float
        Seconds between engine ticks on the wall clock.
    max_wait_s : int
        Longest a rider waits for pickup before the engine gives up.
    token_ttl_s : int
        Lifetime of bearer tokens.
    max_future_ms : int
        How far ahead of the server's clock a reported timestamp may be (clock skew) before it is refused.
    snap_limit_m : float
        Farthest a position may be from the network.
    max_body_bytes : int
        Largest request body accepted (413 above).
    max_batch : int
        Most rows in one telemetry or event batch.
    fares : FareSchedule, optional
        The platform's fare schedule for quotes (integer cents); ``None``: rides are not priced.
    currency : str
        ISO 4217 code of the fares.
    ledger_origin : str
        Name of the ledger and of its signing key (the first line of its checkpoints).
    checkpoint_interval_s : float
        Shortest time between two signed checkpoints (one is signed when the ledger grew).
    mds_page_size : int
        Rows per page of the paged MDS endpoints (``/vehicles``, ``/vehicles/status``, ``/events/recent``).
    timezone : str
        IANA time zone of the platform's local calendar (the DMV reports' dates and months).
    snapshot_interval_s : float
        Shortest time between two stored engine snapshots; in between, every batch stores only the engine inputs
        it accepted (``engine_log``), replayed on restore (0: a snapshot with every batch).
    long_poll_max_s : float
        Longest the server holds a long-poll for offers (``wait_s`` above it waits this long); keep it below the
        idle timeout of any proxy in front of the service.
    sqlite_synchronous : {"NORMAL", "FULL"}
        SQLite only (WAL mode): ``NORMAL`` (default) acknowledges a commit once it is in the WAL file, which survives
        the process being killed; ``FULL`` also fsyncs every commit, surviving an operating-system crash or a
        power cut, at the cost of an fsync per engine batch (anything else: ``StoreError`` when the service starts).
    clock : callable
        Epoch seconds now (injected by tests).
    """

    data_dir: Path
    database_url: str | None = None
    network: str = "helsinki"
    policy: str = "immediate"
    tick_s: float = 1.0
    max_wait_s: int = 600
    token_ttl_s: int = 3600
    max_future_ms: int = 5_000
    snap_limit_m: float = 250.0
    max_body_bytes: int = 1_048_576
    max_batch: int = 1_000
    fares: FareSchedule | None = None
    currency: str = "USD"
    ledger_origin: str = "robotaxi.local/ledger"
    checkpoint_interval_s: float = 10.0
    long_poll_max_s: float = 30.0
    snapshot_interval_s: float = 5.0
    timezone: str = "UTC"
    mds_page_size: int = 1000
    sqlite_synchronous: str = "NORMAL"
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if self.tick_s <= 0:
            raise ValueError(f"tick_s: must be > 0, got {self.tick_s}")
        if self.max_wait_s <= 0:
            raise ValueError(f"max_wait_s: must be > 0, got {self.max_wait_s}")
        if self.token_ttl_s <= 0:
            raise ValueError(f"token_ttl_s: must be > 0, got {self.token_ttl_s}")
        if self.max_future_ms < 0:
            raise ValueError(f"max_future_ms: must be >= 0, got {self.max_future_ms}")
        if self.snap_limit_m <= 0:
            raise ValueError(f"snap_limit_m: must be > 0, got {self.snap_limit_m}")
        if self.max_body_bytes < 1024 or self.max_batch < 1:
            raise ValueError("max_body_bytes must be >= 1024 and max_batch >= 1")
        if self.checkpoint_interval_s < 0:
            raise ValueError(f"checkpoint_interval_s: must be >= 0, got {self.checkpoint_interval_s}")
        if self.snapshot_interval_s < 0:
            raise ValueError(f"snapshot_interval_s: must be >= 0, got {self.snapshot_interval_s}")
        if self.mds_page_size < 1:
            raise ValueError(f"mds_page_size: must be >= 1, got {self.mds_page_size}")
        if self.long_poll_max_s < 0:
            raise ValueError(f"long_poll_max_s: must be >= 0, got {self.long_poll_max_s}")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as e:
            raise ValueError(f"timezone: {self.timezone!r} is not an IANA time zone (e.g. America/Los_Angeles)") from e
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError(f"currency: an ISO 4217 code like USD, got {self.currency!r}")

    @property
    def url(self) -> str:
        """The database URL in effect."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'robotaxi.db').resolve()}"
