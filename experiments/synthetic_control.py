"""Synthetic control (Abadie & Gardeazabal 2003; Abadie, Diamond & Hainmueller 2010).

For a pilot confined to one or a few regions: the counterfactual of the treated region is a
convex combination of donor regions whose pre-period path (and, optionally, predictors)
matches it. Two entry points:

* :func:`fit_synthetic_control` -- the weights, from matrices. Outcome-only, the weights
  minimise the pre-period mean squared prediction error (MSPE) on the simplex. With
  predictors it is the nested optimisation of ADH: the inner weights ``W(V)`` minimise
  ``(X1 - X0 W)' V (X1 - X0 W)`` on the simplex for a diagonal ``V >= 0``, the outer
  search picks the ``V`` whose ``W(V)`` has the smallest pre-period outcome MSPE.
* :func:`synthetic_control` -- a :class:`Comparison` from a :class:`PanelData`, with
  placebo-in-space inference and a confidence interval by test inversion.

Method choices
--------------
*Simplex least squares, exactly.* ``min ||A w - b||`` over ``w >= 0, sum(w) = 1`` equals
``min ||P w||`` with ``P = A - b 1'`` (the nearest point of the convex hull of the
columns of ``P`` to the origin). That is solved exactly by one non-negative least squares
problem, ``min_{u >= 0} ||P u||^2 + (1'u - 1)^2``, then ``w = u / 1'u``: for fixed
direction the best scale gives the value ``||Pw||^2 / (1 + ||Pw||^2)``, increasing in
``||Pw||``, so both problems share their minimiser. scipy's Lawson-Hanson NNLS solves it
to machine precision in tens of microseconds (no tolerance to tune, unlike SLSQP).

*Outer search over V.* ``W(V)`` is piecewise smooth in ``V``: on a fixed support the
KKT system gives ``dW/dv_k`` in closed form, so the outcome MSPE has an exact gradient
almost everywhere. The search runs L-BFGS-B on ``v in [0, 1]^K`` (``W`` is invariant to
the scale of ``V``) from many starts -- equal weights, the regression-based ``V`` of R
Synth, each predictor alone, and seeded Dirichlet draws -- then polishes the best with
Nelder-Mead (which crosses the kinks where the support of ``W`` changes) and L-BFGS-B
again. Everything is seeded, so the same input gives the same weights. Predictors are
divided by their standard deviation across units (treated and donors, ``ddof=1``), as R
Synth does; ``v`` is reported for the standardised predictors, normalised to sum to one.

*Inference.* Placebo in space (ADH 2010): each donor in turn is the pseudo-treated unit,
the other donors its pool, refitted by the same procedure; the statistic is the ratio of
post- to pre-period root MSPE and ``p = (1 + #{placebo ratio >= treated ratio}) / (J+1)``.
The interval inverts this test under a constant effect (Firpo & Possebom 2018): for a
candidate ``tau0`` subtract it from the treated post-period gaps, recompute the treated
ratio against the fixed placebo ratios and keep the ``tau0`` not rejected at ``alpha``.
The treated ratio is a convex function of ``tau0``, so the set is an interval with a
closed form. With ``J`` donors the smallest attainable p-value is ``1 / (J + 1)``: when
that is above ``alpha`` no ``tau0`` can be rejected and the interval is ``(-inf, inf)``
(``extras['ci_note']`` says so).

*Several treated units.* Their outcomes (and predictors) are averaged into one aggregate
treated unit, which is what is fitted and tested; the estimate is the effect on that
average, per unit and period. An average of ``m`` stores is far smoother than one store,
so comparing its RMSPE ratio with single-donor placebos rejected in 20 of 20 A/A draws
with 10 treated stores. With ``m > 1`` the placebos are therefore built the same way as
the treated unit: ``n_placebos`` seeded draws of ``m`` units among all ``N`` units of the
panel (every such set when there are at most ``n_placebos + 1``), each averaged and
fitted on the other ``N - m`` units as donors. Under a randomized assignment the actual
treated set is one of these equally likely sets, so ``p = (1 + #{placebo ratio >= treated
ratio}) / (B + 1)`` is a randomization test with its nominal level. The interval inverts
it under a constant effect ``tau0``: the weights depend on the pre-period only, the
post-period gaps of every set are linear in ``tau0`` (a placebo set containing treated
units moves by its treated share minus the weight its synthetic puts on treated units),
so each comparison of squared ratios is a quadratic inequality in ``tau0`` and the kept
set is found exactly from their roots (reported as its hull). ``extras["placebo"]`` says
which scheme ran (``"donors"`` or ``"reassignment"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, nnls

from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.results import (
    OK,
    Comparison,
    degenerate,
    relative_from_absolute,
)

METHOD = "synthetic_control"
POOR_FIT_RATIO = 1.0
"""Status ``poor_fit`` when the pre-period RMSPE exceeds this multiple of the standard
deviation (over time, ddof=0) of the treated pre-period outcome: the synthetic control
then predicts the treated path worse than the treated's own pre-period mean does."""
SEED = 20030301
"""Seed of the random starts of the outer search (fixed: the fit is deterministic)."""
WEIGHT_DECIMALS = 6


