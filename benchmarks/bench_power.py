"""Time the placebo-pilot power grid against a loop of ``did()`` calls, same run.

Run: ``python benchmarks/bench_power.py`` (best of 3).

A realistic chain history of 500 stores x 104 weeks (lognormal store sizes, yearly
seasonality, a growth trend per store, AR(1) noise on the log scale); the grid of 5 sizes
(4, 8, 12, 16, 24 stores per arm) x 3 durations (8, 12, 16 weeks) x 1,000 placebo pilots,
52 pre weeks, DiD with CR2 errors on log sales: :func:`placebo_power` gives every cell's
MDE at 80 % power and its false-positive rate. Target: <= 30 s.

Reference in the same run: the straightforward way, a Python loop that builds each
placebo's panel (``PanelData`` of its stores x weeks, log scale) and calls
``experiments.did.did`` on it, timed on ``--subset`` placebos of every cell and scaled to
1,000 per cell. It gives the false-positive rate only (one fit per placebo at zero
effect); finding an MDE that way would refit every placebo for every effect size tried
(about 20 for a bisection), so the ratio printed is a lower bound of the saving.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from loyalty_pilot.experiments.did import did
from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.power import placebo_power, placebo_sample

SIZES = [4, 8, 12, 16, 24]
WEEKS = [8, 12, 16]


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall-clock time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def make_history(stores: int = 500, weeks: int = 104, seed: int = 0) -> np.ndarray:
    """Weekly sales: lognormal sizes x seasonality x store trend x AR(1) noise (rho 0.6)."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    size = np.exp(rng.normal(10.0, 0.8, (stores, 1)))
    season = 1.0 + 0.12 * np.sin(2 * np.pi * t / 52) + 0.05 * np.cos(4 * np.pi * t / 52)
    trend = np.exp(rng.normal(0.02, 0.04, (stores, 1)) * t / 52)
    noise = np.zeros((stores, weeks))
    eps = rng.normal(0.0, 0.05, (stores, weeks))
    for k in range(weeks):
        noise[:, k] = (0.6 * noise[:, k - 1] if k else 0.0) + eps[:, k]
    return size * season * trend * np.exp(noise)


def did_loop(y: np.ndarray, sample) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one ``did()`` per placebo on its own log-sales panel."""
    pre, weeks, n1 = sample.pre_weeks, sample.weeks, sample.per_arm
    treated = np.arange(2 * n1) < n1
    post = np.arange(pre + weeks) >= pre
    estimates, p_values = [], []
    for s, units in zip(sample.starts, sample.units, strict=True):
        window = np.log(y[units, s - pre : s + weeks])
        data = PanelData(window, units, np.arange(s - pre, s + weeks), treated, post)
        result = did(data)
        estimates.append(result.estimate)
        p_values.append(result.p_value)
    return np.array(estimates), np.array(p_values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--pre-weeks", type=int, default=52)
    parser.add_argument("--placebos", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=30, help="placebos per cell, did() loop")
    parser.add_argument("--threshold", type=float, default=0.03, help="break-even uplift")
    args = parser.parse_args()
    y = make_history(args.stores, args.weeks)
    kw = {"sizes": SIZES, "weeks": WEEKS, "pre_weeks": args.pre_weeks,
          "n_placebos": args.placebos, "threshold": args.threshold, "rng": 1}  # fmt: skip
    placebo_power(y, **{**kw, "n_placebos": 10})  # warm-up: scipy import
    seconds, table = best_of(args.repeat, lambda: placebo_power(y, **kw))

    reference, worst = 0.0, 0.0
    for per_arm in SIZES:
        for weeks in WEEKS:
            sample = placebo_sample(y, per_arm=per_arm, weeks=weeks, pre_weeks=args.pre_weeks,
                                    n_placebos=args.subset, rng=2)  # fmt: skip
            t0 = time.perf_counter()
            estimates, p_values = did_loop(y, sample)
            reference += (time.perf_counter() - t0) * args.placebos / args.subset
            worst = max(worst, float(np.abs(estimates - sample.estimate).max()),
                        float(np.abs(p_values - sample.p_value).max()))  # fmt: skip

    others = {}
    for estimator, scale in [("ancova", "log"), ("ri", "log"), ("did", "level")]:
        others[estimator, scale] = best_of(
            1, lambda e=estimator, s=scale: placebo_power(y, **kw, estimator=e, scale=s)
        )[0]
    # the total-sales ratio (the pilots' default), its exact df included; and with every
    # other store a control (controls="all")
    for controls in ("matched", "all"):
        others["ratio", controls] = best_of(
            1, lambda c=controls: placebo_power(y, **kw, estimator="ratio", controls=c)
        )[0]

    cells = len(SIZES) * len(WEEKS)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"history: {args.stores} stores x {args.weeks} weeks; {args.pre_weeks} pre weeks")
    print(f"grid: sizes {SIZES} x weeks {WEEKS} x {args.placebos} placebos = "
          f"{cells * args.placebos:,} placebo pilots, DiD CR2, log scale")  # fmt: skip
    print(table.to_frame().round(4).to_string(index=False))
    chosen = table.recommend()
    design = "none" if chosen is None else f"{chosen.per_arm} per arm x {chosen.weeks} weeks"
    print(f"recommend(threshold={args.threshold}): {design}")
    print(f"placebo_power (best of {args.repeat}): {seconds:.2f} s (target <= 30 s)")
    print(f"reference: did() loop, {args.subset} placebos per cell scaled to "
          f"{args.placebos}: {reference:.1f} s; max |difference| in estimate / p-value "
          f"{worst:.1e}")  # fmt: skip
    print(f"ratio reference / placebo_power: {reference / seconds:.0f}x")
    for (estimator, scale), s in others.items():
        what = f"controls={scale!r}" if estimator == "ratio" else f"scale={scale!r}"
        print(f"same grid, estimator={estimator!r}, {what}: {s:.2f} s ({s / seconds:.0f}x DiD)")


if __name__ == "__main__":
    main()
