"""Time closed-form randomization inference against per-draw refit loops, same run.

Run: ``python benchmarks/bench_randomization.py`` (best of 5 for the closed form).
The closed form (``randomization_inference``: one matrix product for all draws, plus the
exact test-inversion interval) is compared with two references that refit every draw in a
Python loop, timed on a subset of the draws and extrapolated to all of them:

* ``means``: per draw, recompute the unit pre/post means from the panel and the DiD;
* ``twfe``: per draw, the two-way fixed-effects regression ``y ~ unit + week + D`` by
  ``numpy.linalg.lstsq`` (on a balanced panel its coefficient is the same DiD of means).

Both references give the p-value only; a refit interval by bisection would repeat them
for every tau0 it tries (tens of times).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.randomization import randomization_inference


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall-clock time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def make_panel(stores: int, weeks: int, seed: int = 0) -> PanelData:
    rng = np.random.default_rng(seed)
    y = 100 + rng.normal(0, 10, (stores, 1)) + rng.normal(0, 3, (stores, weeks))
    treated = np.zeros(stores, dtype=bool)
    treated[rng.choice(stores, stores // 2, replace=False)] = True
    post = np.arange(weeks) >= weeks // 2
    y[np.ix_(treated, post)] += 1.0
    return PanelData(y, np.arange(stores), np.arange(weeks), treated, post)


def refit_means(data: PanelData, draws: np.ndarray) -> np.ndarray:
    out = np.empty(len(draws))
    for j, w in enumerate(draws):
        d = data.y[:, data.post].mean(axis=1) - data.y[:, ~data.post].mean(axis=1)
        out[j] = d[w].mean() - d[~w].mean()
    return out


def refit_twfe(data: PanelData, draws: np.ndarray) -> np.ndarray:
    stores, weeks = data.y.shape
    unit = np.repeat(np.eye(stores), weeks, axis=0)
    week = np.tile(np.eye(weeks), (stores, 1))[:, 1:]
    outcome = data.y.ravel()
    out = np.empty(len(draws))
    for j, w in enumerate(draws):
        treated_post = np.outer(w, data.post).ravel().astype(float)
        design = np.column_stack([unit, week, treated_post])
        out[j] = np.linalg.lstsq(design, outcome, rcond=None)[0][-1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stores", type=int, default=60)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--draws", type=int, default=2_000)
    parser.add_argument("--subset", type=int, default=50, help="draws timed, means refit")
    parser.add_argument("--twfe-subset", type=int, default=4, help="draws timed, TWFE refit")
    args = parser.parse_args()
    data = make_panel(args.stores, args.weeks)

    seconds, result = best_of(
        args.repeat, lambda: randomization_inference(data, n_draws=args.draws, rng=0)
    )
    rng = np.random.default_rng(1)
    draws = np.array([rng.permutation(data.treated) for _ in range(args.subset)])
    refit_means(data, draws[:1]), refit_twfe(data, draws[:1])  # warm-up, untimed
    t0 = time.perf_counter()
    means = refit_means(data, draws)
    means_seconds = (time.perf_counter() - t0) * args.draws / args.subset
    t0 = time.perf_counter()
    twfe = refit_twfe(data, draws[: args.twfe_subset])
    twfe_seconds = (time.perf_counter() - t0) * args.draws / len(twfe)
    if not np.allclose(twfe, means[: len(twfe)], rtol=1e-8, atol=1e-10):
        raise SystemExit("the TWFE refit and the DiD of means disagree")

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"panel: {args.stores} stores x {args.weeks} weeks, {args.draws:,} draws")
    print(
        f"closed form (p-value + exact interval): {seconds * 1e3:.1f} ms "
        f"(best of {args.repeat}); p = {result.p_value:.4f}, "
        f"CI [{result.ci_low:.3f}, {result.ci_high:.3f}]"
    )
    print(
        f"refit loop, means (p-value only): {means_seconds * 1e3:.1f} ms "
        f"(extrapolated from {args.subset} draws); ratio {means_seconds / seconds:.1f}x"
    )
    print(
        f"refit loop, TWFE lstsq (p-value only): {twfe_seconds:.2f} s "
        f"(extrapolated from {len(twfe)} draws); ratio {twfe_seconds / seconds:.0f}x"
    )


if __name__ == "__main__":
    main()
