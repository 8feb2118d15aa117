"""Retention baseline of a programme: BG/NBD, Gamma-Gamma and an empirical fallback.

Pure functions on pandas / numpy / scipy, no I/O.

**BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"). While
alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)`` (shape ``r``, rate
``alpha``); after each purchase they drop out for good with probability
``p ~ Beta(a, b)``. A customer is summarised by ``x`` (``frequency``, repeat purchases),
``t_x`` (``recency``, time of the last purchase since the first) and ``T`` (time since the
first purchase), and the log-likelihood is the paper's equation (6) in logs::

    A1 = lnG(r + x) - lnG(r) + r ln(alpha)
    A2 = lnG(a + b) + lnG(b + x) - lnG(b) - lnG(a + b + x)
    A3 = -(r + x) ln(alpha + T)
    A4 = ln(a) - ln(b + x - 1) - (r + x) ln(alpha + t_x)      (x > 0 only)
    LL = sum of A1 + A2 + logsumexp(A3, A4)                   (A4 = -inf when x = 0)

:func:`fit_bgnbd` maximises it over ``log(r, alpha, a, b)`` with L-BFGS-B and the
analytic gradient. Time is rescaled internally by the median ``T`` (``alpha`` is in the
caller's unit again on the result), so the fit does not depend on the time unit.

**Identifiability of the dropout part.** ``a`` and ``b`` are only learnt from customers
who stopped buying for a long time relative to their own purchase rate. With frequent
shoppers over a short history, nobody has been silent long enough and the likelihood
is flat (or still rising) towards "no dropout" (``b / a`` growing without end). The fit
is flagged ``identifiable=False`` when any of these holds:

1. the optimiser did not converge (neither scipy's success flag nor a gradient of the
   mean log-likelihood below 1e-4 away from the bounds);
2. ``a`` or ``b`` ends within 0.5 (on the log scale) of the search bounds
   ``[1e-6, 1e6]`` (relative to each other and the data, a boundary is "no dropout" or
   "no heterogeneity in dropout");
3. the observed information (the Hessian of ``-LL`` in log-parameters, by central
   differences of the analytic gradient) is not positive definite;
4. the standard error of ``log E[p] = log(a / (a + b))``, the log of the mean dropout
   probability per purchase, exceeds 1.0 (its 95 % interval is wider than a factor of
   about 7 each way: the data do not say whether customers drop out).

The note names the condition(s) and the figures. When the flag is down, use
:func:`empirical_retention` by RFM segment instead of the BG/NBD survival curve.

**Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013 note):
the average spend ``m`` over ``x`` repeat purchases is ``Gamma(p x, nu x)`` with
``nu ~ Gamma(q, v)`` (``v`` is the paper's gamma), fitted on customers with ``x > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "BGNBDFit",
    "GammaGammaFit",
    "empirical_retention",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "simulate_bgnbd",
    "summary_from_transactions",
]

ArrayLike = float | Sequence[float] | np.ndarray | pd.Series

#: search bounds of every BG/NBD parameter, on the log scale
_LOG_BOUND = float(np.log(1e6))
#: a or b within this distance of a bound (log scale) counts as "at the bound"
_AT_BOUND = 0.5
#: largest standard error of log(a / (a + b)) for an identified dropout part
_MAX_SE_LOG_DROPOUT = 1.0


# --------------------------------------------------------------------------------------
# input checks


def _as_array(values: ArrayLike, name: str, *, minimum: float = 0.0) -> np.ndarray:
    """Float array of finite values >= ``minimum``; ``ValueError`` naming ``name``."""
    array = np.asarray(values, dtype=float)
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if np.any(array < minimum):
        raise ValueError(f"{name} must be >= {minimum:g}")
    return array


def _customer_arrays(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_array(frequency, "frequency")
    if np.any(x != np.round(x)):
        raise ValueError("frequency must be whole numbers of repeat purchases")
    t_x = _as_array(recency, "recency")
    big_t = _as_array(T, "T")
    try:
        x, t_x, big_t = np.broadcast_arrays(x, t_x, big_t)
    except ValueError:
        raise ValueError(
            f"frequency, recency and T must have the same length, not "
            f"{x.size}, {t_x.size} and {big_t.size}"
        ) from None
    if np.any(t_x > big_t * (1 + 1e-12)):
        raise ValueError("recency must be <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 when frequency is 0")
    return x, t_x, big_t


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} == {value!r}, must be > 0")
    return value


# --------------------------------------------------------------------------------------
# summary of transactions


def _unit(freq: str) -> pd.Timedelta:
    try:
        unit = pd.Timedelta(1, unit=freq)
    except (ValueError, TypeError):
        raise ValueError(
            f"freq == {freq!r}, must be a fixed duration such as 'D', 'W' or 'h'"
        ) from None
    return unit


def summary_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    calibration_end: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
    freq: str = "W",
    grain: str = "D",
) -> pd.DataFrame:
    """Per-customer ``frequency``, ``recency``, ``T`` (and spend) of a transaction log.

    Transactions are first grouped into purchase occasions: all purchases of a customer
    in the same ``grain`` period (a calendar day by default) are one occasion, their
    amounts summed. Each occasion is dated by the start of its period. Then, over the
    calibration period (occasions up to and including ``calibration_end``):

    ``frequency``       repeat purchase occasions: distinct occasions minus 1
    ``recency``         last occasion minus the first, in units of ``freq``
    ``T``               start of the ``grain`` period of ``calibration_end`` minus the
                        first occasion, in units of ``freq``
    ``monetary_value``  (when ``amount`` is given) mean spend of the repeat occasions,
                        0 when ``frequency`` is 0

    This is the convention of Fader, Hardie & Lee (2005) and of ``lifetimes`` with
    ``freq='D', freq_multiplier=7``: on the CDNOW sample with ``calibration_end =
    '1997-09-30'`` and ``freq='W'`` it gives their 39-week calibration summary (customer
    00004: ``x = 2``, ``t_x = 30.43``, ``T = 38.86``). ``grain=freq='W'`` counts distinct
    calendar weeks instead, like ``lifetimes`` with ``freq='W'``.

    With ``observation_end`` the hold-out period (``calibration_end``,
    ``observation_end``] adds ``frequency_holdout`` (occasions in it),
    ``duration_holdout`` (its length in units of ``freq``) and, with ``amount``,
    ``monetary_value_holdout`` (their mean spend, 0 without occasions).

    ``calibration_end`` defaults to the last transaction. Customers whose first purchase
    is after it are left out. The result is indexed by customer, sorted.
    """
    unit = _unit(freq)
    try:
        pd.Timedelta(1, unit=grain)
    except (ValueError, TypeError):
        raise ValueError(f"grain == {grain!r}, must be a period such as 'D' or 'W'") from None
    columns = [customer, date] + ([amount] if amount is not None else [])
    missing = [c for c in columns if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions has no column {', '.join(map(repr, missing))}")
    if transactions[columns].isna().any().any():
        raise ValueError("transactions has missing values in " + ", ".join(map(repr, columns)))
    dates = pd.to_datetime(transactions[date])
    occasion = dates.dt.to_period(grain).dt.start_time
    frame = pd.DataFrame({"customer": transactions[customer].to_numpy(), "occasion": occasion})
    if amount is not None:
        if not pd.api.types.is_numeric_dtype(transactions[amount]):
            raise ValueError(f"amount column {amount!r} must be numeric")
        frame["amount"] = transactions[amount].to_numpy(dtype=float)
    else:
        frame["amount"] = 0.0

    cal_end = dates.max() if calibration_end is None else pd.Timestamp(calibration_end)
    cal_end_occasion = pd.Timestamp(cal_end).to_period(grain).start_time
    obs_end = None
    if observation_end is not None:
        obs_end = pd.Timestamp(observation_end)
        if obs_end < cal_end:
            raise ValueError(
                f"observation_end == {obs_end.date()}, must be >= calibration_end "
                f"{pd.Timestamp(cal_end).date()}"
            )

    occasions = frame.groupby(["customer", "occasion"], sort=True, as_index=False)["amount"].sum()
    calibration = occasions[occasions["occasion"] <= cal_end_occasion]
    grouped = calibration.groupby("customer", sort=True)
    first = grouped["occasion"].min()
    last = grouped["occasion"].max()
    count = grouped["occasion"].size()
    out = pd.DataFrame(index=first.index.rename(customer))
    out["frequency"] = (count - 1).astype("int64")
    out["recency"] = (last - first) / unit
    out["T"] = (cal_end_occasion - first) / unit
    if amount is not None:
        total = grouped["amount"].sum()
        first_amount = calibration.loc[grouped["occasion"].idxmin(), ["customer", "amount"]]
        first_amount = first_amount.set_index("customer")["amount"]
        repeat = total - first_amount
        out["monetary_value"] = np.where(
            out["frequency"] > 0, repeat / out["frequency"].clip(lower=1), 0.0
        )
    if obs_end is not None:
        holdout = occasions[
            (occasions["occasion"] > cal_end_occasion) & (occasions["occasion"] <= obs_end)
        ]
        held = holdout.groupby("customer")
        out["frequency_holdout"] = (
            held["occasion"].size().reindex(out.index, fill_value=0).astype("int64")
        )
        out["duration_holdout"] = (obs_end.to_period(grain).start_time - cal_end_occasion) / unit
        if amount is not None:
            spend = held["amount"].sum().reindex(out.index, fill_value=0.0)
            out["monetary_value_holdout"] = np.where(
                out["frequency_holdout"] > 0,
                spend / out["frequency_holdout"].clip(lower=1),
                0.0,
            )
    return out


# --------------------------------------------------------------------------------------
# BG/NBD


def _bgnbd_terms(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient in ``log(r, alpha, a, b)``."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + big_t)
    bx1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    tail = np.logaddexp(a3, a4)
    ll = a1 + a2 + tail
    w = np.exp(a4 - tail)  # weight of the "dropped out after the last purchase" term
    d_r = (
        special.digamma(r + x)
        - special.digamma(r)
        + np.log(alpha)
        - (1 - w) * np.log(alpha + big_t)
        - w * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - (r + x) * ((1 - w) / (alpha + big_t) + w / (alpha + t_x))
    psi_ab = special.digamma(a + b) - special.digamma(a + b + x)
    d_a = psi_ab + w / a
    d_b = psi_ab + special.digamma(b + x) - special.digamma(b) - w / bx1
    grad = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)
    return ll, grad


def _hessian(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray
) -> np.ndarray:
    """Hessian of the total ``-LL`` in log-parameters, central differences of the gradient."""
    step = 1e-5
    hess = np.empty((4, 4))
    for j in range(4):
        shift = np.zeros(4)
        shift[j] = step
        up = _bgnbd_terms(log_params + shift, x, t_x, big_t)[1].sum(axis=0)
        down = _bgnbd_terms(log_params - shift, x, t_x, big_t)[1].sum(axis=0)
        hess[:, j] = -(up - down) / (2 * step)
    return (hess + hess.T) / 2


@dataclass(frozen=True)
class BGNBDFit:
    """A fitted BG/NBD model; ``alpha`` and the times in the methods share one unit.

    ``identifiable`` is False when the dropout part (``a``, ``b``) is not identified by
    the data (see the module docstring); ``note`` says why, or is empty.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n: int
    converged: bool
    identifiable: bool
    note: str

    def expected_purchases(self, t: ArrayLike) -> np.ndarray:
        """``E[X(t)]``: expected purchases in ``(0, t]`` of a customer new at time 0.

        ``(a + b - 1) / (a - 1) * [1 - (alpha / (alpha + t))^r 2F1(r, b; a + b - 1;
        t / (alpha + t))]`` (Fader, Hardie & Lee 2005, eq. 7).
        """
        t = _as_array(t, "t")
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + t)
        hyp = special.hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)

    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """``P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1)
        ((alpha + T) / (alpha + t_x))^(r + x))``; 1 for ``x = 0`` (in the BG/NBD a customer
        can only drop out right after a purchase)."""
        x, t_x, big_t = _customer_arrays(frequency, recency, T)
        return np.exp(-self._log_odds_dead(x, t_x, big_t))

    def _log_odds_dead(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """``log(1 / P(alive))`` computed stably."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        repeat = x > 0
        bx1 = np.where(repeat, b + x - 1, 1.0)
        log_ratio = (
            np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
        )
        return np.where(repeat, np.logaddexp(0.0, log_ratio), 0.0)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """``E[Y(t) | x, t_x, T]``: expected purchases in ``(T, T + t]`` of a customer.

        ``(a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x)
        2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))] * P(alive)``
        (Fader, Hardie & Lee 2005, eq. 10). ``t`` broadcasts against the customers.
        """
        t = _as_array(t, "t")
        x, t_x, big_t = _customer_arrays(frequency, recency, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + big_t + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp
        return head * body * np.exp(-self._log_odds_dead(x, t_x, big_t))


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    initial: Sequence[float] | None = None,
) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit: ``r``, ``alpha``, ``a``, ``b`` and the log-likelihood.

    ``frequency`` (repeat purchases ``x``), ``recency`` (``t_x``) and ``T`` come from
    :func:`summary_from_transactions`, one entry a customer. ``initial`` is a start
    ``(r, alpha, a, b)`` (``alpha`` in the unit of ``T``); the default is ``(1, median T,
    1, 1)``. The result says whether the dropout part is identified (module docstring).
    Raises ``ValueError`` for negative or non-finite inputs, ``recency > T``, or fewer
    than 2 customers.
    """
    x, t_x, big_t = _customer_arrays(frequency, recency, T)
    n = int(x.size)
    if n < 2:
        raise ValueError(f"frequency has {n} customer(s), must have at least 2")
    scale = float(np.median(big_t))
    if scale <= 0:
        scale = float(big_t.max()) if big_t.max() > 0 else 1.0
    if initial is None:
        start = np.zeros(4)
    else:
        if len(initial) != 4:
            raise ValueError("initial must be (r, alpha, a, b)")
        values = [
            _positive(v, f"initial {k}")
            for v, k in zip(initial, ("r", "alpha", "a", "b"), strict=True)
        ]
        values[1] /= scale
        start = np.clip(np.log(values), -_LOG_BOUND, _LOG_BOUND)
    xs, txs, ts = x, t_x / scale, big_t / scale

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _bgnbd_terms(theta, xs, txs, ts)
        return -float(ll.sum()) / n, -grad.sum(axis=0) / n

    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    theta = result.x
    ll_total = float(_bgnbd_terms(theta, xs, txs, ts)[0].sum())
    # back to the caller's time unit: alpha scales with time, LL gains -x ln(scale) a customer
    ll_total -= float(x.sum() * np.log(scale))
    r, alpha, a, b = np.exp(theta)
    alpha *= scale

    reasons: list[str] = []
    # L-BFGS-B may stop on a failed line search along a flat ridge: accept a point where
    # the gradient (ignoring components pushing against a bound) is zero to 1e-4
    gradient = objective(theta)[1]
    inside = np.abs(theta) < _LOG_BOUND - 1e-6
    stationary = bool(np.all(np.abs(gradient[inside]) < 1e-4))
    converged = (bool(result.success) or stationary) and bool(np.all(np.isfinite(theta)))
    if not converged:
        reasons.append(f"the optimiser did not converge ({result.message})")
    at_bound = [
        name
        for name, value in (("a", theta[2]), ("b", theta[3]))
        if abs(value) > _LOG_BOUND - _AT_BOUND
    ]
    if at_bound:
        reasons.append(
            f"{' and '.join(at_bound)} at the bound of the search (a = {a:.3g}, b = {b:.3g})"
        )
    hess = _hessian(theta, xs, txs, ts)
    eigen = np.linalg.eigvalsh(hess) if np.all(np.isfinite(hess)) else np.array([np.nan])
    if not np.all(eigen > 1e-8 * max(float(np.nanmax(np.abs(eigen))), 1.0)):
        reasons.append("the information matrix is not positive definite")
    else:
        cov = np.linalg.inv(hess)
        share = b / (a + b)
        g = np.array([0.0, 0.0, share, -share])  # d log(a / (a + b)) / d log(r, alpha, a, b)
        se = float(np.sqrt(max(g @ cov @ g, 0.0)))
        if se > _MAX_SE_LOG_DROPOUT:
            reasons.append(
                f"the mean dropout probability a / (a + b) = {a / (a + b):.3g} has a "
                f"standard error of {se:.2f} on the log scale (> {_MAX_SE_LOG_DROPOUT})"
            )
    identifiable = not reasons
    note = ""
    if not identifiable:
        note = (
            "BG/NBD dropout not identifiable: "
            + "; ".join(reasons)
            + ". Too few customers have been silent long enough (frequent shoppers or a "
            "short history); use the empirical retention curve by RFM segment "
            "(empirical_retention) instead of the BG/NBD survival."
        )
    return BGNBDFit(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=float(ll_total),
        n=n,
        converged=converged,
        identifiable=identifiable,
        note=note,
    )


