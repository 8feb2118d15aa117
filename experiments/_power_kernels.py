"""Vectorized store-level estimators over many placebo pilots, and the exact MDE search.

Every kernel takes the unit-level window means of ``P`` placebo pilots at once, as arrays
``(P, n)`` whose first ``n1`` columns are the treated units and the rest the controls, and
returns the same estimate, standard error, degrees of freedom and p-value as the
estimator of :mod:`loyalty_pilot.experiments.did` or
:mod:`loyalty_pilot.experiments.randomization` called on each placebo's panel (pinned by
``tests/experiments/test_power.py`` to 1e-9):

* :func:`did_placebos`: on a balanced panel with one treated and one control arm the
  two-way fixed effects DiD coefficient is the difference in arm means of
  ``d_i = mean(post_i) - mean(pre_i)``, its CR2 variance (clustered by unit) is the
  unequal-variance two-sample formula ``s1^2/n1 + s0^2/n0`` on ``d_i`` and its
  Bell-McCaffrey degrees of freedom depend on ``n1, n0`` only (``2 (n - 1)`` for equal
  arms): the regression of ``d`` on an intercept and the arm with HC2 errors.
* :func:`ancova_placebos`: ``post_i ~ 1 + treated_i + pre_i``, HC2 and Bell-McCaffrey df,
  one small (n x 3) regression per placebo, batched.
* :func:`ri_placebos`: randomization inference with the DiD statistic, the observed
  assignment plus the draws ``W`` of each placebo, one matrix product for all of them.
* the ratio DiD on total sales: :func:`~loyalty_pilot.experiments.ratio.ratio_fits`, itself
  batched over pilots (window means of the level history; a multiplicative effect moves
  its log-ratio estimate by ``log(1 + delta)`` exactly, se and df unchanged).

The arms may differ in size (``controls="all"``: every unit not treated is a control);
``did_placebos``, ``ancova_placebos`` and the ratio take any ``n - n1``, randomization
inference equal arms only.

An injected effect moves the outcome linearly: every treated post mean gains ``x g_i``
(``g_i = 1`` for ``x = log(1 + delta)`` on the log scale, ``g_i = post_i`` for ``x = delta``
on the level scale). The estimate is then ``a + b x`` and the robust variance
``v0 + 2 v1 x + v2 x^2`` with the degrees of freedom unchanged (they depend on the design
only), so a placebo rejects at ``x`` iff the quadratic
``(a + b x)^2 - t_crit^2 (v0 + 2 v1 x + v2 x^2) >= 0``: its rejection set is one or two
intervals, found from the roots, and the power curve over all placebos is a step function
whose steps are known exactly (:class:`Rejections`). No refit per effect size.

The placebos themselves (:class:`History`: cumulative sums for O(1) window means;
:class:`Placebos`: fake starts and assignments, grouped by start) are drawn here too;
:mod:`loyalty_pilot.experiments.power` holds the public API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_EIG_TOL = 1e-12  # as experiments.smallsample: (1 - h_ii) below this is treated as 0
_RTOL = 1e-9  # as experiments.randomization: ties |T*| == |T_obs| within this tolerance
Draw = Callable[[np.random.Generator, int, int, int], np.ndarray]
_RI_CHUNK = 2_000_000  # placebos x draws x units held at once by randomization inference


@dataclass(frozen=True, eq=False)
class PlaceboFits:
    """One estimator on ``P`` placebos at zero effect, and how each moves with an effect.

    ``estimate, se, df, p_value``: arrays (P,), NaN where the placebo is degenerate (zero
    variance). ``slope, var1, var2``: ``estimate(x) = estimate + slope x`` and
    ``se(x)^2 = se^2 + 2 var1 x + var2 x^2`` (None for randomization inference).
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    slope: np.ndarray | None = None
    var1: np.ndarray | None = None
    var2: np.ndarray | None = None


