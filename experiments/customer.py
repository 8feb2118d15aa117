"""Customer-level tests for offers randomized to customers (e.g. cash vs gift in pilot stores).

Every test works on per-arm :class:`~loyalty_pilot.experiments.sufficient.SufficientStats`
(counts and sums; see :mod:`~loyalty_pilot.experiments.sufficient` for the aggregation in
numpy, pandas or SQL) and returns a :class:`~loyalty_pilot.experiments.results.Comparison`
of ``arm`` against ``baseline``:

``welch``
    Difference of means, Welch's t with Welch-Satterthwaite df (= ``scipy.stats.ttest_ind(
    equal_var=False)``).
``ratio``
    Ratio metric ``sum(y) / sum(x)`` per arm (basket size = revenue / baskets), variance
    by the delta method: the unit-level variance of the linearized values
    ``(y_i - R x_i) / mean(x)``, then Welch as above (the same df formula on those
    variances). Per arm this equals a WLS of ``y/x`` on a constant with weights ``x`` and
    HC1 errors (statsmodels).
``cuped``
    CUPED (Deng et al. 2013) with a pre-period covariate ``c``: ``theta = cov(y, c) /
    var(c)`` over the customers of the two arms pooled (as gbstats; 0 when ``c`` or ``y``
    does not vary), ``y_adj = y - theta (c - mean(c))`` with the pooled mean, then Welch
    on ``y_adj`` (``theta`` taken as known). This is *not* the OLS ``y ~ arm + c`` (whose
    slope is the within-arm one and whose errors are a sandwich): the two agree to
    O(1/n) only.
``proportion``
    Two proportions (retention, repurchase; a 0/1 outcome): z-test with the pooled
    variance (= ``statsmodels.stats.proportion.proportions_ztest``), Wald interval for
    the difference with the unpooled variance (= ``confint_proportions_2indep(...,
    method="wald")``), so at the margin the interval and the test can disagree.

For every method ``estimate`` is the difference ``mean_arm - mean_baseline`` (adjusted
means for CUPED, ratios for ``ratio``), ``relative`` is ``mean_arm / mean_baseline - 1``
with the delta-method interval on ``log(mean_arm / mean_baseline)`` (variance ``v_a / m_a**2
+ v_b / m_b**2``, ``v`` the variance of each arm's mean; same critical value as the
absolute interval) mapped back by ``exp(x) - 1``, so it never crosses -100 % (the interval
on the ratio itself, ``rel +- q rel_se``, did: seen -223 %); on the ratio scale only when
the arm's mean is not positive; NaN when the baseline mean is not positive), ``n_units``
the customers of the two arms. The extras hold ``se, df`` (None for the z-test),
``statistic``, ``rel_se``, ``mean_arm, mean_baseline, n_arm, n_baseline`` and method
figures (``theta`` ...).

Degenerate input returns a Comparison with a status: ``no_units`` (an arm is empty),
``one_unit_per_arm`` (an arm has one customer), ``zero_variance`` (the standard error is
0), ``not_identified`` (a ratio whose denominator mean is not positive).

:func:`compare_all` runs the whole family of pairs with the Holm adjustment (see
:mod:`~loyalty_pilot.experiments.multiple`); :func:`sample_ratio_mismatch` is the
chi-square check of the arm sizes; :func:`evaluate_customers` is the file-mode entry point.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .evaluate import ZERO_ONE_NAMES, Evaluation, arm_name, is_zero_one
from .multiple import family, with_holm
from .results import OK, Comparison, degenerate, relative_of_means
from .sufficient import SufficientStats, aggregate

METHODS = ("welch", "ratio", "cuped", "proportion")
ZERO_TOLERANCE = 1e-10
"""A variance below this fraction of the mean square (or of the unadjusted variance, for
CUPED) is rounding error of the one-pass sums: it is taken as 0."""


def welch(
    treated: SufficientStats,
    control: SufficientStats,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
) -> Comparison:
    """Welch's unequal-variance t-test of the difference of means (``arm - baseline``)."""
    early = _too_small(treated, control, arm, baseline, metric, "welch", alpha)
    if early is not None:
        return early
    return _two_sample(
        arm,
        baseline,
        metric,
        "welch",
        alpha,
        (treated.mean_y, _variance(treated), treated.n),
        (control.mean_y, _variance(control), control.n),
    )


