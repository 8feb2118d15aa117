"""Randomization inference (RI) for a store x week pilot: re-draw the design's own assignment.

The test statistic is the difference in differences of unit-level means: for every unit
``d_i = mean(post) - mean(pre)`` and ``T = mean(d | treated) - mean(d | control)``
(``statistic="ancova"``: ``d_i`` is the post mean residualized on the pre mean, pooled over
all units). With the number of treated units fixed by the design, ``T`` is linear in the
0/1 assignment vector ``w``: ``T(w) = (1/n1 + 1/n0) * w @ (d - mean(d))``. So the whole
randomization distribution is one matrix product ``W @ d`` over the assignment matrix
``W`` (draws x units): no loop per draw, no refit.

Under the sharp null of a constant additive effect ``tau0`` (outcomes ``y - tau0 * treated
* post``), every unit contrast moves linearly, ``d_i(tau0) = d_i - tau0 * u_i``, hence
``T*(tau0) = A* - tau0 * B*`` for every draw and ``T_obs(tau0) = t - tau0 * b0``. The
two-sided p-value ``p(tau0) = mean(|A* - tau0 B*| >= |t - tau0 b0|)`` is a step function of
``tau0`` whose steps are roots of one quadratic per draw: the confidence set
``{tau0 : p(tau0) > alpha}`` is found exactly by sorting those roots (same draws for every
``tau0``), and the interval returned is its hull.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain, combinations
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.results import Comparison, degenerate, from_absolute

METHOD = "randomization"
DESIGNS = ("complete", "stratified", "paired")
STATISTICS = ("did", "ancova")
_RTOL = 1e-9  # relative tolerance for ties |T*| == |T_obs| (structural ties, e.g. mirrors)

Labels = Mapping[Any, Any] | pd.Series | Sequence[Any] | np.ndarray


def randomization_inference(
    data: PanelData,
    *,
    design: str = "complete",
    strata: Labels | None = None,
    pairs: Labels | None = None,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    n_draws: int = 10_000,
    exact_max: int = 20_000,
    rng: np.random.Generator | int | None = None,
    statistic: str = "did",
    assignments: np.ndarray | None = None,
) -> Comparison:
    """Randomization test and test-inversion interval for the effect of ``arm``.

    Args:
        data: the unit x period panel (``treated`` units are the arm, the rest the baseline).
        design: how the pilot was randomized: ``"complete"`` (a fixed number of treated
            units among all), ``"stratified"`` (a fixed number within every stratum) or
            ``"paired"`` (within every pair or matched tuple; sign flips for pairs).
        strata: for ``design="stratified"``: a label per unit, as a mapping unit -> label,
            a Series indexed by unit, or a sequence in ``data.units`` order.
        pairs: for ``design="paired"``: a pair (tuple) label per unit, same forms; every
            pair must hold at least one treated and one control unit.
        arm, baseline, metric: labels copied to the result.
        alpha: level of the two-sided interval, in (0, 1).
        n_draws: random assignments drawn when enumeration is too large; the observed
            assignment is added, so ``p = (1 + #{|T*| >= |T_obs|}) / (1 + n_draws)``.
        exact_max: enumerate every assignment when there are at most this many.
        rng: seed or ``np.random.Generator`` for the random draws (unused when exact).
        statistic: ``"did"`` (difference in differences of unit means) or ``"ancova"``
            (post means residualized on pre means; the estimate is then the ANCOVA
            coefficient, the root of the observed statistic in ``tau0``).
        assignments: the design's own re-draws, when it is none of ``DESIGNS`` (e.g.
            rerandomization, which keeps only balanced draws): a 0/1 array (draws x units,
            in ``data.units`` order), each row with as many treated units as observed. The
            observed assignment is added; ``design`` is then reported as ``"given"``.

    Returns:
        A :class:`Comparison` with ``method="randomization"``: the estimate (for ``did`` the
        DiD of unit means), the interval, the p-value of ``tau = 0`` and, in ``extras``,
        ``design, statistic, exact, n_draws`` (assignments the p-value is computed over),
        ``n_assignments`` (all possible), ``se`` (sd of the randomization distribution),
        ``min_p_value`` (smallest attainable p) and ``randomization_quantiles``. Bounds
        are infinite when no ``tau0`` can be rejected at ``alpha``: four pairs (smallest
        p = 2/16), or ``ancova`` when the observed arms are less balanced on the pre
        means than ``alpha`` of the draws (their statistic then outgrows the observed one
        as ``tau0 -> +-inf``). ``se`` and the quantiles are on the estimate's scale.
        Degenerate panels give a status instead of raising (see ``results.STATUSES``).

    Raises:
        ValueError: a parameter is invalid; the message names it.
    """
    _check_parameters(design, strata, pairs, alpha, n_draws, exact_max, rng, statistic)
    _check_data(data)
    n_units = len(data.units)
    w_obs = np.asarray(data.treated, dtype=bool)
    groups = _groups(data, w_obs, design, strata, pairs)
    info: dict[str, Any] = {"design": design, "statistic": statistic}
    labels = (arm, baseline, metric, METHOD)

    n1, n0 = int(w_obs.sum()), int((~w_obs).sum())
    if not data.post.any():
        return degenerate(*labels, "no_post_period", n_units, alpha, **info)
    if data.post.all():
        return degenerate(*labels, "no_pre_period", n_units, alpha, **info)
    if n1 == 0 or n0 == 0:
        return degenerate(*labels, "no_units", n_units, alpha, **info)
    d, u = _unit_contrasts(data.y, np.asarray(data.post, dtype=bool), w_obs, statistic)
    scale = 1.0 / n1 + 1.0 / n0
    dc, uc = d - d.mean(), u - u.mean()
    t = float(scale * (w_obs @ dc))
    b0 = 1.0 if statistic == "did" else float(scale * (w_obs @ uc))
    if b0 <= 1e-12:  # ancova: the arm is a linear function of the pre means
        return degenerate(*labels, "not_identified", n_units, alpha, **info)
    estimate = float(d[w_obs].mean() - d[~w_obs].mean()) if statistic == "did" else t / b0
    if n1 < 2 or n0 < 2:
        return degenerate(*labels, "one_unit_per_arm", n_units, alpha, estimate, **info)
    if np.ptp(d) <= 1e-12 * max(float(np.abs(data.y).max()), np.finfo(float).tiny):
        return degenerate(*labels, "zero_variance", n_units, alpha, estimate, **info)

    if assignments is not None:
        assignments = _given(assignments, w_obs)
        exact, n_assignments = False, None
        info["design"] = "given"
    else:
        assignments, exact, n_assignments = _assignments(w_obs, groups, n_draws, exact_max, rng)
    ab = assignments @ np.column_stack([dc, uc])
    a, b = scale * ab[:, 0], scale * ab[:, 1]
    p_value = _p_value(a, b, t, b0, 0.0)
    ci_low, ci_high = _inversion_interval(a, b, t, b0, alpha)

    null = a / b0
    probs = (alpha / 2, 0.5, 1 - alpha / 2)
    info.update(
        exact=exact,
        n_draws=len(a),
        n_assignments=n_assignments,
        se=float(null.std()),
        min_p_value=_p_value(a, b, float(np.abs(a).max()), b0, 0.0),
        randomization_quantiles={
            f"{q:g}": float(v) for q, v in zip(probs, np.quantile(null, probs), strict=True)
        },
    )
    return from_absolute(
        arm, baseline, metric, METHOD, estimate, ci_low, ci_high, p_value, n_units,
        data.treated_post_mean(), alpha=alpha, extras=info,
    )  # fmt: skip


def _p_value(a: np.ndarray, b: np.ndarray, t: float, b0: float, tau0: float) -> float:
    """Two-sided RI p-value of ``H0: tau = tau0`` from the linear draw coefficients.

    ``a, b``: ``T*(tau0) = a - tau0 * b`` for every draw; ``t, b0`` the same for the
    observed assignment. Ties within a relative tolerance count as ``>=``.
    """
    stats = np.abs(a - tau0 * b)
    observed = abs(t - tau0 * b0)
    tol = _RTOL * max(float(stats.max()), observed, float(np.abs(a).max()))
    return float(np.mean(stats >= observed - tol))


def _inversion_interval(
    a: np.ndarray, b: np.ndarray, t: float, b0: float, alpha: float
) -> tuple[float, float]:
    """Hull of ``{tau0 : p(tau0) > alpha}``, exactly, by sweeping the per-draw roots.

    Draw ``j`` counts at ``tau0`` iff ``q_j(tau0) = (a_j - tau0 b_j)^2 - (t - tau0 b0)^2 >= 0``,
    a quadratic (or linear, when ``|b_j| == |b0|``) in ``tau0``: its indicator is a union of
    closed intervals whose ends are the roots. ``p`` is then a step function: count the
    draws at each root and on each open segment between roots.
    """
    n = len(a)
    c2 = b * b - b0 * b0
    c1 = -2.0 * (a * b - t * b0)
    c0 = a * a - t * t
    eps2 = _RTOL * b0 * b0
    eps1 = _RTOL * (np.abs(a * b) + abs(t * b0)) + np.finfo(float).tiny
    eps0 = _RTOL * (a * a + t * t)
    down, up = c2 < -eps2, c2 > eps2
    linear = ~down & ~up
    disc = c1 * c1 - 4.0 * c2 * c0
    up_cross = up & (disc > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        q = -0.5 * (c1 + np.where(c1 >= 0, sq, -sq))  # stable roots q/c2 and c0/q
        r_a = np.where(q != 0, q / c2, 0.0)
        r_b = np.where(q != 0, c0 / q, 0.0)
        r_lin = -c0 / c1
    lo, hi = np.minimum(r_a, r_b), np.maximum(r_a, r_b)
    sloped = linear & (np.abs(c1) > eps1)
    flat = linear & ~sloped
    base = int(up.sum())  # upward parabolas (and flat or falling lines) start at 1
    base += int(np.sum(flat & (c0 >= -eps0)))
    base += int(np.sum(sloped & (c1 < 0)))
    rises = np.sort(
        np.concatenate([lo[down], hi[up_cross], r_lin[sloped & (c1 > 0)]]),
    )
    drops = np.sort(
        np.concatenate([hi[down], lo[up_cross], r_lin[sloped & (c1 < 0)]]),
    )
    xs = np.unique(np.concatenate([rises, drops]))
    if xs.size == 0:
        return (-math.inf, math.inf) if base / n > alpha else (math.nan, math.nan)
    n_rise = np.searchsorted(rises, xs, side="right")
    at_point = base + n_rise - np.searchsorted(drops, xs, side="left")
    after = base + n_rise - np.searchsorted(drops, xs, side="right")
    before = np.concatenate([[base], after[:-1]])
    accept_point = at_point / n > alpha
    accept_after, accept_before = after / n > alpha, before / n > alpha
    if base / n > alpha:
        low = -math.inf
    else:
        low_candidates = xs[accept_point | accept_after]
        low = float(low_candidates[0]) if low_candidates.size else math.nan
    if accept_after[-1]:
        high = math.inf
    else:
        high_candidates = xs[accept_point | accept_before]
        high = float(high_candidates[-1]) if high_candidates.size else math.nan
    return low, high


def _unit_contrasts(
    y: np.ndarray, post: np.ndarray, w_obs: np.ndarray, statistic: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit contrast ``d`` and its slope ``u`` in the null effect: ``d(tau0) = d - tau0 u``."""
    pre_mean = y[:, ~post].mean(axis=1)
    post_mean = y[:, post].mean(axis=1)
    w = w_obs.astype(float)
    if statistic == "did":
        return post_mean - pre_mean, w
    pre_c = pre_mean - pre_mean.mean()
    ss = float(pre_c @ pre_c)
    if ss <= 1e-24 * max(float(pre_mean @ pre_mean), np.finfo(float).tiny):
        return post_mean, w  # the pre means do not vary: nothing to adjust for
    beta = float(pre_c @ post_mean) / ss  # pooled slope of post on pre
    gamma = float(pre_c @ w) / ss  # how beta moves with tau0: beta(tau0) = beta - tau0 gamma
    return post_mean - beta * pre_mean, w - gamma * pre_mean


