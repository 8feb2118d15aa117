"""Deciding on money: the posterior of a programme's uplift, its expected profit, and the
value of the information a pilot buys.

Pure numpy / scipy. The uplift ``u`` is the relative uplift of **total** sales (the
estimand of :func:`~loyalty_pilot.experiments.ratio.ratio_did` and of the break-even), and
everything is normal on ``x = log(1 + u)``: the pilot's estimate ``x_hat ~ N(x, se^2)``
(the ratio estimator's own scale) and the prior ``x ~ N(m0, s0^2)``. On that scale an
interval never crosses -100 %.

Economics (over the decision's horizon, at full rollout). The programme costs ``cost``
at zero response and each unit of relative uplift of total sales brings ``slope`` of
margin net of its own marginal cost, so

    profit(u) = slope * u - cost,      break-even u* = cost / slope,

the identity the simulator's break-even uplift is defined by
(:func:`~loyalty_pilot.simulator.projection.break_even_uplift`: ``slope = R (gm - c_b)``).
Under ``x ~ N(m, s^2)``:

* ``E[profit] = slope (exp(m + s^2 / 2) - 1) - cost``;
* ``P(u > u*) = 1 - Phi((log(1 + u*) - m) / s)``;
* ``P(profit < -L) = Phi((log(1 + u_L) - m) / s)`` with ``u_L = (cost - L) / slope`` (0
  when ``u_L <= -1``).

The rule (``decision.rule: expected_profit``): GO when the expected profit is positive
and the probability of losing more than ``L`` is at most ``q``. For a given ``s`` both are
increasing in ``m``, so GO exactly when ``m > c(s) = max(log(1 + u*) - s^2 / 2,
log(1 + u_L) + s z_{1-q})`` (:meth:`Economics.go_cut`).

Preposterior analysis (Raiffa & Schlaifer; Feit & Berman 2019, "Test & Roll"). Before the
pilot, its posterior mean is ``m1 ~ N(m0, tau^2)`` with ``s1^2 = 1 / (1 / s0^2 + 1 /
se^2)`` and ``tau^2 = s0^2 - s1^2``. The expected profit of the decision made after the
pilot is, with ``c = c(s1)``,

    V_after = slope exp(m0 + s0^2 / 2) Phi((m0 + tau^2 - c) / tau)
              - (slope + cost) Phi((m0 - c) / tau)

(a lognormal "call": ``E[exp(m1) 1{m1 > c}] = exp(m0 + tau^2 / 2) Phi((m0 + tau^2 - c) /
tau)`` and ``tau^2 + s1^2 = s0^2``). Deciding now under the same rule is worth ``V_now =
E[profit | prior]`` if ``m0 > c(s0)``, else 0. The expected value of sample information is
``EVSI = V_after - V_now`` (:func:`evsi`), checked against a Monte Carlo preposterior
(:func:`evsi_monte_carlo`). With the loss constraint the rule is not the unconstrained
Bayes rule, so EVSI can be slightly negative: the pilot then cannot change the decision
for the better.

:func:`roll_profit` and :func:`roll_optimal_n` are the paper's symmetric
two-arm case (normal prior ``N(mu, sigma^2)`` on each arm's mean response, response sd
``s``, population ``N``), used to pin the preposterior machinery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "Economics",
    "Normal",
    "evsi",
    "evsi_monte_carlo",
    "normal_preposterior_value",
    "posterior",
    "prior_from_draws",
    "roll_optimal_n",
    "roll_profit",
]


@dataclass(frozen=True)
class Normal:
    """A normal distribution of ``x = log(1 + u)``: ``mean``, ``sd`` (> 0)."""

    mean: float
    sd: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise ValueError(f"mean == {self.mean!r}, must be finite.")
        if not (math.isfinite(self.sd) and self.sd > 0):
            raise ValueError(f"sd == {self.sd!r}, must be > 0.")

    @property
    def uplift_mean(self) -> float:
        """``E[u] = exp(mean + sd^2 / 2) - 1``."""
        return math.expm1(self.mean + self.sd**2 / 2)

    @property
    def uplift_sd(self) -> float:
        """sd of ``u`` (lognormal)."""
        return math.exp(self.mean + self.sd**2 / 2) * math.sqrt(math.expm1(self.sd**2))

    def uplift_quantile(self, q: float) -> float:
        """The ``q`` quantile of ``u``."""
        return math.expm1(self.mean + self.sd * float(stats.norm.ppf(q)))

    @classmethod
    def of_uplift(cls, mean: float, sd: float) -> Normal:
        """The lognormal with ``E[u] = mean`` and ``sd(u) = sd`` (moment matching)."""
        if not mean > -1:
            raise ValueError(f"mean == {mean!r}, must be > -1 (a relative uplift).")
        if not (math.isfinite(sd) and sd > 0):
            raise ValueError(f"sd == {sd!r}, must be > 0.")
        s2 = math.log1p((sd / (1 + mean)) ** 2)
        return cls(math.log1p(mean) - s2 / 2, math.sqrt(s2))

    def to_dict(self) -> dict[str, float]:
        return {
            "log_mean": self.mean,
            "log_sd": self.sd,
            "mean": self.uplift_mean,
            "sd": self.uplift_sd,
            "p10": self.uplift_quantile(0.10),
            "p90": self.uplift_quantile(0.90),
        }


def prior_from_draws(uplifts: Any) -> Normal:
    """The normal on ``log(1 + u)`` matching the mean and sd of ``log1p(uplifts)``.

    ``uplifts``: the projection's draws of the relative uplift of total sales (e.g.
    incremental revenue / baseline revenue, per draw), all > -1 and not all equal.
    """
    u = np.asarray(uplifts, dtype=float).ravel()
    if u.size < 2 or not np.isfinite(u).all():
        raise ValueError("uplifts: need at least 2 finite draws.")
    if (u <= -1).any():
        raise ValueError(f"uplifts: a draw is {u.min():g}, must be > -1.")
    x = np.log1p(u)
    sd = float(x.std(ddof=1))
    if not sd > 0:
        raise ValueError("uplifts: every draw is the same, the prior has no spread.")
    return Normal(float(x.mean()), sd)


def posterior(prior: Normal, estimate: float, se: float) -> Normal:
    """Normal-normal update of ``prior`` by an estimate of ``x`` with standard error ``se``."""
    if not (math.isfinite(se) and se > 0):
        raise ValueError(f"se == {se!r}, must be > 0.")
    if not math.isfinite(estimate):
        raise ValueError(f"estimate == {estimate!r}, must be finite.")
    w0, w1 = 1 / prior.sd**2, 1 / se**2
    var = 1 / (w0 + w1)
    return Normal(var * (w0 * prior.mean + w1 * estimate), math.sqrt(var))


@dataclass(frozen=True)
class Economics:
    """``profit(u) = slope u - cost`` over the horizon; the rule's loss limit.

    ``loss_threshold`` ``L`` (> 0) and ``max_loss_probability`` ``q`` in (0, 1): GO needs
    ``P(profit < -L) <= q`` besides a positive expected profit.
    """

    slope: float
    cost: float
    loss_threshold: float
    max_loss_probability: float = 0.10

    def __post_init__(self) -> None:
        for name in ("slope", "cost", "loss_threshold"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} == {getattr(self, name)!r}, must be finite.")
        if not self.loss_threshold > 0:
            raise ValueError(f"loss_threshold == {self.loss_threshold!r}, must be > 0.")
        if not 0 < self.max_loss_probability < 1:
            raise ValueError(
                f"max_loss_probability == {self.max_loss_probability!r}, must be in (0, 1)."
            )

    @classmethod
    def from_break_even(
        cls, cost: float, break_even: float, loss_threshold: float, max_loss_probability: float
    ) -> Economics:
        """From the programme's cost over the horizon and its break-even uplift ``u*``
        (``slope = cost / u*``; ``u* = inf``: an extra euro costs its margin, slope 0)."""
        if not break_even > 0:
            raise ValueError(f"break_even == {break_even!r}, must be > 0.")
        slope = 0.0 if math.isinf(break_even) else cost / break_even
        return cls(slope, cost, loss_threshold, max_loss_probability)

    @property
    def break_even(self) -> float:
        return math.inf if self.slope <= 0 else self.cost / self.slope

    @property
    def loss_uplift(self) -> float:
        """``u_L``: below this uplift the loss exceeds ``loss_threshold`` (-inf: never)."""
        if self.slope <= 0:
            return math.inf if self.cost > self.loss_threshold else -math.inf
        return (self.cost - self.loss_threshold) / self.slope

    def expected_profit(self, belief: Normal) -> float:
        return self.slope * belief.uplift_mean - self.cost

    def profit(self, uplift: Any) -> Any:
        return self.slope * np.asarray(uplift, dtype=float) - self.cost

    def prob_above_break_even(self, belief: Normal) -> float:
        if self.slope <= 0:
            return 0.0
        return float(stats.norm.sf((math.log1p(self.break_even) - belief.mean) / belief.sd))

    def prob_loss(self, belief: Normal) -> float:
        """``P(profit < -loss_threshold)``."""
        u_l = self.loss_uplift
        if u_l <= -1:
            return 0.0
        if math.isinf(u_l):
            return 1.0
        return float(stats.norm.cdf((math.log1p(u_l) - belief.mean) / belief.sd))

    def go_cut(self, sd: Any) -> Any:
        """``c(s)``: GO exactly when the belief's mean exceeds it (inf: never)."""
        s = np.asarray(sd, dtype=float)
        if self.slope <= 0:
            return np.full_like(s, np.inf)
        cut = math.log1p(self.break_even) - s**2 / 2
        u_l = self.loss_uplift
        if u_l > -1:
            z = float(stats.norm.ppf(1 - self.max_loss_probability))
            cut = np.maximum(cut, math.log1p(u_l) + s * z)
        return cut

    def go(self, belief: Normal) -> bool:
        return bool(belief.mean > self.go_cut(belief.sd))

    def value_of_deciding(self, belief: Normal) -> float:
        """Expected profit of the rule's decision on ``belief`` (0 when it says no)."""
        return self.expected_profit(belief) if self.go(belief) else 0.0

    def summary(self, belief: Normal) -> dict[str, Any]:
        return {
            "posterior": belief.to_dict(),
            "prob_above_break_even": self.prob_above_break_even(belief),
            "expected_profit": self.expected_profit(belief),
            "prob_loss": self.prob_loss(belief),
            "go": self.go(belief),
        }


