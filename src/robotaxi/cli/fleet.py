"""``robotaxi fleet connect``: a virtual fleet that docks with a running platform like a real one."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer

from .app import app, console, sub_app

fleet_app = sub_app("Virtual fleets that dock with a running platform (robotaxi serve).")
app.add_typer(fleet_app, name="fleet")


@fleet_app.command("connect")
def connect(
    server: Annotated[str, typer.Option(help="The platform's base URL, e.g. http://127.0.0.1:8000.")],
    vehicles: Annotated[int, typer.Option(help="How many robotaxis to dock.")] = 10,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="An operator API key (default: $ROBOTAXI_API_KEY).")
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="With --admin-key: create this operator (if new) and a key for it.")
    ] = None,
    admin_key: Annotated[str | None, typer.Option("--admin-key", help="An admin API key (with --operator).")] = None,
    network: Annotated[str, typer.Option(help="The network the server runs on (same --network).")] = "helsinki",
    speedup: Annotated[float, typer.Option(help="Drive and dwell this many times faster than real time.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Seconds to run (wall clock).")] = 3600.0,
    telemetry: Annotated[float, typer.Option(help="Seconds between telemetry batches.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the start positions.")] = 0,
    offers: Annotated[
        bool, typer.Option("--offers", help="With --operator: create it as an operator that answers trip offers.")
    ] = False,
    accept_rate: Annotated[
        float, typer.Option(help="Share of trip offers accepted (0..1), spread evenly; the rest are declined.")
    ] = 1.0,
) -> None:
    """Dock VEHICLES simulated robotaxis, drive the plans the platform gives them, report every stop."""
    from ..api.live import load_network
    from ..client import FleetParams, PlatformClient, VirtualFleet
    from ..errors import ServiceError

    key = api_key or os.environ.get("ROBOTAXI_API_KEY")
    if operator is not None:
        if admin_key is None:
            raise typer.BadParameter("--operator needs --admin-key (to create the operator and its key)")
        with PlatformClient(server, admin_key) as admin:
            try:
                admin.post("/v1/admin/operators", {"name": operator, "offers": offers})
            except ServiceError as e:
                if e.status != 409:
                    raise
                if offers:  # an existing operator: make it answer offers
                    admin.request("PATCH", f"/v1/admin/operators/{operator}", json={"offers": True})
            key = admin.post(
                "/v1/admin/credentials", {"role": "operator", "subject": f"{operator}-fleet", "operator": operator}
            )["api_key"]
    if not key:
        raise typer.BadParameter("give --api-key (or $ROBOTAXI_API_KEY), or --operator with --admin-key")
    try:
        params = FleetParams(
            vehicles=vehicles, speedup=speedup, telemetry_s=telemetry, seed=seed, accept_rate=accept_rate
        )
    except ValueError as e:
        raise ServiceError(str(e)) from e
    net = load_network(network)
    with PlatformClient(server, key) as client:
        fleet = VirtualFleet(client, net, params)
        fleet.dock()
        console.print(f"docked {len(fleet.cars)} vehicles on {net.name}; driving for {duration:g} s")
        # Ctrl-C (SIGINT) or SIGTERM ends the run between two steps, never inside a request: a KeyboardInterrupt
        # raised in the middle of an HTTP call could leave the client's connection pool locked and the process hung.
        stopping = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            fleet.run(duration, stop=stopping.is_set)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        console.print(
            f"events sent {fleet.events_sent}, telemetry points {fleet.telemetry_sent}, refusals {fleet.errors}, "
            f"offers accepted {fleet.offers_accepted}, declined {fleet.offers_declined}"
        )