def _assignments(
    w_obs: np.ndarray,
    groups: np.ndarray,
    n_draws: int,
    exact_max: int,
    rng: np.random.Generator | int | None,
) -> tuple[np.ndarray, bool, int]:
    """Assignment matrix (rows: assignments, float 0/1), whether exact, and the count.

    Within every group the observed number of treated units is kept. Exact: every
    assignment (product over groups of combinations). Sampled: the observed assignment,
    then ``n_draws`` independent uniform draws from the design.
    """
    n = len(w_obs)
    blocks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    ks = [int(w_obs[block].sum()) for block in blocks]
    n_assignments = math.prod(math.comb(len(block), k) for block, k in zip(blocks, ks, strict=True))
    if n_assignments <= exact_max:
        matrix = np.empty((n_assignments, n))
        varying = []
        for block, k in zip(blocks, ks, strict=True):
            if k in (0, len(block)):  # one way only: constant over the assignments
                matrix[:, block] = float(k > 0)
            else:
                varying.append((block, _combination_matrix(len(block), k)))
        sizes = tuple(len(m) for _, m in varying)
        index = np.indices(sizes).reshape(len(sizes), n_assignments)
        for row, (block, m) in enumerate(varying):
            matrix[:, block] = m[index[row]]
        return matrix, True, n_assignments
    generator = np.random.default_rng(rng)
    matrix = np.empty((n_draws + 1, n))
    matrix[0] = w_obs
    for block, k in zip(blocks, ks, strict=True):
        base = np.zeros(len(block))
        base[:k] = 1.0
        matrix[1:, block] = generator.permuted(np.tile(base, (n_draws, 1)), axis=1)
    return matrix, False, n_assignments


