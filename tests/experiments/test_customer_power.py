"""The se of a customer-randomized test from sufficient statistics, pinned to a direct
simulation of the test on a finite population and to numpy's moments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loyalty_pilot.experiments.customer_power import CustomerVariance
from loyalty_pilot.experiments.sufficient import aggregate


def population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed customer sales over two windows, correlated through a customer's rate."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.5, 20.0, n)
    c = rng.poisson(rate / 10) * rng.gamma(4.0, 10.0, n) / 4
    y = rng.poisson(rate / 10) * rng.gamma(4.0, 10.0, n) / 4
    return y, c


def stats_of(y: np.ndarray, c: np.ndarray):
    return aggregate(np.zeros(len(y), dtype=int), y, covariate=c)[0]


def test_relative_cuped_variance_matches_numpy():
    y, c = population(20_000, 1)
    v = CustomerVariance.of(stats_of(y, c))
    theta = np.cov(y, c)[0, 1] / np.var(c, ddof=1)
    adjusted = y - theta * c
    assert v.theta == pytest.approx(theta, rel=1e-9)
    assert v.relative_variance == pytest.approx(np.var(adjusted, ddof=1) / y.mean() ** 2, rel=1e-9)
    assert v.variance_reduction == pytest.approx(1 - np.var(adjusted) / np.var(y), rel=1e-9)
    assert v.se(500) == pytest.approx(math.sqrt(2 * v.relative_variance / 500))
    assert v.se(500, 1500) == pytest.approx(math.sqrt(v.relative_variance * (1 / 500 + 1 / 1500)))


def test_se_matches_a_direct_simulation_of_the_test():
    """Draw 2n of N customers at random into two arms, estimate log(mean_T / mean_C) with
    CUPED (theta pooled over the two arms, as experiments.customer.cuped), many times."""
    y, c = population(4_000, 2)
    n = 800
    v = CustomerVariance.of(stats_of(y, c))
    rng = np.random.default_rng(5)
    draws = 2_000
    order = np.argsort(rng.random((draws, len(y))), axis=1)[:, : 2 * n]
    ys, cs = y[order], c[order]
    cov = ((ys - ys.mean(1, keepdims=True)) * (cs - cs.mean(1, keepdims=True))).sum(1)
    theta = cov / ((cs - cs.mean(1, keepdims=True)) ** 2).sum(1)
    adjusted = ys - theta[:, None] * (cs - cs.mean(1, keepdims=True))
    x_hat = np.log(adjusted[:, :n].mean(1) / adjusted[:, n:].mean(1))
    sd = x_hat.std(ddof=1)
    assert v.se(n) == pytest.approx(sd, rel=0.06)  # MC se of an sd: ~1.6 % at 2,000 draws
    assert abs(x_hat.mean()) < 3 * sd / math.sqrt(draws)


def test_pooled_windows_weight_by_n_minus_one():
    parts = [stats_of(*population(n, seed)) for n, seed in ((3_000, 1), (1_000, 2), (2_000, 3))]
    each = [CustomerVariance.of(p) for p in parts]
    pooled = CustomerVariance.pooled(parts)
    weights = np.array([p.n - 1 for p in parts], dtype=float)
    expected = np.dot(weights, [e.relative_variance for e in each]) / weights.sum()
    assert pooled.relative_variance == pytest.approx(expected)
    assert pooled.n == 3_000  # the first window's population (the one nearest the test)
    assert pooled.mean == pytest.approx(sum(p.sum_y for p in parts) / sum(p.n for p in parts))


def test_degenerate_populations_are_refused():
    with pytest.raises(ValueError, match="covariate"):
        CustomerVariance.of(aggregate(np.zeros(3, dtype=int), [1.0, 2.0, 3.0])[0])
    with pytest.raises(ValueError, match="mean sales"):
        CustomerVariance.of(stats_of(np.zeros(5), np.ones(5)))
    flat = CustomerVariance.of(stats_of(np.array([1.0, 2.0, 3.0]), np.ones(3)))
    assert flat.theta == 0.0  # no covariate spread: the plain difference of means
    with pytest.raises(ValueError, match="window"):
        CustomerVariance.pooled([])
