"""Weekly looks at a running pilot without inflating false positives: group-sequential tests.

Looking at a pilot every week and stopping at the first ``|z| > 1.96`` declares an effect
that is not there far more often than 5 %: about 20 % of the time over 12 weekly looks.
The Lan-DeMets alpha-spending method (Lan & DeMets 1983) spends the two-sided ``alpha``
gradually over the *information fraction* ``t`` (0 at the start, 1 at the planned end):
at look ``k`` the boundary ``c_k`` is set so that the probability, under no effect, of
crossing ``+-c_k`` for the first time at look ``k`` is ``alpha(t_k) - alpha(t_{k-1})``.
Looks need not be planned or equally spaced: the boundaries at the observed fractions
are recomputed from the spending function, and past boundaries never change.

Spending functions (``alpha`` is the two-sided level, split evenly between the two sides
as in R ``ldbounds::bounds(t, iuse=c(1, 1), alpha=c(alpha/2, alpha/2))`` and gsDesign's
``sfLDOF`` with one-sided ``alpha/2``):

* ``"obf"``, O'Brien-Fleming type: each side spends ``2 - 2 Phi(z_{1-alpha/4} / sqrt(t))``,
  so the total is ``4 - 4 Phi(z_{1-alpha/4} / sqrt(t))``: almost nothing early, close to
  the fixed-sample 1.96 at the end (K = 5 equal looks at 0.05: 4.877, 3.357, 2.680,
  2.290, 2.031).
* ``"pocock"``, Pocock type: total ``alpha ln(1 + (e - 1) t)``: nearly constant
  boundaries, easier early stops, a higher final boundary.

The boundaries are exact for cumulative z statistics with independent increments,
``corr(Z_i, Z_j) = sqrt(t_i / t_j)`` for ``t_i <= t_j``: the recursive numerical
integration of Armitage, McPherson & Rowe (1969), as in ldbounds and gsDesign, on the
score scale ``S_k = sqrt(t_k) Z_k`` (a Brownian motion at the looks), Simpson's rule on a
grid finer than every increment's standard deviation (agrees with Monte Carlo and with
``scipy.stats.multivariate_normal`` to 1e-4 or better, see the tests).

Information fraction of a store pilot. With weekly looks the natural fraction is
``weeks observed / planned weeks`` (:func:`information_fraction`). It is the exact
fraction when the weekly contrasts are independent and the estimator averages the test
weeks only; a DiD also subtracts a fixed pre-period mean, and with serially independent
weekly noise its variance after ``k`` test weeks is ``sigma^2 (1/k + 1/P)`` (``P`` pre
weeks), so the exact fraction is ``(1/K + 1/P) / (1/k + 1/P)`` (``pre_weeks=P``), larger
than ``k / K`` early on. Serial correlation of the store weeks changes both; the weeks
fraction is then an approximation whose error goes to the spending only (the level stays
close to ``alpha`` when the fractions are roughly right, see the tests).

Small samples: for t statistics with ``df`` degrees of freedom :func:`monitor` compares
``|t_k|`` with the t quantile of the same nominal level, ``t_{df}^{-1}(Phi(c_k))`` (the
usual nominal-level translation; approximate, exact as ``df -> infinity``). In a
simulated 8-store DiD (6 df, 12 weekly looks, the DiD fractions) it gives a false-positive
rate of about 0.06 for 0.05 (0.054 with 14 df; the z statistics with known variance:
0.050), against 0.19 for naive weekly testing at the t quantile.

The repeated confidence interval ``estimate +- c_k se`` (Jennison & Turnbull 1989) covers
the effect with probability ``1 - alpha`` simultaneously at every look, so it stays valid
whatever the stopping rule: a pilot that stops early reads its RCI, not the
fixed-sample interval. :func:`monitor` gives it for every look (``history``) with the
per-look ``estimates`` and ``ses``, and on a caller's scale with ``to_relative`` (e.g.
``expm1`` for a log-scale DiD): ``rci_low``, ``rci_high``.

Information from the pre-period (:func:`information_from_pre_period`). On real store
weeks the noise is serially correlated and a DiD's early information is 2-3 times
``k / K``, so the weeks fraction spends almost nothing early on and the exact fraction
differs from both default formulas. The pre-period of the pilot's own stores estimates
it: the across-store autocovariance of the weekly outcome (week means removed, as the
DiD's period effects do), pooled over the pre weeks at each lag, gives the covariance of
the store weeks over the pre window and the planned test weeks (Toeplitz, lags beyond
what the pre-period measures held at the level of the last measured ones). The variance
of the DiD contrast ``mean(first k test weeks) - mean(pre weeks)`` is then a quadratic
form ``V_k``, and the fraction at look ``k`` is ``V_K / V_k``: the variance of the
final estimate over that of the estimate at look ``k``. The placebo simulations of
``benchmarks/validity_review.py`` check the overall false-stop rate (<= alpha).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPENDINGS = ("obf", "pocock")
SHRINK = 0.1
"""Shrinkage of an estimated look correlation towards independence (:func:`look_correlation`)."""
_TRUNCATE_SD = 9.0  # the grid of S_k stops at 9 sd of N(0, t_k): the mass beyond is < 1e-18
_POINTS_PER_SD = 24  # grid step <= (smallest relevant increment sd) / 24
_MAX_POINTS = 8001


@dataclass(frozen=True)
class Boundaries:
    """Two-sided symmetric boundaries on the z scale: stop at look ``k`` if ``|Z_k| >= z[k]``.

    ``alpha_spent[k]`` is the cumulative two-sided alpha spent by look ``k`` (the
    probability under no effect of crossing at or before it); ``nominal_alpha[k]`` the
    two-sided p-value at the boundary, ``2 (1 - Phi(z[k]))``.
    """

    information_fractions: tuple[float, ...]
    z: tuple[float, ...]
    alpha_spent: tuple[float, ...]
    nominal_alpha: tuple[float, ...]
    alpha: float
    spending: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; an infinite boundary (nothing spent at a look) becomes None."""
        return {
            "alpha": self.alpha,
            "spending": self.spending,
            "looks": [
                {
                    "look": k + 1,
                    "information_fraction": t,
                    "z": _finite_or_none(z),
                    "alpha_spent": a,
                    "nominal_alpha": n,
                }
                for k, (t, z, a, n) in enumerate(
                    zip(
                        self.information_fractions,
                        self.z,
                        self.alpha_spent,
                        self.nominal_alpha,
                        strict=True,
                    )
                )
            ],
        }


