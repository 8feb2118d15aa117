"""Guardrails: metrics the programme must not harm, as one-sided non-inferiority tests.

A guardrail passes when the data rule out a harm larger than its margin: for a metric
where higher is better (gross margin rate, visits, sales), when the lower one-sided
``1 - alpha`` confidence bound of the effect is above ``-margin``; for a metric where
higher is worse (programme cost share, returns rate), when the upper bound is below
``+margin``. The p-value is that of the non-inferiority null (``effect <= -margin``,
resp. ``effect >= +margin``): the guardrail passes exactly when ``p_value < alpha``.

Margins (as in the pilot YAML, :mod:`loyalty_pilot.pilots.pilotspec`):

* ``"absolute"`` for rates (0.005 = half a percentage point of gross margin rate), on the
  scale of the Comparison's ``estimate``;
* ``"relative"`` for the other metrics (0.02 = 2 %), on the scale of the Comparison's
  ``relative`` effect: the effect relative to the treated stores' counterfactual mean
  (:func:`~loyalty_pilot.experiments.results.relative_from_absolute`: ``v / (m - v)`` for
  an absolute effect ``v`` and the treated stores' observed test-period mean ``m``). As
  that map is increasing, a relative margin ``d`` is the absolute margin ``d m / (1 - d)``
  (higher is better) or ``d m / (1 + d)`` (higher is worse), and the test runs on the
  absolute scale with the estimator's ``se`` and ``df``. ``m`` is recovered from the
  Comparison's absolute and relative figures.

The one-sided bound uses ``extras["se"]`` and ``extras["df"]`` (t) of the Comparison, or
the normal without ``df``. Without ``se`` (synthetic control, randomization inference) the
bound of the Comparison's own two-sided interval is used when that interval is at least
as wide as needed (``comparison.alpha <= 2 alpha``): a conservative test without a
p-value. Checking several guardrails and requiring all of them to pass is an
intersection-union test: each at level ``alpha`` keeps the overall level ``alpha``, so no
multiplicity adjustment is due.

Rates: estimate the effect on the rate's own store x week panel (e.g. gross margin /
sales per store-week, :func:`rate_panel`) with the estimator of the primary metric, and
pass that Comparison here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .panel import PanelData, PanelError
from .results import OK, STATUSES, Comparison

DIRECTIONS = ("higher_is_better", "higher_is_worse")
KINDS = ("absolute", "relative")
#: Mirrors ``pilots.pilotspec.RATE_METRICS``: guardrails on these have absolute margins.
RATE_METRICS = ("gross_margin_rate", "programme_cost_share", "returns_rate")
#: Mirrors ``pilots.pilotspec.HIGHER_IS_WORSE``: a rise of these is the harm.
HIGHER_IS_WORSE = ("programme_cost_share", "returns_rate")


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail's non-inferiority test.

    ``estimate`` and ``bound`` are on the margin's scale (absolute effect, or relative
    effect for ``kind="relative"``); ``bound`` is the lower one-sided ``1 - alpha`` bound
    for ``higher_is_better``, the upper one for ``higher_is_worse``. ``passed`` is None
    when the test cannot be computed (degenerate estimate, no standard error);
    ``p_value`` is NaN then, and when only the interval's bound was usable.
    """

    metric: str
    direction: str
    margin: float
    kind: str
    alpha: float
    estimate: float
    bound: float
    passed: bool | None
    p_value: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def default_direction(metric: str) -> str:
    """``higher_is_worse`` for programme cost share and returns rate, else ``higher_is_better``."""
    return "higher_is_worse" if metric in HIGHER_IS_WORSE else "higher_is_better"


def default_kind(metric: str) -> str:
    """``absolute`` margins for rates, ``relative`` for the other metrics (as the YAML)."""
    return "absolute" if metric in RATE_METRICS else "relative"


def non_inferiority(
    estimate: float,
    se: float,
    *,
    margin: float,
    direction: str = "higher_is_better",
    kind: str = "absolute",
    df: float | None = None,
    alpha: float = 0.05,
    metric: str = "metric",
    treated_post_mean: float | None = None,
) -> GuardrailResult:
    """Non-inferiority test of an absolute effect ``estimate`` with standard error ``se``.

    ``df`` None uses the normal, else Student's t. For ``kind="relative"`` the margin is on
    the relative effect ``v / (treated_post_mean - v)`` (as
    :func:`~loyalty_pilot.experiments.results.relative_from_absolute`) and ``estimate`` and
    ``bound`` are reported as relative effects.

    >>> r = non_inferiority(-0.002, 0.001, margin=0.005, df=10)
    >>> r.passed, round(r.bound, 5), round(r.p_value, 4)
    (True, -0.00381, 0.0067)
    """
    _check(margin, direction, kind, alpha)
    absolute_margin, to_scale = _margin_on_absolute_scale(
        margin, direction, kind, treated_post_mean
    )
    estimate, se = float(estimate), float(se)
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return _not_computable(
            metric,
            direction,
            margin,
            kind,
            alpha,
            to_scale(estimate),
            f"no usable estimate and standard error (estimate {estimate}, se {se})",
        )
    if not math.isfinite(absolute_margin):
        return _not_computable(
            metric,
            direction,
            margin,
            kind,
            alpha,
            math.nan,
            "the treated mean is not positive: a relative margin is undefined",
        )
    from scipy import stats

    dist = stats.norm if df is None else stats.t(df)
    q = float(dist.ppf(1.0 - alpha))
    if direction == "higher_is_better":
        bound = estimate - q * se
        p_value = float(dist.sf((estimate + absolute_margin) / se))
        passed = bound > -absolute_margin
    else:
        bound = estimate + q * se
        p_value = float(dist.sf((absolute_margin - estimate) / se))
        passed = bound < absolute_margin
    return GuardrailResult(
        metric=metric,
        direction=direction,
        margin=float(margin),
        kind=kind,
        alpha=float(alpha),
        estimate=to_scale(estimate),
        bound=to_scale(bound),
        passed=bool(passed),
        p_value=p_value,
        reason=_reason(bool(passed), direction, margin, kind, alpha, to_scale(bound), df),
    )


