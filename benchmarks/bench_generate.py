"""Time `generate()` at the default size against a plain numpy Poisson draw of the same shape.

Run: ``python benchmarks/bench_generate.py`` (best of 3 for both timings, same process).
The reference is ``np.random.default_rng(0).poisson(0.4, size=(customers, weeks))``, the
customer x week draw at the heart of the generator; the ratio is what the rest costs.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from loyalty_pilot.pilots.synthetic import generate


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall-clock time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", type=int, default=48)
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--weeks", type=int, default=104)
    args = parser.parse_args()
    size = {
        "stores": args.stores,
        "regions": args.regions,
        "customers": args.customers,
        "weeks": args.weeks,
    }

    seconds, chain = best_of(args.repeat, lambda: generate(**size))
    reference, _ = best_of(
        args.repeat,
        lambda: np.random.default_rng(0).poisson(0.4, size=(args.customers, args.weeks)),
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(
        "size: "
        + ", ".join(f"{k} {v}" for k, v in size.items())
        + f", baskets {len(chain.baskets):,}"
    )
    print(f"generate(): {seconds:.3f} s (best of {args.repeat})")
    print(f"reference poisson(0.4, ({args.customers}, {args.weeks})): {reference:.4f} s")
    print(f"ratio generate / reference: {seconds / reference:.1f}")
    print(f"baskets per second: {len(chain.baskets) / seconds:,.0f}")


if __name__ == "__main__":
    main()