def _value_after(prior: Normal, se: Any, economics: Economics) -> np.ndarray:
    se = np.asarray(se, dtype=float)
    s1 = 1 / np.sqrt(1 / prior.sd**2 + 1 / se**2)
    tau = prior.sd**2 / np.sqrt(prior.sd**2 + se**2)  # sd of the posterior mean, exact
    cut = economics.go_cut(s1)
    if economics.slope <= 0:
        return np.zeros_like(se)
    m0 = prior.mean
    with np.errstate(invalid="ignore", divide="ignore"):
        a = stats.norm.cdf((m0 + tau**2 - cut) / tau)
        b = stats.norm.cdf((m0 - cut) / tau)
    grow = economics.slope * math.exp(m0 + prior.sd**2 / 2)
    value = grow * a - (economics.slope + economics.cost) * b
    # tau -> 0 (no information): the decision on the prior
    return np.where(tau > 0, value, economics.value_of_deciding(prior))


def evsi(prior: Normal, se: Any, economics: Economics) -> Any:
    """Expected value of the information of a pilot whose estimate of ``log(1 + u)`` has
    standard error ``se`` (a number or an array): ``V_after - V_now`` (module docstring).
    ``se = inf`` gives 0."""
    se_arr = np.asarray(se, dtype=float)
    if (se_arr <= 0).any() or np.isnan(se_arr).any():
        raise ValueError("se: every value must be > 0.")
    out = _value_after(prior, se_arr, economics) - economics.value_of_deciding(prior)
    return float(out) if np.ndim(out) == 0 else out


