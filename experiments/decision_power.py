"""Power of the decision actually made: P(GO) of a pilot design at a true uplift, by the
same placebo pilots as the power table and the same rule as the decision.

A placebo pilot's fit at zero effect gives ``(x_hat, se, df)`` on the log scale of the
total-sales ratio (or of log store sales); a true relative uplift ``u`` moves ``x_hat`` to
``x_hat + log(1 + u)`` and leaves ``se`` and ``df`` as they are (exact for the ratio and
log estimators: :mod:`loyalty_pilot.experiments.power`). So for any ``u`` the share of
placebos on which the rule says GO is known without refitting.

Rules:

* :class:`IntervalRule`: GO when the lower end of the two-sided ``1 - alpha`` interval (t
  with the fit's df; ``alpha`` already divided by the number of variants, as the
  decision's simultaneous intervals) is above ``log(1 + threshold)``.
* :class:`ProfitRule`: the expected-profit rule of :mod:`loyalty_pilot.experiments.value`:
  the prior updated by the estimate with the likelihood's se (:func:`likelihood_se`), GO
  when the posterior mean is above the economics' cut.

:func:`go_curve` gives P(GO) at several uplifts; :func:`mde_go` the smallest uplift whose
P(GO) reaches a target (the "MDE of the decision"), by bisection (P(GO) is increasing in
``u`` for both rules).

Normal placebos in closed form (a customer-randomized test, whose thousands of customers
make ``x_hat ~ N(log(1 + u), se^2)`` with a known ``se`` and no t): both rules then go
exactly when ``x_hat`` clears a cut :func:`go_cut_normal` (the interval rule:
``log(1 + threshold) + z_{1 - alpha / 2} se``; the profit rule: ``se^2 (c(s1) (w0 + w1) -
w0 m0)`` with ``w0 = 1 / s0^2``, ``w1 = 1 / se^2``, ``s1^2 = 1 / (w0 + w1)``), so
``P(GO | u) = Phi((log(1 + u) - cut) / se)`` (:func:`go_curve_normal`) and the MDE of the
decision is ``expm1(cut + z_target se)`` (:func:`mde_go_normal`), what :func:`go_curve`
and :func:`mde_go` give on many normal placebos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .value import Economics, Normal

__all__ = [
    "IntervalRule",
    "ProfitRule",
    "go_curve",
    "go_curve_normal",
    "go_cut_normal",
    "go_share",
    "likelihood_se",
    "mde_go",
    "mde_go_normal",
]

_Z975 = float(stats.norm.ppf(0.975))


def likelihood_se(se: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """The normal likelihood's se of a t-based estimate: ``se * t_{df}(0.975) /
    z(0.975)``, so the likelihood's 95 % interval is the estimator's own t interval (with
    few stores the t's heavier tails are not lost). ``df`` NaN or inf: ``se``."""
    se = np.asarray(se, dtype=float)
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        t = np.where(np.isfinite(df) & (df > 0), stats.t.ppf(0.975, np.where(df > 0, df, 1)), _Z975)
    return se * t / _Z975


@dataclass(frozen=True)
class IntervalRule:
    """GO when the ``1 - alpha`` interval's lower end clears ``threshold`` (relative)."""

    alpha: float
    threshold: float

    def go(self, x_hat: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
        df = np.where(np.isfinite(df) & (df > 0), df, np.inf)
        t = stats.t.ppf(1 - self.alpha / 2, df)
        return x_hat - t * se > math.log1p(self.threshold)


@dataclass(frozen=True)
class ProfitRule:
    """GO when the posterior's expected profit is positive and the loss risk allowed."""

    prior: Normal
    economics: Economics

    def go(self, x_hat: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
        s = likelihood_se(se, df)
        w0 = 1 / self.prior.sd**2
        with np.errstate(divide="ignore", invalid="ignore"):
            w1 = 1 / s**2
            var = 1 / (w0 + w1)
            mean = var * (w0 * self.prior.mean + w1 * x_hat)
        return mean > self.economics.go_cut(np.sqrt(var))


Rule = IntervalRule | ProfitRule


def go_share(rule: Rule, x_hat: np.ndarray, se: np.ndarray, df: np.ndarray, uplift: float) -> float:
    """P(GO) at a true relative uplift: the share of placebos on which the rule goes.
    Placebos without a finite estimate or se count as no GO."""
    x_hat, se, df = (np.asarray(a, dtype=float) for a in (x_hat, se, df))
    if x_hat.size == 0:
        raise ValueError("x_hat: no placebo fit.")
    if not uplift > -1:
        raise ValueError(f"uplift == {uplift!r}, must be > -1.")
    ok = np.isfinite(x_hat) & np.isfinite(se) & (se > 0)
    go = np.zeros(x_hat.shape, dtype=bool)
    go[ok] = rule.go(x_hat[ok] + math.log1p(uplift), se[ok], df[ok])
    return float(go.mean())


def go_curve(
    rule: Rule, x_hat: np.ndarray, se: np.ndarray, df: np.ndarray, uplifts: Sequence[float]
) -> list[float]:
    """:func:`go_share` at each of ``uplifts``."""
    return [go_share(rule, x_hat, se, df, u) for u in uplifts]


def mde_go(
    rule: Rule,
    x_hat: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    *,
    target: float = 0.8,
    upper: float = 9.0,
    tol: float = 1e-5,
) -> float:
    """The smallest uplift ``u >= 0`` with P(GO) >= ``target`` (inf when not even
    ``upper`` reaches it; 0 when ``u = 0`` already does), to ``tol`` on ``log(1 + u)``."""
    if not 0 < target < 1:
        raise ValueError(f"target == {target!r}, must be in (0, 1).")
    if go_share(rule, x_hat, se, df, 0.0) >= target:
        return 0.0
    if go_share(rule, x_hat, se, df, upper) < target:
        return math.inf
    lo, hi = 0.0, math.log1p(upper)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if go_share(rule, x_hat, se, df, math.expm1(mid)) >= target:
            hi = mid
        else:
            lo = mid
    return math.expm1(hi)


def go_cut_normal(rule: Rule, se: float) -> float:
    """The estimate ``x_hat`` above which ``rule`` goes, for an estimate of known ``se``
    (normal, no df): module docstring. ``inf`` when the rule never goes."""
    if not (math.isfinite(se) and se > 0):
        raise ValueError(f"se == {se!r}, must be > 0.")
    if isinstance(rule, IntervalRule):
        return math.log1p(rule.threshold) + float(stats.norm.ppf(1 - rule.alpha / 2)) * se
    w0, w1 = 1 / rule.prior.sd**2, 1 / se**2
    cut = float(rule.economics.go_cut(math.sqrt(1 / (w0 + w1))))
    if not math.isfinite(cut):
        return math.inf
    return (cut * (w0 + w1) - w0 * rule.prior.mean) / w1


def go_curve_normal(rule: Rule, se: float, uplifts: Sequence[float]) -> list[float]:
    """P(GO) at each of ``uplifts`` for ``x_hat ~ N(log(1 + u), se^2)``, in closed form."""
    cut = go_cut_normal(rule, se)
    if any(not u > -1 for u in uplifts):
        raise ValueError(f"uplifts == {list(uplifts)!r}, each must be > -1.")
    return [float(stats.norm.sf((cut - math.log1p(u)) / se)) for u in uplifts]


def mde_go_normal(rule: Rule, se: float, *, target: float = 0.8, upper: float = 9.0) -> float:
    """:func:`mde_go` for normal placebos in closed form: ``max(0, expm1(cut + z_target
    se))``, inf above ``upper``."""
    if not 0 < target < 1:
        raise ValueError(f"target == {target!r}, must be in (0, 1).")
    x = go_cut_normal(rule, se) + float(stats.norm.ppf(target)) * se
    if x > math.log1p(upper):
        return math.inf
    return max(0.0, math.expm1(x))
