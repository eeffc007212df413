"""``robotaxi simulate [SCENARIO.toml]``: run a scenario and write its report."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ScenarioError
from .app import app, console, err_console, print_table

if TYPE_CHECKING:
    from rich.table import Table

    from ..sim import RunOutput, Scenario

# The simulator and the dispatch engine are imported inside the command (`robotaxi --help` starts fast). The
# module still offers `run_scenario` as an attribute, resolved on first use, which tests replace.


def __getattr__(name: str) -> Any:
    if name == "run_scenario":
        from ..sim import run_scenario

        return run_scenario
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_text(path: Path) -> None:
    """A scenario that is binary rather than TOML text is one clean error, naming the file and the offset."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not a TOML text file (byte 0x{e.object[e.start]:02x} at offset {e.start})") from e
    except OSError:
        pass  # Scenario.from_file reports a missing or unreadable file in its own words


def _load(path: Path | None, changes: list[str]) -> tuple[Scenario, str | None]:
    """The scenario of ``path`` (default: the embedded one), with ``--set PATH=VALUE`` changes applied to its
    document before it is validated (so a wrong key or type is named as for a file), and, when something was
    changed, the TOML text of the scenario as run (the run folder's ``scenario.toml`` must say what ran)."""
    from ..sim import Scenario

    if not changes:
        return (Scenario.from_file(path) if path is not None else Scenario.default()), None
    import json
    import tomllib

    from ..sim.scenario import DEFAULT_SCENARIO_TOML
    from ..sweep.spec import apply_override, dump_toml

    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ScenarioError(f"cannot read scenario file {path}: {e.strerror}") from e
        base, where = path.resolve().parent, str(path)
    else:
        text, base, where = DEFAULT_SCENARIO_TOML, Path.cwd(), "embedded scenario"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from e
    applied: list[tuple[str, object]] = []
    for change in changes:
        key, sep, raw = change.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"--set {change!r}: expected PATH=VALUE, e.g. fleet.vehicles=9000")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: a string (policy=pool)
        try:
            apply_override(document, key.strip(), value)
        except ValueError as e:
            raise ScenarioError(f"--set {e}") from e
        applied.append((key.strip(), value))
    scenario = Scenario.from_mapping(document, base_dir=base, source=path, where=f"{where} with --set")
    header = (
        f"{'The embedded scenario' if path is None else f'The scenario {path}'}, changed on the command line:\n"
        + "".join(f"  {k} = {json.dumps(v, default=str)}\n" for k, v in applied)
        + f"Relative input paths are relative to {base}."
    )
    return scenario, dump_toml(document, header)