def guardrail(
    comparison: Comparison,
    *,
    margin: float,
    direction: str | None = None,
    kind: str | None = None,
    alpha: float = 0.05,
) -> GuardrailResult:
    """Non-inferiority test of a :class:`~loyalty_pilot.experiments.results.Comparison`.

    ``direction`` and ``kind`` default from the metric name (:func:`default_direction`,
    :func:`default_kind`). Uses ``extras["se"]`` and ``extras["df"]``; see the module
    docstring for comparisons without a standard error.
    """
    metric = comparison.metric
    direction = default_direction(metric) if direction is None else direction
    kind = default_kind(metric) if kind is None else kind
    _check(margin, direction, kind, alpha)
    if comparison.status != OK:
        return _not_computable(
            metric,
            direction,
            margin,
            kind,
            alpha,
            math.nan,
            f"estimate unavailable ({comparison.status}: {STATUSES.get(comparison.status, '')})",
        )
    m = _treated_post_mean(comparison) if kind == "relative" else None
    se = float(comparison.extras.get("se", math.nan))
    if math.isfinite(se) and se > 0:
        df = comparison.extras.get("df")
        df = float(df) if df is not None and math.isfinite(float(df)) and df > 0 else None
        return non_inferiority(
            comparison.estimate,
            se,
            margin=margin,
            direction=direction,
            kind=kind,
            df=df,
            alpha=alpha,
            metric=metric,
            treated_post_mean=m,
        )
    return _from_interval(comparison, margin, direction, kind, alpha)


def check_guardrails(
    comparisons: Mapping[str, Comparison],
    guardrails: Iterable[Any],
    *,
    alpha: float = 0.05,
) -> list[GuardrailResult]:
    """Every guardrail of a pilot against the Comparison of its metric.

    ``guardrails``: objects with ``metric`` and ``margin`` attributes (the YAML's
    ``metrics.guardrails``) or mappings with those keys, optionally ``direction`` and
    ``kind``. A guardrail whose metric has no Comparison is reported with ``passed=None``.
    """
    out = []
    for g in guardrails:
        metric, margin = _field(g, "metric"), _field(g, "margin")
        direction = _field(g, "direction") or default_direction(metric)
        kind = _field(g, "kind") or default_kind(metric)
        if metric not in comparisons:
            _check(margin, direction, kind, alpha)
            out.append(
                _not_computable(
                    metric,
                    direction,
                    margin,
                    kind,
                    alpha,
                    math.nan,
                    f"no estimate of {metric!r} was given",
                )
            )
            continue
        out.append(
            guardrail(
                comparisons[metric], margin=margin, direction=direction, kind=kind, alpha=alpha
            )
        )
    return out


def rate_panel(numerator: PanelData, denominator: PanelData | np.ndarray) -> PanelData:
    """The unit x period panel of a rate, e.g. gross margin / sales per store-week.

    ``denominator`` is a panel of the same units and periods (or its ``y`` matrix); every
    denominator must be positive (a store-week without sales has no margin rate: drop or
    merge such weeks before).
    """
    den = denominator.y if isinstance(denominator, PanelData) else np.asarray(denominator)
    if isinstance(denominator, PanelData) and not (
        np.array_equal(denominator.units, numerator.units)
        and np.array_equal(denominator.periods, numerator.periods)
    ):
        raise PanelError("denominator has other units or periods than numerator.")
    den = np.asarray(den, dtype=float)
    if den.shape != numerator.y.shape:
        raise PanelError(
            f"denominator has shape {den.shape}, numerator {numerator.y.shape}: must match."
        )
    bad = ~(np.isfinite(den) & (den > 0))
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise PanelError(
            f"denominator is not positive in {int(bad.sum())} cells, e.g. unit "
            f"{_plain(numerator.units[i])!r} period {_plain(numerator.periods[t])!r}: "
            "a rate needs a positive denominator."
        )
    return PanelData(
        np.asarray(numerator.y, dtype=float) / den,
        numerator.units,
        numerator.periods,
        numerator.treated,
        numerator.post,
    )