def ratio(
    treated: SufficientStats,
    control: SufficientStats,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
) -> Comparison:
    """Difference of ratio metrics ``sum(y) / sum(x)`` by the delta method (see the module).

    Needs the denominator sums (``sum_x, sum_x2, sum_xy``).
    """
    for name, stats in (("treated", treated), ("control", control)):
        if not stats.has_ratio:
            raise ValueError(f"{name} statistics have no denominator sums: method 'ratio'.")
    early = _too_small(treated, control, arm, baseline, metric, "ratio", alpha)
    if early is not None:
        return early
    parts = []
    for stats in (treated, control):
        mean_x = stats.mean_x
        if not mean_x > 0:
            return degenerate(
                arm,
                baseline,
                metric,
                "ratio",
                "not_identified",
                treated.n + control.n,
                alpha,
                reason="the mean of the denominator is not positive in an arm",
            )
        r = stats.sum_y / stats.sum_x
        var_lin = (stats.var_y - 2 * r * stats.cov_xy + r * r * stats.var_x) / mean_x**2
        scale = stats.var_y / mean_x**2 + r * r * stats.var_x / mean_x**2
        parts.append((r, _clean_zero(var_lin, scale), stats.n))
    comparison = _two_sample(arm, baseline, metric, "ratio", alpha, parts[0], parts[1])
    return _add_extras(
        comparison,
        mean_x_arm=treated.mean_x,
        mean_x_baseline=control.mean_x,
        mean_y_arm=treated.mean_y,
        mean_y_baseline=control.mean_y,
    )


def cuped(
    treated: SufficientStats,
    control: SufficientStats,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
) -> Comparison:
    """CUPED: Welch on ``y - theta (c - mean(c))``, theta pooled over the two arms.

    Needs the covariate sums (``sum_c, sum_c2, sum_yc``). Extras: ``theta``, the raw means
    (``mean_raw_arm``, ``mean_raw_baseline``), the covariate means and
    ``variance_reduction`` = ``1 - se**2 / se_welch**2`` (the share of the variance of the
    difference removed by the adjustment).
    """
    for name, stats in (("treated", treated), ("control", control)):
        if not stats.has_covariate:
            raise ValueError(f"{name} statistics have no covariate sums: method 'cuped'.")
    early = _too_small(treated, control, arm, baseline, metric, "cuped", alpha)
    if early is not None:
        return early
    pooled = treated + control
    var_c, var_y = pooled.var_c, pooled.var_y
    if _is_zero(var_c, pooled.sum_c2 / pooled.n) or _is_zero(var_y, pooled.sum_y2 / pooled.n):
        theta = 0.0
    else:
        theta = pooled.cov_yc / var_c
    mean_c = pooled.mean_c
    parts = []
    for stats in (treated, control):
        mean_adj = stats.mean_y - theta * (stats.mean_c - mean_c)
        var_adj = stats.var_y - 2 * theta * stats.cov_yc + theta * theta * stats.var_c
        scale = stats.var_y + theta * theta * stats.var_c
        parts.append((mean_adj, _clean_zero(var_adj, scale), stats.n))
    comparison = _two_sample(arm, baseline, metric, "cuped", alpha, parts[0], parts[1])
    se_raw2 = _variance(treated) / treated.n + _variance(control) / control.n
    se = comparison.extras.get("se", math.nan)
    reduction = 1 - se * se / se_raw2 if se_raw2 > 0 and math.isfinite(se) else math.nan
    return _add_extras(
        comparison,
        theta=theta,
        mean_raw_arm=treated.mean_y,
        mean_raw_baseline=control.mean_y,
        mean_covariate_arm=treated.mean_c,
        mean_covariate_baseline=control.mean_c,
        variance_reduction=reduction,
    )


