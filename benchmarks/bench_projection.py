"""Projection speed: 2,000-draw projection of two variants on the demo chain.

The projection replays each variant three times (baseline, +step basket size, +step
visits) and then evaluates the draws vectorised over draws x months: no replay per
draw (the cost of extra spend is linear in the response; thresholds are handled by the
two marginal replays, not re-replayed). Reference, measured in the same run: one replay
of the variant over the horizon; "per-draw re-replay" is that time x draws, what a
projection re-replaying every draw would cost. Also measured: the linearity error of
the cost increment against an exact re-replay at the mean response (visits and basket
size; churn off).

Run:  python benchmarks/bench_projection.py [--draws 2000] [--customers 30000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from loyalty_pilot.pilots.programmes import example_programmes
from loyalty_pilot.pilots.specfile import load_programme
from loyalty_pilot.pilots.synthetic import generate
from loyalty_pilot.simulator.projection import (
    RetentionBaseline,
    add_visits,
    fit_retention,
    project,
    scale_baskets,
)
from loyalty_pilot.simulator.replay import replay


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--weeks", type=int, default=104)
    args = parser.parse_args()
    chain = generate(customers=args.customers, weeks=args.weeks, seed=0)
    baskets = chain.baskets
    print(f"demo chain: {len(baskets):,} baskets, {args.customers:,} customers")
    paths = {p.stem: p for p in example_programmes()}
    variants = [load_programme(paths[name]) for name in ("cash-voucher", "gift-catalogue")]

    t0 = time.perf_counter()
    retention = fit_retention(baskets, horizon_months=12)
    t_fit = time.perf_counter() - t0
    print(f"retention baseline ({retention.source}): {t_fit:.2f} s (once for all variants)")
    total = 0.0
    for programme in variants:
        t0 = time.perf_counter()
        result = project(baskets, programme, draws=args.draws, seed=0, retention=retention)
        elapsed = time.perf_counter() - t0
        total += elapsed
        base = result.baseline
        t0 = time.perf_counter()
        replay(baskets, programme, seed=0, start=base.start, end=base.end)
        one = time.perf_counter() - t0
        print(
            f"{programme.programme}: projection {elapsed:.2f} s ({args.draws:,} draws); "
            f"one replay {one:.2f} s; ratio {elapsed / one:.1f} replays; per-draw "
            f"re-replay would take {one * args.draws:.0f} s ({one * args.draws / elapsed:.0f}x)"
        )
        zero = RetentionBaseline("none")
        linear = project(baskets, programme, draws=1, seed=0, retention=zero)
        response = programme.response
        v, b = response.visit_uplift.mean, response.basket_uplift.mean
        exact = []
        for seed in range(3):
            changed = add_visits(
                scale_baskets(baskets, 1 + b), v, np.random.default_rng(seed), base.start, base.end
            )
            exact.append(
                replay(changed, programme, seed=0, start=base.start, end=base.end).totals["cost"]
                - base.totals["cost"]
            )
        lin = float(linear.samples["incremental_cost"][0])
        print(
            f"  linearity at the mean response (v {v:+.1%}, b {b:+.1%}): linear cost "
            f"increment {lin:,.0f}, exact re-replays {', '.join(f'{e:,.0f}' for e in exact)} "
            f"(error {lin / np.mean(exact) - 1:+.1%})"
        )
    print(f"two variants: {total + t_fit:.2f} s including the retention fit")


if __name__ == "__main__":
    main()
