"""Projection of a programme variant: replayed cost, behavioural response, Monte Carlo.

Pure pandas / numpy / scipy, no I/O. The figures a decision needs before any store is
touched: what the variant costs on the chain's own baskets, what it must win back
(the break-even uplift) and, under the variant's behavioural assumptions, the spread of
its profit over a horizon.

The model
---------
Horizon. The first ``horizon_months`` months of the replay window: from ``start``
(argument, else ``programme.start``, else the first basket) to ``start + H months - 1
day`` (capped at the last basket). The programme starts there with empty balances.

Baseline. :func:`~loyalty_pilot.simulator.replay.replay` over the horizon: store revenue
``R_k``, members' revenue ``Rm_k``, programme cost ``C0_k`` per month ``k``. With zero
response the projection *is* this replay (its cost equals the replay's cost exactly).

Marginal cost of extra member spend. Two more replays over the horizon:
``step`` (default 5 %) bigger identified baskets, and ``step`` more identified baskets
(a seeded ``step`` share of the identified baskets in the window duplicated, same day
and time). Their cost differences, divided by the realised relative change of members'
revenue, are ``dCb_k`` and ``dCv_k``: the cost in month ``k`` per unit of relative
basket-size and visit uplift. They hold points earned on the extra spend, the extra
rewards crossed, discounts on the extra spend, tier moves. The projection is linear in
them: exact for discounts, running and referral costs, a first-order approximation for
thresholds (rewards, tiers); ``tests/simulator/test_projection.py`` measures the error
against an exact re-replay at the mean response. Per euro: ``c_b = sum dCb / sum Rm``,
``c_v = sum dCv / sum Rm``. Anonymous baskets earn nothing and do not respond.

Retention. A survival curve ``S(t)`` (t in weeks since ``start``) of the chain's
customers, fitted on the whole history (identified purchase occasions, weekly unit):
two models of the same four-parameter size on the same ``(x, t_x, T)`` summary, and the
one with the higher log-likelihood is kept (:func:`fit_retention`):

* the BG/NBD, dropout *per purchase* (``p ~ Beta(a, b)``), ``S(t) = E[exp(-lambda p
  t)] = 2F1(r, a; a + b; -t / alpha)``;
* the Pareto/NBD, dropout *in calendar time* (hazard ``mu ~ Gamma(s, beta)``,
  independent of the purchase rate), ``S(t) = (beta / (beta + t))^s``.

The choice matters. When customers drop out in calendar time, the BG/NBD can only
reproduce the silent customers through a very skewed ``Beta(a, b)`` (most ``p`` near 0,
a few large) tied to the purchase rate: its survival falls early and then flattens, the
survivors look nearly immortal and a churn reduction is worth too little. On the
synthetic chain (``mu ~ Gamma(3, scale 0.0025)``, true ``S(52 weeks) = 0.69``) the
BG/NBD gives ``S(52) = 0.77``, and a 40 % churn reduction is projected at +4.8 % of
members' revenue over a year where the chain realises +7.4 % (mean of 10 seeds); the
Pareto/NBD, which wins there by about 40 log-likelihood points, is within 0.02 of the
true curve and projects +7.4 %. If neither model's dropout part is identifiable
(frequent shoppers all still buying, a history too short to see anyone leave), the
empirical retention curves
(:func:`~loyalty_pilot.simulator.retention.empirical_retention`, log-linear between
months) are used: one per RFM segment when a customer -> segment mapping is given
(customers without a segment form the segment ``unscored``; segments with fewer than
``min_segment_customers``, default 30, customers in the curve's cohort, and segments
whose curve reaches 0, are pooled into ``other``; a customer with no curve of their
own follows the curve over all customers), else one over all customers.

A churn reduction ``c`` multiplies every customer's hazard by ``1 - c``; with constant
individual hazards the cohort then survives as ``S((1 - c) t)`` (exact for the BG/NBD,
the Pareto/NBD and any mixture of exponential lifetimes), so the members alive in month
``k`` grow by ``S((1 - c) t_k) / S(t_k)`` (``t_k`` the middle of the month). The
expected revenue of a member is the same ratio: purchase rate and spend do not depend
on the hazard in either model, so weighting by revenue changes nothing. The curve is
the population's from ``start``, not conditioned on each member's history nor on the
member's own start: two approximations, both on the side of a larger effect. Members
already customers for a while at ``start`` are survivors, with a lower hazard than the
population (for the Pareto/NBD, ``mu | alive`` is ``Gamma(s, beta + age)``): the curve
overstates their churn. Members first seen during the horizon are exposed for less
than ``t_k``. On the synthetic chain the horizon opens with the data (no member has a
history) and 30 % of the customers arrive during it: from the true hazards, the effect
is +6.9 % for all members against +7.3 % for those there at the start (seeds 0-3),
within the noise of the recovery test in ``tests/simulator/test_projection.py``.

With curves by segment the ratio is taken per segment and weighted by the segment's
share of the members' revenue over the horizon: the members' revenue in month ``k``
grows by ``sum_r w_r S_r((1 - c) t_k) / S_r(t_k)``. Combined with the response's
segments (below), ``w_gr`` is the revenue share of the members in response group ``g``
and retention segment ``r``, and group ``g``'s ratio is
``sum_r (w_gr / w_g) S_r((1 - c_g) t_k) / S_r(t_k)``; the baseline retention column is
``sum_r w_r S_r(t_k)``.

Draws. Each assumption ``x ~ Normal(mean, sd)``, independently; a segment override is
its own assumption, segments without one share the programme's draw. Uplifts are clipped
at -0.999, churn reductions at 1. Segment ``s`` weighs ``w_s``, its share of the
members' revenue over the horizon (members without a segment use the programme's
assumptions). Per draw and month::

    dR_k   = Rm_k * sum_s w_s [(1 + v_s)(1 + b_s) S((1 - c_s) t_k) / S(t_k) - 1]
    dC_k   = B dCb_k + V dCv_k + c_v * churn part of dR_k
             B = sum_s w_s b_s,  V = sum_s w_s v_s (1 + b_s)
    profit = sum_k gross_margin * dR_k - (C0_k + dC_k)
    ROI    = profit / sum_k (C0_k + dC_k)
    payback month = first k from which the cumulative profit stays >= 0 to the end
                    of the horizon (inf: negative at the end). Early months without
                    rewards yet would otherwise "pay back" in month 1.

Vectorised over draws x months in chunks (no replay per draw); the standard normals are
drawn once, so the result depends on the seed, not on the chunk size.

Break-even uplift. The relative uplift ``u`` of *store* revenue (what a pilot is sized to
detect) at which the extra gross margin pays for the programme:
``gm u R = C0 + c_b u R``, so ``u* = C0 / (R (gm - c_b))`` (inf when ``gm <= c_b``): the
extra sales come from members' bigger baskets, each extra euro costing ``c_b``. The test
suite checks it against a bisection with exact re-replays of scaled baskets.
``break_even_uplift_visits`` is the same with ``c_v`` (the uplift coming as extra visits).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from loyalty_pilot.simulator.programme import Programme
from loyalty_pilot.simulator.replay import ReplayResult, replay

__all__ = [
    "MarginalCosts",
    "Projection",
    "Quantiles",
    "RetentionBaseline",
    "add_visits",
    "break_even_uplift",
    "fit_retention",
    "horizon_window",
    "marginal_costs",
    "project",
    "scale_baskets",
]

Progress = Callable[[int, int], None]
#: days in an average month
_MONTH_DAYS = 365.25 / 12
#: draws evaluated at once (memory: a few arrays of chunk x months floats)
_CHUNK = 1000
UNSCORED = "unscored"


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Quantiles:
    """Mean and the 10th, 50th and 90th percentiles of a figure over the draws."""

    mean: float
    p10: float
    p50: float
    p90: float

    @classmethod
    def of(cls, values: np.ndarray) -> Quantiles:
        values = np.asarray(values, dtype=float)
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(values.mean()), float(p10), float(p50), float(p90))

    def to_dict(self) -> dict[str, float | None]:
        return {k: _finite(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RetentionBaseline:
    """Survival ``S(t)`` of the chain's customers, ``t`` in weeks (see module docstring).

    ``source`` is ``'bgnbd'`` (``params`` = r, alpha, a, b), ``'pareto_nbd'``
    (``params`` = r, alpha, s, beta), ``'empirical'`` (``weeks``
    and ``survival`` the curve's points, log-linear between them and beyond),
    ``'empirical_segments'`` (the same over all customers, plus ``curves``: segment ->
    survival points at the same ``weeks``, ``sizes``: segment -> cohort customers, and
    ``customer_segment``: customer_id -> the segment whose curve the customer follows;
    customers not in it follow the curve over all customers) or ``'none'`` (``S = 1``: no
    churn effect can be projected); ``note`` says why.
    """

    source: str
    params: tuple[float, ...] = ()
    weeks: tuple[float, ...] = ()
    survival_points: tuple[float, ...] = ()
    note: str = ""
    curves: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    customer_segment: Mapping[str, str] = field(default_factory=dict, repr=False)

    def survival(self, t: np.ndarray | float) -> np.ndarray:
        """The curve over all customers."""
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        if self.source == "bgnbd":
            r, alpha, a, b = self.params
            return special.hyp2f1(r, a, a + b, -t / alpha)
        if self.source == "pareto_nbd":
            _, _, shape, beta = self.params
            return (beta / (beta + t)) ** shape
        if self.source in ("empirical", "empirical_segments"):
            return _log_linear(self.weeks, self.survival_points, t)
        return np.ones_like(t)

    def segment_survival(self, segment: str, t: np.ndarray | float) -> np.ndarray:
        """The curve of ``segment`` (the one over all customers when it has none)."""
        if segment not in self.curves:
            return self.survival(t)
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        return _log_linear(self.weeks, self.curves[segment], t)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "note": self.note}
        if self.source == "bgnbd":
            out.update(zip(("r", "alpha", "a", "b"), self.params, strict=True))
        if self.source == "pareto_nbd":
            out.update(zip(("r", "alpha", "s", "beta"), self.params, strict=True))
        if self.source in ("empirical", "empirical_segments"):
            out["weeks"] = list(self.weeks)
            out["survival"] = list(self.survival_points)
        if self.source == "empirical_segments":
            out["segments"] = {
                name: {"customers": int(self.sizes.get(name, 0)), "survival": list(points)}
                for name, points in self.curves.items()
            }
        return out


def _log_linear(weeks: tuple[float, ...], points: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Log-linear interpolation of ``points`` at ``weeks``, extrapolated beyond."""
    x = np.asarray(weeks, dtype=float)
    log_s = np.log(np.asarray(points, dtype=float))
    out = np.interp(t, x, log_s)
    slope = (log_s[-1] - log_s[-2]) / (x[-1] - x[-2])
    out = np.where(t > x[-1], log_s[-1] + slope * (t - x[-1]), out)
    return np.exp(out)


@dataclass(frozen=True, eq=False)
class MarginalCosts:
    """Cost per month per unit of relative basket-size (``basket``) and visit (``visit``)
    uplift of members' revenue, from two replays with ``step`` more (see module doc)."""

    step: float
    basket: np.ndarray
    visit: np.ndarray
    members_revenue: float
    realised_basket_step: float
    realised_visit_step: float

    @property
    def basket_per_euro(self) -> float:
        return float(self.basket.sum() / self.members_revenue) if self.members_revenue else 0.0

    @property
    def visit_per_euro(self) -> float:
        return float(self.visit.sum() / self.members_revenue) if self.members_revenue else 0.0


@dataclass(frozen=True, eq=False)
class Projection:
    """The projection of one variant over the horizon (see the module docstring).

    ``monthly``: one row per month: ``month``, ``revenue`` (baseline store revenue),
    ``members_revenue``, ``baseline_cost`` (the replay's), ``enrolled``,
    ``active_baseline``, ``retention_baseline``, and for ``incremental_revenue``,
    ``incremental_margin``, ``cost``, ``net_profit``, ``cumulative_profit``, ``roi``
    (cumulative to the month), ``active_programme``, ``retention_programme`` the columns
    ``<name>_mean``, ``_p10``, ``_p50``, ``_p90``.

    ``samples``: per draw, over the horizon: ``incremental_revenue``,
    ``incremental_margin``, ``incremental_cost``, ``cost``, ``profit``, ``roi``,
    ``payback`` (month 1..H from which the cumulative profit stays >= 0, inf when never).
    """

    programme: Programme
    baseline: ReplayResult
    marginal: MarginalCosts
    retention: RetentionBaseline
    monthly: pd.DataFrame
    samples: dict[str, np.ndarray]
    segment_weights: dict[str, float]
    draws: int
    seed: int
    break_even_uplift: float
    break_even_uplift_visits: float
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def profit(self) -> Quantiles:
        return Quantiles.of(self.samples["profit"])

    @property
    def roi(self) -> Quantiles:
        return Quantiles.of(self.samples["roi"])

    @property
    def cost(self) -> float:
        """Mean total programme cost: the replay's cost exactly when the response is zero."""
        return self.totals["cost_replay"] + float(self.samples["incremental_cost"].mean())

    def payback(self) -> dict[str, float | None]:
        """Payback month percentiles (None = not within the horizon) and share paid back."""
        months = self.samples["payback"]
        p10, p50, p90 = np.percentile(months, [10, 50, 90], method="inverted_cdf")
        return {
            "p10": _finite(p10),
            "p50": _finite(p50),
            "p90": _finite(p90),
            "share_paid_back": float(np.isfinite(months).mean()),
        }

    def to_dict(self) -> dict[str, Any]:
        t = self.totals
        base = self.baseline
        monthly = self.monthly.copy()
        monthly["month"] = monthly["month"].dt.strftime("%Y-%m")
        return {
            "programme": self.programme.programme,
            "start": base.start.isoformat(),
            "end": base.end.isoformat(),
            "horizon_months": len(self.monthly),
            "draws": self.draws,
            "seed": self.seed,
            "revenue": t["revenue"],
            "members_revenue": t["members_revenue"],
            "members": t["members"],
            "cost": self.cost,
            "cost_replay": t["cost_replay"],
            "cost_share": _finite(t["cost_share"]),
            "rewards_issued": t["rewards_issued"],
            "rewards_value": t["rewards_value"],
            "rewards_perceived": t["rewards_perceived"],
            "rewards_redeemed": t["rewards_redeemed"],
            "breakage": t["breakage"],
            "discount_cost": t["discount_cost"],
            "liability_end": t["liability_end"],
            "gross_margin": self.programme.economics.gross_margin,
            "break_even_uplift": _finite(self.break_even_uplift),
            "break_even_uplift_visits": _finite(self.break_even_uplift_visits),
            "marginal_cost_per_euro": {
                "basket": self.marginal.basket_per_euro,
                "visit": self.marginal.visit_per_euro,
                "step": self.marginal.step,
            },
            "incremental_revenue": Quantiles.of(self.samples["incremental_revenue"]).to_dict(),
            "incremental_margin": Quantiles.of(self.samples["incremental_margin"]).to_dict(),
            "cost_projected": Quantiles.of(self.samples["cost"]).to_dict(),
            "profit": self.profit.to_dict(),
            "roi": self.roi.to_dict(),
            "payback_month": self.payback(),
            "retention": self.retention.to_dict(),
            "segment_weights": self.segment_weights,
            "monthly": [
                {k: (_finite(v) if isinstance(v, float) else v) for k, v in row.items()}
                for row in monthly.to_dict(orient="records")
            ],
        }


# ----------------------------------------------------------------------------- inputs


def horizon_window(
    baskets: pd.DataFrame,
    programme: Programme,
    horizon_months: int,
    start: dt.date | None = None,
) -> tuple[dt.date, dt.date]:
    """``(start, end)`` of the horizon: ``horizon_months`` months from the start, capped
    at the last basket."""
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ValueError(f"horizon_months == {horizon_months!r}, must be a whole number >= 1")
    dates = pd.to_datetime(baskets["date"])
    if dates.empty:
        raise ValueError("baskets is empty: nothing to project")
    first, last = dates.min().date(), dates.max().date()
    start = start or programme.start or first
    end = (pd.Timestamp(start) + pd.DateOffset(months=int(horizon_months))).date()
    end = min(end - dt.timedelta(days=1), last)
    if end < start:
        raise ValueError(f"start == {start}, must be on or before the last basket {last}")
    return start, end


def _identified(baskets: pd.DataFrame) -> np.ndarray:
    customer = baskets["customer_id"]
    ok = customer.notna().to_numpy().copy()
    if not pd.api.types.is_numeric_dtype(customer):
        ok &= customer.astype("string").str.len().fillna(0).to_numpy() > 0
    return ok


def scale_baskets(baskets: pd.DataFrame, factor: float) -> pd.DataFrame:
    """A copy with every identified basket's amount multiplied by ``factor``."""
    out = baskets.copy()
    ident = _identified(baskets)
    amount = out["amount"].to_numpy(dtype=float).copy()
    amount[ident] *= factor
    out["amount"] = amount
    return out


def add_visits(
    baskets: pd.DataFrame,
    share: float,
    rng: np.random.Generator,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """A copy with ``round(share * n)`` of the ``n`` identified baskets dated in
    [``start``, ``end``] duplicated (drawn without replacement by ``rng``): same customer,
    day and time, amount; a new unique ``basket_id``."""
    if share < 0:
        raise ValueError(f"share == {share!r}, must be >= 0")
    day = pd.to_datetime(baskets["date"]).dt.normalize()
    eligible = _identified(baskets)
    if start is not None:
        eligible &= (day >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        eligible &= (day <= pd.Timestamp(end)).to_numpy()
    pool = np.flatnonzero(eligible)
    k = round(share * len(pool))
    chosen = np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))
    extra = baskets.iloc[chosen].copy()
    ids = baskets["basket_id"]
    if pd.api.types.is_integer_dtype(ids):
        extra["basket_id"] = int(ids.max()) + 1 + np.arange(len(extra), dtype=np.int64)
    else:
        if ids.astype("string").str.endswith("~visit").any():  # the new ids must be new
            raise ValueError("basket_id already holds ids ending in '~visit'")
        extra["basket_id"] = extra["basket_id"].astype(str) + "~visit"
    return pd.concat([baskets, extra], ignore_index=True)


#: Pareto/NBD: search bounds of the log-parameters (as the BG/NBD's), margin flagging a
#: parameter at a bound, Gauss-Legendre nodes of the likelihood's integral
_LOG_BOUND = math.log(1e6)
_AT_BOUND = 0.5
_NODES, _NODE_WEIGHTS = np.polynomial.legendre.leggauss(64)


def _pareto_nbd_ll(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer Pareto/NBD log-likelihood of ``(x, t_x, T)`` and its gradient in
    ``log(r, alpha, s, beta)``.

    ``lambda ~ Gamma(r, alpha)``, ``mu ~ Gamma(s, beta)`` (rates), independent. Alive at
    ``T`` or dead at ``tau`` in ``(t_x, T]`` (Fader & Hardie 2005, "A note on deriving
    the Pareto/NBD model")::

        L = G(r + x) alpha^r beta^s / G(r) * [(alpha + T)^-(r + x) (beta + T)^-s
            + s int_{t_x}^T (alpha + tau)^-(r + x) (beta + tau)^-(s + 1) dtau]

    The integral by 64-point Gauss-Legendre in ``u = log(alpha + tau)`` (the integrand
    is then smooth, close to an exponential in ``u``), summed in logs; its derivatives
    by the same rule under the integral sign.
    """
    r, alpha, shape, beta = np.exp(log_params)
    head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + shape * np.log(beta)
    alive = -(r + x) * np.log(alpha + big_t) - shape * np.log(beta + big_t)
    span = np.log(alpha + big_t) - np.log(alpha + t_x)  # u runs over [0, span]
    u = span[:, None] * (_NODES[None, :] + 1) / 2
    a_tau = (alpha + t_x)[:, None] * np.exp(u)  # alpha + tau; dtau = (alpha + tau) du
    b_tau = beta - alpha + a_tau  # beta + tau
    log_f = -(r + x - 1)[:, None] * np.log(a_tau) - (shape + 1) * np.log(b_tau)
    with np.errstate(divide="ignore"):
        terms = log_f + np.log(_NODE_WEIGHTS[None, :] * span[:, None] / 2)
    some = span > 0
    dead = np.full(x.shape, -np.inf)
    dead[some] = special.logsumexp(terms[some], axis=1)
    dead_term = np.log(shape) + dead
    tail = np.logaddexp(alive, dead_term)
    ll = head + tail
    # gradient: weights of "alive at T" and "dead in (t_x, T]", and of each node
    w_alive = np.exp(alive - tail)
    w_dead = 1 - w_alive
    node = np.zeros_like(terms)
    node[some] = np.exp(terms[some] - dead[some, None])
    d_r = special.digamma(r + x) - special.digamma(r) + np.log(alpha)
    d_r += -w_alive * np.log(alpha + big_t) - w_dead * (node * np.log(a_tau)).sum(axis=1)
    d_alpha = r / alpha - (r + x) * (
        w_alive / (alpha + big_t) + w_dead * (node / a_tau).sum(axis=1)
    )
    d_s = np.log(beta) - w_alive * np.log(beta + big_t)
    d_s += w_dead * (1 / shape - (node * np.log(b_tau)).sum(axis=1))
    d_beta = shape / beta - w_alive * shape / (beta + big_t)
    d_beta -= w_dead * (shape + 1) * (node / b_tau).sum(axis=1)
    grad = np.stack([d_r * r, d_alpha * alpha, d_s * shape, d_beta * beta], axis=1)
    return ll, grad


def _fit_pareto_nbd(
    x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[tuple[float, float, float, float], float, str]:
    """Maximum-likelihood Pareto/NBD: ``((r, alpha, s, beta), log-likelihood, note)``, the
    note empty when the dropout part is identified (converged, and not "no dropout":
    ``s`` at its lower bound or ``beta`` alone at its upper one), else why not. Time is
    rescaled by the median ``T`` for the search; parameters and log-likelihood are in the
    caller's unit."""
    scale = float(np.median(big_t))
    scale = scale if scale > 0 else max(float(big_t.max()), 1.0)
    xs, txs, ts = x, t_x / scale, big_t / scale
    n = x.size

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _pareto_nbd_ll(theta, xs, txs, ts)
        return -float(ll.sum()) / n, -grad.sum(axis=0) / n

    result = optimize.minimize(
        objective,
        np.zeros(4),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
        options={"maxiter": 2000, "ftol": 1e-13},
    )
    theta = result.x.copy()
    r, alpha, shape, beta = np.exp(theta)
    alpha, beta = alpha * scale, beta * scale
    params = (float(r), float(alpha), float(shape), float(beta))
    ll = float(_pareto_nbd_ll(np.log(params), x, t_x, big_t)[0].sum())
    reasons = []
    # as for the BG/NBD: accept a stop on a flat ridge where the gradient is zero to 1e-4
    gradient = objective(theta)[1]
    inside = np.abs(theta) < _LOG_BOUND - 1e-6
    stationary = bool(np.all(np.abs(gradient[inside]) < 1e-4))
    if not ((result.success or stationary) and np.isfinite(ll)):
        reasons.append(f"the optimiser did not converge ({result.message})")
    # s -> 0, or beta -> inf with s finite, is "no dropout"; s and beta -> inf together
    # is a homogeneous hazard s / beta (an exponential lifetime), which is identified
    high = _LOG_BOUND - _AT_BOUND
    if theta[2] < -high or (theta[3] > high and theta[2] < high):
        reasons.append(f"no dropout (s = {shape:.3g}, beta = {beta:.3g}, at a search bound)")
    note = "Pareto/NBD dropout not identifiable: " + "; ".join(reasons) if reasons else ""
    return params, ll, note


#: the segment of customers without one, and of the pooled small segments
OTHER = "other"


def fit_retention(
    baskets: pd.DataFrame,
    *,
    horizon_months: int = 12,
    buffer_months: int = 6,
    segments: Mapping[str, str] | pd.Series | None = None,
    min_segment_customers: int = 30,
) -> RetentionBaseline:
    """The chain's survival curve: of the BG/NBD and the Pareto/NBD fitted on the whole
    history (identified purchase occasions), the identified one with the higher
    log-likelihood (same data, four parameters each); else the empirical retention
    curves, by segment when ``segments`` (customer_id -> RFM segment) is given, else
    none (see the module docstring). The note gives both log-likelihoods, or why
    neither dropout part is identifiable.

    The empirical curves follow the cohort of customers seen before ``last basket -
    (horizon_months + buffer_months)`` months, so that a customer silent for the last
    ``buffer_months`` months only does not count as lost in the horizon's last month.
    Segments with fewer than ``min_segment_customers`` customers in that cohort (or
    whose curve reaches 0) are pooled into ``'other'``; customers without a segment are
    ``'unscored'``.
    """
    from loyalty_pilot.simulator.retention import (
        empirical_retention,
        fit_bgnbd,
        summary_from_transactions,
    )

    ident = _identified(baskets) & (pd.to_numeric(baskets["amount"]) > 0).to_numpy()
    log = pd.DataFrame(
        {
            "customer_id": baskets["customer_id"][ident].astype(str).to_numpy(),
            "date": pd.to_datetime(baskets["date"][ident]).to_numpy(),
        }
    )
    notes = []
    if log["customer_id"].nunique() >= 2:
        summary = summary_from_transactions(log, freq="W")
        x, t_x, big_t = (summary[k].to_numpy(dtype=float) for k in ("frequency", "recency", "T"))
        candidates = []  # (log-likelihood, source, params) of the identified fits
        try:
            fit = fit_bgnbd(x, t_x, big_t)
        except ValueError as exc:  # pragma: no cover - degenerate histories
            notes.append(f"BG/NBD not fitted: {exc}")
        else:
            if fit.identifiable:
                params = (fit.r, fit.alpha, fit.a, fit.b)
                candidates.append((fit.log_likelihood, "bgnbd", params))
            else:
                notes.append(fit.note)
        params, ll, note = _fit_pareto_nbd(x, t_x, big_t)
        if note:
            notes.append(note)
        else:
            candidates.append((ll, "pareto_nbd", params))
        if candidates:
            lls = ", ".join(f"{name} {value:.1f}" for value, name, _ in candidates)
            ll, name, params = max(candidates, key=lambda c: c[0])
            return RetentionBaseline(
                name, params=params, note=" ".join([*notes, f"log-likelihood: {lls}"])
            )
    if log.empty:
        return RetentionBaseline("none", note="no identified purchases: no churn effect")
    last = pd.Timestamp(log["date"].max())
    first = pd.Timestamp(log["date"].min())
    weeks = tuple(float(w) for w in (np.arange(horizon_months + 1) - 0.5).clip(0) * _MONTH_DAYS / 7)

    def curves(table: pd.DataFrame, reference: pd.Timestamp) -> dict[str, tuple[int, Any]]:
        """segment -> (cohort customers, survival points or None when unusable)"""
        frame = empirical_retention(
            table, horizon_months=horizon_months, reference_date=reference, observation_end=last
        )
        out: dict[str, tuple[int, Any]] = {}
        for name, rows in frame.groupby("segment", sort=True):
            share = rows["retained_share"].to_numpy(dtype=float)
            size = int(rows["customers"].iloc[0])
            ok = size > 0 and np.isfinite(share).all() and (share > 0).all()
            points = (1.0, *(float(v) for v in np.minimum.accumulate(share))) if ok else None
            out[str(name)] = (size, points)
        return out

    for buffer in (buffer_months, 0):
        reference = last - pd.DateOffset(months=horizon_months + buffer)
        if reference < first:
            continue
        _, overall = curves(log.assign(segment="all"), reference)["all"]
        if overall is None:
            continue
        why = f"from {reference.date()} ({buffer} months buffer)"
        if segments is None:
            notes.append(f"empirical retention {why}")
            return RetentionBaseline(
                "empirical", weeks=weeks, survival_points=overall, note=" ".join(notes)
            )
        mapping = {str(k): str(v) for k, v in dict(segments).items()}
        labels = log["customer_id"].map(mapping).fillna(UNSCORED)
        first_pass = curves(log.assign(segment=labels), reference)
        pooled = {
            name
            for name, (size, points) in first_pass.items()
            if size < min_segment_customers or points is None
        }
        labels = labels.where(~labels.isin(pooled), OTHER)
        by_segment = curves(log.assign(segment=labels), reference) if pooled else first_pass
        kept = {name: v for name, v in by_segment.items() if v[1] is not None}
        pairs = pd.DataFrame({"customer": log["customer_id"], "segment": labels})
        pairs = pairs.drop_duplicates("customer")
        pairs = pairs[pairs["segment"].isin(list(kept))]
        customer_segment = dict(zip(pairs["customer"], pairs["segment"], strict=True))
        pooled_note = (
            f", {len(pooled)} segments with < {min_segment_customers} customers or an "
            f"empty curve pooled into '{OTHER}'"
            if pooled
            else ""
        )
        if OTHER in by_segment and OTHER not in kept:
            pooled_note += f" ('{OTHER}' follows the curve over all customers)"
        notes.append(f"empirical retention by RFM segment {why}{pooled_note}")
        return RetentionBaseline(
            "empirical_segments",
            weeks=weeks,
            survival_points=overall,
            note=" ".join(notes),
            curves={name: points for name, (_, points) in kept.items()},
            sizes={name: size for name, (size, _) in kept.items()},
            customer_segment=customer_segment,
        )
    notes.append("history too short for an empirical retention curve: no churn effect")
    return RetentionBaseline("none", note=" ".join(notes))


# ----------------------------------------------------------------------------- economics


def break_even_uplift(
    cost: float, revenue: float, gross_margin: float, marginal_cost: float
) -> float:
    """``u* = cost / (revenue (gross_margin - marginal_cost))``: the relative revenue
    uplift whose gross margin, net of its own cost ``marginal_cost`` per euro, pays for
    ``cost``. ``inf`` when an extra euro costs at least its margin (and ``cost > 0``)."""
    if revenue <= 0:
        raise ValueError(f"revenue == {revenue!r}, must be > 0")
    if cost <= 0:
        return 0.0
    net = gross_margin - marginal_cost
    return math.inf if net <= 0 else cost / (revenue * net)


def marginal_costs(
    baskets: pd.DataFrame,
    programme: Programme,
    *,
    start: dt.date,
    end: dt.date,
    seed: int = 0,
    step: float = 0.05,
    baseline: ReplayResult | None = None,
) -> MarginalCosts:
    """Cost per month per unit of relative basket-size and visit uplift (module doc)."""
    if not 0 < step <= 1:
        raise ValueError(f"step == {step!r}, must be in (0, 1]")
    base = baseline or replay(baskets, programme, seed=seed, start=start, end=end)
    c0 = base.ledger["total_cost"].to_numpy(dtype=float)
    rm = float(base.ledger["members_revenue"].sum())
    bigger = replay(scale_baskets(baskets, 1 + step), programme, seed=seed, start=start, end=end)
    rng = np.random.default_rng([seed, 1])
    extra = add_visits(baskets, step, rng, start, end)
    more = replay(extra, programme, seed=seed, start=start, end=end)
    steps = []
    slopes = []
    for result in (bigger, more):
        realised = (float(result.ledger["members_revenue"].sum()) - rm) / rm if rm else 0.0
        steps.append(realised)
        delta = result.ledger["total_cost"].to_numpy(dtype=float) - c0
        slopes.append(delta / realised if realised else np.zeros_like(c0))
    return MarginalCosts(step, slopes[0], slopes[1], rm, steps[0], steps[1])


def _assumptions(
    programme: Programme, weights: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means, sds of the assumptions, and per segment group the index of its v, b, c."""
    response = programme.response
    names = ("visit_uplift", "basket_uplift", "churn_reduction")
    means = [getattr(response, n).mean for n in names]
    sds = [getattr(response, n).sd for n in names]
    index = np.zeros((len(weights), 3), dtype=np.int64)
    for g, segment in enumerate(weights):
        override = response.segments.get(segment)
        for j, name in enumerate(names):
            item = getattr(override, name) if override is not None else None
            if item is None:
                index[g, j] = j
            else:
                index[g, j] = len(means)
                means.append(item.mean)
                sds.append(item.sd)
    return np.array(means), np.array(sds), index, np.array(list(weights.values()))


def _segment_weights(
    customers: pd.DataFrame, segments: Mapping[str, str] | pd.Series | None
) -> dict[str, float]:
    """Share of the members' horizon revenue per segment (``unscored`` without one)."""
    if not segments:
        return {UNSCORED: 1.0}
    mapping = {str(k): str(v) for k, v in dict(segments).items()}
    labels = customers["customer_id"].astype(str).map(mapping).fillna(UNSCORED)
    spend = customers["spend"].to_numpy(dtype=float)
    total = spend.sum()
    by = pd.Series(spend).groupby(labels.to_numpy()).sum()
    if total == 0:
        return {UNSCORED: 1.0}
    return {str(k): float(v / total) for k, v in by.items() if v != 0}


def _retention_weights(
    customers: pd.DataFrame,
    segments: Mapping[str, str] | pd.Series | None,
    weights: dict[str, float],
    retention: RetentionBaseline,
) -> tuple[np.ndarray, list[str | None]]:
    """``(w_gr, curves)``: the members' horizon revenue share per response group ``g``
    (the keys of ``weights``) and retention segment ``r`` (``None``: the curve over all
    customers), for the retention's curves by segment (one column when it has none)."""
    spend = customers["spend"].to_numpy(dtype=float)
    total = spend.sum()
    if not retention.curves or total == 0:
        return np.array(list(weights.values()), dtype=float)[:, None], [None]
    ids = customers["customer_id"].astype(str)
    if segments:
        mapping = {str(k): str(v) for k, v in dict(segments).items()}
        groups = ids.map(mapping).fillna(UNSCORED).to_numpy()
    else:
        groups = np.full(len(ids), UNSCORED, dtype=object)
    own = ids.map(dict(retention.customer_segment)).fillna("").to_numpy()
    by = pd.Series(spend).groupby([groups, own]).sum() / total
    names = sorted(set(own))
    joint = np.zeros((len(weights), len(names)))
    for g, group in enumerate(weights):
        for r, name in enumerate(names):
            joint[g, r] = by.get((group, name), 0.0)
    return joint, [name or None for name in names]


def project(
    baskets: pd.DataFrame,
    programme: Programme,
    *,
    horizon_months: int = 12,
    draws: int = 2000,
    seed: int = 0,
    start: dt.date | None = None,
    segments: Mapping[str, str] | pd.Series | None = None,
    retention: RetentionBaseline | None = None,
    step: float = 0.05,
    progress: Progress | None = None,
) -> Projection:
    """Project ``programme`` over ``horizon_months`` (see the module docstring).

    ``seed`` draws the enrolment (the replays) and the Monte Carlo; ``segments`` maps
    customer_id -> RFM segment (for the response's per-segment assumptions);
    ``retention`` defaults to :func:`fit_retention` on ``baskets``; ``progress(done,
    total)`` is called after each chunk of draws.
    """
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws == {draws!r}, must be a whole number >= 1")
    draws = int(draws)
    start, end = horizon_window(baskets, programme, horizon_months, start)
    base = replay(baskets, programme, seed=seed, start=start, end=end)
    marginal = marginal_costs(
        baskets, programme, start=start, end=end, seed=seed, step=step, baseline=base
    )
    if retention is None:
        retention = fit_retention(baskets, horizon_months=horizon_months)
    ledger = base.ledger
    n_months = len(ledger)
    rm = ledger["members_revenue"].to_numpy(dtype=float)
    c0 = ledger["total_cost"].to_numpy(dtype=float)
    gm = programme.economics.gross_margin
    first = np.maximum(ledger["month"].to_numpy(), np.datetime64(start, "ns"))
    middle = first + (ledger["snapshot"].to_numpy() - first) / 2
    t_k = (middle - np.datetime64(start, "ns")) / np.timedelta64(1, "D") / 7
    weights = _segment_weights(base.customers, segments)
    means, sds, index, w = _assumptions(programme, weights)
    joint, names = _retention_weights(base.customers, segments, weights, retention)

    def curve(name: str | None, t: np.ndarray) -> np.ndarray:
        return retention.survival(t) if name is None else retention.segment_survival(name, t)

    s0_r = [curve(name, t_k) for name in names]  # per retention segment, (months,)
    s0 = s0_r[0] if len(names) == 1 else np.einsum("r,rk->k", joint.sum(axis=0), s0_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(w[:, None] != 0, joint / w[:, None], 0.0)  # w_gr / w_g
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, len(means)))
    values = means + sds * z

    sums = {
        k: np.zeros((draws, n_months))
        for k in ("revenue", "margin", "cost", "net", "active", "retention")
    }
    for lo in range(0, draws, _CHUNK):
        hi = min(lo + _CHUNK, draws)
        x = values[lo:hi]
        v = np.maximum(x[:, index[:, 0]], -0.999)  # (chunk, groups)
        b = np.maximum(x[:, index[:, 1]], -0.999)
        c = np.minimum(x[:, index[:, 2]], 1.0)
        ratio = np.zeros((hi - lo, len(w), n_months))  # (chunk, groups, months)
        alive = np.zeros((hi - lo, n_months))
        for r, name in enumerate(names):
            s1 = curve(name, (1 - c)[:, :, None] * t_k)
            ratio += within[None, :, r, None] * (s1 / s0_r[r])
            alive += np.einsum("g,cgk->ck", joint[:, r], s1)
        vb = (1 + v) * (1 + b)
        d_revenue = rm * np.einsum("g,cgk->ck", w, vb[:, :, None] * ratio - 1)
        churn_part = rm * np.einsum("g,cgk->ck", w, vb[:, :, None] * (ratio - 1))
        basket_rel = (b * w).sum(axis=1)
        visit_rel = (v * (1 + b) * w).sum(axis=1)
        d_cost = (
            basket_rel[:, None] * marginal.basket
            + visit_rel[:, None] * marginal.visit
            + marginal.visit_per_euro * churn_part
        )
        sums["revenue"][lo:hi] = d_revenue
        sums["margin"][lo:hi] = gm * d_revenue
        sums["cost"][lo:hi] = d_cost
        sums["net"][lo:hi] = gm * d_revenue - (c0 + d_cost)
        sums["active"][lo:hi] = np.einsum("g,cgk->ck", w, ratio)
        sums["retention"][lo:hi] = alive
        if progress is not None:
            progress(hi, draws)

    cumulative = np.cumsum(sums["net"], axis=1)
    total_cost = c0.sum() + sums["cost"].sum(axis=1)
    cumulative_cost = np.cumsum(c0 + sums["cost"], axis=1)
    profit = cumulative[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        roi = profit / total_cost
        cumulative_roi = cumulative / cumulative_cost
    # paid back from the first month after which the cumulative profit stays >= 0
    stays = np.flip(np.logical_and.accumulate(np.flip(cumulative >= 0, axis=1), axis=1), axis=1)
    payback = np.where(stays[:, -1], stays.argmax(axis=1) + 1.0, np.inf)

    monthly = pd.DataFrame(
        {
            "month": ledger["month"],
            "revenue": ledger["revenue"].to_numpy(dtype=float),
            "members_revenue": rm,
            "baseline_cost": c0,
            "enrolled": ledger["members"].to_numpy(),
            "active_baseline": ledger["active_members"].to_numpy(),
            "retention_baseline": s0,
        }
    )
    per_month = {
        "incremental_revenue": sums["revenue"],
        "incremental_margin": sums["margin"],
        "cost": c0 + sums["cost"],
        "net_profit": sums["net"],
        "cumulative_profit": cumulative,
        "roi": cumulative_roi,
        "active_programme": ledger["active_members"].to_numpy() * sums["active"],
        "retention_programme": sums["retention"],
    }
    for name, array in per_month.items():
        # the cost's mean is the replay's cost plus the mean increment: exact at zero response
        mean = c0 + sums["cost"].mean(axis=0) if name == "cost" else array.mean(axis=0)
        monthly[f"{name}_mean"] = mean
        p10, p50, p90 = np.percentile(array, [10, 50, 90], axis=0)
        monthly[f"{name}_p10"], monthly[f"{name}_p50"], monthly[f"{name}_p90"] = p10, p50, p90

    revenue = float(ledger["revenue"].sum())
    totals = dict(base.totals)
    totals["cost_replay"] = totals.pop("cost")
    samples = {
        "incremental_revenue": sums["revenue"].sum(axis=1),
        "incremental_margin": sums["margin"].sum(axis=1),
        "incremental_cost": sums["cost"].sum(axis=1),
        "cost": total_cost,
        "profit": profit,
        "roi": roi,
        "payback": payback,
    }
    c_total = float(c0.sum())
    return Projection(
        programme=programme,
        baseline=base,
        marginal=marginal,
        retention=retention,
        monthly=monthly,
        samples=samples,
        segment_weights=weights,
        draws=draws,
        seed=seed,
        break_even_uplift=break_even_uplift(c_total, revenue, gm, marginal.basket_per_euro),
        break_even_uplift_visits=break_even_uplift(c_total, revenue, gm, marginal.visit_per_euro),
        totals=totals,
    )


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