def proportion(
    treated: SufficientStats,
    control: SufficientStats,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
) -> Comparison:
    """Two proportions of a 0/1 outcome: pooled z-test, unpooled Wald interval.

    Raises:
        ValueError: the sums are not those of a 0/1 outcome (``sum_y2 != sum_y``).
    """
    for name, stats in (("treated", treated), ("control", control)):
        if abs(stats.sum_y2 - stats.sum_y) > 1e-9 * max(stats.n, 1) or not (
            0 <= stats.sum_y <= stats.n
        ):
            raise ValueError(f"{name} statistics are not those of a 0/1 outcome: 'proportion'.")
    early = _too_small(treated, control, arm, baseline, metric, "proportion", alpha)
    if early is not None:
        return early
    n_t, n_c = treated.n, control.n
    p_t, p_c = treated.sum_y / n_t, control.sum_y / n_c
    pooled = (treated.sum_y + control.sum_y) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    diff = p_t - p_c
    n_units = n_t + n_c
    if se0 == 0:
        return degenerate(
            arm,
            baseline,
            metric,
            "proportion",
            "zero_variance",
            n_units,
            alpha,
            estimate=diff,
            mean_arm=p_t,
            mean_baseline=p_c,
            n_arm=n_t,
            n_baseline=n_c,
        )
    from scipy import special

    v_t, v_c = p_t * (1 - p_t) / n_t, p_c * (1 - p_c) / n_c
    se = math.sqrt(v_t + v_c)
    z = diff / se0
    p_value = float(2 * special.ndtr(-abs(z)))
    q = float(special.ndtri(1 - alpha / 2))
    rel, rel_low, rel_high, rel_se = _relative(p_t, v_t, p_c, v_c, q)
    return Comparison(
        arm,
        baseline,
        metric,
        "proportion",
        diff,
        diff - q * se,
        diff + q * se,
        rel,
        rel_low,
        rel_high,
        p_value,
        n_units,
        status=OK,
        alpha=alpha,
        extras={
            "se": se,
            "se_pooled": se0,
            "df": None,
            "statistic": z,
            "rel_se": rel_se,
            "mean_arm": p_t,
            "mean_baseline": p_c,
            "n_arm": n_t,
            "n_baseline": n_c,
        },
    )


TESTS = {"welch": welch, "ratio": ratio, "cuped": cuped, "proportion": proportion}


def compare(
    treated: SufficientStats,
    control: SufficientStats,
    method: str,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
) -> Comparison:
    """One comparison by ``method`` (one of :data:`METHODS`)."""
    if method not in TESTS:
        raise ValueError(f"method == {method!r}, must be one of {list(METHODS)}.")
    _check_alpha(alpha)
    return TESTS[method](treated, control, arm=arm, baseline=baseline, metric=metric, alpha=alpha)


def compare_all(
    stats_by_arm: Mapping[Any, SufficientStats],
    control: Any,
    method: str,
    alpha: float = 0.05,
    *,
    metric: str = "outcome",
) -> tuple[Comparison, ...]:
    """Every variant vs ``control`` and every variant vs every other, Holm-adjusted.

    The pairs follow :func:`~loyalty_pilot.experiments.multiple.family` in the mapping's
    order (variant vs variant: the baseline is the arm that comes first). ``p_value`` is
    the raw p-value; the extras add ``p_value_raw``, ``p_value_adjusted`` (Holm across
    the whole family), ``adjustment`` and ``family_size``. Arm names are rendered as text.
    """
    if control not in stats_by_arm:
        raise ValueError(f"control {control!r} is not one of the arms {list(stats_by_arm)}.")
    if len(stats_by_arm) < 2:
        raise ValueError(f"only the control arm {control!r}: no other arm to compare.")
    comparisons = [
        compare(
            stats_by_arm[a],
            stats_by_arm[b],
            method,
            arm=arm_name(a),
            baseline=arm_name(b),
            metric=metric,
            alpha=alpha,
        )
        for a, b in family(list(stats_by_arm), control)
    ]
    return with_holm(comparisons)


@dataclass(frozen=True)
class SampleRatio:
    """Chi-square test of the arm sizes against the planned shares.

    ``observed`` and ``expected`` are counts per arm, ``df`` the arms minus one.
    """

    statistic: float
    p_value: float
    df: int
    observed: dict[str, int]
    expected: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "df": self.df,
            "observed": dict(self.observed),
            "expected": dict(self.expected),
        }