def evsi_monte_carlo(
    prior: Normal,
    se: float,
    economics: Economics,
    *,
    n: int = 200_000,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float]:
    """EVSI by simulating the preposterior: ``x ~ prior``, ``x_hat ~ N(x, se^2)``, the
    posterior, the rule's decision and the profit it realises at the true ``x``.
    Returns (EVSI, its Monte Carlo se)."""
    generator = np.random.default_rng(rng)
    x = prior.mean + prior.sd * generator.standard_normal(n)
    x_hat = x + se * generator.standard_normal(n)
    s1 = 1 / math.sqrt(1 / prior.sd**2 + 1 / se**2)
    m1 = s1**2 * (prior.mean / prior.sd**2 + x_hat / se**2)
    go = m1 > economics.go_cut(s1)
    realised = np.where(go, economics.profit(np.expm1(x)), 0.0)
    now = economics.profit(np.expm1(x)) if economics.go(prior) else np.zeros(n)
    gain = realised - now
    return float(gain.mean()), float(gain.std(ddof=1) / math.sqrt(n))


def normal_preposterior_value(mean: Any, tau: Any) -> Any:
    """``E[max(0, M)]`` for ``M ~ N(mean, tau^2)``: ``mean Phi(mean / tau) + tau
    phi(mean / tau)`` (``max(0, mean)`` at ``tau = 0``)."""
    mean = np.asarray(mean, dtype=float)
    tau = np.asarray(tau, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = mean / tau
        value = mean * stats.norm.cdf(z) + tau * stats.norm.pdf(z)
    out = np.where(tau > 0, value, np.maximum(mean, 0.0))
    return float(out) if out.ndim == 0 else out


def roll_profit(n1: Any, n2: Any, population: float, mu: float, sigma: float, s: float) -> Any:
    """Feit & Berman (2019) eq. for the expected profit of a test of ``n1``, ``n2`` units
    then rolling the arm with the higher posterior mean out to the rest:
    ``(N - n1 - n2) (mu + sqrt(2) sigma^2 / (sqrt(pi) sqrt(2 sigma^2 + (n1 + n2) / (n1 n2)
    s^2))) + mu (n1 + n2)``, computed here by the preposterior value of the difference
    of the two arms (:func:`normal_preposterior_value`), as the paper derives it."""
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    var_hat = s**2 * (1 / n1 + 1 / n2)  # variance of the difference of the arm means
    prior_var = 2 * sigma**2  # prior variance of the difference m1 - m2
    tau = prior_var / np.sqrt(prior_var + var_hat)  # sd of its posterior mean
    deployed = mu + normal_preposterior_value(0.0, tau)
    return (population - n1 - n2) * deployed + mu * (n1 + n2)


def roll_optimal_n(population: float, sigma: float, s: float) -> float:
    """The paper's optimal sample size per arm for the symmetric case:
    ``sqrt(N / 4 (s / sigma)^2 + (3 / 4 (s / sigma)^2)^2) - 3 / 4 (s / sigma)^2``."""
    r = (s / sigma) ** 2
    return math.sqrt(population / 4 * r + (0.75 * r) ** 2) - 0.75 * r


def evsi_arms(
    priors: list[Normal],
    ses: list[float],
    economics: list[Economics],
    *,
    n: int = 100_000,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float, float]:
    """EVSI of a pilot of several variants, of which at most one is rolled out (the one
    of highest posterior expected profit among those the rule lets go), by Monte Carlo
    over the preposterior: each arm's posterior mean ``m1 ~ N(m0, tau^2)`` independently
    (the arms' estimates share the control; the correlation is ignored).

    Returns ``(V_after, V_now, EVSI)``; with one arm ``V_after`` converges to the closed
    form of :func:`evsi`.
    """
    if not (len(priors) == len(ses) == len(economics)) or not priors:
        raise ValueError("priors, ses, economics: one per arm, at least one arm.")
    generator = np.random.default_rng(rng)
    values = np.zeros((n, len(priors)))
    now = []
    for a, (prior, se, econ) in enumerate(zip(priors, ses, economics, strict=True)):
        s1 = 1 / math.sqrt(1 / prior.sd**2 + 1 / se**2)
        tau = prior.sd**2 / math.sqrt(prior.sd**2 + se**2)
        m1 = prior.mean + tau * generator.standard_normal(n)
        profit = econ.slope * np.expm1(m1 + s1**2 / 2) - econ.cost
        values[:, a] = np.where(m1 > econ.go_cut(s1), profit, -np.inf)
        now.append(econ.value_of_deciding(prior) if econ.go(prior) else -math.inf)
    after = float(np.maximum(values.max(axis=1), 0.0).mean())
    v_now = max(0.0, *now)
    return after, v_now, after - v_now


def prob_better(
    belief_a: Normal, economics_a: Economics, belief_b: Normal, economics_b: Economics
) -> float:
    """``P(profit_a > profit_b)`` for independent beliefs, by Gauss-Hermite quadrature
    over the narrower belief (deterministic; 80 nodes): over ``x_b`` of ``P(x_a >
    x*(x_b))``, or ``1 - P(profit_b > profit_a)`` when ``a`` is the narrower one (ties have
    probability 0)."""
    if belief_a.sd < belief_b.sd:
        return 1.0 - prob_better(belief_b, economics_b, belief_a, economics_a)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    x_b = belief_b.mean + belief_b.sd * nodes
    profit_b = economics_b.profit(np.expm1(x_b))
    if economics_a.slope <= 0:
        p = (-economics_a.cost > profit_b).astype(float)
    else:
        ratio = (economics_a.cost + profit_b) / economics_a.slope
        with np.errstate(invalid="ignore", divide="ignore"):
            cut = np.where(ratio > -1, np.log1p(np.maximum(ratio, -1 + 1e-300)), -np.inf)
        p = stats.norm.sf((cut - belief_a.mean) / belief_a.sd)
    return float(np.sum(weights * p) / np.sum(weights))


def value_after_interval(prior: Normal, se: float, economics: Economics, cut: float) -> float:
    """Expected profit of a pilot decided by an interval rule: GO when the estimate
    ``x_hat ~ N(x, se^2)`` exceeds ``cut`` (e.g. ``log(1 + u*) + t se``), so ``E[profit(x)
    Phi((x - cut) / se)]`` over the prior, by Gauss-Hermite quadrature (120 nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    x = prior.mean + prior.sd * nodes
    go = stats.norm.cdf((x - cut) / se)
    return float(np.sum(weights * economics.profit(np.expm1(x)) * go) / np.sum(weights))


def value_after_interval_arms(
    priors: list[Normal],
    ses: list[float],
    economics: list[Economics],
    cuts: list[float],
    *,
    n: int = 100_000,
    rng: np.random.Generator | int | None = None,
) -> float:
    """The same for several variants by Monte Carlo: each arm's ``x ~ prior`` and ``x_hat
    ~ N(x, se^2)``; among the arms whose ``x_hat`` clears its cut, the one of highest
    ``x_hat`` is rolled out (as the interval rule recommends), and its true profit counts."""
    generator = np.random.default_rng(rng)
    k = len(priors)
    x = np.empty((n, k))
    x_hat = np.empty((n, k))
    profit = np.empty((n, k))
    for a in range(k):
        x[:, a] = priors[a].mean + priors[a].sd * generator.standard_normal(n)
        x_hat[:, a] = x[:, a] + ses[a] * generator.standard_normal(n)
        profit[:, a] = economics[a].profit(np.expm1(x[:, a]))
    clear = x_hat > np.asarray(cuts)[None, :]
    score = np.where(clear, x_hat, -np.inf)
    chosen = score.argmax(axis=1)
    realised = np.where(clear.any(axis=1), profit[np.arange(n), chosen], 0.0)
    return float(realised.mean())
