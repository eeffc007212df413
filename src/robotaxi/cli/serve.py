"""``robotaxi serve``: the live platform (HTTP API, engine on the wall clock, SQLite or PostgreSQL)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from .app import app, err_console


@app.command("serve")
def serve(
    database: Annotated[
        str | None,
        typer.Option(help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: DATA_DIR/robotaxi.db)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Token-signing secret, first admin key, default SQLite file.")
    ] = Path("robotaxi-data"),
    network: Annotated[
        str, typer.Option(help="'helsinki' (embedded), 'grid:ROWSxCOLS' or a network file.")
    ] = "helsinki",
    policy: Annotated[str, typer.Option(help="Dispatch policy: immediate, batch, insertion or pool.")] = "immediate",
    tick: Annotated[float, typer.Option(help="Seconds between engine ticks.")] = 1.0,
    max_wait: Annotated[int, typer.Option("--max-wait", help="Longest rider wait for pickup, seconds.")] = 600,
    fares: Annotated[
        Path | None,
        typer.Option(help="A TOML file with a [fares] table (base_cents, per_km_cents, per_minute_cents, ...)."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Serve the live dashboard at /dashboard (admins and regulators).")
    ] = False,
    timezone: Annotated[
        str, typer.Option(help="IANA time zone of the local calendar (DMV report dates), e.g. America/Los_Angeles.")
    ] = "UTC",
) -> None:
    """Run the live platform until interrupted. On first start it prints where the admin API key is."""
    import tomllib

    import uvicorn

    from ..api import LiveService, ServiceSettings, create_app
    from ..dispatch import POLICIES
    from ..errors import ServiceError

    if policy not in POLICIES:
        raise typer.BadParameter(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})", param_hint="--policy")
    schedule = None
    if fares is not None:
        from ..market.config import parse_fares

        try:
            table = tomllib.loads(fares.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ServiceError(f"--fares {fares}: {e}") from e
        if "fares" not in table:
            raise ServiceError(f"--fares {fares}: no [fares] table")
        schedule = parse_fares(table["fares"])
    try:
        settings = ServiceSettings(
            data_dir=data_dir,
            database_url=database,
            network=network,
            policy=policy,
            tick_s=tick,
            max_wait_s=max_wait,
            fares=schedule,
            timezone=timezone,
        )
    except ValueError as e:
        raise ServiceError(str(e)) from e
    service = LiveService(settings)
    service.start()  # errors (database, network) surface here, before the server binds
    # Everything loaded so far (libraries, the network, the router's tables, the restored engine) lives as long as
    # the process: keep it out of the cyclic collector's full passes, which otherwise walked it all every few
    # seconds under load and stopped every thread for ~110 ms each time (docs/service.md, "Pauses").
    gc.collect()
    gc.freeze()
    if service.admin_key is not None:
        err_console.print(f"first start: admin API key written to {data_dir / 'admin.key'}")
    if dashboard:
        err_console.print(f"live dashboard: http://{host}:{port}/dashboard (sign in with an admin or regulator key)")
    uvicorn.run(create_app(service, dashboard=dashboard), host=host, port=port, log_level=log_level)