def sample_ratio_mismatch(
    counts: Mapping[Any, int | SufficientStats],
    expected_shares: Mapping[Any, float] | None = None,
) -> SampleRatio:
    """Pearson chi-square of the customers per arm against the planned shares.

    Args:
        counts: arm -> customers (or its :class:`SufficientStats`).
        expected_shares: arm -> planned share (any positive weights, normalised); equal
            shares when None. Arms planned but absent from ``counts`` count 0 customers.

    The p-value equals ``scipy.stats.chisquare(observed, expected)``; NaN with fewer than
    two arms or no customer.

    Raises:
        ValueError: an arm of ``counts`` has no share, or a share is not positive.
    """
    observed = {
        arm_name(a): int(v.n if isinstance(v, SufficientStats) else v) for a, v in counts.items()
    }
    if expected_shares is None:
        shares = dict.fromkeys(observed, 1.0)
    else:
        shares = {arm_name(a): float(s) for a, s in expected_shares.items()}
        missing = [a for a in observed if a not in shares]
        if missing:
            raise ValueError(f"expected_shares has no share for arm {missing[0]!r}.")
        bad = [a for a, s in shares.items() if not (math.isfinite(s) and s > 0)]
        if bad:
            raise ValueError(f"expected_shares[{bad[0]!r}] == {shares[bad[0]]!r}, must be > 0.")
        for a in shares:
            observed.setdefault(a, 0)
    total = sum(observed.values())
    weight = sum(shares.values())
    expected = {a: total * shares[a] / weight for a in observed}
    df = len(observed) - 1
    if df < 1 or total == 0:
        return SampleRatio(math.nan, math.nan, max(df, 0), observed, expected)
    from scipy import special

    statistic = sum((observed[a] - expected[a]) ** 2 / expected[a] for a in observed)
    p_value = float(special.chdtrc(df, statistic))
    return SampleRatio(float(statistic), p_value, df, observed, expected)


def evaluate_customers(
    frame: pd.DataFrame,
    *,
    arm: str,
    outcome: str,
    method: str,
    control: Any,
    covariate: str | None = None,
    denominator: str | None = None,
    alpha: float = 0.05,
    expected_shares: Mapping[Any, float] | None = None,
) -> tuple[Evaluation, float]:
    """Compare the arms of a customer table, one row per customer: the file mode.

    Args:
        frame: one row per customer.
        arm: column of arm labels. Labels 0/1 (or booleans) are named ``"control"`` (0)
            and ``"treatment"`` (1), unless ``control`` is 1 (as
            :func:`~loyalty_pilot.experiments.evaluate.evaluate`).
        outcome: column of the outcome (numbers; 0/1 or booleans for ``"proportion"``).
        method: ``"welch"``, ``"ratio"`` (needs ``denominator``), ``"cuped"`` (needs
            ``covariate``) or ``"proportion"``.
        control: the control arm's label.
        covariate: column of the pre-period value, for ``"cuped"`` only.
        denominator: column of the ratio's denominator (e.g. baskets), ``"ratio"`` only.
        alpha: level of the two-sided intervals.
        expected_shares: planned share per arm for the sample-ratio check (equal if None).

    Returns:
        The :class:`~loyalty_pilot.experiments.evaluate.Evaluation` with every comparison
        of :func:`compare_all` (variant vs control, then variant vs variant; Holm-adjusted
        p-values in the extras) and the sample-ratio-mismatch p-value (chi-square over all
        arms, :func:`sample_ratio_mismatch`).

    Raises:
        ValueError: a column is missing, not numeric or has a missing value; a proportion
            outcome is not 0/1; the covariate (denominator) is missing for ``"cuped"``
            (``"ratio"``) or given to another method; the control is not an arm or the
            only one; a parameter is invalid. The message names the column or value.
    """
    if method not in METHODS:
        raise ValueError(f"method == {method!r}, must be one of {list(METHODS)}.")
    _check_alpha(alpha)
    if method == "cuped" and covariate is None:
        raise ValueError("method='cuped' needs a covariate column (the pre-period value).")
    if method != "cuped" and covariate is not None:
        raise ValueError(f"covariate {covariate!r} is used by method='cuped' only, not {method!r}.")
    if method == "ratio" and denominator is None:
        raise ValueError("method='ratio' needs a denominator column (e.g. baskets).")
    if method != "ratio" and denominator is not None:
        raise ValueError(
            f"denominator {denominator!r} is used by method='ratio' only, not {method!r}."
        )
    for name in (arm, outcome, covariate, denominator):
        if name is not None and name not in frame.columns:
            raise ValueError(f"column {name!r} is not in the table.")
    codes, order = _arm_labels(frame[arm], control, arm)
    control_name = order[0]
    y = _numbers(frame, outcome, allow_bool=method == "proportion")
    if method == "proportion":
        bad = (y != 0) & (y != 1)
        if bad.any():
            value = frame[outcome].iloc[int(np.flatnonzero(bad)[0])]
            raise ValueError(
                f"column {outcome!r} holds {_show(value)}: method='proportion' needs 0/1 values."
            )
    if len(order) < 2:
        raise ValueError(f"column {arm!r} has only the control arm {control_name!r}.")
    by_code = aggregate(
        codes,
        y,
        denominator=None if denominator is None else _numbers(frame, denominator),
        covariate=None if covariate is None else _numbers(frame, covariate),
    )
    stats_by_arm = {a: by_code[i] for i, a in enumerate(order)}
    comparisons = compare_all(stats_by_arm, control_name, method, alpha, metric=outcome)
    if expected_shares is not None:
        expected_shares = {_share_key(k, order): v for k, v in expected_shares.items()}
    srm = sample_ratio_mismatch(stats_by_arm, expected_shares)
    evaluation = Evaluation(
        comparisons=comparisons,
        method=method,
        metric=outcome,
        n_units=len(frame),
        arms=tuple(order),
        control=control_name,
        alpha=float(alpha),
    )
    return evaluation, srm.p_value