@dataclass(frozen=True)
class SequentialLook:
    """The state of a group-sequential test at its latest look.

    ``statistic`` and ``boundary`` are on the z scale, or on the t scale when ``df`` is
    given (``z_boundary`` is always the z-scale one). ``crossed``: ``|statistic| >=
    boundary`` at this look; ``direction`` ``"higher"`` or ``"lower"`` when crossed;
    ``stopped_at``: the first look (1-based) at which a boundary was crossed, if any (the
    pilot could have stopped there). ``ci_low``, ``ci_high``: the repeated confidence
    interval ``estimate +- boundary * se`` (NaN without ``estimate`` and ``se``), on the
    statistic's scale; ``rci_low``, ``rci_high``: the same interval mapped by the
    caller's ``to_relative`` (e.g. relative uplifts; NaN without it). Each ``history``
    row has the look's ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``rci_low``,
    ``rci_high`` when per-look estimates were given: the RCI a decision reads when the
    pilot stops at that look. ``information`` says where the fractions came from.
    """

    look: int
    information_fraction: float
    statistic: float
    boundary: float
    z_boundary: float
    crossed: bool
    direction: str | None
    stopped_at: int | None
    alpha_spent: float
    nominal_alpha: float
    estimate: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float
    alpha: float
    spending: str
    boundaries: Boundaries
    history: tuple[dict[str, Any], ...] = field(default=())
    note: str = ""
    rci_low: float = math.nan
    rci_high: float = math.nan
    information: str = "given"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinity become None; the boundaries and history nested."""
        out: dict[str, Any] = {
            "look": self.look,
            "information_fraction": self.information_fraction,
            "statistic": _finite_or_none(self.statistic),
            "boundary": _finite_or_none(self.boundary),
            "z_boundary": _finite_or_none(self.z_boundary),
            "crossed": self.crossed,
            "direction": self.direction,
            "stopped_at": self.stopped_at,
            "alpha_spent": self.alpha_spent,
            "nominal_alpha": self.nominal_alpha,
            "estimate": _finite_or_none(self.estimate),
            "se": _finite_or_none(self.se),
            "df": _finite_or_none(self.df) if self.df is not None else None,
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
            "rci_low": _finite_or_none(self.rci_low),
            "rci_high": _finite_or_none(self.rci_high),
            "information": self.information,
            "alpha": self.alpha,
            "spending": self.spending,
            "note": self.note,
            "history": [
                {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in h.items()}
                for h in self.history
            ],
            "boundaries": self.boundaries.to_dict(),
        }
        return out


def spent_alpha(
    information_fractions: float | Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    spending: str = "obf",
) -> np.ndarray:
    """Cumulative two-sided alpha spent at each information fraction in ``[0, 1]``.

    >>> [round(float(a), 6) for a in spent_alpha([0.5, 1.0])]
    [0.003051, 0.05]
    >>> round(float(spent_alpha(0.5, spending="pocock")[0]), 6)
    0.031006
    """
    from scipy.special import ndtr, ndtri

    _check_alpha(alpha)
    _check_spending(spending)
    t = np.atleast_1d(np.asarray(information_fractions, dtype=float))
    if not np.all((t >= 0.0) & (t <= 1.0)):
        raise ValueError(f"information_fractions == {t.tolist()}, must be in [0, 1].")
    if spending == "obf":
        z = ndtri(1.0 - alpha / 4.0)
        with np.errstate(divide="ignore"):
            out = 4.0 * ndtr(-z / np.sqrt(t))
    else:
        out = alpha * np.log1p((math.e - 1.0) * t)
    return np.where(t >= 1.0, alpha, out)


def boundaries(
    information_fractions: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    spending: str = "obf",
    correlation: np.ndarray | None = None,
) -> Boundaries:
    """Lan-DeMets boundaries at the given (increasing, in ``(0, 1]``) information fractions.

    >>> b = boundaries([0.2, 0.4, 0.6, 0.8, 1.0])
    >>> [round(z, 3) for z in b.z]
    [4.877, 3.357, 2.68, 2.29, 2.031]

    With ``correlation`` (looks x looks, of the z statistics) the boundaries spend the
    same alpha at each look for that correlation instead of the independent-increments
    one ``sqrt(t_i / t_j)``: a DiD's look estimates share the pre-period mean and are
    less correlated than that, so the Brownian boundaries let more than alpha through
    (5.5 % at 5 % with the exact fractions on AR(1) 0.7 weeks). Solved by Monte Carlo
    (:data:`MC_PATHS` paths of a fixed seed: deterministic, past boundaries unchanged).
    """
    t = _check_fractions(information_fractions)
    spent = spent_alpha(t, alpha, spending)
    if correlation is None:
        z = _solve_boundaries(t, spent)
    else:
        z = _correlated_boundaries(spent, np.asarray(correlation, dtype=float)[: len(t), : len(t)])
    from scipy.special import ndtr

    nominal = 2.0 * ndtr(-np.asarray(z))
    return Boundaries(
        information_fractions=tuple(float(v) for v in t),
        z=tuple(float(v) for v in z),
        alpha_spent=tuple(float(v) for v in spent),
        nominal_alpha=tuple(float(v) for v in nominal),
        alpha=float(alpha),
        spending=spending,
    )


def crossing_probabilities(
    z_boundaries: Sequence[float] | np.ndarray,
    information_fractions: Sequence[float] | np.ndarray,
    drift: float = 0.0,
) -> np.ndarray:
    """Probability of first crossing ``+-z_k`` at each look, by the same recursion.

    ``drift`` is the mean of ``Z`` at ``t = 1`` (``E Z_k = drift sqrt(t_k)``); 0 gives the
    type I error spent at each look, a positive drift the power spent.
    """
    t = _check_fractions(information_fractions)
    c = np.asarray(z_boundaries, dtype=float)
    if c.shape != t.shape:
        raise ValueError(
            f"z_boundaries has {c.size} values, information_fractions {t.size}: must match."
        )
    out = np.empty(len(t))
    state = None
    for k in range(len(t)):
        out[k] = _cross(state, t, k, c[k], drift)
        state = _advance(state, t, k, c[k], drift)
    return out


def information_fraction(
    weeks_observed: int | float | Sequence[float] | np.ndarray,
    planned_weeks: int | float,
    *,
    pre_weeks: int | float | None = None,
) -> np.ndarray:
    """Information fraction of a weekly look: ``weeks / planned`` (the default).

    With ``pre_weeks`` (``P``): the DiD fraction under serially independent weekly noise,
    ``(1/K + 1/P) / (1/k + 1/P)`` for ``k`` weeks observed of ``K`` planned (see the module
    docstring).

    >>> information_fraction([3, 6, 12], 12).tolist()
    [0.25, 0.5, 1.0]
    >>> [round(v, 4) for v in information_fraction([3, 12], 12, pre_weeks=12).tolist()]
    [0.4, 1.0]
    """
    k = np.atleast_1d(np.asarray(weeks_observed, dtype=float))
    if not (isinstance(planned_weeks, numbers.Real) and planned_weeks > 0):
        raise ValueError(f"planned_weeks == {planned_weeks!r}, must be > 0.")
    if not np.all((k > 0) & (k <= planned_weeks)):
        raise ValueError(
            f"weeks_observed == {k.tolist()}, must be in (0, planned_weeks = {planned_weeks}]; "
            "a pilot run past its planned length needs a new planned_weeks."
        )
    if pre_weeks is None:
        return k / planned_weeks
    if not (isinstance(pre_weeks, numbers.Real) and pre_weeks > 0):
        raise ValueError(f"pre_weeks == {pre_weeks!r}, must be > 0 or None.")
    return (1.0 / planned_weeks + 1.0 / pre_weeks) / (1.0 / k + 1.0 / pre_weeks)


def look_covariance(
    pre: np.ndarray, planned_weeks: int, *, max_lag: int | None = None
) -> np.ndarray:
    """Model covariance (K, K) of a DiD's estimates after 1..K test weeks, per unit of
    arm-size factor, estimated from the pre-period ``pre`` (units, P) of the pilot's
    units (see the module docstring and :func:`information_from_pre_period`)."""
    y = np.asarray(pre, dtype=float)
    if y.ndim != 2 or y.shape[0] < 3 or y.shape[1] < 2:
        raise ValueError(f"pre.shape == {y.shape}, needs (units >= 3, pre weeks >= 2).")
    if not np.isfinite(y).all():
        raise ValueError("pre must be finite.")
    if not (isinstance(planned_weeks, numbers.Integral) and planned_weeks >= 1):
        raise ValueError(f"planned_weeks == {planned_weeks!r}, must be an integer >= 1.")
    n, p = y.shape
    k_max = int(planned_weeks)
    e = y - y.mean(axis=0)  # period effects out: across-unit deviations
    h_max = max(1, p - 2) if max_lag is None else int(min(max_lag, p - 1))
    lags = np.arange(h_max + 1)
    gamma = np.array([np.sum(e[:, : p - h] * e[:, h:]) / ((n - 1) * (p - h)) for h in lags])
    tail = float(gamma[(h_max + 1) // 2 :].mean())
    total = p + k_max
    full = np.full(total, tail)
    full[: h_max + 1] = gamma
    idx = np.arange(total)
    sigma = full[np.abs(idx[:, None] - idx[None, :])]
    weights = np.zeros((k_max, total))
    weights[:, :p] = -1.0 / p
    ks = np.arange(1, k_max + 1)
    weights[:, p:] = ((idx[None, p:] - p) < ks[:, None]) / ks[:, None]
    return weights @ sigma @ weights.T


def information_from_pre_period(
    pre: np.ndarray, planned_weeks: int, *, max_lag: int | None = None
) -> np.ndarray:
    """Information fractions of a DiD's weekly looks estimated from the pre-period.

    ``pre`` (units, P) is the outcome of the pilot's units over the P pre weeks, on the
    estimator's scale. Returns ``V_K / V_k`` for ``k = 1..planned_weeks`` (see the module
    docstring), increasing to 1, with ``V`` the diagonal of :func:`look_covariance`.
    Autocovariances are measured up to lag ``max_lag`` (default ``P - 2``) and held
    beyond at the mean of the upper half of the measured lags (a constant added to every
    lag cancels in a DiD contrast, so only the decay matters). With strongly persistent
    noise and a short pre-period the early fractions come out too small (e.g. 0.57 for
    0.76 at the first of 8 looks, AR(1) 0.7, 12 pre weeks; the weeks fraction says
    0.125). Falls back to :func:`information_fraction` with ``pre_weeks=P`` (serially
    independent weeks) when the estimated variances are not all positive or the
    information does not grow over the looks (``V_1 <= 1.01 V_K``).

    >>> rng = np.random.default_rng(0)
    >>> white = rng.normal(size=(400, 30))
    >>> est = information_from_pre_period(white, 10)
    >>> bool(np.allclose(est, information_fraction(np.arange(1, 11), 10, pre_weeks=30),
    ...                  atol=0.06))
    True
    """
    cov = look_covariance(pre, planned_weeks, max_lag=max_lag)
    v = np.diag(cov)
    k_max, p = int(planned_weeks), np.asarray(pre).shape[1]
    ks = np.arange(1, k_max + 1)
    if not (np.all(np.isfinite(v)) and np.all(v > 0)) or (k_max > 1 and v[0] <= 1.01 * v[-1]):
        return information_fraction(ks, k_max, pre_weeks=p)
    t = np.maximum.accumulate(np.clip(v[-1] / v, 1e-6, 1.0))
    for j in range(1, k_max):  # strictly increasing, as the boundaries need
        t[j] = max(t[j], t[j - 1] + 1e-6)
    t = t / t[-1]
    t[-1] = 1.0
    return t


def look_correlation(
    pre: np.ndarray, planned_weeks: int, *, shrink: float = SHRINK
) -> np.ndarray | None:
    """Correlation (K, K) of the looks' DiD estimates from :func:`look_covariance`,
    shrunk towards independence by ``shrink`` (off-diagonals times ``1 - shrink``), or
    None when the model covariance is not positive definite.

    The shrinkage is an allowance for the estimation error of the correlation from a
    short pre-period: boundaries solved for a lower correlation than the true one are
    higher, so conservative. Unshrunk, the overall false-stop rate of 12 placebo pilots
    (16 stores, 16 pre weeks, 8 looks) was 4.1-5.7 % at 5 % (AR(1) 0.7) and 4.7-6.2 %
    (AR(1) 0.3); with 0.1, 3.8-4.9 % and 3.7-5.1 % (benchmarks/validity_review.py)."""
    if not 0.0 <= shrink < 1.0:
        raise ValueError(f"shrink == {shrink!r}, must be in [0, 1).")
    cov = look_covariance(pre, planned_weeks)
    v = np.diag(cov)
    if not (np.all(np.isfinite(cov)) and np.all(v > 0)):
        return None
    corr = (1.0 - shrink) * cov / np.sqrt(np.outer(v, v))
    np.fill_diagonal(corr, 1.0)
    if np.linalg.eigvalsh(corr).min() <= 1e-8:
        return None
    return corr


def monitor(
    statistics: Sequence[float] | np.ndarray,
    information_fractions: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    spending: str = "obf",
    estimate: float | None = None,
    se: float | None = None,
    df: float | Sequence[float] | None = None,
    estimates: Sequence[float] | None = None,
    ses: Sequence[float] | None = None,
    to_relative: Any = None,
    information: str = "given",
    correlation: np.ndarray | None = None,
) -> SequentialLook:
    """The group-sequential test at the latest look, given the statistics of every look so far.

    ``statistics[k]`` is the cumulative z (or t, with ``df``: a number or one per look)
    statistic at the look with information fraction ``information_fractions[k]``; the last
    entry is the current look. ``estimate`` and ``se`` (of the current look) give the
    repeated confidence interval; ``estimates`` and ``ses`` (one per look) give it at
    every look in ``history``; ``to_relative`` (an increasing map, e.g. ``math.expm1``)
    maps the intervals to ``rci_low`` / ``rci_high``. ``information`` is a label for
    where the fractions came from; ``correlation`` (of the looks' statistics, at least as
    many looks as given) makes the boundaries exact for it (see :func:`boundaries`). A
    non-finite statistic (an estimator's degenerate result) never crosses.

    >>> look = monitor([0.8, 2.9, 2.75], [0.25, 0.5, 0.75])
    >>> look.crossed, look.direction, round(look.boundary, 3), look.stopped_at
    (True, 'higher', 2.359, 3)
    """
    t = _check_fractions(information_fractions)
    stats_ = np.asarray(statistics, dtype=float)
    if stats_.shape != t.shape:
        raise ValueError(
            f"statistics has {stats_.size} values, information_fractions {t.size}: "
            "one statistic per look."
        )
    dfs = _dfs(df, len(t))
    bounds = boundaries(t, alpha, spending, correlation)
    z_b = np.asarray(bounds.z)
    scale_b = _to_t_scale(z_b, dfs)
    finite = np.isfinite(stats_)
    crossed_all = finite & (np.abs(np.where(finite, stats_, 0.0)) >= scale_b)
    first = np.flatnonzero(crossed_all)
    k = len(t) - 1
    crossed = bool(crossed_all[k])
    direction = ("higher" if stats_[k] > 0 else "lower") if crossed else None
    notes = []
    if not finite[k]:
        notes.append("the statistic at this look is not finite: no test")
    if first.size and first[0] < k:
        notes.append(f"a boundary was already crossed at look {first[0] + 1}")
    est = math.nan if estimate is None else float(estimate)
    s = math.nan if se is None else float(se)
    if (estimate is None) != (se is None):
        raise ValueError("estimate and se go together: give both or neither.")
    if se is not None and not (s > 0 or math.isnan(s)):
        raise ValueError(f"se == {se!r}, must be > 0.")
    half = float(scale_b[k]) * s

    def relative(x: float) -> float:
        if to_relative is None or math.isnan(x):
            return math.nan
        if math.isinf(x):
            return -1.0 if x < 0 else math.inf
        return float(to_relative(x))

    history = [
        {
            "look": j + 1,
            "information_fraction": float(t[j]),
            "statistic": float(stats_[j]),
            "boundary": float(scale_b[j]),
            "crossed": bool(crossed_all[j]),
        }
        for j in range(len(t))
    ]
    if (estimates is None) != (ses is None):
        raise ValueError("estimates and ses go together: give both or neither.")
    if estimates is not None:
        e_all, s_all = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
        if e_all.shape != t.shape or s_all.shape != t.shape:
            raise ValueError("estimates and ses need one value per look.")
        for j, row in enumerate(history):
            ok = math.isfinite(s_all[j]) and s_all[j] > 0 and math.isfinite(e_all[j])
            h = float(scale_b[j]) * s_all[j] if ok else math.nan
            low, high = (e_all[j] - h, e_all[j] + h) if ok else (math.nan, math.nan)
            row.update(estimate=float(e_all[j]), se=float(s_all[j]), ci_low=low,
                       ci_high=high, rci_low=relative(low), rci_high=relative(high))  # fmt: skip
    return SequentialLook(
        look=k + 1,
        information_fraction=float(t[k]),
        statistic=float(stats_[k]),
        boundary=float(scale_b[k]),
        z_boundary=float(z_b[k]),
        crossed=crossed,
        direction=direction,
        stopped_at=int(first[0]) + 1 if first.size else None,
        alpha_spent=bounds.alpha_spent[k],
        nominal_alpha=bounds.nominal_alpha[k],
        estimate=est,
        se=s,
        df=None if dfs is None else float(dfs[k]),
        ci_low=est - half,
        ci_high=est + half,
        alpha=float(alpha),
        spending=spending,
        boundaries=bounds,
        history=tuple(history),
        note="; ".join(notes),
        rci_low=relative(est - half),
        rci_high=relative(est + half),
        information=information,
    )


def monitor_comparisons(
    comparisons: Sequence[Any],
    information_fractions: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    spending: str = "obf",
    use_df: bool = True,
) -> SequentialLook:
    """:func:`monitor` on one :class:`~loyalty_pilot.experiments.results.Comparison` per look.

    The statistic of a look is ``estimate / extras["se"]`` (NaN when the comparison is
    degenerate or has no ``se``); with ``use_df`` and ``extras["df"]`` at every look the
    boundaries are on the t scale. The repeated interval is for the last comparison.
    """
    if not comparisons:
        raise ValueError("comparisons is empty: give one comparison per look.")
    stats_, dfs = [], []
    for c in comparisons:
        se = float(c.extras.get("se", math.nan))
        ok = c.status == "ok" and math.isfinite(se) and se > 0
        stats_.append(c.estimate / se if ok else math.nan)
        dfs.append(float(c.extras.get("df", math.nan)))
    last = comparisons[-1]
    last_se = float(last.extras.get("se", math.nan))
    usable = last.status == "ok" and math.isfinite(last_se) and last_se > 0
    df = dfs if use_df and all(math.isfinite(d) and d > 0 for d in dfs) else None
    return monitor(
        stats_,
        information_fractions,
        alpha=alpha,
        spending=spending,
        estimate=float(last.estimate) if usable else None,
        se=last_se if usable else None,
        df=df,
    )


# --------------------------------------------------------------------------- numerics


def _solve_boundaries(t: np.ndarray, spent: np.ndarray) -> np.ndarray:
    from scipy.optimize import brentq
    from scipy.special import ndtri

    increments = np.diff(spent, prepend=0.0)
    z = np.empty(len(t))
    state = None
    for k in range(len(t)):
        target = float(increments[k])
        if not target > 1e-300:
            z[k] = math.inf
        else:
            # P(first crossing at k) <= P(|Z_k| >= c): the marginal boundary is an upper bound.
            hi = float(-ndtri(target / 2.0))
            g_hi = _log_gap(state, t, k, hi, target)
            if g_hi >= 0.0:
                z[k] = hi
            else:
                lo = max(hi - 1.0, 0.0)
                while _log_gap(state, t, k, lo, target) < 0.0 and lo > 0.0:
                    lo = max(lo - 1.0, 0.0)
                z[k] = brentq(
                    lambda c, s=state, k=k, g=target: _log_gap(s, t, k, c, g),
                    lo,
                    hi,
                    xtol=1e-12,
                    rtol=1e-12,
                )
        state = _advance(state, t, k, z[k], 0.0)
    return z


MC_PATHS = 200_000
_MC_SEED = 19830101


def _correlated_boundaries(spent: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Boundaries spending ``diff(spent)`` at each look for z statistics with correlation
    ``corr``: on seeded normal paths, ``c_k`` is the value that the given share of the
    paths not yet stopped exceeds at look k for the first time."""
    k = len(spent)
    if corr.shape != (k, k):
        raise ValueError(f"correlation has shape {corr.shape}, must be ({k}, {k}).")
    chol = np.linalg.cholesky(corr + 1e-12 * np.eye(k))
    paths = np.abs(np.random.default_rng(_MC_SEED).standard_normal((MC_PATHS, k)) @ chol.T)
    alive = np.ones(MC_PATHS, dtype=bool)
    z = np.empty(k)
    for j, target in enumerate(np.diff(spent, prepend=0.0)):
        count = round(float(target) * MC_PATHS)
        if count < 1:
            z[j] = math.inf
            continue
        values = np.sort(paths[alive, j])[::-1]
        z[j] = float(values[min(count, len(values)) - 1]) if len(values) else math.inf
        alive &= paths[:, j] < z[j]
    return z


def _log_gap(state: Any, t: np.ndarray, k: int, c: float, target: float) -> float:
    p = _cross(state, t, k, c, 0.0)
    return math.log(p) - math.log(target) if p > 0 else -math.inf


def _cross(state: Any, t: np.ndarray, k: int, c: float, drift: float) -> float:
    """P(continue through look k-1 and cross +-c at look k) from the sub-density ``state``."""
    from scipy.special import ndtr

    if not math.isfinite(c):
        return 0.0
    b = c * math.sqrt(t[k])
    mean = drift * t[k]  # E S_k = drift t_k on the score scale
    if state is None:  # look 1: S_1 ~ N(drift t_1, t_1)
        sd = math.sqrt(t[k])
        return float(ndtr((-b - mean) / sd) + ndtr((mean - b) / sd))
    x, w = state
    sd = math.sqrt(t[k] - t[k - 1])
    mu = x + drift * (t[k] - t[k - 1])
    return float(w @ (ndtr((-b - mu) / sd) + ndtr((mu - b) / sd)))


def _advance(state: Any, t: np.ndarray, k: int, c: float, drift: float) -> Any:
    """Grid and quadrature-weighted sub-density of S_k restricted to ``|S_k| < c sqrt(t_k)``."""
    if k == len(t) - 1:
        return None
    sd_k = math.sqrt(t[k] - (t[k - 1] if k else 0.0))
    sd_next = math.sqrt(t[k + 1] - t[k])
    half = min(c * math.sqrt(t[k]), _TRUNCATE_SD * math.sqrt(t[k]) + abs(drift) * t[k])
    step = min(sd_k, sd_next) / _POINTS_PER_SD
    n_half = max(50, math.ceil(half / step))
    n = min(2 * n_half + 1, _MAX_POINTS)
    y = np.linspace(-half, half, n)
    h = y[1] - y[0]
    simpson = np.ones(n)
    simpson[1:-1:2] = 4.0
    simpson[2:-1:2] = 2.0
    simpson *= h / 3.0
    if state is None:
        density = np.exp(-0.5 * ((y - drift * t[k]) / sd_k) ** 2) / (sd_k * math.sqrt(2 * math.pi))
    else:
        x, w = state
        shift = drift * (t[k] - t[k - 1])
        density = np.empty(n)
        for lo in range(0, n, 512):  # chunks keep the kernel matrix small
            d = (y[lo : lo + 512, None] - x[None, :] - shift) / sd_k
            density[lo : lo + 512] = np.exp(-0.5 * d * d) @ w
        density /= sd_k * math.sqrt(2 * math.pi)
    return y, simpson * density


# --------------------------------------------------------------------------- checks


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1).")