def _given(assignments: np.ndarray, w_obs: np.ndarray) -> np.ndarray:
    """The caller's re-draws, checked, with the observed assignment as the first row."""
    matrix = np.asarray(assignments, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] != len(w_obs) or len(matrix) == 0:
        raise ValueError(
            f"assignments has shape {matrix.shape}, must be (draws, {len(w_obs)} units)."
        )
    if not np.isin(matrix, (0.0, 1.0)).all():
        raise ValueError("assignments must hold 0 / 1 only.")
    if not (matrix.sum(axis=1) == w_obs.sum()).all():
        raise ValueError(
            f"assignments: every row must treat {int(w_obs.sum())} units, as observed."
        )
    return np.vstack([w_obs.astype(float), matrix])


def _combination_matrix(n: int, k: int) -> np.ndarray:
    """All ``C(n, k)`` 0/1 rows of length ``n`` with ``k`` ones."""
    count = math.comb(n, k)
    flat = np.fromiter(chain.from_iterable(combinations(range(n), k)), np.intp, count * k)
    chosen = flat.reshape(count, k)
    out = np.zeros((count, n))
    out[np.arange(count)[:, None], chosen] = 1.0
    return out


def _groups(
    data: PanelData, w_obs: np.ndarray, design: str, strata: Labels | None, pairs: Labels | None
) -> np.ndarray:
    """Integer group code per unit: one group (complete), strata or pairs."""
    if design == "complete":
        return np.zeros(len(data.units), dtype=np.intp)
    name, values = ("strata", strata) if design == "stratified" else ("pairs", pairs)
    labels = _labels(values, data.units, name)
    codes, uniques = pd.factorize(pd.Series(labels, dtype=object))
    if design == "paired":
        for code, label in enumerate(uniques):
            members = codes == code
            k, size = int(w_obs[members].sum()), int(members.sum())
            if k == 0 or k == size:
                raise ValueError(
                    f"pairs: pair {_plain(label)!r} has {k} treated and {size - k} control units, "
                    "must have at least one of each."
                )
    return np.asarray(codes, dtype=np.intp)