# --- internals -------------------------------------------------------------------------


def _variance(stats: SufficientStats) -> float:
    return _clean_zero(stats.var_y, stats.sum_y2 / stats.n)


def _is_zero(variance: float, scale: float) -> bool:
    return not variance > ZERO_TOLERANCE * scale


def _clean_zero(variance: float, scale: float) -> float:
    return 0.0 if _is_zero(variance, scale) else variance


def _too_small(
    treated: SufficientStats,
    control: SufficientStats,
    arm: str,
    baseline: str,
    metric: str,
    method: str,
    alpha: float,
) -> Comparison | None:
    n_units = treated.n + control.n
    if treated.n == 0 or control.n == 0:
        return degenerate(
            arm,
            baseline,
            metric,
            method,
            "no_units",
            n_units,
            alpha,
            n_arm=treated.n,
            n_baseline=control.n,
        )
    if treated.n < 2 or control.n < 2:
        return degenerate(
            arm,
            baseline,
            metric,
            method,
            "one_unit_per_arm",
            n_units,
            alpha,
            n_arm=treated.n,
            n_baseline=control.n,
        )
    return None


def _two_sample(
    arm: str,
    baseline: str,
    metric: str,
    method: str,
    alpha: float,
    treated: tuple[float, float, int],
    control: tuple[float, float, int],
) -> Comparison:
    """Welch from (mean, unit-level variance, n) of each arm."""
    (m_t, var_t, n_t), (m_c, var_c, n_c) = treated, control
    v_t, v_c = var_t / n_t, var_c / n_c
    diff = m_t - m_c
    n_units = n_t + n_c
    base = {"mean_arm": m_t, "mean_baseline": m_c, "n_arm": n_t, "n_baseline": n_c}
    if not v_t + v_c > 0:
        return degenerate(
            arm, baseline, metric, method, "zero_variance", n_units, alpha, estimate=diff, **base
        )
    from scipy import special

    se = math.sqrt(v_t + v_c)
    df = (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1) + v_c**2 / (n_c - 1))
    t = diff / se
    p_value = float(2 * special.stdtr(df, -abs(t)))
    q = float(special.stdtrit(df, 1 - alpha / 2))
    rel, rel_low, rel_high, rel_se = _relative(m_t, v_t, m_c, v_c, q)
    return Comparison(
        arm,
        baseline,
        metric,
        method,
        diff,
        diff - q * se,
        diff + q * se,
        rel,
        rel_low,
        rel_high,
        p_value,
        n_units,
        status=OK,
        alpha=alpha,
        extras={"se": se, "df": df, "statistic": t, "rel_se": rel_se, **base},
    )


