"""The report's money section: per-operator accounts, trips and revenue by hour, surge over the day.

:func:`market_section` is called by :func:`robotaxi.sim.report.render_report` when the run was priced (a scenario
with ``[pricing]``); it returns HTML with its plots embedded like the rest of the page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from ..market import MarketAccounts, OperatorAccount
from .pricing import MarketRun
from .report import _png, _pyplot

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
_COLOURS = ("#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00897b", "#6d4c41", "#3949ab")


def money(cents: int | None, currency: str = "USD") -> str:
    """``123456`` -> ``"$1,234.56"`` (``"1,234.56 CHF"`` for a currency without a symbol here); ``-`` for None."""
    if cents is None:
        return "-"
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    amount = f"{whole:,}.{frac:02d}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} %"


def account_rows(accounts: MarketAccounts) -> list[tuple[str, list[str]]]:
    """The accounts table: one row per figure, one column per operator and one for the platform."""
    cur = accounts.currency
    ops = accounts.operators

    def row(label: str, per_op: Sequence[str], total: str = "") -> tuple[str, list[str]]:
        return label, [*per_op, total]

    def cents(name: str) -> list[str]:
        return [money(getattr(a, name), cur) for a in ops]

    rows = [
        row("kind", [a.kind.replace("_", " ") for a in ops]),
        row("vehicles", [f"{a.vehicles:,}" for a in ops], f"{sum(a.vehicles for a in ops):,}"),
        row("trips", [f"{a.trips:,}" for a in ops], f"{accounts.trips:,}"),
        row("share of the platform's trips", [_pct(a.trip_share_pct) for a in ops], "100 %" if accounts.trips else "-"),
        row("rider payments", cents("rider_payments_cents"), money(accounts.rider_payments_cents, cur)),
        row("platform commission", cents("commission_cents"), money(accounts.commission_cents, cur)),
        row("operator revenue", cents("revenue_cents"), money(accounts.operator_revenue_cents, cur)),
        row("operator cost", cents("cost_cents"), money(sum(a.cost_cents for a in ops), cur)),
        row("margin", cents("margin_cents"), money(sum(a.margin_cents for a in ops), cur)),
        row("margin (share of revenue)", [_pct(a.margin_pct) for a in ops]),
        row("mean fare", cents("mean_fare_cents")),
        row("trips surged", [_pct(a.surged_trips_pct) for a in ops]),
        row("trips pooled (discounted)", [_pct(a.pooled_trips_pct) for a in ops]),
        row("revenue per vehicle-hour", cents("revenue_per_vehicle_hour_cents")),
        row("vehicle-hours in service", [f"{a.vehicle_hours:,.1f}" for a in ops]),
        row("utilisation (busy share of service time)", [_pct(a.utilisation_pct) for a in ops]),
        row("empty-km share", [_pct(a.empty_km_share_pct) for a in ops]),
        row("drivers' earnings", cents("driver_earnings_cents")),
        row("drivers' earnings per hour", cents("driver_earnings_per_hour_cents")),
    ]
    for term in ops[0].cost_terms_cents if ops else ():
        rows.append(row(f"cost: {term.replace('_', ' ')}", [money(a.cost_terms_cents[term], cur) for a in ops]))
    return rows


def _table(accounts: MarketAccounts) -> str:
    head = "".join(f"<th>{html.escape(a.name)}</th>" for a in accounts.operators) + "<th>all operators</th>"
    body = "\n".join(
        "<tr><th>" + html.escape(label) + "</th>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"
        for label, values in account_rows(accounts)
    )
    style = "<style>table.market th { width: auto; } table.market td { text-align: right; }</style>"
    return f'{style}<table class="market"><tr><th></th>{head}</tr>\n{body}</table>'


def _hour_span(ops: Sequence[OperatorAccount]) -> tuple[int, int]:
    busy = np.flatnonzero(np.sum([a.trips_by_hour for a in ops], axis=0)) if ops else np.empty(0, dtype=np.int64)
    return (int(busy.min()), int(busy.max()) + 1) if busy.size else (0, 24)


def _by_hour(accounts: MarketAccounts) -> str:
    plt = _pyplot()
    ops = accounts.operators
    lo, hi = _hour_span(ops)
    hours = np.arange(lo, hi)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    bottom_t = np.zeros(hours.size)
    bottom_r = np.zeros(hours.size)
    for k, a in enumerate(ops):
        colour = _COLOURS[k % len(_COLOURS)]
        trips = np.asarray(a.trips_by_hour[lo:hi], dtype=np.float64)
        revenue = np.asarray(a.revenue_by_hour_cents[lo:hi], dtype=np.float64) / 100
        ax1.bar(hours, trips, bottom=bottom_t, color=colour, label=a.name, width=0.9)
        ax2.bar(hours, revenue, bottom=bottom_r, color=colour, label=a.name, width=0.9)
        bottom_t += trips
        bottom_r += revenue
    ax1.set_title("Trips by hour, by operator")
    ax1.set_ylabel("trips")
    ax2.set_title(f"Operator revenue by hour ({accounts.currency})")
    ax2.set_ylabel(accounts.currency)
    for ax in (ax1, ax2):
        if hours.size <= 30:
            ax.set_xticks(hours)
        ax.set_xlabel("hour of day (request time)")
        ax.legend(fontsize=8)
    return _png(fig)


def _surge(market: MarketRun) -> str | None:
    table = market.surge
    if table is None or table.bp.shape[0] == 0:
        return None
    plt = _pyplot()
    bp = table.bp / 10_000
    t = (table.start_s + np.arange(bp.shape[0]) * table.interval_s) / 3600
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.step(t, bp.max(axis=1), where="post", color="#e53935", label="highest zone")
    ax.step(t, bp.mean(axis=1), where="post", color="#1e88e5", label="mean over zones")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("multiplier")
    ax.set_ylim(min(1.0, float(bp.min())) - 0.05, max(1.5, float(bp.max()) + 0.1))
    ax2 = ax.twinx()
    ax2.step(t, 100 * (bp > 1).mean(axis=1), where="post", color="#9e9e9e", lw=0.8, label="zones surging (%)")
    ax2.set_ylabel("zones surging (%)")
    ax2.set_ylim(0, 100)
    ax.set_title(f"Surge over the day ({table.n_zones} zones, every {table.interval_s / 60:g} min)")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    return _png(fig)


def market_section(market: MarketRun) -> str:
    """The money section of the report (HTML): the accounts table and the plots."""
    a = market.accounts
    reconciled = (
        f"Operator revenue {money(a.operator_revenue_cents, a.currency)} + platform commission "
        f"{money(a.commission_cents, a.currency)} = rider payments {money(a.rider_payments_cents, a.currency)}, "
        "checked to the cent."
    )
    if market.refused is not None:
        reconciled += f" {market.refused:,} riders refused the fare and pickup time they were quoted (lost demand)."
    images = [_by_hour(a)] if a.trips else []
    surge = _surge(market)
    if surge is not None:
        images.append(surge)
    figs = "\n".join(f'<figure><img alt="plot" src="{src}"></figure>' for src in images)
    return f"""<h2>Money by operator</h2>
<p>{html.escape(reconciled)} Fares, surge, commission and costs as in <code>docs/marketplace.md</code>.</p>
{_table(a)}
{figs}
"""