@dataclass(frozen=True)
class SCFit:
    """A fitted synthetic control.

    ``weights`` (J,) on the simplex; ``v`` (K,) the predictor weights (standardised
    predictors, summing to one; empty when fitted on outcomes alone); ``pre_mspe`` the
    mean squared error of the synthetic pre-period outcome; ``predictor_loss`` the inner
    objective ``(X1 - X0 W)' V (X1 - X0 W)`` on standardised predictors (NaN
    outcome-only); ``predictor_sd`` (K,) the divisors used to standardise.
    """

    weights: np.ndarray
    v: np.ndarray
    pre_mspe: float
    predictor_loss: float = math.nan
    predictor_sd: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def pre_rmspe(self) -> float:
        """Root of :attr:`pre_mspe`."""
        return math.sqrt(self.pre_mspe)

    def synthetic(self, y_donors: np.ndarray) -> np.ndarray:
        """The synthetic outcome ``y_donors @ weights`` for a (T, J) donor matrix."""
        return np.asarray(y_donors, dtype=float) @ self.weights


def simplex_least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin ||a @ w - b||`` over ``w >= 0, sum(w) == 1`` (exact; see the module doc).

    ``a`` is (n, J), ``b`` (n,). Where every ``w`` fits equally well (all columns of ``a``
    equal ``b``) the equal weights are returned.
    """
    p = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)[:, None]
    n_donors = p.shape[1]
    scale = float(np.sqrt((p * p).sum(axis=0)).max()) if p.size else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        return np.full(n_donors, 1.0 / n_donors)
    e = np.vstack([p / scale, np.ones((1, n_donors))])
    f = np.zeros(e.shape[0])
    f[-1] = 1.0
    u, _ = nnls(e, f, maxiter=50 * max(n_donors, 10))
    total = u.sum()
    if total <= 0.0:  # cannot happen for a solved NNLS (u = 0 is never optimal)
        return np.full(n_donors, 1.0 / n_donors)
    return u / total


class _Outer:
    """The outer problem: outcome MSPE of ``W(v)`` and its gradient in ``v``."""

    def __init__(self, x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray):
        self.x0, self.x1, self.z0, self.z1 = x0, x1, z0, z1

    def weights(self, v: np.ndarray) -> np.ndarray:
        sv = np.sqrt(np.abs(v))
        return simplex_least_squares(self.x0 * sv[:, None], self.x1 * sv)

    def loss(self, v: np.ndarray) -> float:
        r = self.z1 - self.z0 @ self.weights(v)
        return float(r @ r) / len(r)

    def loss_grad(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and its gradient on the current support of ``W`` (implicit function)."""
        w = self.weights(v)
        r = self.z1 - self.z0 @ w
        t = len(r)
        support = np.flatnonzero(w > 0)
        xs = self.x0[:, support]
        n = len(support)
        kkt = np.zeros((n + 1, n + 1))
        kkt[:n, :n] = (xs.T * v) @ xs
        kkt[:n, n] = kkt[n, :n] = 1.0
        g = np.append(-2.0 * (self.z0[:, support].T @ r) / t, 0.0)
        h = np.linalg.lstsq(kkt, g, rcond=None)[0][:n]
        e = self.x1 - self.x0 @ w
        return float(r @ r) / t, e * (xs @ h)