def _labels(values: Labels | None, units: np.ndarray, name: str) -> list[Any]:
    """One label per unit, in ``units`` order, from a mapping, a Series or a sequence."""
    if isinstance(values, pd.Series) and set(units) <= set(values.index):
        values = values.to_dict()
    if isinstance(values, Mapping):
        missing = [unit for unit in units if unit not in values]
        if missing:
            raise ValueError(f"{name}: unit {_plain(missing[0])!r} has no label.")
        labels = [values[unit] for unit in units]
    else:
        labels = list(np.asarray(values, dtype=object).ravel())
        if len(labels) != len(units):
            raise ValueError(
                f"{name} has {len(labels)} labels, must have one per unit ({len(units)})."
            )
    if any(pd.isna(label) for label in labels):
        raise ValueError(f"{name}: a unit has a missing label.")
    return labels


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value, for readable messages."""
    return value.item() if isinstance(value, np.generic) else value


def _check_parameters(
    design: str,
    strata: Labels | None,
    pairs: Labels | None,
    alpha: float,
    n_draws: int,
    exact_max: int,
    rng: Any,
    statistic: str,
) -> None:
    if design not in DESIGNS:
        raise ValueError(f"design == {design!r}, must be one of {list(DESIGNS)}.")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic == {statistic!r}, must be one of {list(STATISTICS)}.")
    if design == "stratified" and strata is None:
        raise ValueError("strata is required for design='stratified'.")
    if design == "paired" and pairs is None:
        raise ValueError("pairs is required for design='paired'.")
    if strata is not None and design != "stratified":
        raise ValueError(f"strata is only used with design='stratified', not {design!r}.")
    if pairs is not None and design != "paired":
        raise ValueError(f"pairs is only used with design='paired', not {design!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1).")
    for name, value, least in (("n_draws", n_draws, 1), ("exact_max", exact_max, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name} == {value!r}, must be an integer >= {least}.")
    if not (rng is None or isinstance(rng, np.random.Generator)) and (
        isinstance(rng, bool) or not isinstance(rng, int | np.integer)
    ):
        raise ValueError(f"rng == {rng!r}, must be None, an int seed or a numpy Generator.")


def _check_data(data: PanelData) -> None:
    y = np.asarray(data.y)
    if y.ndim != 2 or y.shape != (len(data.units), len(data.periods)):
        raise ValueError(f"data.y has shape {y.shape}, must be (units, periods).")
    if np.shape(data.treated) != (len(data.units),) or np.shape(data.post) != (len(data.periods),):
        raise ValueError("data.treated and data.post must have one entry per unit and period.")
    if y.size and not np.isfinite(y).all():
        raise ValueError("data.y has non-finite values.")
