"""The result of comparing one arm with its baseline, shared by every estimator.

A :class:`Comparison` is immutable and renders itself as a dict with the keys of the
``evaluate --json`` contract: ``arm, baseline, metric, method, estimate, ci_low, ci_high,
relative, rel_ci_low, rel_ci_high, p_value, n_units, status`` plus method extras.

Degenerate input does not raise: the estimator returns a Comparison whose ``status`` says
why (see :data:`STATUSES`) and whose figures are NaN where they cannot be computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
STATUSES = {
    OK: "estimated",
    "one_unit_per_arm": "an arm has fewer than two units: no interval can be computed",
    "no_pre_period": "no period before the start: the method needs one",
    "no_post_period": "no period from the start on",
    "zero_variance": "the outcome does not vary: the interval is degenerate",
    "no_units": "an arm has no unit",
    "poor_fit": "the synthetic control does not fit the pre-period",
    "not_identified": "the estimate is not identified from this data",
}


@dataclass(frozen=True)
class Comparison:
    """One arm against its baseline on one metric, by one method.

    ``estimate`` is the absolute effect per unit and period on the metric's scale;
    ``relative`` the effect relative to the treated units' counterfactual mean over the
    test period (see :func:`relative_from_absolute`). ``alpha`` is the level of the
    two-sided interval. ``extras`` holds method-specific output (e.g. ``weights``,
    ``event_study``, ``pre_trend_p_value``, ``se``, ``df``).
    """

    arm: str
    baseline: str
    metric: str
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    relative: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    n_units: int
    status: str = OK
    alpha: float = 0.05
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None, extras are merged at the top level."""
        out: dict[str, Any] = {
            "arm": self.arm,
            "baseline": self.baseline,
            "metric": self.metric,
            "method": self.method,
            "estimate": _clean(self.estimate),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "relative": _clean(self.relative),
            "rel_ci_low": _clean(self.rel_ci_low),
            "rel_ci_high": _clean(self.rel_ci_high),
            "p_value": _clean(self.p_value),
            "n_units": int(self.n_units),
            "status": self.status,
            "alpha": self.alpha,
        }
        for key, value in self.extras.items():
            out[key] = _clean_deep(value)
        return out


def relative_from_absolute(value: float, treated_post_mean: float) -> float:
    """Absolute effect -> relative uplift against the treated units' counterfactual.

    The counterfactual mean of the treated units over the test period is the observed
    mean minus the effect, so ``relative = value / (treated_post_mean - value)``. The map
    is increasing in ``value`` while the counterfactual is positive, so applying it to the
    bounds of an interval for the absolute effect gives an interval for the relative one
    with the same coverage (conditional on the observed treated mean). Returns NaN where
    the counterfactual is not positive.

    The map is ``-1 + m / (m - value)``: for a positive counterfactual it lies in
    ``(-1, inf)``, so no relative bound formed here is ever below -100 %. Relative
    effects of two means (customer-level tests) go through :func:`relative_of_means`,
    which keeps the same property.
    """
    denominator = treated_post_mean - value
    if not math.isfinite(value) or not math.isfinite(denominator) or denominator <= 0:
        return math.nan
    return value / denominator


def relative_of_means(
    mean_arm: float,
    var_arm: float,
    mean_base: float,
    var_base: float,
    q: float,
    cov: float = 0.0,
) -> tuple[float, float, float, float]:
    """``mean_arm / mean_base - 1`` with an interval that cannot cross -100 %.

    ``var_*`` are the variances of the two means (``cov`` their covariance, 0 for
    independent arms) and ``q`` the critical value of the interval. The interval is the
    delta-method one on ``log(mean_arm / mean_base)``, ``+- q sqrt(v_a / m_a^2 + v_b / m_b^2
    - 2 cov / (m_a m_b))``, mapped back by ``exp(x) - 1``: on sales (positive means) the
    relative effect is above -1 and so are both bounds, whereas the delta-method interval
    on the ratio itself (``rel +- q rel_se``) runs below -100 % whenever ``rel_se`` is
    large (seen: -223 %). Returns ``(relative, low, high, rel_se)`` with ``rel_se`` the
    delta-method standard error of the ratio; all NaN unless both means are positive.

    >>> rel, low, high, _ = relative_of_means(0.5, 0.04, 1.0, 0.01, 1.96)
    >>> round(rel, 3), round(low, 3), round(high, 3)
    (-0.5, -0.777, 0.122)
    """
    nan = math.nan
    if not (mean_arm > 0 and mean_base > 0 and math.isfinite(mean_arm * mean_base)):
        return nan, nan, nan, nan
    ratio = mean_arm / mean_base
    log_var = var_arm / mean_arm**2 + var_base / mean_base**2 - 2 * cov / (mean_arm * mean_base)
    if not (math.isfinite(log_var) and log_var >= 0):
        return ratio - 1, nan, nan, nan
    half = q * math.sqrt(log_var)
    rel_se = ratio * math.sqrt(log_var)
    return ratio - 1, math.expm1(math.log(ratio) - half), math.expm1(math.log(ratio) + half), rel_se


def from_absolute(
    arm: str,
    baseline: str,
    metric: str,
    method: str,
    estimate: float,
    ci_low: float,
    ci_high: float,
    p_value: float,
    n_units: int,
    treated_post_mean: float,
    *,
    alpha: float = 0.05,
    extras: dict[str, Any] | None = None,
) -> Comparison:
    """An estimated Comparison: the relative figures follow from the absolute ones
    through :func:`relative_from_absolute` on the treated units' test-period mean."""
    return Comparison(
        arm,
        baseline,
        metric,
        method,
        float(estimate),
        float(ci_low),
        float(ci_high),
        relative_from_absolute(estimate, treated_post_mean),
        relative_from_absolute(ci_low, treated_post_mean),
        relative_from_absolute(ci_high, treated_post_mean),
        float(p_value),
        int(n_units),
        status=OK,
        alpha=alpha,
        extras=dict(extras or {}),
    )


def degenerate(
    arm: str,
    baseline: str,
    metric: str,
    method: str,
    status: str,
    n_units: int,
    alpha: float = 0.05,
    estimate: float = math.nan,
    **extras: Any,
) -> Comparison:
    """A Comparison for input the method cannot handle: NaN figures and a status."""
    if status not in STATUSES:
        raise ValueError(f"status == {status!r}, must be one of {sorted(STATUSES)}.")
    nan = math.nan
    return Comparison(
        arm,
        baseline,
        metric,
        method,
        estimate,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        n_units,
        status=status,
        alpha=alpha,
        extras=dict(extras),
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_deep(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    return _clean(value)
