"""Ratio-of-ratios DiD on total sales: the estimand of the programme's break-even and ROI.

:func:`ratio_did` estimates the uplift of the treated stores' *total* test-period sales
over their counterfactual total,

    theta = T1 / (P1 x C1 / C0) - 1,

with ``T1, P1`` the treated stores' test and pre-period totals and ``C1, C0`` the
controls'. ``1 + theta`` is the ratio of the two arms' growth ratios
``R_k = sum_k post_i / sum_k pre_i`` (unit means over the periods: the numbers of weeks
cancel), i.e. the pre-sales-weighted mean growth of the treated stores over that of the
controls. The DiD on log sales (:func:`~loyalty_pilot.experiments.did.did` on
``log(y)``) weighs stores equally instead; a programme that lifts big stores more than
small ones has a total-sales uplift that only this estimand measures.

Inference works on ``tau = log(1 + theta) = log R_1 - log R_0`` (so the interval of
``theta`` never goes below -100 %):

* Linearization (delta method): with ``w_i = pre_i / sum_k pre_j`` the pre-sales weight of
  store ``i`` within its arm ``k`` and ``r_i = (post_i / pre_i) / R_k`` its growth
  relative to its arm's, ``tau`` moves with ``l_i (r_i - 1)``, ``l_i = +-w_i``: the
  difference of two weighted means, i.e. the weighted least squares (weights ``pre_i``)
  of ``r`` on the two arm indicators. The store-level influence value is
  ``psi_i = l_i (r_i - 1) = +-(post_i - R_k pre_i) / sum_k post_j``.
* Working model: independent stores whose growth has a variance proportional to
  ``pre_i^-VARIANCE_POWER`` (1/2). Measured on the synthetic chain
  (``benchmarks/validity.py``), the variance of a store's relative growth falls with its
  size about as ``pre^-0.5`` to ``pre^-0.6``: a size-free part (store trends) plus a part
  that falls as ``1 / pre`` (basket noise). Under the ``1 / pre`` model of the WLS weights
  the leverage correction is too small for the stores that carry most of an arm's sales
  (``V`` 10-20 % low with 4 stores an arm); under ``pre^-1/2`` it is unbiased in every
  configuration measured (0.96-1.02).
* Small-sample variance: ``V = sum_i c_i psi_i^2`` with the CR2-type correction
  ``c_i = phi_i / M_ii`` (``M = (I - H) Phi (I - H)'``, ``phi`` the working variances):
  exactly unbiased under the working model. With ``phi = 1 / pre`` this is the HC2
  ``1 / (1 - h_ii)`` of that WLS (``h_ii = w_i`` without covariate).
* Degrees of freedom: those of the exact level-``alpha`` test under the working model
  (:func:`exact_df`): the law of ``tau / sqrt(V)`` for normal stores is that of a linear
  form over the root of a quadratic form, whose tail Imhof's integral gives exactly;
  the df are the Student t's with the same critical value. The Bell-McCaffrey
  (Satterthwaite) df ``(tr DM)^2 / tr(DMDM)`` match ``V`` by a scaled chi-square on two
  moments; for an arm of a few stores with unequal sales they fall below the number of
  stores minus one (about 2 for 4 stores against 60 others) and put far too much weight
  near ``V = 0``: a sum of 3 chi-square(1) terms is near 0 much less often than a
  chi-square with 2 df. The tests were conservative there even with the working model
  true (A/A 1 % by simulation; 1.9 % on the synthetic chain), which the ``1 / pre``
  model's low ``V`` hid with equal arms. The df depend on the pre-period sales and the
  design only (not on the test weeks), and on ``alpha``: the t test with them rejects
  exactly when the exact test does; p-values away from ``alpha`` are the t's.
* The interval is ``exp(tau -/+ t_{df} sqrt(V)) - 1``.
* Measured (``python benchmarks/validity.py --ratio-only``, 8 chains of 64 stores, 2,000
  placebo pilots per cell, 40 pre + 12 test weeks): A/A 4.5-5.7 % (4.2-6.0 % adjusted)
  with 4 + 4, 8 + 8 and 16 + 16 stores and with 4, 8 and 16 treated stores against every
  other store (1.9 % with 4 treated under the former ``1 / pre`` model and Bell-McCaffrey
  df); coverage 94.0-95.8 % with a homogeneous effect. With effects that depend on size
  it is 95.6-97.7 %: the interval also carries the spread of the store effects, which is
  no error for the pilot's own stores' uplift (its error is exactly the A/A one), only
  for the uplift of a rollout to other stores.

``adjust="regression"`` adds the store's recent momentum, ``x_i = log(mean of its last
12 pre weeks / its pre mean)`` (fewer weeks when the pre-period is short: half of it),
as a covariate: ``beta`` is the pooled within-arm WLS slope of log growth on ``x``, each
store's growth is divided by ``exp(beta x_i)``, and the ratio of the arms' weighted means
of these adjusted growths is ``1 + theta``. Its variance and df are those of the WLS on
the arm indicators and ``x`` (CR2-type correction with the covariate's leverage, the
exact df with the covariate in the design). A multiplicative effect on the treated
stores' test weeks moves ``tau`` by ``log(1 + effect)`` exactly and leaves ``se`` and
``df`` unchanged, with or without the adjustment (``beta`` is a within-arm slope of log
growth).

Everything is computed by :func:`ratio_fits` on arrays ``(P, n)`` of unit window means,
so the power kernels (:mod:`loyalty_pilot.experiments._power_kernels`) fit thousands of
placebo pilots in one call; :func:`ratio_did` is that function on one panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .did import _check_alpha, _counts, _screen, _t_test
from .panel import PanelData
from .results import OK, Comparison, degenerate

ADJUSTMENTS = ("none", "regression")
RECENT_WEEKS = 12
"""Pre weeks of the momentum covariate of ``adjust="regression"`` (at most half the pre)."""

VARIANCE_POWER = 0.5
EXACT_DF_MAX_UNITS = 64
"""Most units of a pilot whose df are the exact test's: the exact df cost an ``n x n``
eigendecomposition per fit (0.9 s per 1,000 placebos at 16 units, 2 s at 64, 40 s at 500);
above it
the Bell-McCaffrey df, conservative for an arm of a few unequal stores (A/A 1.9 % with 4
treated against 60 controls) and close to exact once every arm has many units."""
"""Working model of the variance and df: ``Var(growth_i) ~ pre_i^-VARIANCE_POWER``."""

_TOL = 1e-12

# codes of RatioFits.status
_OK, _ONE_UNIT, _NOT_IDENTIFIED, _ZERO_VARIANCE = 0, 1, 2, 3
_STATUS_NAMES = {_OK: OK, _ONE_UNIT: "one_unit_per_arm", _NOT_IDENTIFIED: "not_identified",
                 _ZERO_VARIANCE: "zero_variance"}  # fmt: skip


@dataclass(frozen=True, eq=False)
class RatioFits:
    """:func:`ratio_fits` on ``P`` pilots: arrays (P,), NaN where ``status`` is not 0.

    ``estimate``: ``tau = log(1 + theta)``; ``se``, ``df``: its standard error and degrees
    of freedom; ``log_ratio_treated``, ``log_ratio_control``: ``log R_1``, ``log R_0``
    (adjusted growths with ``adjust``); ``beta``: the momentum slope (0 without
    adjustment); ``status``: 0 ok, 1 an arm with fewer than two units, 2 not identified
    (a non-positive arm total or store mean, a store carrying all its arm's weight), 3
    zero variance.
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    log_ratio_treated: np.ndarray
    log_ratio_control: np.ndarray
    beta: np.ndarray
    status: np.ndarray

    def status_name(self, j: int = 0) -> str:
        return _STATUS_NAMES[int(self.status[j])]


def ratio_did(
    data: PanelData,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    adjust: str = "none",
) -> Comparison:
    """Total-sales ratio-of-ratios DiD of ``data`` (level sales, >= 0), see the module doc.

    ``relative`` is ``theta`` (the uplift of the treated stores' total sales), its interval
    ``exp(log bounds) - 1``; ``estimate``, ``ci_low``, ``ci_high`` the absolute effect per
    treated unit and test period, ``m (1 - exp(-tau))`` with ``m`` the treated units'
    test-period mean (as :func:`~loyalty_pilot.experiments.evaluate.from_log` maps a log
    effect). ``adjust``: ``"none"`` or ``"regression"`` (the momentum covariate).

    Extras: ``se``, ``df`` (log scale), ``scale="total"``, ``log_estimate``,
    ``log_ci_low``, ``log_ci_high``, ``adjust``, ``beta``, ``growth_treated``,
    ``growth_control`` (``R_1``, ``R_0``), ``treated_share`` (the treated units' share of
    the pilot's test-period sales) and ``n_treated, n_control, n_pre, n_post``.
    Degenerate data gives a status (see :class:`RatioFits`), never an error; non-finite
    values are an error, as in :func:`~loyalty_pilot.experiments.did.did`.

    >>> import numpy as np
    >>> from loyalty_pilot.experiments.panel import PanelData
    >>> y = np.array([[10.0, 10.0, 12.0], [30.0, 30.0, 33.0], [10.0, 10.0, 10.0],
    ...               [20.0, 20.0, 21.0]])
    >>> data = PanelData(y, np.arange(4), np.arange(3), np.array([1, 1, 0, 0], bool),
    ...                  np.array([False, False, True]))
    >>> round(ratio_did(data).relative, 4)  # (45 / 40) / (31 / 30) - 1
    0.0887
    """
    _check_alpha(alpha)
    _check_adjust(adjust)
    method = "ratio"
    early = _screen(data, method, arm, baseline, metric, alpha)
    extras: dict[str, Any] = {"scale": "total", "adjust": adjust, **_counts(data)}
    if early is not None:
        return _with_extras(early, extras)
    order = np.concatenate([np.flatnonzero(data.treated), np.flatnonzero(~data.treated)])
    y = np.asarray(data.y, dtype=float)[order]
    post = np.asarray(data.post, dtype=bool)
    pre_mean, post_mean = y[:, ~post].mean(axis=1), y[:, post].mean(axis=1)
    recent = None
    if adjust == "regression":
        k = recent_weeks(int((~post).sum()))
        recent = y[:, ~post][:, -k:].mean(axis=1) if k else np.full(len(y), np.nan)
    n1 = data.n_treated
    fits = ratio_fits(post_mean[None], pre_mean[None], n1, recent=None if recent is None
                      else recent[None], alpha=alpha)  # fmt: skip
    n_units = y.shape[0]
    status = fits.status_name()
    if status != OK:
        return degenerate(arm, baseline, metric, method, status, n_units, alpha, **extras)
    tau, se, df = float(fits.estimate[0]), float(fits.se[0]), float(fits.df[0])
    _, p_value, low, high = _t_test(tau, se, df, alpha)
    m = float(post_mean[:n1].mean())

    def absolute(x: float) -> float:
        return float(m * -np.expm1(-x))

    extras.update(
        se=se,
        df=df,
        log_estimate=tau,
        log_ci_low=low,
        log_ci_high=high,
        beta=float(fits.beta[0]),
        growth_treated=math.exp(float(fits.log_ratio_treated[0])),
        growth_control=math.exp(float(fits.log_ratio_control[0])),
        treated_share=float(post_mean[:n1].sum() / post_mean.sum()),
    )
    return Comparison(
        arm, baseline, metric, method, absolute(tau), absolute(low), absolute(high),
        math.expm1(tau), math.expm1(low), math.expm1(high), p_value, n_units,
        status=OK, alpha=alpha, extras=extras,
    )  # fmt: skip


def recent_weeks(n_pre: int) -> int:
    """Pre weeks of the momentum covariate: ``RECENT_WEEKS``, at most half the pre-period."""
    return min(RECENT_WEEKS, n_pre // 2)


def ratio_fits(
    post: np.ndarray,
    pre: np.ndarray,
    n1: int,
    *,
    recent: np.ndarray | None = None,
    alpha: float = 0.05,
) -> RatioFits:
    """The ratio DiD of ``P`` pilots at once (see the module docstring).

    ``post``, ``pre``: (P, n) unit means over the test and the pre-period, the ``n1``
    treated units first; ``recent``: (P, n) unit means over the last
    :func:`recent_weeks` pre weeks for the momentum adjustment (None: no adjustment);
    ``alpha``: the level at which the df make the t test exact (:func:`exact_df`).
    """
    post = np.asarray(post, dtype=float)
    pre = np.asarray(pre, dtype=float)
    n_p, n = post.shape
    n0 = n - n1
    treated = np.arange(n) < n1
    status = np.zeros(n_p, dtype=np.int8)
    if n1 < 2 or n0 < 2:
        status[:] = _ONE_UNIT
    a1, a0 = post[:, :n1].sum(axis=1), post[:, n1:].sum(axis=1)
    bad = (pre <= 0).any(axis=1) | (post < 0).any(axis=1) | (np.minimum(a1, a0) <= 0)
    if recent is not None:
        recent = np.asarray(recent, dtype=float)
        bad |= ~((post > 0) & (recent > 0)).all(axis=1)
    status[(status == _OK) & bad] = _NOT_IDENTIFIED
    ok = status == _OK
    # Harmless values where a pilot is not ok, so the batch computes without warnings.
    post = np.where(ok[:, None], post, 1.0)
    pre = np.where(ok[:, None], pre, 1.0)
    b1, b0 = pre[:, :n1].sum(axis=1), pre[:, n1:].sum(axis=1)
    x = np.zeros((n_p, n, 3 if recent is not None else 2))
    x[..., 0] = treated
    x[..., 1] = ~treated
    beta = np.zeros(n_p)
    if recent is not None:
        recent = np.where(ok[:, None], recent, 1.0)
        mom = np.log(recent / pre)
        x[..., 2] = mom - mom.mean(axis=1, keepdims=True)
        slope = _wls(x, pre, np.log(post / pre))[0]
        beta = np.where(ok, slope[:, 2], 0.0)
        beta = np.where(np.isfinite(beta), beta, 0.0)
        adjusted = post * np.exp(-beta[:, None] * x[..., 2])
    else:
        adjusted = post
    # arm growth ratios of (adjusted) sales, and each store's growth relative to its arm's
    r1 = adjusted[:, :n1].sum(axis=1) / b1
    r0 = adjusted[:, n1:].sum(axis=1) / b0
    rel = adjusted / (np.where(treated, r1[:, None], r0[:, None]) * pre)
    contrast = np.zeros((n_p, x.shape[-1]))
    contrast[:, 0], contrast[:, 1] = 1.0, -1.0
    _, resid, lin = _wls(x, pre, rel, contrast)  # without adjustment: resid = rel - 1
    # working model: Var(rel_i) ~ pre_i^-VARIANCE_POWER
    phi = (pre.mean(axis=1, keepdims=True) / pre) ** VARIANCE_POWER
    var, bm_df, degenerate_ = _cr2_working(x, pre, contrast, lin * resid, phi)
    status[ok & degenerate_] = _NOT_IDENTIFIED
    if x.shape[1] <= EXACT_DF_MAX_UNITS:
        df = exact_df(x, pre, contrast, phi, alpha, bm_df, status == _OK)
    else:  # the exact df's O(n^3) per fit does not scale to a whole chain of controls
        df = np.where(status == _OK, bm_df, np.nan)
    # psi is relative (sales over an arm's total): var ~ 0 when every store grows as its arm
    zero = ok & ~degenerate_ & (var <= 1e-24)
    status[zero] = _ZERO_VARIANCE
    good = status == _OK
    nan = np.nan
    return RatioFits(
        estimate=np.where(good, np.log(r1) - np.log(r0), nan),
        se=np.where(good, np.sqrt(np.where(good, var, 0.0)), nan),
        df=np.where(good, df, nan),
        log_ratio_treated=np.where(good, np.log(r1), nan),
        log_ratio_control=np.where(good, np.log(r0), nan),
        beta=np.where(good, beta, nan),
        status=status,
    )


def _wls(
    x: np.ndarray, w: np.ndarray, y: np.ndarray, contrast: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Batched WLS of ``y`` (P, n) on ``x`` (P, n, k) with weights ``w``: coefficients,
    residuals and the linear weights ``l = W X (X'WX)^-1 c`` of ``c' coef`` (or None)."""
    xtwx = np.einsum("pik,pi,pil->pkl", x, w, x)
    bread = _safe_inv(xtwx)
    coef = np.einsum("pkl,pil,pi,pi->pk", bread, x, w, y)
    resid = y - np.einsum("pik,pk->pi", x, coef)
    lin = None
    if contrast is not None:
        lin = w * np.einsum("pik,pkl,pl->pi", x, bread, contrast)
    return coef, resid, lin


def _safe_inv(m: np.ndarray) -> np.ndarray:
    """Batched inverse; singular matrices become NaN (their pilots are flagged)."""
    out = np.full_like(m, np.nan)
    ok = np.abs(np.linalg.det(m)) > _TOL * np.abs(m).max(axis=(1, 2)) ** m.shape[-1]
    if ok.any():
        out[ok] = np.linalg.inv(m[ok])
    return out


def _cr2_working(
    x: np.ndarray, w: np.ndarray, contrast: np.ndarray, psi: np.ndarray, phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HC2 variance and Bell-McCaffrey df of ``c' coef`` of a WLS, per pilot.

    ``x`` (P, n, k) the design, ``w`` (P, n) the WLS weights, ``contrast`` (P, k), ``psi``
    (P, n) the influence values ``l_i e_i`` (``l = W X B c``, ``B = (X'WX)^-1``, ``e`` the
    residuals) and ``phi`` (P, n) the working model's variances of the regressand.
    ``M = (I - H) Phi (I - H)'`` with ``H = X B X' W``; ``c_i = phi_i / M_ii`` (so that
    ``E V = sum l_i^2 phi_i = Var(c' coef)`` under the model: with ``phi = 1 / w`` this is
    the HC2 ``1 / (1 - h_ii)`` of the WLS); ``V = sum c_i psi_i^2``;
    ``df = (tr DM)^2 / tr(DMDM)``, ``D = diag(l^2 c)``. ``M = Phi + U C U'`` with
    ``U = [X, Phi W X B]`` and ``C = [[B X'W Phi W X B, -I], [-I, 0]]`` is of low rank, so
    every trace is O(n k^2). Returns ``(V, df, degenerate)``; degenerate where ``M_ii``
    vanishes for a unit with weight (it carries all its arm's weight: nothing estimates
    its noise) or ``X'WX`` is singular. These Bell-McCaffrey df only bracket the search of
    :func:`exact_df` (they are conservative for an arm of a few unequal stores).
    """
    k = x.shape[-1]
    bread = _safe_inv(np.einsum("pik,pi,pil->pkl", x, w, x))
    f = w[..., None] * np.einsum("pik,pkl->pil", x, bread)  # W X B
    lin = np.einsum("pik,pk->pi", f, contrast)
    fp = phi[..., None] * f  # Phi W X B
    h = np.einsum("pik,pik->pi", x, fp)  # (H Phi)_ii
    g = np.einsum("pik,pil->pkl", f, fp)  # B X' W Phi W X B
    m = phi - 2.0 * h + np.einsum("pik,pkl,pil->pi", x, g, x)
    scale = np.abs(lin).max(axis=1, keepdims=True)
    weighted = np.abs(lin) > 1e-9 * scale
    singular = ~np.isfinite(bread).all(axis=(1, 2))
    small = m <= 1e-9 * phi
    degenerate_ = singular | (small & weighted).any(axis=1)
    c = np.where(small, 0.0, phi / np.where(small, 1.0, m))
    var = np.einsum("pi,pi,pi->p", c, psi, psi)
    d = lin * lin * c
    u = np.concatenate([x, fp], axis=-1)
    cmat = np.zeros((len(x), 2 * k, 2 * k))
    cmat[:, :k, :k] = g
    cmat[:, :k, k:] = cmat[:, k:, :k] = -np.eye(k)
    n_diag = np.einsum("pia,pab,pib->pi", u, cmat, u)
    s = np.einsum("pia,pi,pib->pab", u, d, u)
    cs = cmat @ s
    tr1 = np.einsum("pi,pi->p", d, m)
    tr2 = (
        np.einsum("pi,pi,pi,pi->p", d, d, phi, phi)
        + 2.0 * np.einsum("pi,pi,pi,pi->p", d, d, phi, n_diag)
        + np.einsum("pab,pba->p", cs, cs)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        df = tr1 * tr1 / tr2
    return var, df, degenerate_ | ~np.isfinite(df)


def exact_df(
    x: np.ndarray,
    w: np.ndarray,
    contrast: np.ndarray,
    phi: np.ndarray,
    alpha: float,
    guess: np.ndarray,
    ok: np.ndarray,
) -> np.ndarray:
    """Degrees of freedom of the exact level-``alpha`` t test under the working model.

    Under the working model (independent normal regressands with variances ``phi``), the
    studentized contrast ``T = c' coef / sqrt(V)`` has the law of ``a'z / sqrt(z'Az)``,
    ``z ~ N(0, I)``, with ``a = Phi^1/2 l`` and ``A = S'DS``, ``S = (I - H) Phi^1/2``,
    ``D = diag(l^2 c)`` (see :func:`_cr2_working`). Its two-sided tail
    ``P(|T| > q) = P((a'z)^2 - q^2 z'Az > 0)`` is computed exactly by Imhof's integral
    (:func:`tail_probability`, on the eigenvalues of ``A`` and ``a`` in their basis), the
    critical value ``q`` with tail ``alpha`` by the Illinois method, and the df returned
    are those of the Student t with that critical value (``scipy.special.stdtridf``):
    the t test with these df rejects exactly when the exact test does. ``inf`` when
    ``q`` is at or below the normal quantile. ``guess`` (the Bell-McCaffrey df) brackets
    the search. NaN where not ``ok``.
    """
    from scipy import special

    n_p, n = w.shape
    out = np.full(n_p, np.nan)
    rows = np.flatnonzero(ok)
    z = float(special.ndtri(1.0 - alpha / 2.0))
    chunk = max(1, 2_000_000 // (n * n))
    for start in range(0, len(rows), chunk):
        j = rows[start : start + chunk]
        lam, b = _working_law(x[j], w[j], contrast[j], phi[j])
        g = np.where(np.isfinite(guess[j]) & (guess[j] > 0), guess[j], 1.0)
        hi = np.log(special.stdtrit(np.maximum(g, 0.2), 1.0 - alpha / 2.0)) + 0.5
        lo = np.full(len(j), math.log(z))
        f_lo = tail_probability(lam, b, np.exp(lo)) - alpha
        f_hi = tail_probability(lam, b, np.exp(hi)) - alpha
        for _ in range(60):  # widen the bracket where the exact test is more liberal
            up = f_hi > 0
            if not up.any():
                break
            hi = np.where(up, hi + 1.0, hi)
            f_hi[up] = tail_probability(lam[up], b[up], np.exp(hi[up])) - alpha
        q = _illinois(lam, b, alpha, lo, hi, f_lo, f_hi)
        df = np.full(len(j), np.inf)
        above = (f_lo > 0) & (q > z * (1.0 + 1e-12))
        df[above] = special.stdtridf(1.0 - alpha / 2.0, q[above])
        out[j] = df
    return out


def _working_law(
    x: np.ndarray, w: np.ndarray, contrast: np.ndarray, phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``lam`` (P, n) of ``A`` and ``b = U'a`` in their basis, scaled so that
    ``Var(a'z) = |b|^2 = 1`` (see :func:`exact_df`)."""
    bread = _safe_inv(np.einsum("pik,pi,pil->pkl", x, w, x))
    f = w[..., None] * np.einsum("pik,pkl->pil", x, bread)  # W X B
    lin = np.einsum("pik,pk->pi", f, contrast)
    resid = np.eye(x.shape[1])[None] - x @ f.transpose(0, 2, 1)  # I - H
    h = np.einsum("pik,pik->pi", x, phi[..., None] * f)
    g = np.einsum("pik,pil->pkl", f, phi[..., None] * f)
    m = phi - 2.0 * h + np.einsum("pik,pkl,pil->pi", x, g, x)  # diag (I-H) Phi (I-H)'
    small = m <= 1e-9 * phi
    d = np.where(small, 0.0, lin * lin * phi / np.where(small, 1.0, m))
    root = np.sqrt(phi)
    s = resid * root[:, None, :]
    a = lin * root
    scale = np.einsum("pi,pi->p", a, a)
    mat = (s.transpose(0, 2, 1) * d[:, None, :]) @ s / scale[:, None, None]
    lam, vec = np.linalg.eigh(mat)
    b = np.einsum("pij,pi->pj", vec, a) / np.sqrt(scale)[:, None]
    return np.maximum(lam, 0.0), b


_GRID = np.linspace(-16.0, 16.0, 161)


def tail_probability(lam: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``P((b'w)^2 > q^2 sum_j lam_j w_j^2)``, ``w ~ N(0, I)``, per row (Imhof 1961).

    ``lam`` (P, n) >= 0, ``b`` (P, n), ``q`` (P,). With ``K = bb' - q^2 diag(lam)``,
    ``det(I - iuK) = prod_j (1 + iu q^2 lam_j) s(u)``, ``s(u) = 1 - iu sum_j b_j^2 /
    (1 + iu q^2 lam_j)`` (matrix determinant lemma), whose imaginary part is negative for
    ``u > 0``, so the phase is continuous without unwrapping: ``P(Q > 0) = 1/2 + (1/pi)
    int_0^inf sin(theta(u)) / (u rho(u)) du``, ``theta = -(sum_j arctan(u q^2 lam_j) +
    arg s) / 2``, ``rho = |det|^(1/2)``, integrated in ``log u`` by the trapezoidal rule
    (the integrand is smooth and vanishes at both ends of the grid).
    """
    mu = (q * q)[:, None] * lam
    top = np.maximum(mu.max(axis=1), np.einsum("pi,pi->p", b, b))
    u = np.exp(_GRID)[None, :, None] / top[:, None, None]  # (P, G, 1)
    um = u * mu[:, None, :]
    den = 1.0 + um * um
    b2 = (b * b)[:, None, :]
    re = 1.0 - u[..., 0] * np.sum(b2 * um / den, axis=-1)
    im = -np.abs(u[..., 0] * np.sum(b2 / den, axis=-1))
    theta = -0.5 * (np.sum(np.arctan(um), axis=-1) + np.arctan2(im, re))
    log_rho = 0.25 * np.sum(np.log1p(um * um), axis=-1) + 0.25 * np.log(re * re + im * im)
    integrand = np.sin(theta) * np.exp(-log_rho)
    step = _GRID[1] - _GRID[0]
    total = step * (integrand.sum(axis=1) - 0.5 * (integrand[:, 0] + integrand[:, -1]))
    return np.clip(0.5 + total / math.pi, 0.0, 1.0)


def _illinois(
    lam: np.ndarray,
    b: np.ndarray,
    alpha: float,
    lo: np.ndarray,
    hi: np.ndarray,
    f_lo: np.ndarray,
    f_hi: np.ndarray,
) -> np.ndarray:
    """``q = exp(x)`` with ``tail_probability(q) = alpha``, ``x`` in the bracket
    ``[lo, hi]`` (f = tail - alpha decreasing; rows with ``f_lo <= 0`` return ``lo``)."""
    lo, hi, f_lo, f_hi = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    x = lo.copy()
    live = f_lo > 0
    side = np.zeros(len(lo), dtype=np.int8)
    for _ in range(40):
        if not live.any():
            break
        k = np.flatnonzero(live)
        xk = (lo[k] * f_hi[k] - hi[k] * f_lo[k]) / (f_hi[k] - f_lo[k])
        fk = tail_probability(lam[k], b[k], np.exp(xk)) - alpha
        x[k] = xk
        pos = fk > 0
        # Illinois: halve the retained end's value when the same end is kept twice
        kp, kn = k[pos], k[~pos]
        lo[kp], f_lo[kp] = xk[pos], fk[pos]
        f_hi[kp] = np.where(side[kp] == 1, f_hi[kp] / 2.0, f_hi[kp])
        hi[kn], f_hi[kn] = xk[~pos], fk[~pos]
        f_lo[kn] = np.where(side[kn] == -1, f_lo[kn] / 2.0, f_lo[kn])
        side[kp], side[kn] = 1, -1
        live[k] = (np.abs(fk) > 1e-9) & (hi[k] - lo[k] > 1e-9)
    return np.exp(x)


def _check_adjust(adjust: str) -> None:
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust == {adjust!r}, must be one of {list(ADJUSTMENTS)}.")


def _with_extras(comparison: Comparison, extras: dict[str, Any]) -> Comparison:
    import dataclasses

    return dataclasses.replace(comparison, extras={**comparison.extras, **extras})