# --------------------------------------------------------------------------- internals


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _field(guardrail: Any, key: str) -> Any:
    if isinstance(guardrail, Mapping):
        return guardrail.get(key)
    return getattr(guardrail, key, None)


def _check(margin: Any, direction: str, kind: str, alpha: float) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction == {direction!r}, must be one of {DIRECTIONS}.")
    if kind not in KINDS:
        raise ValueError(f"kind == {kind!r}, must be one of {KINDS}.")
    if not isinstance(margin, numbers.Real) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin == {margin!r}, must be a finite number >= 0.")
    if kind == "relative" and margin >= 1:
        raise ValueError(f"margin == {margin!r}, a relative margin must be < 1.")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha == {alpha}, must be in (0, 0.5).")


def _margin_on_absolute_scale(
    margin: float, direction: str, kind: str, treated_post_mean: float | None
) -> tuple[float, Any]:
    """The margin in the estimate's units and the map from absolute to the reported scale."""
    if kind == "absolute":
        return float(margin), float
    if treated_post_mean is None:
        raise ValueError("kind == 'relative' needs treated_post_mean.")
    m = float(treated_post_mean)
    if not (math.isfinite(m) and m > 0):
        return math.nan, lambda v: math.nan
    sign = 1.0 if direction == "higher_is_better" else -1.0
    absolute = margin * m / (1.0 - sign * margin)

    def to_relative(value: float) -> float:
        value = float(value)
        return value / (m - value) if math.isfinite(value) and m - value > 0 else math.nan

    return absolute, to_relative


def _treated_post_mean(comparison: Comparison) -> float:
    """Recover ``m`` from ``relative = v / (m - v)``: ``m = v (1 + 1/relative)``.

    Uses the largest of estimate and interval bounds in absolute value (best conditioned).
    """
    pairs = [
        (comparison.estimate, comparison.relative),
        (comparison.ci_low, comparison.rel_ci_low),
        (comparison.ci_high, comparison.rel_ci_high),
    ]
    usable = [
        (v, r) for v, r in pairs if math.isfinite(v) and math.isfinite(r) and v != 0 and r != 0
    ]
    if not usable:
        return math.nan
    v, r = max(usable, key=lambda p: abs(p[0]))
    return v * (1.0 + 1.0 / r)


def _from_interval(
    comparison: Comparison, margin: float, direction: str, kind: str, alpha: float
) -> GuardrailResult:
    relative = kind == "relative"
    higher = direction == "higher_is_better"
    estimate = comparison.relative if relative else comparison.estimate
    if relative:
        bound = comparison.rel_ci_low if higher else comparison.rel_ci_high
    else:
        bound = comparison.ci_low if higher else comparison.ci_high
    if not math.isfinite(bound):
        return _not_computable(
            comparison.metric,
            direction,
            margin,
            kind,
            alpha,
            estimate,
            "no standard error and no interval bound",
        )
    if comparison.alpha > 2 * alpha + 1e-12:
        return _not_computable(
            comparison.metric,
            direction,
            margin,
            kind,
            alpha,
            estimate,
            f"no standard error, and the {1 - comparison.alpha:.0%} interval is narrower than "
            f"a one-sided {1 - alpha:.0%} bound",
        )
    passed = bound > -margin if higher else bound < margin
    level = 1 - comparison.alpha / 2
    reason = _reason(bool(passed), direction, margin, kind, alpha, bound, None)
    reason += f" (bound of the {1 - comparison.alpha:.0%} interval, one-sided {level:.1%}: "
    reason += "conservative, no p-value without a standard error)"
    return GuardrailResult(
        comparison.metric,
        direction,
        float(margin),
        kind,
        float(alpha),
        float(estimate),
        float(bound),
        bool(passed),
        math.nan,
        reason,
    )


def _reason(
    passed: bool,
    direction: str,
    margin: float,
    kind: str,
    alpha: float,
    bound: float,
    df: float | None,
) -> str:
    unit = f"{margin:.1%} relative" if kind == "relative" else f"{margin:g} absolute"
    shown = f"{bound:+.2%}" if kind == "relative" else f"{bound:+.4g}"
    dist = "normal" if df is None else f"t, {df:.1f} df"
    if direction == "higher_is_better":
        side, limit = "lower", f"-{unit}"
        verdict = "above" if passed else "not above"
    else:
        side, limit = "upper", f"+{unit}"
        verdict = "below" if passed else "not below"
    outcome = "passed" if passed else "failed: a harm beyond the margin is not ruled out"
    return (
        f"{outcome}; one-sided {1 - alpha:.0%} {side} bound {shown} ({dist}) is {verdict} "
        f"the margin {limit}"
    )


def _not_computable(
    metric: str,
    direction: str,
    margin: float,
    kind: str,
    alpha: float,
    estimate: float,
    reason: str,
) -> GuardrailResult:
    return GuardrailResult(
        metric,
        direction,
        float(margin),
        kind,
        float(alpha),
        float(estimate),
        math.nan,
        None,
        math.nan,
        f"not tested: {reason}",
    )
