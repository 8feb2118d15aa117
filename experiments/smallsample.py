"""Small-sample cluster-robust inference for least squares with absorbed fixed effects.

The estimators of :mod:`loyalty_pilot.experiments.did` reduce a balanced panel regression
to a small design ``x[g, t, k]`` (cluster ``g``, row ``t`` within the cluster, regressor
``k``) that is already residualised on the absorbed fixed effects (Frisch-Waugh-Lovell).
The full design's annihilator then has the closed form

    M[g, h] = (delta_gh - kappa) * P - x_g (x'x)^-1 x_h'

where ``P`` is the projection that the absorbed effects leave inside a cluster (the
within-cluster centring ``I - J/T`` for unit and period effects in a balanced panel, with
``kappa = 1/G``; ``P = 1`` and ``kappa = 0`` for a cross-section with the intercept kept
in ``x``). Every quantity below is computed from that form, with the leverage of the
absorbed effects included, and is equal to the textbook computation on the full dummy
design (pinned by a brute-force test):

* CR2 (Bell & McCaffrey 2002): ``A_g = (I - H_gg)^(+1/2)``, the symmetric square root of
  the Moore-Penrose inverse (eigenvalues below 1e-12 set to 0, as clubSandwich does:
  ``I - H_gg`` is singular once unit effects are absorbed).
* Satterthwaite / Bell-McCaffrey degrees of freedom for a contrast ``c`` under the working
  model ``Var(e) = sigma^2 I`` (Imbens & Kolesar 2016; Pustejovsky & Tipton 2018):
  ``df = (tr G)^2 / ||G||_F^2`` with ``G[g, h] = p_g' M[g, h] p_h`` and
  ``p_g = A_g x_g (x'x)^-1 c``.
* The approximate Hotelling T^2 test "HTZ" of Pustejovsky & Tipton (2018), the default of
  clubSandwich's ``Wald_test``: ``F = (nu - q + 1) / (nu q) * W ~ F(q, nu - q + 1)``.
* A wild cluster bootstrap-t with the null imposed (WCR), studentised by CR2, and its
  interval by test inversion (Cameron, Gelbach & Miller 2008; Roodman et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EIG_TOL = 1e-12
_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


@dataclass(frozen=True, eq=False)
class ClusteredOLS:
    """OLS of ``y[g, t]`` on ``x[g, t, k]`` (both residualised on absorbed effects).

    ``bread`` is ``(x'x)^-1``, ``resid`` the residuals ``y - x coef`` (equal to the full
    regression's), ``adj_x[g] = A_g x_g`` the CR2-adjusted design and ``kappa`` the
    cross-cluster term of the absorbed effects' hat matrix (see the module docstring).
    """

    x: np.ndarray
    y: np.ndarray
    coef: np.ndarray
    bread: np.ndarray
    resid: np.ndarray
    adj_x: np.ndarray
    kappa: float

    @property
    def n_clusters(self) -> int:
        return int(self.x.shape[0])

    def vcov_cr2(self) -> np.ndarray:
        """CR2 covariance ``B (sum_g x_g' A_g e_g e_g' A_g x_g) B``."""
        scores = np.einsum("gtk,gt->gk", self.adj_x, self.resid)
        return self.bread @ (scores.T @ scores) @ self.bread

    def vcov_cr1(self, n_obs: int, n_params: int) -> np.ndarray:
        """Stata's CR1: ``G/(G-1) (n-1)/(n-k)`` times the CR0 sandwich (statsmodels)."""
        g = self.n_clusters
        scores = np.einsum("gtk,gt->gk", self.x, self.resid)
        factor = g / (g - 1) * (n_obs - 1) / (n_obs - n_params)
        return factor * (self.bread @ (scores.T @ scores) @ self.bread)

    def bm_df(self, contrasts: np.ndarray) -> np.ndarray:
        """Bell-McCaffrey degrees of freedom for each row ``c`` of ``contrasts`` (m, K)."""
        pm = self.adj_x @ (self.bread @ np.atleast_2d(contrasts).T)  # (G, T, m)
        pp = np.einsum("gtm,htm->mgh", pm, pm)
        z = np.einsum("gtk,gtm->gkm", self.x, pm)
        bz = np.einsum("kl,glm->gkm", self.bread, z)
        gram = pp * (np.eye(self.n_clusters) - self.kappa) - np.einsum("gkm,hkm->mgh", z, bz)
        trace = np.einsum("mgg->m", gram)
        with np.errstate(divide="ignore", invalid="ignore"):
            return trace**2 / np.einsum("mgh,mgh->m", gram, gram)

    def hotelling(self, constraints: np.ndarray) -> dict[str, float]:
        """HTZ test of ``C coef = 0`` with the CR2 covariance (Pustejovsky & Tipton 2018).

        Returns ``wald`` (W), ``F``, ``df1`` (q), ``df2`` (nu - q + 1), ``nu`` and
        ``p_value`` (NaN when ``df2 <= 0``).
        """
        cmat = np.atleast_2d(constraints)
        q = cmat.shape[0]
        estimate = cmat @ self.coef
        vcov = cmat @ self.vcov_cr2() @ cmat.T
        wald = float(estimate @ np.linalg.solve(vcov, estimate))
        pm = self.adj_x @ (self.bread @ cmat.T)  # (G, T, q)
        omega = _gram(self, pm, diagonal_only=True)
        pm = pm @ sym_power(omega, -0.5)
        bt = _gram(self, pm)  # (G, q, G, q), normalised so that sum_g bt[g, :, g, :] = I
        total = np.einsum("gsht,gths->", bt, bt) + np.sum(np.einsum("gshs->gh", bt) ** 2)
        nu = q * (q + 1) / total
        df2 = nu - q + 1
        f_stat = (nu - q + 1) / (nu * q) * wald
        p_value = math.nan
        if df2 > 0:
            from scipy import stats

            p_value = float(stats.f.sf(f_stat, q, df2))
        return {"wald": wald, "F": f_stat, "df1": q, "df2": df2, "nu": nu, "p_value": p_value}


def fit_clustered(x: np.ndarray, y: np.ndarray, kappa: float) -> ClusteredOLS:
    """Least squares and CR2 adjustment matrices for a residualised clustered design.

    ``x`` is (G, T, K), ``y`` (G, T); each ``x_g`` must lie in the range of the absorbed
    effects' within-cluster projection (true after the within transformation).
    """
    xtx = np.einsum("gtk,gtl->kl", x, x)
    bread = np.linalg.inv(xtx)
    coef = bread @ np.einsum("gtk,gt->k", x, y)
    resid = y - x @ coef
    return ClusteredOLS(x, y, coef, bread, resid, _cr2_adjusted(x, bread, kappa), kappa)


def sym_power(matrix: np.ndarray, power: float) -> np.ndarray:
    """Symmetric matrix power through eigenvalues; eigenvalues <= 1e-12 map to 0."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > _EIG_TOL
    powered = np.where(keep, np.where(keep, values, 1.0) ** power, 0.0)
    return (vectors * powered[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def _cr2_adjusted(x: np.ndarray, bread: np.ndarray, kappa: float) -> np.ndarray:
    """``A_g x_g`` for every cluster, batched.

    Within the range of the absorbed projection, ``I - H_gg = (1 - kappa) I - x_g B x_g'``;
    with ``Q`` an orthonormal basis of the columns of ``x_g`` this is
    ``(1 - kappa)(I - QQ') + Q C Q'`` with ``C = (1 - kappa) I - Q' x_g B x_g' Q``, so
    ``A_g x_g = Q C^(+1/2) Q' x_g``: only small (K x K) eigenproblems are needed.
    """
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # u: (G, T, r)
    tol = _EIG_TOL * np.maximum(s[..., :1], 1.0)
    q = u * (s > tol)[..., None, :]
    qx = np.swapaxes(q, -1, -2) @ x  # (G, r, K)
    r = q.shape[-1]
    c = (1.0 - kappa) * np.eye(r) - qx @ bread @ np.swapaxes(qx, -1, -2)
    return q @ (sym_power(c, -0.5) @ qx)


def _gram(fit: ClusteredOLS, pm: np.ndarray, diagonal_only: bool = False) -> np.ndarray:
    """``G[g, s, h, t] = p_gs' M[g, h] p_ht`` for ``pm`` (G, T, q) in the range of ``P``.

    With ``diagonal_only`` returns ``sum_g G[g, :, g, :]`` (the expectation of the CR2
    covariance of the contrasts under the working model).
    """
    n_g, _, q = pm.shape
    z = np.einsum("gtk,gts->gks", fit.x, pm)  # x_g' p_g
    if diagonal_only:
        pp = np.einsum("gts,gtu->su", pm, pm)
        return (1.0 - fit.kappa) * pp - np.einsum("gks,kl,glu->su", z, fit.bread, z)
    flat = np.swapaxes(pm, 1, 2).reshape(n_g * q, -1)
    zflat = np.swapaxes(z, 1, 2).reshape(n_g * q, -1)
    pp = (flat @ flat.T).reshape(n_g, q, n_g, q)
    gram = -fit.kappa * pp - (zflat @ fit.bread @ zflat.T).reshape(n_g, q, n_g, q)
    idx = np.arange(n_g)
    gram[idx, :, idx, :] += pp[idx, :, idx, :]
    return gram


def wild_bootstrap(
    fit: ClusteredOLS,
    y_restricted: np.ndarray,
    *,
    alpha: float,
    n_boot: int,
    rng: np.random.Generator,
    se: float,
    t_crit: float,
) -> dict[str, float | str]:
    """Wild cluster bootstrap-t (WCR) for the single coefficient of ``fit`` (K = 1).

    ``y_restricted`` is the outcome residualised on the absorbed effects only. For a null
    ``b0`` the bootstrap outcome is ``b0 x + v_g (y_restricted - b0 x)`` with one weight
    ``v_g`` per cluster: Rademacher, or Webb's six-point distribution when there are
    fewer than 12 clusters (Webb 2023). Each draw is studentised with its own CR2 standard
    error. Everything is linear in ``b0``, so the p-value at any null costs O(n_boot):
    the interval is the set of nulls not rejected, found by bisection on each side.
    """
    n_g = fit.n_clusters
    if n_g < 12:
        weights = rng.choice(_WEBB, size=(n_boot, n_g))
        kind = "webb"
    else:
        weights = rng.integers(0, 2, size=(n_boot, n_g)) * 2.0 - 1.0
        kind = "rademacher"
    x = fit.x[..., 0]
    ax = fit.adj_x[..., 0]
    b = float(fit.bread[0, 0])
    axx = np.einsum("gt,gt->g", ax, x)
    cross = np.eye(n_g) - fit.kappa

    def parts(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # CR2 score of cluster g in the bootstrap sample: sum_h v_h ax_g' M[g, h] r_h
        xr = np.einsum("gt,gt->g", x, r)
        kmat = cross * (ax @ r.T) - np.outer(axx, b * xr)
        return weights @ kmat.T, weights @ (b * xr)

    s0, n0 = parts(y_restricted)
    s1, n1 = parts(x)
    qa = np.einsum("bg,bg->b", s0, s0)
    qb = np.einsum("bg,bg->b", s0, s1)
    qc = np.einsum("bg,bg->b", s1, s1)
    estimate = float(fit.coef[0])

    def p_at(null: float) -> float:
        num = n0 - null * n1
        var = np.maximum(b * b * (qa - 2.0 * null * qb + null * null * qc), 1e-300)
        t_obs = (estimate - null) / se
        return float(np.mean(num * num / var >= t_obs * t_obs))

    def bound(direction: float) -> float:
        inner, step = estimate, max(t_crit * se, 1e-12 * max(abs(estimate), 1.0))
        outer = estimate + direction * step
        for _ in range(60):
            if p_at(outer) <= alpha:
                break
            inner, outer = outer, estimate + 2.0 * (outer - estimate)
        else:
            return direction * math.inf
        for _ in range(100):
            mid = 0.5 * (inner + outer)
            if p_at(mid) > alpha:
                inner = mid
            else:
                outer = mid
            if abs(outer - inner) <= 1e-9 * se:
                break
        return 0.5 * (inner + outer)

    return {
        "p_value": p_at(0.0),
        "ci_low": bound(-1.0),
        "ci_high": bound(1.0),
        "boot_weights": kind,
    }