def welch_bm_df(n1: int, n0: int) -> float:
    """Bell-McCaffrey df of the HC2 two-sample contrast (working model: equal variances).

    ``(1/n1 + 1/n0)^2 / (1/(n1^2 (n1 - 1)) + 1/(n0^2 (n0 - 1)))``; ``2 (n - 1)`` when
    ``n1 == n0 == n``. NaN when an arm has fewer than two units.
    """
    if n1 < 2 or n0 < 2:
        return math.nan
    return (1 / n1 + 1 / n0) ** 2 / (1 / (n1 * n1 * (n1 - 1)) + 1 / (n0 * n0 * (n0 - 1)))


def t_p_value(estimate: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided t p-value ``2 P(T_df > |estimate| / se)``; NaN where ``se`` is not > 0."""
    from scipy import stats

    ok = np.isfinite(se) & (se > 0)
    t = np.abs(estimate) / np.where(ok, se, 1.0)
    return np.where(ok, 2.0 * stats.t.sf(t, df), np.nan)


def did_placebos(d: np.ndarray, n1: int, g: np.ndarray | None = None) -> PlaceboFits:
    """Two-way FE DiD with CR2 errors and Bell-McCaffrey df, for every row of ``d``.

    ``d``: (P, n) unit contrasts ``mean(post) - mean(pre)``, treated units first. ``g``:
    (P, n1) how the treated contrasts move per unit of effect (None: by 1, the log scale).
    """
    d1, d0 = d[:, :n1], d[:, n1:]
    n0 = d0.shape[1]
    estimate = d1.mean(axis=1) - d0.mean(axis=1)
    r1 = d1 - d1.mean(axis=1, keepdims=True)
    r0 = d0 - d0.mean(axis=1, keepdims=True)
    var = np.einsum("pi,pi->p", r1, r1) / (n1 * (n1 - 1)) + np.einsum("pi,pi->p", r0, r0) / (
        n0 * (n0 - 1)
    )
    scale = np.abs(d).max(axis=1)
    degenerate = (np.abs(r1).max(axis=1) <= 1e-12 * scale) & (
        np.abs(r0).max(axis=1) <= 1e-12 * scale
    )
    se = np.where(degenerate, np.nan, np.sqrt(var))
    df = np.full(len(d), welch_bm_df(n1, n0))
    if g is None:
        slope = np.ones(len(d))
        var1 = var2 = np.zeros(len(d))
    else:
        gc = g - g.mean(axis=1, keepdims=True)
        slope = g.mean(axis=1)
        var1 = np.einsum("pi,pi->p", r1, gc) / (n1 * (n1 - 1))
        var2 = np.einsum("pi,pi->p", gc, gc) / (n1 * (n1 - 1))
    return PlaceboFits(estimate, se, df, t_p_value(estimate, se, df), slope, var1, var2)


def ancova_placebos(
    post: np.ndarray, pre: np.ndarray, n1: int, g: np.ndarray | None = None
) -> PlaceboFits:
    """ANCOVA ``post ~ 1 + treated + pre`` with HC2 and Bell-McCaffrey df, per row.

    ``post, pre``: (P, n) unit means, treated first. ``g``: (P, n) how the post means move
    per unit of effect (None: ``treated``, the log scale).
    """
    n_p, n = post.shape
    w = np.zeros(n)
    w[:n1] = 1.0
    x = np.empty((n_p, n, 3))
    x[..., 0] = 1.0
    x[..., 1] = w
    x[..., 2] = pre - pre.mean(axis=1, keepdims=True)  # same column space, better conditioned
    bread = np.linalg.inv(np.einsum("pik,pil->pkl", x, x))
    row = np.einsum("pik,pk->pi", x, bread[:, :, 1])  # (B x_i)[1]: the coefficient's weights
    hat = np.einsum("pik,pkl,pjl->pij", x, bread, x)
    lev = 1.0 - np.einsum("pii->pi", hat)
    ok = lev > _EIG_TOL
    adj = np.where(ok, row / np.sqrt(np.where(ok, lev, 1.0)), 0.0)  # A_i (B x_i)[1]
    estimate = np.einsum("pi,pi->p", row, post)
    resid = post - np.einsum("pik,pk->pi", x, np.einsum("pkl,pil,pi->pk", bread, x, post))
    var = np.einsum("pi,pi->p", adj * adj, resid * resid)
    gram = adj[:, :, None] * adj[:, None, :] * (np.eye(n) - hat)
    df = np.einsum("pii->p", gram) ** 2 / np.einsum("pij,pij->p", gram, gram)
    scale = np.maximum(np.abs(post).max(axis=1), np.abs(pre).max(axis=1))
    degenerate = np.abs(resid).max(axis=1) <= 1e-12 * scale
    se = np.where(degenerate, np.nan, np.sqrt(var))
    if g is None:  # the treated column is in the design: residuals do not move
        slope = np.ones(n_p)
        var1 = var2 = np.zeros(n_p)
    else:
        slope = np.einsum("pi,pi->p", row, g)
        mg = g - np.einsum("pij,pj->pi", hat, g)
        var1 = np.einsum("pi,pi->p", adj * adj, resid * mg)
        var2 = np.einsum("pi,pi->p", adj * adj, mg * mg)
    return PlaceboFits(estimate, se, df, t_p_value(estimate, se, df), slope, var1, var2)


@dataclass(frozen=True, eq=False)
class RandomizationFits:
    """RI with the DiD statistic on ``P`` placebos: ``T_r(x) = a[:, r] + x b[:, r]``.

    Column 0 is the observed assignment; the p-value at effect ``x`` is the share of the
    assignments with ``|T_r(x)| >= |T_0(x)|`` (ties within a relative 1e-9 count), as in
    :func:`~loyalty_pilot.experiments.randomization.randomization_inference`: over the
    observed and the sampled columns, or (``enumerated``) over every column but the first,
    the enumeration already holding the observed assignment.
    """

    a: np.ndarray
    b: np.ndarray
    enumerated: bool = False

    @property
    def estimate(self) -> np.ndarray:
        return self.a[:, 0]

    def p_value(self, x: float = 0.0) -> np.ndarray:
        """RI p-value of every placebo with the effect ``x`` injected."""
        stats = np.abs(self.a + x * self.b)
        observed = stats[:, :1]
        tol = _RTOL * np.maximum(stats.max(axis=1, keepdims=True), observed)
        counted = stats[:, 1:] if self.enumerated else stats
        return np.mean(counted >= observed - tol, axis=1)


def ri_placebos(
    d: np.ndarray,
    n1: int,
    draws: np.ndarray,
    g: np.ndarray | None = None,
    *,
    enumerated: bool = False,
) -> RandomizationFits:
    """Randomization inference for the DiD of unit means, every placebo at once.

    ``d``: (P, n) unit contrasts, treated first. ``draws``: 0/1 assignments of the ``n``
    pilot units, (R, n) shared by every placebo or (P, R, n) one set per placebo: with
    ``enumerated`` every possible assignment, else sampled ones whose row 0 is replaced by
    the observed assignment (``n1`` ones, then zeros). ``g``: (P, n1) how the treated
    contrasts move per unit of effect (None: by 1, the log scale).
    """
    n_p, n = d.shape
    scale = 1.0 / n1 + 1.0 / (n - n1)
    dc = d - d.mean(axis=1, keepdims=True)
    shift = np.zeros((n_p, n))
    shift[:, :n1] = 1.0 if g is None else g
    sc = shift - shift.mean(axis=1, keepdims=True)
    w_obs = np.zeros(n)
    w_obs[:n1] = 1.0
    if draws.ndim == 2:
        a, b = dc @ draws.T, sc @ draws.T
    else:
        a, b = np.einsum("pn,prn->pr", dc, draws), np.einsum("pn,prn->pr", sc, draws)
    a0, b0 = dc @ w_obs, sc @ w_obs
    if enumerated:
        a, b = np.column_stack([a0, a]), np.column_stack([b0, b])
    else:
        a[:, 0], b[:, 0] = a0, b0
    return RandomizationFits(scale * a, scale * b, enumerated)


class Rejections:
    """Where each placebo's t-test rejects, for effects ``x >= 0``, and the power curve.

    Placebo ``j`` rejects at ``x`` iff ``q_j(x) = (a + b x)^2 - t^2 (v0 + 2 v1 x + v2 x^2)
    >= 0`` (``|t-statistic| >= t_crit``, i.e. ``p <= alpha``): one or two closed intervals
    of ``[0, inf)``, from the roots. ``count(x)`` is the number of placebos rejecting at
    ``x``; it can only rise at an interval's lower end, so the smallest ``x`` with
    ``count(x) >= k`` is found among those ends exactly.
    """

    def __init__(self, fits: PlaceboFits, alpha: float) -> None:
        from scipy import stats

        valid = np.isfinite(fits.se) & (fits.se > 0) & np.isfinite(fits.df)
        tc = stats.t.ppf(1.0 - alpha / 2.0, np.where(valid, fits.df, 1.0))
        t2 = tc * tc
        a, b = fits.estimate, fits.slope
        c2 = b * b - t2 * fits.var2
        c1 = 2.0 * (a * b - t2 * fits.var1)
        c0 = a * a - t2 * fits.se**2
        self.n = len(a)
        lows, highs = [], []

        def add(mask: np.ndarray, low: np.ndarray | float, high: np.ndarray | float) -> None:
            mask = mask & valid
            lows.append(np.broadcast_to(low, a.shape)[mask])
            highs.append(np.broadcast_to(high, a.shape)[mask])

        eps2 = 1e-12 * (b * b + t2 * np.abs(fits.var2))
        up, down = c2 > eps2, c2 < -eps2
        flat = ~up & ~down
        disc = c1 * c1 - 4.0 * c2 * c0
        with np.errstate(divide="ignore", invalid="ignore"):
            sq = np.sqrt(np.maximum(disc, 0.0))
            q = -0.5 * (c1 + np.where(c1 >= 0, sq, -sq))
            ra, rb = q / c2, c0 / q
            r1, r2 = np.fmin(ra, rb), np.fmax(ra, rb)
            root = -c0 / c1
        cross = disc > 0
        # upward parabola: rejects outside (r1, r2), everywhere when it does not cross 0
        add(up & ~cross, 0.0, np.inf)
        add(up & cross & (r1 >= 0), 0.0, r1)
        add(up & cross, np.maximum(r2, 0.0), np.inf)
        # downward parabola: rejects on [r1, r2]
        add(down & cross & (r2 >= 0), np.maximum(r1, 0.0), r2)
        # (nearly) linear: c1 x + c0 >= 0
        eps1 = 1e-12 * (np.abs(a * b) + t2 * np.abs(fits.var1)) + np.finfo(float).tiny
        rising, falling = flat & (c1 > eps1), flat & (c1 < -eps1)
        add(rising, np.maximum(root, 0.0), np.inf)
        add(falling & (root >= 0), 0.0, root)
        add(flat & ~rising & ~falling & (c0 >= 0), 0.0, np.inf)
        self.lows = np.sort(np.concatenate(lows))
        self.highs = np.sort(np.concatenate(highs))

    def count(self, x: float | np.ndarray) -> np.ndarray:
        """Placebos rejecting at effect ``x`` (closed intervals)."""
        return np.searchsorted(self.lows, x, side="right") - np.searchsorted(
            self.highs, x, side="left"
        )

    def power(self, x: float | np.ndarray) -> np.ndarray:
        return self.count(x) / self.n

    def smallest(self, target: float) -> float:
        """Smallest ``x >= 0`` with ``power(x) >= target``; inf when there is none."""
        need = math.ceil(target * self.n - 1e-9)
        candidates = self.lows
        hit = np.flatnonzero(self.count(candidates) >= need)
        return float(candidates[hit[0]]) if hit.size else math.inf


def ri_smallest(fits: RandomizationFits, alpha: float, target: float, guess: float) -> float:
    """Smallest ``x >= 0`` where the RI power reaches ``target``, by bisection.

    The RI power is a step function of ``x`` that is not exactly monotone; this finds the
    crossing bracketed from ``[0, guess * 2^k]`` to a relative 1e-6. inf when the power
    stays below ``target`` (e.g. too few assignments to reach a p-value of ``alpha``).
    """

    def power(x: float) -> float:
        return float(np.mean(fits.p_value(x) <= alpha))

    if power(0.0) >= target:
        return 0.0
    low, high = 0.0, max(guess, 1e-12)
    for _ in range(60):
        if power(high) >= target:
            break
        low, high = high, 2.0 * high
    else:
        return math.inf
    while high - low > 1e-6 * high:
        mid = 0.5 * (low + high)
        if power(mid) >= target:
            high = mid
        else:
            low = mid
    return high


class History:
    """``y`` on the estimator's scale, centred per unit, and its cumulative sums."""

    def __init__(self, values: np.ndarray) -> None:
        self.shape = values.shape
        self.centre = values.mean(axis=1)
        self.sums = np.zeros((values.shape[0], values.shape[1] + 1))
        np.cumsum(values - self.centre[:, None], axis=1, out=self.sums[:, 1:])

    def means(
        self, units: np.ndarray, starts: np.ndarray, pre: int, weeks: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Means over ``[s - pre, s)`` and ``[s, s + weeks)`` (broadcast units x starts)."""
        at = self.sums[units, starts]
        centre = self.centre[units]
        pre_mean = (at - self.sums[units, starts - pre]) / pre + centre
        post_mean = (self.sums[units, starts + weeks] - at) / weeks + centre
        return pre_mean, post_mean


@dataclass(frozen=True, eq=False)
class Placebos:
    """Placebo pilots: start (P,), units (P, per_arm + n_control) treated first, their
    window means (``recent_mean``: over the last ``recent`` pre weeks, or None)."""

    starts: np.ndarray
    units: np.ndarray
    pre_mean: np.ndarray
    post_mean: np.ndarray
    per_arm: int
    recent_mean: np.ndarray | None = None

    @classmethod
    def draw(
        cls,
        history: History,
        per_arm: int,
        weeks: int,
        pre: int,
        n_placebos: int,
        draw: Draw,
        rng: np.random.Generator,
        recent: int = 0,
    ) -> Placebos:
        """``n_placebos`` fake starts uniform on ``[pre, n_periods - weeks]``, assignments
        from ``draw`` (one call per distinct start), and the pilots' window means (over
        the last ``recent`` pre weeks too when ``recent > 0``)."""
        n_units, n_periods = history.shape
        starts = rng.integers(pre, n_periods - weeks + 1, size=n_placebos)
        units = assign(draw, rng, per_arm, starts, n_units)
        pre_mean, post_mean = history.means(units, starts[:, None], pre, weeks)
        recent_mean = None
        if recent > 0:
            recent_mean = history.means(units, starts[:, None], recent, 1)[0]
        return cls(starts, units, pre_mean, post_mean, per_arm, recent_mean)

    def fit(
        self,
        estimator: str,
        scale: str,
        rng: np.random.Generator,
        n_ri_draws: int,
        alpha: float = 0.05,
    ) -> PlaceboFits | RandomizationFits:
        """The estimator on every placebo; ``g``: how the outcome moves per unit of effect.
        ``alpha``: the level at which the ratio's df make its t test exact."""
        n1 = self.per_arm
        if estimator == "ratio":
            return ratio_placebos(self.post_mean, self.pre_mean, n1, self.recent_mean, alpha)
        d = self.post_mean - self.pre_mean
        level = scale == "level"
        if estimator == "did":
            return did_placebos(d, n1, self.post_mean[:, :n1] if level else None)
        if estimator == "ancova":
            g = self.post_mean * (np.arange(d.shape[1]) < n1) if level else None
            return ancova_placebos(self.post_mean, self.pre_mean, n1, g)
        return ri_fits(d, n1, self.post_mean[:, :n1] if level else None, rng, n_ri_draws)


def ratio_placebos(
    post: np.ndarray,
    pre: np.ndarray,
    n1: int,
    recent: np.ndarray | None = None,
    alpha: float = 0.05,
) -> PlaceboFits:
    """The total-sales ratio DiD on every placebo (level window means, treated first).

    The estimate is ``log(1 + theta)``: an effect ``x = log(1 + delta)`` moves it by ``x``
    with the same se and df (slope 1, ``var1 = var2 = 0``); the df make the t test exact
    at ``alpha`` under the working model. Degenerate placebos are NaN.
    """
    from .ratio import ratio_fits

    fits = ratio_fits(post, pre, n1, recent=recent, alpha=alpha)
    n_p = len(post)
    zero = np.zeros(n_p)
    p_value = t_p_value(fits.estimate, fits.se, fits.df)
    return PlaceboFits(fits.estimate, fits.se, fits.df, p_value, np.ones(n_p), zero, zero)


def ri_fits(
    d: np.ndarray, per_arm: int, g: np.ndarray | None, rng: np.random.Generator, n_ri_draws: int
) -> RandomizationFits:
    """RI of every placebo: each one's assignments enumerated when there are at most
    ``n_ri_draws``, else ``n_ri_draws`` sampled per placebo plus the observed one, as
    ``randomization_inference(n_draws=n_ri_draws, exact_max=n_ri_draws)``."""
    from .randomization import _combination_matrix

    n = 2 * per_arm
    if math.comb(n, per_arm) <= n_ri_draws:
        return ri_placebos(d, per_arm, _combination_matrix(n, per_arm), g, enumerated=True)
    base = np.zeros(n)
    base[:per_arm] = 1.0
    rows = n_ri_draws + 1  # row 0 becomes the observed assignment
    chunk = max(1, _RI_CHUNK // (rows * n))
    parts = []
    for lo in range(0, len(d), chunk):
        m = min(chunk, len(d) - lo)
        draws = rng.permuted(np.tile(base, (m * rows, 1)), axis=1).reshape(m, rows, n)
        parts.append(
            ri_placebos(d[lo : lo + m], per_arm, draws, None if g is None else g[lo : lo + m])
        )
    return RandomizationFits(
        np.concatenate([p.a for p in parts]), np.concatenate([p.b for p in parts])
    )


def assign(
    draw: Draw, rng: np.random.Generator, per_arm: int, starts: np.ndarray, n_units: int
) -> np.ndarray:
    """(P, per_arm + n_control) unit indices of each placebo, treated first: one draw call
    per start. Every row of the draw must hold ``per_arm`` units of code 1 and the same
    number ``n_control >= 2`` of code 0 (``per_arm``, or every other unit)."""
    units: np.ndarray | None = None
    n_control = -1
    values, inverse = np.unique(starts, return_inverse=True)
    for k, start in enumerate(values):
        rows = np.flatnonzero(inverse == k)
        codes = np.asarray(draw(rng, per_arm, len(rows), int(start)))
        if codes.shape != (len(rows), n_units):
            raise ValueError(
                f"draw returned shape {codes.shape}, must be (n_draws, n_units) = "
                f"({len(rows)}, {n_units})."
            )
        treated, control = codes == 1, codes == 0
        n0 = control.sum(axis=1)
        if units is None:
            n_control = int(n0[0])
            units = np.empty((len(starts), per_arm + n_control), dtype=np.intp)
        if not ((treated.sum(axis=1) == per_arm).all() and (n0 == n_control).all()):
            raise ValueError(
                f"draw must give exactly per_arm == {per_arm} units of code 1 and the same "
                "number of code 0 (per_arm, or every other unit) in every row."
            )
        if n_control < 2:
            raise ValueError(f"draw gives {n_control} units of code 0, must give at least 2.")
        units[rows, :per_arm] = np.nonzero(treated)[1].reshape(len(rows), per_arm)
        units[rows, per_arm:] = np.nonzero(control)[1].reshape(len(rows), n_control)
    if units is None:
        raise ValueError("starts is empty: no placebo to assign.")
    return units
