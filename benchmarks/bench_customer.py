"""Time a customer-level CUPED test on 10 M customers x 2 arms against the usual routes.

Run: ``python benchmarks/bench_customer.py`` (``--rows`` to change the size; median of 3
timed rounds after an untimed one, each round running every route once).

Data: ``--rows`` customers (default 10,000,000), arm 0/1 (int8, half each), a pre-period
revenue ``pre`` (gamma) and the outcome ``revenue = 0.8 pre + noise + 0.03 arm``, in a
pandas DataFrame. Every route starts from that DataFrame and ends with the CUPED estimate,
its standard error and p-value (theta pooled over the two arms, Welch on the adjusted
outcome), aggregation included:

- ours: :func:`aggregate_frame` (``np.bincount`` over the arm codes) + :func:`cuped`;
- ours, file mode: :func:`evaluate_customers` (input checks, 0/1 arm naming, SRM check
  and the Holm step included);
- reference: the usual pandas route: ``df[["revenue", "pre"]].cov()`` for theta, the
  adjusted column, ``groupby("arm").agg(["mean", "var", "count"])`` and
  ``scipy.stats.ttest_ind_from_stats(equal_var=False)``;
- numpy floor: ``np.cov`` for theta, the adjusted array, boolean masks and
  ``scipy.stats.ttest_ind(equal_var=False)``.

Every route's estimate, se and p-value are compared with ours (printed; asserted to 1e-7
relative: at 10 M rows the one-pass sums of ``np.bincount`` carry rounding of about
``sqrt(n) * 1e-16`` relative, which the difference of two means of about 40 turns into
about 1e-9 relative on an estimate of 0.03).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats as st

from loyalty_pilot.experiments.customer import cuped, evaluate_customers
from loyalty_pilot.experiments.sufficient import aggregate_frame


def make_customers(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = (rng.permutation(rows) % 2).astype(np.int8)
    pre = rng.gamma(2.0, 25.0, rows)
    revenue = 0.8 * pre + rng.normal(0.0, 20.0, rows) + 0.03 * arm
    return pd.DataFrame({"arm": arm, "revenue": revenue, "pre": pre})


def ours(df: pd.DataFrame) -> tuple[float, float, float]:
    s = aggregate_frame(df, arm="arm", outcome="revenue", covariate="pre")
    c = cuped(s[1], s[0])
    return c.estimate, c.extras["se"], c.p_value


def ours_file_mode(df: pd.DataFrame) -> tuple[float, float, float]:
    evaluation, _ = evaluate_customers(
        df, arm="arm", outcome="revenue", method="cuped", control=0, covariate="pre"
    )
    c = evaluation.comparisons[0]
    return c.estimate, c.extras["se"], c.p_value


def pandas_scipy(df: pd.DataFrame) -> tuple[float, float, float]:
    cov = df[["revenue", "pre"]].cov()
    theta = cov.loc["revenue", "pre"] / cov.loc["pre", "pre"]
    adjusted = df["revenue"] - theta * (df["pre"] - df["pre"].mean())
    g = adjusted.groupby(df["arm"]).agg(["mean", "var", "count"])
    res = st.ttest_ind_from_stats(
        g.loc[1, "mean"], math.sqrt(g.loc[1, "var"]), g.loc[1, "count"],
        g.loc[0, "mean"], math.sqrt(g.loc[0, "var"]), g.loc[0, "count"],
        equal_var=False,
    )  # fmt: skip
    estimate = g.loc[1, "mean"] - g.loc[0, "mean"]
    return estimate, estimate / res.statistic, res.pvalue


def numpy_floor(df: pd.DataFrame) -> tuple[float, float, float]:
    arm = df["arm"].to_numpy()
    y = df["revenue"].to_numpy()
    c = df["pre"].to_numpy()
    theta = np.cov(y, c)[0, 1] / c.var(ddof=1)
    adjusted = y - theta * (c - c.mean())
    treated = arm == 1
    a, b = adjusted[treated], adjusted[~treated]
    res = st.ttest_ind(a, b, equal_var=False)
    estimate = a.mean() - b.mean()
    return estimate, estimate / res.statistic, res.pvalue


def interleaved(repeat: int, routes: dict[str, Callable[[], tuple]]) -> dict[str, list]:
    """Run every route once per round, ``repeat`` rounds: (seconds per run, last result).
    Interleaving spreads the load of other jobs over the routes."""
    runs: dict[str, list] = {name: [] for name in routes}
    results: dict[str, tuple] = {}
    for _ in range(repeat):
        for name, fn in routes.items():
            t0 = time.perf_counter()
            results[name] = fn()
            runs[name].append(time.perf_counter() - t0)
    return {name: [runs[name], results[name]] for name in routes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    df = make_customers(args.rows)
    print(f"{args.rows:,} customers x 2 arms, CUPED; median of {args.repeat}")
    for fn in (ours, ours_file_mode, pandas_scipy, numpy_floor):
        fn(df)  # one untimed round: lazy imports, the first touch of the memory
    routes = {
        "ours: aggregate_frame + cuped": ours,
        "ours, file mode: evaluate_customers": ours_file_mode,
        "reference: pandas cov + groupby.agg + scipy": pandas_scipy,
        "numpy floor: np.cov + masks + scipy ttest_ind": numpy_floor,
    }
    measured = interleaved(args.repeat, {name: lambda fn=fn: fn(df) for name, fn in routes.items()})
    times, results = {}, {}
    for name, (runs, result) in measured.items():
        times[name], results[name] = statistics.median(runs), result
        print(f"{name:48s} {times[name]:7.3f} s   runs {', '.join(f'{r:.3f}' for r in runs)}")
    base = np.array(results["ours: aggregate_frame + cuped"])
    print(f"estimate {base[0]:.5f}, se {base[1]:.5f}, p {base[2]:.4g}")
    for name, values in results.items():
        gap = np.abs(np.array(values) - base) / np.abs(base)
        gaps = ", ".join(f"{g:.1e}" for g in gap)
        print(f"  {name}: relative gap to ours (estimate, se, p) {gaps}")
        np.testing.assert_allclose(values, base, rtol=1e-7, err_msg=name)
    reference = times["reference: pandas cov + groupby.agg + scipy"]
    floor = times["numpy floor: np.cov + masks + scipy ttest_ind"]
    for name in list(routes)[:2]:
        print(
            f"{name}: {reference / times[name]:.2f}x faster than the pandas route, "
            f"{floor / times[name]:.2f}x the numpy floor"
        )


if __name__ == "__main__":
    main()
