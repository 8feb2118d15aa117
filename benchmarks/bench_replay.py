"""Replay speed: a tiered programme with expiry and vouchers on N synthetic baskets.

Reference, measured in the same run: a straightforward pandas ``groupby(...).apply``
replay of the same core rules (rolling 12-month tier, points, inactivity expiry,
vouchers at a threshold), timed on a sample of customers and scaled to all baskets.
Peak memory of the vectorized replay is traced (numpy allocations included) and compared
with the size of the raw input columns.

Each order (random; member/time as the workspace reads them) is replayed ``--runs`` times
and the median reported, with the default ``map_`` (a 2-thread pool from 2 M baskets) and,
interleaved with it, single-threaded (``map_=map``, the same chunks, the same result). The
load average is printed next to the times: other jobs on the cores slow both.

Run:  python benchmarks/bench_replay.py [--baskets 10000000] [--customers 400000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import pandas as pd

from loyalty_pilot.simulator.programme import Programme
from loyalty_pilot.simulator.replay import replay

PROGRAMME = Programme.model_validate(
    {
        "programme": "bench-tiered",
        "enrolment": {"uptake": 1.0},
        "earn": {"points_per_currency": 1.0, "welcome_bonus": 100},
        "rewards": [{"kind": "cash_voucher", "points": 500, "value": 5.0}],
        "redemption": {"rate": 0.8, "validity_days": 90},
        "expiry": {"inactivity_days": 180},
        "tiers": [
            {"name": "silver", "min_spend_12m": 0, "multiplier": 1.0},
            {"name": "gold", "min_spend_12m": 1500, "multiplier": 1.25},
            {"name": "platinum", "min_spend_12m": 4000, "multiplier": 1.5},
        ],
        "economics": {"gross_margin": 0.3, "budget_share_of_revenue": 0.02},
    }
)


def make_baskets(n: int, customers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weight = rng.gamma(0.8, 1.0, customers)
    customer = rng.choice(customers, size=n, p=weight / weight.sum())
    day = rng.integers(0, 730, n)
    seconds = day.astype(np.int64) * 86_400 + rng.integers(8 * 3600, 21 * 3600, n)
    ts = np.datetime64("2024-01-01T00:00:00", "s") + seconds
    return pd.DataFrame(
        {
            "customer_id": customer,
            "basket_id": np.arange(n, dtype=np.int64),
            "date": ts.astype("datetime64[ns]"),
            "amount": np.round(rng.gamma(2.0, 22.0, n), 2),
        }
    )


def groupby_apply_replay(baskets: pd.DataFrame) -> pd.Series:
    """The straightforward way: one Python function per customer, a loop per basket."""
    thresholds = [(4000.0, 1.5), (1500.0, 1.25), (0.0, 1.0)]

    def one(frame: pd.DataFrame) -> float:
        frame = frame.sort_values(["date", "basket_id"])
        days = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
        amounts = frame["amount"].to_numpy()
        balance, rewards, history = 100, 0, []
        for i, (d, a) in enumerate(zip(days, amounts, strict=True)):
            if i and d - days[i - 1] >= 180:
                balance = 0
            spend = sum(x for (dd, x) in history if dd > d - 365)
            mult = next(m for t, m in thresholds if spend >= t)
            if a > 0:
                balance += int(np.floor(round(a * 100) * mult / 100 + 1e-9))
            history.append((d, a))
            rewards += balance // 500
            balance %= 500
        return rewards

    return baskets.groupby("customer_id").apply(one)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baskets", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=400_000)
    parser.add_argument("--reference-customers", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3, help="timed replays of each order")
    args = parser.parse_args()
    baskets = make_baskets(args.baskets, args.customers)
    raw_bytes = sum(baskets[c].to_numpy().nbytes for c in baskets.columns)

    replay(baskets.head(100_000), PROGRAMME)  # warm up
    load_before = os.getloadavg()
    seconds, seconds_serial = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = replay(baskets, PROGRAMME)
        seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        replay(baskets, PROGRAMME, map_=map)
        seconds_serial.append(time.perf_counter() - t0)
    # As the workspace hands them over: ordered by customer_id (as text) and time.
    ordered = (
        baskets.assign(key=baskets["customer_id"].astype(str))
        .sort_values(["key", "date", "basket_id"], kind="stable")
        .drop(columns="key")
    )
    seconds_sorted, seconds_sorted_serial = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        replay(ordered, PROGRAMME)
        seconds_sorted.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        replay(ordered, PROGRAMME, map_=map)
        seconds_sorted_serial.append(time.perf_counter() - t0)
    load_after = os.getloadavg()
    del ordered
    tracemalloc.start()
    replay(baskets, PROGRAMME)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    sample_ids = np.arange(args.reference_customers)
    sample = baskets[baskets["customer_id"].isin(sample_ids)]
    t0 = time.perf_counter()
    groupby_apply_replay(sample)
    ref_seconds = time.perf_counter() - t0
    ref_full = ref_seconds * len(baskets) / len(sample)

    print(f"baskets {len(baskets):,}  customers {baskets['customer_id'].nunique():,}")
    n = len(baskets)
    for label, times in (
        ("vectorized replay, baskets in random order", seconds),
        ("  the same, single-threaded (map_=map)", seconds_serial),
        ("vectorized replay, baskets in member/time order (as the workspace reads them)",
         seconds_sorted),
        ("  the same, single-threaded (map_=map)", seconds_sorted_serial),
    ):  # fmt: skip
        median = float(np.median(times))
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"{label}: median of {len(times)} {median:.2f} s ({n / median / 1e6:.2f} M "
            f"baskets/s; best {n / min(times) / 1e6:.2f} M/s; runs {runs} s)"
        )
    print(
        "load average (1, 5, 15 min) before the timed replays "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )
    best = float(np.median(seconds))
    print(
        f"groupby-apply reference: {ref_seconds:.2f} s on {len(sample):,} baskets -> "
        f"{ref_full:,.0f} s for all ({len(baskets) / ref_full:,.0f} baskets/s)"
    )
    print(f"speed-up (random order, median): {ref_full / best:,.0f}x")
    print(
        f"peak traced memory {peak / 1e6:,.0f} MB = {peak / raw_bytes:.1f}x the raw columns "
        f"({raw_bytes / 1e6:,.0f} MB)"
    )
    print(f"rewards issued {result.totals['rewards_issued']:,}")


if __name__ == "__main__":
    main()