def _regression_v(x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """R Synth's regression start: regress outcomes on predictors across units."""
    x = np.column_stack([np.ones(x0.shape[1] + 1), np.column_stack([x1, x0]).T])
    z = np.column_stack([z1, z0]).T
    beta = np.linalg.lstsq(x, z, rcond=None)[0][1:]
    v = (beta * beta).sum(axis=1)
    return v / v.sum() if v.sum() > 0 else np.full(len(v), 1.0 / len(v))


def _starts(outer: _Outer, n_random: int) -> list[np.ndarray]:
    k = outer.x0.shape[0]
    rng = np.random.default_rng(SEED)
    corners = 0.9 * np.eye(k) + 0.1 / k
    return [
        np.full(k, 1.0 / k),
        _regression_v(outer.x0, outer.x1, outer.z0, outer.z1),
        *corners,
        *rng.dirichlet(np.ones(k), size=n_random),
    ]


def _search_v(outer: _Outer, n_random: int, polish: bool) -> np.ndarray:
    """Multi-start L-BFGS-B on ``v in [0, 1]^K``, then a Nelder-Mead polish of the best."""
    k = outer.x0.shape[0]
    bounds = [(0.0, 1.0)] * k

    def lbfgs(start: np.ndarray) -> Any:
        """L-BFGS-B on the predictor weights, from ``start`` scaled to a maximum of 1."""
        return minimize(outer.loss_grad, start / start.max(), jac=True, method="L-BFGS-B",
                        bounds=bounds, options={"maxiter": 500})  # fmt: skip

    best_v, best = np.full(k, 1.0 / k), math.inf
    for start in _starts(outer, n_random):
        res = lbfgs(start)
        if res.fun < best - 1e-12:
            best_v, best = np.abs(res.x), float(res.fun)
    if polish and k > 1:
        res = minimize(
            lambda x: outer.loss(np.abs(x)),
            best_v,
            method="Nelder-Mead",
            options={
                "maxfev": 300 * k,
                "xatol": 1e-8,
                "fatol": 1e-12 * (1 + best),
                "adaptive": True,
            },
        )
        x = np.abs(res.x)
        res = lbfgs(x)
        if res.fun < best - 1e-12:
            best_v, best = np.abs(res.x), float(res.fun)
    return best_v / best_v.sum()


def fit_synthetic_control(
    y_pre_treated: np.ndarray,
    y_pre_donors: np.ndarray,
    predictors_treated: np.ndarray | None = None,
    predictors_donors: np.ndarray | None = None,
    v: np.ndarray | None = None,
    *,
    n_random_starts: int = 10,
    polish: bool = True,
) -> SCFit:
    """Fit synthetic-control weights for one (possibly aggregate) treated unit.

    ``y_pre_treated`` (T0,) and ``y_pre_donors`` (T0, J): the pre-period outcomes whose
    MSPE is minimised. Without predictors the weights minimise that MSPE directly. With
    ``predictors_treated`` (K,) and ``predictors_donors`` (K, J) the weights are ADH's
    ``W(V)`` for the ``V`` found by the outer search (``n_random_starts`` seeded random
    starts besides the systematic ones; ``polish`` adds a Nelder-Mead pass), or for the
    given ``v`` (K,) if any. Raises ValueError on inconsistent shapes or non-finite input.
    """
    z1 = np.asarray(y_pre_treated, dtype=float)
    z0 = np.asarray(y_pre_donors, dtype=float)
    if z1.ndim != 1 or z0.ndim != 2 or z0.shape[0] != z1.shape[0]:
        raise ValueError(
            f"y_pre_donors.shape == {z0.shape}, must be (T0, J) with T0 == "
            f"len(y_pre_treated) == {z1.shape[0] if z1.ndim else 'scalar'}."
        )
    if z0.shape[0] == 0 or z0.shape[1] == 0:
        raise ValueError(f"y_pre_donors.shape == {z0.shape}, needs a period and a donor.")
    if not (np.isfinite(z0).all() and np.isfinite(z1).all()):
        raise ValueError("y_pre_treated and y_pre_donors must be finite.")
    if (predictors_treated is None) != (predictors_donors is None):
        raise ValueError("predictors_treated and predictors_donors go together.")
    if predictors_treated is None:
        if v is not None:
            raise ValueError("v == given, needs predictors.")
        w = simplex_least_squares(z0, z1)
        r = z1 - z0 @ w
        return SCFit(weights=w, v=np.empty(0), pre_mspe=float(r @ r) / len(r))

    x1 = np.asarray(predictors_treated, dtype=float)
    x0 = np.asarray(predictors_donors, dtype=float)
    if x1.ndim != 1 or x0.shape != (x1.shape[0], z0.shape[1]):
        raise ValueError(
            f"predictors_donors.shape == {x0.shape}, must be (K, J) == "
            f"({x1.shape[0] if x1.ndim else '?'}, {z0.shape[1]})."
        )
    if not (np.isfinite(x0).all() and np.isfinite(x1).all()):
        raise ValueError("predictors_treated and predictors_donors must be finite.")
    sd = np.column_stack([x0, x1]).std(axis=1, ddof=1) if x0.shape[1] > 0 else np.ones(len(x1))
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    outer = _Outer(x0 / sd[:, None], x1 / sd, z0, z1)
    if v is None:
        v_hat = _search_v(outer, n_random_starts, polish)
    else:
        v_hat = np.asarray(v, dtype=float)
        if v_hat.shape != x1.shape or (v_hat < 0).any() or not v_hat.sum() > 0:
            raise ValueError(f"v must be (K,) == ({len(x1)},), non-negative, not all zero.")
        v_hat = v_hat / v_hat.sum()
    w = outer.weights(v_hat)
    e = outer.x1 - outer.x0 @ w
    r = z1 - z0 @ w
    return SCFit(
        weights=w,
        v=v_hat,
        pre_mspe=float(r @ r) / len(r),
        predictor_loss=float(e @ (v_hat * e)),
        predictor_sd=sd,
    )


def _ratio(gaps: np.ndarray, post: np.ndarray) -> tuple[float, float]:
    """(post/pre RMSPE ratio, pre RMSPE) of a gap series."""
    pre_rmspe = math.sqrt(float(np.mean(gaps[~post] ** 2)))
    post_rmspe = math.sqrt(float(np.mean(gaps[post] ** 2)))
    return post_rmspe / max(pre_rmspe, 1e-12 * (1.0 + post_rmspe)), pre_rmspe


def placebo_ratio_ci(
    post_gaps: np.ndarray, pre_rmspe: float, placebo_ratios: np.ndarray, alpha: float
) -> tuple[float, float]:
    """Constant-effect interval by inverting the placebo RMSPE-ratio test.

    ``tau0`` is kept when ``1 + #{placebo ratio >= R(tau0)} > alpha (J + 1)``, with
    ``R(tau0) = sqrt(mean((post_gaps - tau0)^2)) / pre_rmspe``, i.e. when ``R(tau0)`` is at
    most the m-th largest placebo ratio, ``m = floor(alpha (J + 1))``. As
    ``mean((g - tau0)^2) = (mean(g) - tau0)^2 + var(g)`` the set is
    ``mean(g) +/- sqrt((c pre_rmspe)^2 - var(g))``: ``(-inf, inf)`` if ``m == 0`` and
    empty (NaN, NaN) if no constant effect fits.
    """
    ratios = np.sort(np.asarray(placebo_ratios, dtype=float))[::-1]
    m = math.floor(alpha * (len(ratios) + 1) + 1e-12)
    if m == 0:
        return -math.inf, math.inf
    c = ratios[m - 1] * max(pre_rmspe, 1e-12)
    g = np.asarray(post_gaps, dtype=float)
    slack = c * c - float(np.var(g))
    if slack < 0:
        return math.nan, math.nan
    half = math.sqrt(slack)
    return float(g.mean()) - half, float(g.mean()) + half


def _predictor_matrix(predictors: pd.DataFrame, units: np.ndarray) -> np.ndarray:
    """(K, n_units) predictor matrix in the order of ``units``; errors name the problem."""
    missing = [u for u in units if u not in predictors.index]
    if missing:
        raise ValueError(f"predictors has no row for unit {missing[0]!r}.")
    frame = predictors.loc[list(units)].apply(pd.to_numeric, errors="coerce")
    values = frame.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(
            f"predictors: column {frame.columns[k]!r} for unit {units[i]!r} is not finite."
        )
    return values.T


def synthetic_control(
    data: PanelData,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    predictors: pd.DataFrame | None = None,
    placebo: bool = True,
    map_: Callable[[Callable[[int], Any], Iterable[int]], Iterator[Any]] = map,
    n_placebos: int = 500,
    rng: np.random.Generator | int | None = 0,
) -> Comparison:
    """Synthetic control of the treated arm against the control units as donors.

    Several treated units are averaged into one aggregate treated unit (its outcome and
    predictors are the means over the treated units). ``estimate`` is the mean post-period
    gap (treated minus synthetic) per period; ``p_value`` and the interval come from the
    placebo-in-space test (see the module doc) unless ``placebo`` is False (then NaN).
    ``predictors`` (optional) has one row per unit (index = ``data.units``) and one column
    per predictor, computed from pre-period data only. ``map_`` runs the placebo fits (a
    process pool's ``map`` parallelises them). With several treated units the placebos
    are ``n_placebos`` random sets of as many units, drawn with ``rng`` (see the module
    doc); with one, every donor in turn.

    extras: ``weights`` (donor -> weight, all donors), ``pre_rmspe``, ``post_rmspe``,
    ``rmspe_ratio``, ``gaps`` (period, treated, synthetic, gap), ``placebo_ratios`` (donor
    -> ratio), ``v`` (predictor -> weight, with predictors), ``n_treated``, ``n_donors``.
    Statuses: ``no_units``, ``no_pre_period``, ``no_post_period``, ``one_unit_per_arm``
    (fewer than two donors), ``poor_fit`` (see :data:`POOR_FIT_RATIO`; figures kept).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1).")
    y = np.asarray(data.y, dtype=float)
    treated = np.asarray(data.treated, dtype=bool)
    post = np.asarray(data.post, dtype=bool)
    n_units = len(data.units)
    args = (arm, baseline, metric, METHOD)
    if not treated.any():
        return degenerate(*args, "no_units", n_units, alpha)
    if post.all():
        return degenerate(*args, "no_pre_period", n_units, alpha)
    if not post.any():
        return degenerate(*args, "no_post_period", n_units, alpha)
    if (~treated).sum() < 2:
        return degenerate(*args, "one_unit_per_arm", n_units, alpha)

    donors = np.flatnonzero(~treated)
    donor_names = data.units[donors]
    y1 = y[treated].mean(axis=0)
    y0 = y[donors].T  # (T, J)
    x_all = None if predictors is None else _predictor_matrix(predictors, data.units)
    x1 = None if x_all is None else x_all[:, treated].mean(axis=1)
    x0 = None if x_all is None else x_all[:, donors]
    fit = fit_synthetic_control(y1[~post], y0[~post], x1, x0)

    synthetic = y0 @ fit.weights
    gaps = y1 - synthetic
    estimate = float(gaps[post].mean())
    ratio, pre_rmspe = _ratio(gaps, post)
    extras: dict[str, Any] = {
        "weights": {
            str(u): round(float(w), WEIGHT_DECIMALS)
            for u, w in zip(donor_names, fit.weights, strict=True)
        },
        "pre_rmspe": pre_rmspe,
        "post_rmspe": math.sqrt(float(np.mean(gaps[post] ** 2))),
        "rmspe_ratio": ratio,
        "gaps": [
            {"period": p, "treated": float(a), "synthetic": float(s), "gap": float(g)}
            for p, a, s, g in zip(data.periods, y1, synthetic, gaps, strict=True)
        ],
        "n_treated": int(treated.sum()),
        "n_donors": len(donors),
    }
    if x_all is not None:
        extras["v"] = {str(c): float(v) for c, v in zip(predictors.columns, fit.v, strict=True)}

    p_value = ci_low = ci_high = math.nan
    m_treated = int(treated.sum())
    if placebo and m_treated > 1:
        p_value, ci_low, ci_high, info = _reassignment_test(
            y, treated, post, x_all, gaps, pre_rmspe, ratio, alpha, n_placebos, rng, map_
        )
        extras.update(info)
    elif placebo:
        extras["placebo"] = "donors"

        def placebo_ratio(j: int) -> float:
            pool = np.delete(np.arange(len(donors)), j)
            fit_j = fit_synthetic_control(
                y0[~post, j],
                y0[~post][:, pool],
                None if x0 is None else x0[:, j],
                None if x0 is None else x0[:, pool],
            )
            return _ratio(y0[:, j] - y0[:, pool] @ fit_j.weights, post)[0]

        ratios = np.array(list(map_(placebo_ratio, range(len(donors)))), dtype=float)
        p_value = (1 + int(np.sum(ratios >= ratio * (1 - 1e-12)))) / (len(donors) + 1)
        ci_low, ci_high = placebo_ratio_ci(gaps[post], pre_rmspe, ratios, alpha)
        extras["placebo_ratios"] = {
            str(u): float(r) for u, r in zip(donor_names, ratios, strict=True)
        }
        if math.isinf(ci_low):
            extras["ci_note"] = (
                f"unbounded: with {len(donors)} donors the smallest placebo p-value is "
                f"1/{len(donors) + 1} > alpha == {alpha}"
            )
        elif math.isnan(ci_low):
            extras["ci_note"] = "empty: no constant effect is consistent with the post gaps"
    else:
        extras["ci_note"] = "placebo == False: no p-value or interval"

    treated_mean = float(y1[post].mean())
    sd_pre = float(np.std(y1[~post]))
    status = "poor_fit" if pre_rmspe > POOR_FIT_RATIO * sd_pre else OK
    return Comparison(
        arm,
        baseline,
        metric,
        METHOD,
        estimate,
        ci_low,
        ci_high,
        relative_from_absolute(estimate, treated_mean),
        _relative_bound(ci_low, treated_mean),
        _relative_bound(ci_high, treated_mean),
        p_value,
        int(treated.sum()) + len(donors),
        status=status,
        alpha=alpha,
        extras=extras,
    )


def _reassignment_test(
    y: np.ndarray,
    treated: np.ndarray,
    post: np.ndarray,
    x_all: np.ndarray | None,
    gaps: np.ndarray,
    pre_rmspe: float,
    ratio: float,
    alpha: float,
    n_placebos: int,
    rng: np.random.Generator | int | None,
    map_: Callable[[Callable[[int], Any], Iterable[int]], Iterator[Any]],
) -> tuple[float, float, float, dict[str, Any]]:
    """Placebo sets of as many units as treated, averaged like the treated unit (module
    doc): p-value, the interval by exact inversion, and the extras."""
    if (
        isinstance(n_placebos, bool)
        or not isinstance(n_placebos, int | np.integer)
        or n_placebos < 1
    ):
        raise ValueError(f"n_placebos == {n_placebos!r}, must be a positive integer.")
    n, m = len(treated), int(treated.sum())
    actual = np.flatnonzero(treated)
    sets = _placebo_sets(n, m, actual, int(n_placebos), np.random.default_rng(rng))

    def fit_set(b: int) -> tuple[float, float, float, float]:
        chosen = np.zeros(n, dtype=bool)
        chosen[sets[b]] = True
        pool = np.flatnonzero(~chosen)
        y1 = y[chosen].mean(axis=0)
        fit = fit_synthetic_control(
            y1[~post], y[pool][:, ~post].T,
            None if x_all is None else x_all[:, chosen].mean(axis=1),
            None if x_all is None else x_all[:, pool],
        )  # fmt: skip
        g = y1 - y[pool].T @ fit.weights
        # how the set's post gap moves with a constant effect tau0 on the treated units
        shift = treated[chosen].mean() - float(fit.weights @ treated[pool])
        pre = math.sqrt(float(np.mean(g[~post] ** 2)))
        return pre, float(g[post].mean()), float(np.mean(g[post] ** 2)), shift

    rows = np.array(list(map_(fit_set, range(len(sets)))), dtype=float).reshape(-1, 4)
    pre_b, mean_b, sq_b, shift_b = rows.T
    pre_b = np.maximum(pre_b, 1e-12 * (1.0 + np.sqrt(sq_b)))
    ratios = np.sqrt(sq_b) / pre_b
    p_value = (1 + int(np.sum(ratios >= ratio * (1 - 1e-12)))) / (len(sets) + 1)
    g = gaps[post]
    pre_t = max(pre_rmspe, 1e-12)
    # D_b(tau) = ratio_b(tau)^2 - R(tau)^2 = a tau^2 + b tau + c
    a = shift_b**2 / pre_b**2 - 1.0 / pre_t**2
    b = -2.0 * shift_b * mean_b / pre_b**2 + 2.0 * float(g.mean()) / pre_t**2
    c = sq_b / pre_b**2 - float(np.mean(g**2)) / pre_t**2
    ci_low, ci_high = _invert(a, b, c, alpha, len(sets))
    info: dict[str, Any] = {
        "placebo": "reassignment",
        "n_placebos": len(sets),
        "placebo_ratio_quantiles": {
            str(q): float(np.quantile(ratios, q)) for q in (0.05, 0.5, 0.95)
        },
    }
    if math.isinf(ci_low) or math.isinf(ci_high):
        info["ci_note"] = "unbounded: every large constant effect is kept by the test"
    elif math.isnan(ci_low):
        info["ci_note"] = "empty: no constant effect is consistent with the post gaps"
    return p_value, ci_low, ci_high, info


def _placebo_sets(
    n: int, m: int, actual: np.ndarray, n_placebos: int, rng: np.random.Generator
) -> np.ndarray:
    """(B, m) sets of units other than the actual treated set: all of them when there are
    at most ``n_placebos``, else ``n_placebos`` seeded draws (rows sorted)."""
    total = math.comb(n, m)
    if total - 1 <= n_placebos:
        from itertools import combinations

        every = np.array(list(combinations(range(n), m)), dtype=int)
        return every[~(every == np.sort(actual)).all(axis=1)]
    keys = rng.random((n_placebos, n))
    return np.sort(np.argpartition(keys, m - 1, axis=1)[:, :m], axis=1)


def _invert(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, alpha: float, n_sets: int
) -> tuple[float, float]:
    """Hull of the ``tau`` with ``1 + #{a tau^2 + b tau + c >= 0} > alpha (B + 1)``."""
    need = alpha * (n_sets + 1) - 1  # kept when the count exceeds this
    disc = b * b - 4 * a * c
    real = disc >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.where(real, disc, 0.0))
        quad = np.abs(a) > 1e-300
        r1 = np.where(quad, (-b - root) / (2 * a), -c / b)
        r2 = np.where(quad, (-b + root) / (2 * a), -c / b)
    points = np.concatenate([r1[real], r2[real]])
    points = np.unique(points[np.isfinite(points)])
    if points.size == 0:
        probe = np.array([0.0])
    else:
        span = max(1.0, float(np.abs(points).max()))
        mids = (points[:-1] + points[1:]) / 2
        probe = np.concatenate([[points[0] - span], points, mids, [points[-1] + span]])
    probe = np.sort(probe)
    counts = ((a[:, None] * probe + b[:, None]) * probe + c[:, None] >= 0).sum(axis=0)
    kept = probe[counts > need]
    if kept.size == 0:
        return math.nan, math.nan

    # towards +-inf the sign of each quadratic is that of a (then b, then c)
    def at_infinity(sign: float) -> bool:
        lead = np.where(a != 0, np.sign(a), np.where(b != 0, np.sign(b) * sign, np.sign(c)))
        return int(np.sum(lead >= 0)) > need

    low = -math.inf if at_infinity(-1.0) else float(kept.min())
    high = math.inf if at_infinity(1.0) else float(kept.max())
    return low, high


def _relative_bound(bound: float, treated_mean: float) -> float:
    """Relative bound; an infinite absolute bound maps to its limit (-1 or +inf)."""
    if bound == -math.inf:
        return -1.0
    if bound == math.inf:
        return math.inf
    return relative_from_absolute(bound, treated_mean)