@app.command("simulate")
def simulate(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario TOML file (default: the embedded Helsinki scenario).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder (overrides the file).")] = None,
    policy: Annotated[
        str | None, typer.Option(help="Override the dispatch policy: immediate, batch, insertion or pool.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no warnings; errors only.")] = False,
    ledger: Annotated[
        Path | None,
        typer.Option(help="Append every completed trip to this ledger (created if missing) and sign a checkpoint."),
    ] = None,
    ledger_key: Annotated[
        Path | None, typer.Option(help="Signing key for --ledger (default: LEDGER.key, generated if missing).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Change one setting of the scenario: a dotted path and a TOML value, e.g. fleet.vehicles=9000 or "
            "rebalancing.enabled=false (repeatable; give -o too, or the run replaces the scenario's own outputs).",
        ),
    ] = None,
) -> None:
    """Simulate a day of ride-hailing and write requests.parquet, vehicle_events.parquet, kpis.json, report.html."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..dispatch import POLICIES

    run_scenario = sys.modules[__name__].run_scenario

    if quiet:
        logging.getLogger("robotaxi").setLevel(logging.ERROR)
    if scenario is not None:
        _check_text(scenario)
    changes = list(set_ or [])
    if policy is not None:
        if policy not in POLICIES:
            raise ScenarioError(f"--policy: expected one of {', '.join(POLICIES)}, got {policy!r}")
        changes.append(f"dispatch.policy={policy}")  # recorded in the run's scenario.toml like any change
    sc, scenario_text = _load(scenario, changes)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{sc.name}: loading", total=None, count="")

        def stage(name: str) -> None:
            bar.update(task, description=f"{sc.name}: {name}")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, count=f"{done:,}/{total:,} requests")

        out = run_scenario(sc, output=output, stage=stage, progress=progress, scenario_text=scenario_text)
        if ledger is not None:
            from ..sim.ledger_export import export_to_ledger

            stage(f"ledger ({int(out.result.served.sum()):,} trips)")
            priced = out.market  # a scenario with [pricing]: the run's own fares, else the demand's recorded ones
            exported = export_to_ledger(
                out.result, out.network, ledger, scenario=sc.name, seed=sc.seed, timezone=sc.timezone,
                key_path=ledger_key,
                fares=priced.fare_by_request(len(out.result.requests)) if priced else None,
                currency=sc.pricing.currency if sc.pricing else "USD",
            )  # fmt: skip
    print_table(_summary(sc.name, sc.policy, out))
    if ledger is not None:
        # Trips already in the ledger (a re-run of the same scenario and seed) are skipped by their ids.
        appended = exported.size - exported.first_index
        skipped = exported.count - appended
        where = f" (entries {exported.first_index:,}..{exported.size - 1:,})" if appended else ""
        again = f", {skipped:,} already recorded and skipped" if skipped else ""
        what = f"trips and {exported.safety_events:,} safety events" if exported.safety_events else "trips"
        console.print(
            f"ledger: {appended:,} {what} appended to {exported.path}{where}{again}; checkpoint signed with "
            f"{exported.key_path}; verifier key {exported.key_path}.vkey"
        )
    console.print(
        f"report: {out.folder / 'report.html' if out.folder else '-'}  ({time.perf_counter() - t0:.1f} s total)"
    )


def _summary(name: str, policy: str, out: RunOutput) -> Table:
    """The run's headline figures as a two-column table."""
    from rich.table import Table

    k = out.kpis.to_dict()
    k["wall_s"] = round(out.timings_s.get("simulate", out.result.wall_s), 2)
    table = Table(title=f"robotaxi simulate: {name} ({policy})", show_header=False)
    for label, key, fmt in (
        ("requests", "requests", "{:,}"),
        ("served", "served_pct", "{} %"),
        ("rejected / cancelled", None, ""),
        ("wait mean / p90", None, ""),
        ("fleet utilisation", "fleet_utilisation_pct", "{} %"),
        ("vehicle-km occupied / empty / rebalancing", None, ""),
        ("pooled trips / occupancy", None, ""),
        ("simulation wall time", "wall_s", "{} s"),
    ):
        if key is not None:
            table.add_row(label, fmt.format(k[key]))
        elif label.startswith("rejected"):
            table.add_row(label, f"{k['rejected']:,} / {k['cancelled']:,}")
        elif label.startswith("wait"):
            p90 = k["wait_p90_s"]
            table.add_row(label, "-" if p90 is None else f"{k['wait_mean_s']} s / {p90:.0f} s")
        elif label.startswith("pooled"):
            occ = k["occupancy_mean"]
            table.add_row(label, f"{k['pooled_trips_pct'] or 0} % / {'-' if occ is None else occ}")
        else:
            km = (k["vehicle_km_occupied"], k["vehicle_km_empty"], k["vehicle_km_rebalancing"])
            table.add_row(label, " / ".join(f"{x:,.0f}" for x in km))
    if out.market is not None:
        a = out.market.accounts
        table.add_row(
            "rider payments / commission",
            f"{a.rider_payments_cents / 100:,.2f} / {a.commission_cents / 100:,.2f} {a.currency}",
        )
        if out.market.refused is not None:
            table.add_row("quotes refused (lost demand)", f"{out.market.refused:,}")
    return table