def simulate_bgnbd(
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: ArrayLike,
    n: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Simulate ``n`` BG/NBD customers, each observed for ``T`` after their first purchase.

    Each customer draws ``lambda ~ Gamma(r, rate=alpha)`` and ``p ~ Beta(a, b)``; after
    the first purchase at time 0, inter-purchase times are ``Exponential(lambda)`` and
    after each purchase the customer drops out with probability ``p``. ``T`` is a number
    or one per customer.

    Returns columns ``frequency``, ``recency``, ``T`` (as from
    :func:`summary_from_transactions`) and the latent ``lambda_``, ``p`` and ``alive``
    (not dropped out by ``T``).
    """
    for value, name in ((r, "r"), (alpha, "alpha"), (a, "a"), (b, "b")):
        _positive(value, name)
    if int(n) != n or n < 1:
        raise ValueError(f"n == {n!r}, must be a positive whole number")
    n = int(n)
    big_t = np.broadcast_to(_as_array(T, "T"), (n,)).astype(float)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)  # still buying and still inside the window
    alive = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        inside = clock[idx] <= big_t[idx]
        bought = idx[inside]
        frequency[bought] += 1
        recency[bought] = clock[bought]
        active[idx[~inside]] = False
        # a purchase may be followed by dropout
        drop = rng.random(bought.size) < p[bought]
        alive[bought[drop]] = False
        active[bought[drop]] = False
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency,
            "T": big_t,
            "lambda_": lam,
            "p": p,
            "alive": alive,
        }
    )


# --------------------------------------------------------------------------------------
# Gamma-Gamma


def _gamma_gamma_arrays(
    frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    x = _as_array(frequency, "frequency")
    m = _as_array(monetary_value, "monetary_value")
    if x.shape != m.shape:
        raise ValueError(
            f"frequency and monetary_value must have the same length, not {x.size} and {m.size}"
        )
    if np.any(x != np.round(x)):
        raise ValueError("frequency must be whole numbers of repeat purchases")
    if np.any((x > 0) & (m <= 0)):
        raise ValueError("monetary_value must be > 0 when frequency > 0")
    return x, m


def _gamma_gamma_ll(
    log_params: np.ndarray, x: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log density of the mean spend ``m`` and its gradient in log(p, q, v)."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_vmx = np.log(v + m * x)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_vmx
    )
    psi = special.digamma(px + q)
    d_p = x * (psi - special.digamma(px) + np.log(m) + np.log(x) - log_vmx)
    d_q = psi - special.digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    return ll, np.stack([d_p * p, d_q * q, d_v * v], axis=1)


@dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model (``v`` is Fader & Hardie's gamma).

    ``log_likelihood`` is the log density of the customers' mean spends, summed over the
    ``n`` customers with ``frequency > 0``. The mean spend per purchase in the population
    is ``p v / (q - 1)`` (finite for ``q > 1``).
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    n: int
    converged: bool

    @property
    def mean_spend(self) -> float:
        """Population mean spend per purchase, ``p v / (q - 1)`` (inf when ``q <= 1``)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> np.ndarray:
        """``E[M | x, m] = p (v + x m) / (p x + q - 1)``, the expected spend per purchase.

        A weighted average of the population mean ``p v / (q - 1)`` and the customer's
        own mean ``m``, with weight ``p x / (p x + q - 1)`` on ``m``; customers without
        repeat purchases get the population mean.
        """
        x, m = _gamma_gamma_arrays(frequency, monetary_value)
        m = np.where(x > 0, m, 0.0)
        return self.p * (self.v + x * m) / (self.p * x + self.q - 1)


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on the customers with ``frequency > 0``.

    ``monetary_value`` is each customer's mean spend over their ``frequency`` repeat
    purchases (:func:`summary_from_transactions`). The model assumes spend independent of
    purchase frequency: check the correlation of ``frequency`` and ``monetary_value``
    before using it. Raises ``ValueError`` for negative inputs, a non-positive spend of a
    repeat customer, or fewer than 2 repeat customers.
    """
    x, m = _gamma_gamma_arrays(frequency, monetary_value)
    keep = x > 0
    x, m = x[keep], m[keep]
    n = int(x.size)
    if n < 2:
        raise ValueError(f"frequency has {n} customer(s) with frequency > 0, must have >= 2")
    # in units of the mean spend: v scales with money, p and q do not
    scale = float(np.mean(m))
    ms = m / scale

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _gamma_gamma_ll(theta, x, ms)
        return -float(ll.sum()) / n, -grad.sum(axis=0) / n

    result = optimize.minimize(
        objective,
        np.array([0.0, np.log(2.0), 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 3,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    p, q, v = np.exp(result.x)
    # back to money: the density of m gains -ln(scale) a customer
    ll = float(_gamma_gamma_ll(result.x, x, ms)[0].sum() - n * np.log(scale))
    return GammaGammaFit(
        p=float(p),
        q=float(q),
        v=float(v * scale),
        log_likelihood=ll,
        n=n,
        converged=bool(result.success),
    )


# --------------------------------------------------------------------------------------
# empirical retention by segment


def empirical_retention(
    table: pd.DataFrame,
    *,
    segment_col: str = "segment",
    horizon_months: int = 12,
    customer: str = "customer_id",
    date: str = "date",
    reference_date: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Empirical retention curve by segment: the fallback when the BG/NBD is not identified.

    ``table`` is a purchase log, one row a purchase, with the customer, the date and the
    customer's segment (e.g. the RFM segment of :func:`loyalty_pilot.simulator.rfm.score_rfm`
    at the reference date; constant within a customer).

    The cohort is every customer with a purchase on or before ``reference_date``. Month
    ``k`` (1 to ``horizon_months``) is the interval (``reference_date`` + ``k - 1``
    months, ``reference_date`` + ``k`` months], calendar months by ``pd.DateOffset``.
    For each segment and month:

    ``customers``       cohort customers of the segment
    ``active``          of them, those with a purchase in month ``k``
    ``active_share``    ``active / customers``
    ``retained``        those with a purchase in month ``k`` or later (up to
                        ``observation_end``): known to be still customers in month ``k``
    ``retained_share``  ``retained / customers``: non-increasing in ``k``; a lower bound of
                        the share alive, biased down in the last months of the window
                        (customers alive but between two purchases)

    Shares of months not fully observed (ending after ``observation_end``) are NaN.
    ``observation_end`` defaults to the last purchase, ``reference_date`` to
    ``observation_end`` minus ``horizon_months`` months (the latest date with a fully
    observed horizon). Rows are sorted by segment, then month.
    """
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ValueError(f"horizon_months == {horizon_months!r}, must be a whole number >= 1")
    horizon = int(horizon_months)
    columns = [customer, date, segment_col]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column {', '.join(map(repr, missing))}")
    if table[columns].isna().any().any():
        raise ValueError("table has missing values in " + ", ".join(map(repr, columns)))
    segments_per_customer = table.groupby(customer)[segment_col].nunique()
    if (segments_per_customer > 1).any():
        first = segments_per_customer.index[segments_per_customer > 1][0]
        raise ValueError(f"{segment_col} must be constant within a customer, not for {first!r}")

    dates = pd.to_datetime(table[date])
    obs_end = dates.max() if observation_end is None else pd.Timestamp(observation_end)
    ref = (
        obs_end - pd.DateOffset(months=horizon)
        if reference_date is None
        else pd.Timestamp(reference_date)
    )
    if ref > obs_end:
        raise ValueError(f"reference_date == {ref.date()}, must be <= observation_end")
    edges = pd.DatetimeIndex([ref + pd.DateOffset(months=k) for k in range(horizon + 1)])

    log = pd.DataFrame(
        {"customer": table[customer].to_numpy(), "segment": table[segment_col].to_numpy()}
    )
    log["date"] = dates.to_numpy()
    cohort = log.loc[log["date"] <= ref].drop_duplicates("customer")[["customer", "segment"]]
    after = log[(log["date"] > ref) & (log["date"] <= obs_end)]
    after = after[after["customer"].isin(cohort["customer"])]
    # month k holds the dates in (edges[k-1], edges[k]]; k = horizon + 1 is later
    month = np.searchsorted(edges.to_numpy(), after["date"].to_numpy(), side="left")
    after = after.assign(month=month)

    segments = (
        list(table[segment_col].cat.categories)
        if isinstance(table[segment_col].dtype, pd.CategoricalDtype)
        else sorted(cohort["segment"].unique())
    )
    grid = pd.MultiIndex.from_product(
        [segments, range(1, horizon + 1)], names=[segment_col, "month"]
    )
    size = cohort.groupby("segment").size()
    in_horizon = after[after["month"] <= horizon].drop_duplicates(["customer", "month"])
    active = in_horizon.groupby(["segment", "month"]).size()
    last = after.groupby(["customer", "segment"], as_index=False)["month"].max()
    last["month"] = last["month"].clip(upper=horizon)
    # retained in month k = last purchase in month k or later: reverse cumulative count
    last_counts = last.groupby(["segment", "month"]).size().reindex(grid, fill_value=0)
    retained = last_counts.groupby(level=0).transform(lambda s: s[::-1].cumsum()[::-1])

    out = pd.DataFrame(index=grid)
    out["customers"] = size.reindex(grid.get_level_values(0), fill_value=0).to_numpy()
    out["active"] = active.reindex(grid, fill_value=0).to_numpy()
    out["retained"] = retained.to_numpy()
    observed = np.asarray(edges[1:] <= obs_end)[grid.get_level_values(1) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        for column in ("active", "retained"):
            share = out[column].to_numpy(dtype=float) / out["customers"].to_numpy()
            out[f"{column}_share"] = np.where(observed, share, np.nan)
    out = out[["customers", "active", "active_share", "retained", "retained_share"]]
    return out.reset_index()
