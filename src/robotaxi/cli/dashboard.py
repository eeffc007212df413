"""``robotaxi dashboard RUN_DIR``: replay a finished run in the browser, or export it as one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, console, err_console


@app.command("dashboard")
def dashboard(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `robotaxi simulate` (e.g. out/helsinki).")],
    export: Annotated[
        Path | None, typer.Option("--export", help="Write one self-contained HTML file that plays offline, and exit.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port to serve the page on (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    network: Annotated[
        str | None, typer.Option(help="The run's network file or 'helsinki' (default: from the run's scenario.toml).")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="A ledger the run was recorded in: its latest checkpoint is shown.")
    ] = None,
    tiles: Annotated[
        str | None,
        typer.Option(help="Raster tiles behind the streets, from your tile server: https://host/{z}/{x}/{y}.png"),
    ] = None,
) -> None:
    """Replay a finished simulator run: vehicles, open requests and KPIs following the clock."""
    # Heavy imports here, not at module level: `robotaxi --help` should stay fast.
    import time
    import webbrowser

    from ..dashboard import export_replay, load_replay, make_server, replay_html

    t0 = time.perf_counter()
    # Bind first: a bad or busy port is reported before the run is read. No thread runs until serve_forever.
    server = make_server(host=host, port=port) if export is None else None
    try:
        with err_console.status(f"reading {run_dir}"):
            data = load_replay(run_dir, network=network, ledger=ledger, tiles=tiles)
        summary = f"{data.n_vehicles:,} vehicles, {data.n_requests:,} requests"
        if server is None:
            assert export is not None
            out = export_replay(data, export)
            size = out.stat().st_size / 1e6
            console.print(f"replay: {out} ({summary}; {size:.1f} MB; {time.perf_counter() - t0:.1f} s)")
            return
        # The router may fork worker processes: it is built and gone before the server starts its threads.
        server.set_page(replay_html(data))
        url = f"http://{host}:{server.server_address[1]}/"
        console.print(f"replay of {run_dir} ({summary}) at {url}  (Ctrl+C to stop)")
        if not no_open:
            webbrowser.open(url)
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if server is not None:
            server.server_close()
