"""Market figures: pricing, surge and accounts at the flagship's scale, pure (no simulation).

    python benchmarks/bench_market.py [--trips N] [--zones Z] [--intervals T]

Prices N random trips of three operators (fare, surge look-up, commission split), runs the surge rule over T
intervals of Z zones, and builds the per-operator accounts; prints wall time per step. The flagship day has about
446,000 requests, 69 TLC zones in Manhattan and 288 five-minute intervals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from robotaxi.fleet import OperatorKind
from robotaxi.market import (
    Commission,
    CostModel,
    FareSchedule,
    OperatorActivity,
    OperatorTerms,
    SurgeParams,
    SurgePricer,
    account,
    price_trips,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trips", type=int, default=446_000)
    ap.add_argument("--zones", type=int, default=69)
    ap.add_argument("--intervals", type=int, default=288)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, z, t_n = args.trips, args.zones, args.intervals
    fares = FareSchedule(
        base_cents=250, per_km_cents=110, per_minute_cents=30, minimum_cents=700, pooled_discount_bp=2500
    )
    terms = [
        OperatorTerms("downtown-av", OperatorKind.AUTONOMOUS, fares, CostModel(35, 900, 150)),
        OperatorTerms("island-av", OperatorKind.AUTONOMOUS, fares, CostModel(30, 2600, 100)),
        OperatorTerms("drivers", OperatorKind.HUMAN_DRIVEN, fares, CostModel(per_km_cents=20, driver_share_bp=7500)),
    ]
    t0 = time.perf_counter()
    pricer = SurgePricer(SurgeParams(), z)
    for _ in range(t_n):
        pricer.update(rng.integers(0, 40, z), rng.integers(0, 30, z))
    table = pricer.table()
    t1 = time.perf_counter()
    priced = price_trips(
        rng.integers(0, 3, n),
        rng.integers(300, 15_000, n),
        rng.integers(60, 2_400, n),
        terms,
        default_commission=Commission(2000, 25),
        time_s=np.sort(rng.integers(0, 86_400, n)),
        zone=rng.integers(-1, z, n),
        surge=table,
        pooled=rng.random(n) < 0.2,
    )
    t2 = time.perf_counter()
    activity = [OperatorActivity(2500, 2500 * 86_400, 2500 * 40_000, 10**9, 3 * 10**8)] * 3
    acc = account(priced, terms, activity)
    t3 = time.perf_counter()
    print(f"surge rule, {t_n} intervals x {z} zones: {t1 - t0:.3f} s")
    print(f"price {n:,} trips (fare, surge look-up, commission): {t2 - t1:.3f} s")
    print(f"accounts of 3 operators (reconciled): {t3 - t2:.3f} s")
    paid, commission = acc.rider_payments_cents / 100, acc.commission_cents / 100
    print(f"rider payments {paid:,.2f} {acc.currency}, commission {commission:,.2f}")


if __name__ == "__main__":
    main()