def _relative(
    m_t: float, v_t: float, m_c: float, v_c: float, q: float
) -> tuple[float, float, float, float]:
    """``m_t / m_c - 1`` and its interval (``v`` = variances of the means).

    Both means positive (sales, baskets, proportions): the delta-method interval on
    ``log(m_t / m_c)`` mapped back by ``exp(x) - 1``
    (:func:`~loyalty_pilot.experiments.results.relative_of_means`), which cannot cross
    -100 %. A non-positive arm mean (a CUPED-adjusted mean or a metric that can be
    negative, where -100 % is no bound): the delta-method interval on the ratio itself.
    ``rel_se`` is the delta-method standard error of the ratio either way.
    """
    if not m_c > 0:
        return math.nan, math.nan, math.nan, math.nan
    if m_t > 0:
        rel, low, high, rel_se = relative_of_means(m_t, v_t, m_c, v_c, q)
        if math.isfinite(low):
            return rel, low, high, rel_se
    rel = m_t / m_c - 1
    rel_se = math.sqrt(v_t / m_c**2 + m_t**2 * v_c / m_c**4)
    return rel, rel - q * rel_se, rel + q * rel_se, rel_se


def _add_extras(comparison: Comparison, **extras: Any) -> Comparison:
    return dataclasses.replace(comparison, extras={**comparison.extras, **extras})


def _check_alpha(alpha: Any) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1).")


def _arm_labels(column: pd.Series, control: Any, name: str) -> tuple[np.ndarray, list[str]]:
    """(arm code per row, arm names by code): the control is code 0, the other arms
    follow in order of first appearance; 0/1 arms are named as in ``evaluate``."""
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"column {name!r} has a missing arm at row {row}.")
    if _zero_one(column):
        if _same(control, "control") or _same(control, 0):
            control_value = 0
        elif _same(control, 1):
            control_value = 1
        else:
            raise ValueError(
                f"control arm {control!r} is not an arm of column {name!r}: the arms are 0 and 1."
            )
        is_control = column.to_numpy() == control_value
        if not is_control.any():
            raise ValueError(f"control arm {control_value!r} has no customer in column {name!r}.")
        return (~is_control).astype(np.intp), list(ZERO_ONE_NAMES[: 1 + int(not is_control.all())])
    codes, uniques = pd.factorize(column)
    text = [arm_name(v) for v in uniques]
    control_name = arm_name(control)
    if control_name not in text:
        raise ValueError(
            f"control arm {control_name!r} is not one of the arms {sorted(set(text))} of {name!r}."
        )
    order = [control_name] + [a for a in dict.fromkeys(text) if a != control_name]
    position = {a: i for i, a in enumerate(order)}
    remap = np.array([position[a] for a in text], dtype=np.intp)
    return remap[codes], order


def _zero_one(column: pd.Series) -> bool:
    """:func:`~loyalty_pilot.experiments.evaluate.is_zero_one`, by min / max for an integer
    or boolean column (no missing value here)."""
    if pd.api.types.is_bool_dtype(column):
        return True
    if pd.api.types.is_integer_dtype(column) and len(column):
        values = column.to_numpy()
        return bool(values.min() >= 0 and values.max() <= 1)
    return is_zero_one(column)


def _same(value: Any, target: Any) -> bool:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(target, str):
        return isinstance(value, str) and value == target
    if isinstance(value, str):
        return value.strip() == str(target)
    return value == target and not isinstance(value, str)


def _share_key(key: Any, order: list[str]) -> str:
    """An expected_shares key as an arm name (0 and 1 name the arms of 0/1 labels)."""
    text = arm_name(key)
    if text not in order and set(order) <= set(ZERO_ONE_NAMES) and text in ("0", "1"):
        return ZERO_ONE_NAMES[int(text)]
    return text


def _numbers(frame: pd.DataFrame, column: str, *, allow_bool: bool = False) -> np.ndarray:
    """The column as finite floats, or a ValueError naming it and the first bad row."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        if allow_bool:
            return raw.to_numpy(dtype=float)
        raise ValueError(f"column {column!r} holds booleans, must hold numbers.")
    if pd.api.types.is_float_dtype(raw) or pd.api.types.is_integer_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)  # no copy for float64
    else:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"column {column!r}: value {_show(raw.iloc[i])} at row {i} is not a finite number."
        )
    return values


def _show(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)
