"""The precision of a customer-randomized test, from the customers' sufficient statistics.

A test randomizes ``n`` customers to each arm and compares the arms' mean sales over the
test weeks, CUPED-adjusted with each customer's sales of the weeks before (the analysis
of :func:`loyalty_pilot.experiments.customer.cuped`: ``theta = cov(y, c) / var(c)`` pooled
over the arms, ``y_adj = y - theta (c - mean(c))``). On the log scale of the relative
uplift, ``x_hat = log(mean_adj_T / mean_adj_C)``, and by the delta method

    Var(x_hat) = var_adj (1 / n_T + 1 / n_C) / mean(y)^2,
    var_adj = var(y) - 2 theta cov(y, c) + theta^2 var(c),

so everything the test's se needs is the population's **relative CUPED variance**
``r = var_adj / mean(y)^2``: ``se(n) = sqrt(2 r / n)`` for ``n`` customers per arm. Under
the null the two arms are disjoint simple random samples of the same population, so
``Var(mean_T - mean_C) = S^2 (1 / n_T + 1 / n_C)`` holds without a finite-population
correction.

:class:`CustomerVariance` holds ``r`` with the population's size and mean; from one
:class:`~loyalty_pilot.experiments.sufficient.SufficientStats` (outcome ``y``, covariate
``c``) or pooled over several windows of the history (:meth:`CustomerVariance.pooled`:
``r`` averaged with weights ``n - 1``, the mean as total over customers), so one lucky
window does not size the test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .sufficient import SufficientStats

__all__ = ["CustomerVariance"]


@dataclass(frozen=True)
class CustomerVariance:
    """The relative CUPED variance of customers' sales (module docstring).

    ``n``: customers in the population; ``mean``: mean ``y`` per customer; ``theta``;
    ``relative_variance`` ``r``; ``variance_reduction``: ``1 - var_adj / var(y)``.
    """

    n: int
    mean: float
    theta: float
    relative_variance: float
    variance_reduction: float

    @classmethod
    def of(cls, stats: SufficientStats) -> CustomerVariance:
        """From one population's statistics (the covariate sums needed; ``var(c) = 0``:
        ``theta = 0``, plain difference of means). ValueError below two customers or
        when the mean is not positive (no relative uplift to speak of)."""
        if not stats.has_covariate:
            raise ValueError("stats: the covariate sums (sum_c, sum_c2, sum_yc) are needed.")
        if stats.n < 2:
            raise ValueError(f"stats: n == {stats.n}, need at least 2 customers.")
        mean = stats.mean_y
        if not mean > 0:
            raise ValueError(f"stats: mean sales {mean!r} per customer, must be > 0.")
        var_y, var_c, cov = stats.var_y, stats.var_c, stats.cov_yc
        theta = cov / var_c if var_c > 0 else 0.0
        var_adj = max(var_y - 2 * theta * cov + theta * theta * var_c, 0.0)
        reduction = 1 - var_adj / var_y if var_y > 0 else 0.0
        return cls(stats.n, mean, theta, var_adj / mean**2, reduction)

    @classmethod
    def pooled(cls, parts: Sequence[SufficientStats]) -> CustomerVariance:
        """Several windows' populations pooled: ``r`` and the variance reduction weighted
        by ``n - 1``, the mean over all customer-windows, ``theta`` weighted alike, ``n``
        the first part's (the window nearest the test)."""
        if not parts:
            raise ValueError("parts: no window to pool.")
        each = [cls.of(p) for p in parts]
        weights = [v.n - 1 for v in each]
        total = sum(weights)

        def average(name: str) -> float:
            return sum(w * getattr(v, name) for w, v in zip(weights, each, strict=True)) / total

        mean = sum(p.sum_y for p in parts) / sum(p.n for p in parts)
        return cls(
            each[0].n, mean, average("theta"), average("relative_variance"),
            average("variance_reduction"),
        )  # fmt: skip

    def se(self, per_arm: int | float, control: int | float | None = None) -> float:
        """The se of ``log(1 + u)`` of the customers' sales for ``per_arm`` treated and
        ``control`` (default ``per_arm``) control customers."""
        n_c = per_arm if control is None else control
        if not (per_arm > 0 and n_c > 0):
            raise ValueError(f"per_arm == {per_arm!r}, control == {n_c!r}: must be > 0.")
        return math.sqrt(self.relative_variance * (1 / per_arm + 1 / n_c))

    def to_dict(self) -> dict[str, Any]:
        return {
            "customers": self.n,
            "mean_sales": self.mean,
            "theta": self.theta,
            "relative_variance": self.relative_variance,
            "variance_reduction": self.variance_reduction,
        }