def _check_spending(spending: str) -> None:
    if spending not in SPENDINGS:
        raise ValueError(f"spending == {spending!r}, must be one of {SPENDINGS}.")


def _check_fractions(values: Sequence[float] | np.ndarray) -> np.ndarray:
    t = np.atleast_1d(np.asarray(values, dtype=float))
    if t.ndim != 1 or t.size == 0:
        raise ValueError("information_fractions is empty: give one fraction per look.")
    if not np.all(np.isfinite(t)) or t[0] <= 0.0 or t[-1] > 1.0 or np.any(np.diff(t) <= 0):
        raise ValueError(
            f"information_fractions == {t.tolist()}, must increase strictly within (0, 1]."
        )
    return t


def _dfs(df: float | Sequence[float] | None, n: int) -> np.ndarray | None:
    if df is None:
        return None
    d = np.broadcast_to(np.asarray(df, dtype=float), (n,)) if np.ndim(df) == 0 else None
    if d is None:
        d = np.asarray(df, dtype=float)
        if d.shape != (n,):
            raise ValueError(f"df has {d.size} values, must be one number or one per look ({n}).")
    if not np.all(d > 0):
        raise ValueError(f"df == {np.asarray(df).tolist()}, must be > 0.")
    return d


def _to_t_scale(z: np.ndarray, dfs: np.ndarray | None) -> np.ndarray:
    if dfs is None:
        return z
    from scipy import stats
    from scipy.special import ndtr

    return np.where(np.isfinite(z), stats.t.isf(ndtr(-z), dfs), np.inf)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)
