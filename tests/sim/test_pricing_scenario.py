"""A scenario with ``[pricing]``: parsed and validated with the rest, priced after the run, written, reported and
recorded in the ledger with its fares (Denver downtown, synthetic demand, 07:00-09:00)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotaxi.cli import main
from robotaxi.errors import ScenarioError
from robotaxi.ledger import Ledger
from robotaxi.market import FareSchedule
from robotaxi.sim import Scenario, run_scenario
from robotaxi.sim.ledger_export import export_to_ledger
from robotaxi.sim.pricing import operator_activity

from ..conftest import shared_file

SCENARIO = """
name = "denver-priced"
seed = 5
[network]
path = "{network}"
[demand]
kind = "synthetic"
n_requests = 2000
date = "2026-03-11"
[time]
start = "07:00"
end = "09:00"
timezone = "America/Denver"
[fleet]
operator = "mile-high"
vehicles = 20
[pricing]
currency = "USD"
[pricing.commission]
rate = 0.2
fixed_cents = 30
[pricing.surge]
interval_s = 300
max = 2.0
zones = "grid"
cell_m = 800
[pricing.fares]
base_cents = 250
per_km_cents = 110
per_minute_cents = 30
minimum_cents = 700
[pricing.costs]
per_km_cents = 18
per_vehicle_hour_cents = 600
remote_assistance_per_hour_cents = 150
"""


def _text(extra: str = "", drop: str = "") -> str:
    text = SCENARIO.format(network=shared_file("data/denver_hive/downtown_denver_network.json"))
    return (text.replace(drop, "") if drop else text) + extra


def _scenario(tmp_path: Path, extra: str = "", drop: str = "") -> Scenario:
    (tmp_path / "s.toml").write_text(_text(extra, drop), encoding="utf-8")
    return Scenario.from_file(tmp_path / "s.toml")


def test_pricing_is_parsed_with_the_fleets_terms(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    assert sc.pricing is not None
    assert sc.pricing.surge is not None
    assert sc.pricing.surge.params.max_bp == 20_000
    (terms,) = sc.terms
    assert (terms.name, terms.fares) == ("mile-high", FareSchedule(250, 110, 30, 700))
    assert terms.costs.remote_assistance_per_hour_cents == 150
    plain = Scenario.from_toml(_text(drop=SCENARIO[SCENARIO.index("[pricing]") :]), base_dir=tmp_path, source=None)
    assert (plain.pricing, plain.terms) == (None, ())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("per_km_cents = 110", "per_km_cents = -110"), r"s\.toml: operator 'mile-high'|pricing\.fares\.per_km_cents"),
        (("max = 2.0", "max = 0.5"), r"pricing\.surge\.max: must be >= min"),
        (("rate = 0.2", "rate = 20"), r"pricing\.commission\.rate: must be in \[0, 1\]"),
        (('currency = "USD"', 'currency = "USD"\ntax = 1'), r"pricing\.tax: unknown key"),
        (('zones = "grid"', 'zones = "demand"'), r"pricing\.surge\.zones: 'demand' needs demand\.zones"),
        (("[pricing.fares]", "[pricing.fare]"), r"pricing\.fare: unknown key"),
    ],
)
def test_bad_pricing_stops_the_scenario_naming_the_file_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = _text().replace(*edit)
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message) as err:
        Scenario.from_file(tmp_path / "s.toml")
    assert "s.toml" in str(err.value)


def test_missing_fares_are_refused(tmp_path: Path) -> None:
    fares = SCENARIO[SCENARIO.index("[pricing.fares]") : SCENARIO.index("[pricing.costs]")]
    with pytest.raises(ScenarioError, match=r"operator 'mile-high': pricing\.fares: missing"):
        _scenario(tmp_path, drop=fares)
    assert _scenario(tmp_path, extra="[pricing.choice]\nenabled = false\n").pricing is not None


@pytest.mark.integration
@pytest.mark.slow
def test_riders_who_refuse_quotes_are_lost_demand(tmp_path: Path) -> None:
    """Rider choice with live surge: refusals are cancelled ``quote_declined``, the rest priced with the live table."""
    sc = _scenario(tmp_path, extra="[pricing.choice]\nconstant = 2.0\nfare_per_dollar = -0.15\nseed = 3\n")
    assert sc.pricing is not None
    assert sc.pricing.choice is not None
    out = run_scenario(sc, output=tmp_path / "out")
    assert out.market is not None
    refused = out.market.refused
    assert refused is not None
    assert 0 < refused < len(out.result.requests)
    assert out.kpis.cancelled_by_reason["quote_declined"] == refused
    assert out.market.accounts.trips == out.kpis.served
    assert out.market.surge is not None
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"{refused:,} riders refused the fare and pickup time they were quoted" in html
    from rich.console import Console

    from robotaxi.cli.simulate import _summary

    console = Console(record=True, width=120)
    console.print(_summary(sc.name, sc.policy, out))
    assert "quotes refused (lost demand)" in console.export_text()
    again = run_scenario(sc, write=False)
    assert again.market is not None
    assert again.market.refused == refused
    assert again.market.accounts.rider_payments_cents == out.market.accounts.rider_payments_cents


@pytest.mark.integration
@pytest.mark.slow
def test_a_priced_run_writes_its_money_and_records_fares_in_the_ledger(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    out = run_scenario(sc, output=tmp_path / "out")
    assert out.market is not None
    acc = out.market.accounts
    served = int(out.result.served.sum())
    assert acc.trips == served > 100
    assert acc.operator_revenue_cents + acc.commission_cents == acc.rider_payments_cents
    folder = tmp_path / "out"
    fares = pq.read_table(folder / "fares.parquet")
    assert fares.num_rows == served
    assert min(fares.column("fare_cents").to_pylist()) >= 700
    assert sum(fares.column("fare_cents").to_pylist()) == acc.rider_payments_cents
    assert max(fares.column("surge").to_pylist()) <= 2.0
    market = json.loads((folder / "market.json").read_text(encoding="utf-8"))
    assert market["operators"][0]["name"] == "mile-high"
    (activity,) = operator_activity(out.result)
    assert activity.service_s >= 20 * 2 * 3600  # 20 vehicles in service over the window and until the last trip
    remote = (2 * 150 * activity.service_s + 3600) // 7200  # $1.50 per vehicle-hour, half up
    assert market["operators"][0]["cost_terms_cents"]["remote_assistance"] == remote
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "Money by operator" in html
    assert "checked to the cent" in html
    exported = export_to_ledger(
        out.result, out.network, tmp_path / "trips.db", scenario=sc.name, seed=sc.seed, timezone=sc.timezone,
        fares=out.market.fare_by_request(len(out.result.requests)),
    )  # fmt: skip
    assert exported.count == served
    with Ledger.open(tmp_path / "trips.db") as ledger:
        entries = [json.loads(ledger.entry(i)) for i in range(ledger.size)]
    by_request = dict(zip(fares.column("request_id").to_pylist(), fares.column("fare_cents").to_pylist(), strict=True))
    assert all(e["fare_cents"] == by_request[int(e["request_id"])] for e in entries)
    assert all(e["provider_id"] == "mile-high" and e["currency"] == "USD" for e in entries)


@pytest.mark.integration
@pytest.mark.slow
def test_cli_records_the_priced_fares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scenario(tmp_path)
    db = tmp_path / "trips.db"
    assert main(["simulate", str(tmp_path / "s.toml"), "-q", "-o", str(tmp_path / "out"), "--ledger", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "rider payments / commission" in printed
    assert "quotes refused" not in printed  # no rider choice in this scenario
    with Ledger.open(db) as ledger:
        fares = [json.loads(ledger.entry(i))["fare_cents"] for i in range(ledger.size)]
    assert fares
    assert all(isinstance(f, int) and f >= 700 for f in fares)


def test_operators_with_money_tables_are_priced_without_a_pricing_table(tmp_path: Path) -> None:
    from .test_marketplace_scenario import AV, DRIVERS, HEAD, write

    fares = "[operators.fares]\nbase_cents = 200\nper_km_cents = 100\n"
    sc = Scenario.from_file(write(tmp_path, HEAD + AV + fares + DRIVERS + fares))
    assert sc.pricing is not None
    assert sc.pricing.surge is None
    assert [t.name for t in sc.terms] == ["av", "drivers"]
    assert sc.terms[1].fares == FareSchedule(base_cents=200, per_km_cents=100)
    # Without any money table nothing is priced.
    assert Scenario.from_file(write(tmp_path, HEAD + AV + DRIVERS)).pricing is None
    # A fares table on one operator only: the other has none and [pricing] no default, named in the error.
    with pytest.raises(ScenarioError, match=r"operator 'drivers': operators\.fares: missing"):
        Scenario.from_file(write(tmp_path, HEAD + AV + fares + DRIVERS))


def test_the_marketplace_example_is_priced_with_surge_by_tlc_zone() -> None:
    repo = Path(__file__).resolve().parents[2]
    sc = Scenario.from_file(repo / "examples" / "manhattan_marketplace.toml")
    assert sc.pricing is not None
    assert sc.pricing.surge is not None
    assert sc.pricing.surge.zones == "demand"
    names = [t.name for t in sc.terms]
    assert names == ["downtown-av", "island-av", "drivers"]
    assert sc.terms[2].costs.driver_share_bp == 7500
    assert sc.terms[1].costs.safety_driver_per_hour_cents == 2500
