"""Store-level estimators for a pilot on a balanced unit x period panel, valid with few stores.

* :func:`did`: two-way fixed effects difference-in-differences, clustered by unit, with
  CR2 + Bell-McCaffrey degrees of freedom (default), Stata's CR1, or a wild cluster
  bootstrap-t.
* :func:`ancova`: unit-level regression of the post-period mean on treatment and the
  pre-period mean (the panel analogue of CUPED), HC2 (= CR2 with one unit per cluster).
* :func:`event_study`: one effect per period relative to a reference pre period, with a
  joint pre-trend test.

All return a :class:`~loyalty_pilot.experiments.results.Comparison`; the relative uplift
and its interval come from :func:`~loyalty_pilot.experiments.results.relative_from_absolute`
applied to the estimate and to both bounds. Degenerate panels return a status instead of
raising (see :data:`~loyalty_pilot.experiments.results.STATUSES`).

With a balanced panel the unit and period effects are absorbed by double demeaning
(Frisch-Waugh-Lovell); the small-sample machinery, which keeps the leverage of the
absorbed effects, is in :mod:`loyalty_pilot.experiments.smallsample`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .panel import PanelData
from .results import OK, Comparison, degenerate, from_absolute
from .smallsample import ClusteredOLS, fit_clustered, wild_bootstrap

INFERENCES = ("cr2", "cr1", "wild")


def did(
    data: PanelData,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    inference: str = "cr2",
    n_boot: int = 9999,
    rng: np.random.Generator | int | None = None,
) -> Comparison:
    """Two-way fixed effects DiD: ``y_it = a_i + g_t + tau D_it + e_it``, ``D = treated x post``.

    ``inference``:

    * ``"cr2"``: CR2 (bias-reduced linearisation) variance clustered by unit, t-based
      interval and p-value with Bell-McCaffrey / Imbens-Kolesar degrees of freedom.
    * ``"cr1"``: Stata's CR1 (``G/(G-1) (n-1)/(n-k)``, ``k`` counting every fixed effect)
      with ``G - 1`` degrees of freedom, as statsmodels ``cov_type="cluster"``.
    * ``"wild"``: wild cluster bootstrap-t with the null imposed, ``n_boot`` draws seeded
      by ``rng``, Rademacher weights (Webb six-point below 12 units), CR2-studentised;
      the interval inverts the bootstrap test. ``se`` and ``df`` in extras are CR2's.

    ``estimate`` is the effect per unit and period. Extras: ``se``, ``df``,
    ``inference``, ``n_treated``, ``n_control``, ``n_pre``, ``n_post`` (+ ``n_boot``,
    ``boot_weights`` for ``"wild"``).

    >>> import numpy as np
    >>> from loyalty_pilot.experiments.panel import PanelData
    >>> y = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 5.0], [1.0, 1.5, 2.0], [0.0, 1.0, 2.5]])
    >>> data = PanelData(y, np.arange(4), np.arange(3), np.array([1, 1, 0, 0], bool),
    ...                  np.array([False, False, True]))
    >>> round(did(data).estimate, 3)
    0.625
    """
    _check_alpha(alpha)
    if inference not in INFERENCES:
        raise ValueError(f"inference == {inference!r}, must be one of {INFERENCES}.")
    if inference == "wild" and (not isinstance(n_boot, int | np.integer) or n_boot < 1):
        raise ValueError(f"n_boot == {n_boot!r}, must be a positive integer.")
    method = "did"
    early = _screen(data, method, arm, baseline, metric, alpha)
    if early is not None:
        return early
    y, treated, post = data.y, data.treated, data.post
    n_units, n_periods = y.shape
    fit = fit_clustered(
        _within(np.outer(treated, post).astype(float))[..., None], _within(y), kappa=1.0 / n_units
    )
    estimate = float(fit.coef[0])
    extras: dict[str, Any] = {"inference": inference, **_counts(data)}
    status = _status(data, fit)
    if status != OK:
        return degenerate(arm, baseline, metric, method, status, n_units, alpha, estimate, **extras)
    if inference == "cr1":
        se = math.sqrt(fit.vcov_cr1(n_units * n_periods, n_units + n_periods)[0, 0])
        df = float(n_units - 1)
    else:
        se = math.sqrt(fit.vcov_cr2()[0, 0])
        df = float(fit.bm_df(np.ones((1, 1)))[0])
    t_crit, p_value, ci_low, ci_high = _t_test(estimate, se, df, alpha)
    extras.update(se=se, df=df)
    if inference == "wild":
        boot = wild_bootstrap(
            fit,
            _within(y),
            alpha=alpha,
            n_boot=int(n_boot),
            rng=np.random.default_rng(rng),
            se=se,
            t_crit=t_crit,
        )
        p_value, ci_low, ci_high = boot["p_value"], boot["ci_low"], boot["ci_high"]
        extras.update(n_boot=int(n_boot), boot_weights=boot["boot_weights"])
    return _comparison(
        data, arm, baseline, metric, method, alpha, estimate, ci_low, ci_high, p_value, extras
    )


def ancova(
    data: PanelData,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    df_method: str = "bm",
) -> Comparison:
    """Unit-level ANCOVA: ``mean_post_i = a + tau treated_i + b mean_pre_i + e_i``.

    HC2 standard error (which is CR2 with one unit per cluster). ``df_method="bm"`` uses
    the Bell-McCaffrey degrees of freedom (Imbens & Kolesar 2016: HC2 + BM df keeps its
    level with few or unbalanced units); ``"residual"`` uses ``n - 3``. Extras: ``se``,
    ``df``, ``df_method``, ``pre_coef`` (the slope on the pre-period mean) and counts.
    """
    _check_alpha(alpha)
    if df_method not in ("bm", "residual"):
        raise ValueError(f"df_method == {df_method!r}, must be 'bm' or 'residual'.")
    method = "ancova"
    early = _screen(data, method, arm, baseline, metric, alpha)
    if early is not None:
        return early
    y, treated, post = data.y, data.treated, data.post
    n_units = y.shape[0]
    pre_mean = y[:, ~post].mean(axis=1)
    design = np.column_stack([np.ones(n_units), treated.astype(float), pre_mean])
    extras: dict[str, Any] = {"df_method": df_method, **_counts(data)}
    if np.linalg.matrix_rank(design) < 3:
        status = "one_unit_per_arm" if _small_arm(data) else "not_identified"
        return degenerate(arm, baseline, metric, method, status, n_units, alpha, **extras)
    fit = fit_clustered(design[:, None, :], y[:, post].mean(axis=1)[:, None], kappa=0.0)
    estimate = float(fit.coef[1])
    extras["pre_coef"] = float(fit.coef[2])
    status = _status(data, fit)
    if status != OK:
        return degenerate(arm, baseline, metric, method, status, n_units, alpha, estimate, **extras)
    se = math.sqrt(fit.vcov_cr2()[1, 1])
    if df_method == "bm":
        df = float(fit.bm_df(np.array([[0.0, 1.0, 0.0]]))[0])
    else:
        df = float(n_units - 3)
    _, p_value, ci_low, ci_high = _t_test(estimate, se, df, alpha)
    extras.update(se=se, df=df)
    return _comparison(
        data,
        arm,
        baseline,
        metric,
        method,
        alpha,
        estimate,
        ci_low,
        ci_high,
        p_value,
        extras,
    )


def event_study(
    data: PanelData,
    *,
    arm: str = "treatment",
    baseline: str = "control",
    metric: str = "outcome",
    alpha: float = 0.05,
    reference: int = -1,
    pre_test_periods: int | None = None,
) -> Comparison:
    """Dynamic TWFE: one treated x period effect per event time, relative to ``reference``.

    Event time is the period's position relative to the first post period (0 is the first
    week of the test, -1 the last week before it). Unit and period effects are absorbed;
    errors are CR2 clustered by unit with Bell-McCaffrey degrees of freedom per effect.

    ``estimate`` is the average of the post-period effects (each against the reference
    period, not against the whole pre period as in :func:`did`) with its CR2 standard
    error. Extras:

    * ``event_study``: list of ``{event_time, estimate, se, df, ci_low, ci_high,
      p_value}`` (the reference period has estimate 0 and NaN elsewhere);
    * ``pre_trend_p_value``: joint test that every pre-period effect is 0 (or only the
      last ``pre_test_periods`` of them), CR2 covariance and the approximate Hotelling
      T^2 "HTZ" F test of Pustejovsky & Tipton (2018), ``F(q, nu - q + 1)``; NaN with
      ``pre_trend_note`` when there is nothing to test or ``q >= G - 1`` (the cluster-
      robust covariance of q contrasts from G clusters is then singular or nearly so);
      ``pre_trend_F``, ``pre_trend_df`` give the statistic and its degrees of freedom.
      When the HTZ approximation breaks down (its denominator df ``nu - q + 1`` is not
      positive, or the statistic is negative or not finite: seen with few treated units,
      e.g. F -22 on df [38, -26]) no F test is reported (``pre_trend_F`` NaN, second df
      NaN): the p-value is then the Bonferroni-adjusted smallest of the q per-period
      CR2 t tests with their Bell-McCaffrey df (``pre_trend_test = "bonferroni_t"``), a
      valid if conservative small-sample test, and ``pre_trend_note`` says why.
      ``pre_trend_status``: ``"ok"`` (HTZ), ``"fallback"`` (Bonferroni) or
      ``"not_tested"`` (with the reason in the note).
    """
    _check_alpha(alpha)
    method = "event_study"
    n_units, n_periods = data.y.shape
    post = np.asarray(data.post, dtype=bool)
    n_pre = int((~post).sum())
    if n_pre and post.any() and not post[n_pre:].all():
        raise ValueError(
            "data.post must be False then True: the post periods must follow the pre periods."
        )
    event_time = np.arange(n_periods) - n_pre
    if n_pre and not -n_pre <= reference <= -1:
        raise ValueError(
            f"reference == {reference!r}, must be a pre-period event time in [{-n_pre}, -1]."
        )
    if pre_test_periods is not None and pre_test_periods < 1:
        raise ValueError(f"pre_test_periods == {pre_test_periods!r}, must be >= 1 or None.")
    early = _screen(data, method, arm, baseline, metric, alpha)
    if early is not None:
        return early
    keep = event_time != reference
    times = event_time[keep]
    design = np.eye(n_periods)[:, keep] - 1.0 / n_periods
    share = data.treated.mean()
    x = (data.treated - share)[:, None, None] * design[None]
    fit = fit_clustered(x, _within(data.y), kappa=1.0 / n_units)
    post_contrast = (times >= 0) / (times >= 0).sum()
    estimate = float(post_contrast @ fit.coef)
    extras: dict[str, Any] = {"reference": int(reference), **_counts(data)}
    status = _status(data, fit)
    if status != OK:
        return degenerate(arm, baseline, metric, method, status, n_units, alpha, estimate, **extras)
    from scipy import stats

    vcov = fit.vcov_cr2()
    se = math.sqrt(post_contrast @ vcov @ post_contrast)
    df = float(fit.bm_df(post_contrast[None, :])[0])
    _, p_value, ci_low, ci_high = _t_test(estimate, se, df, alpha)
    ses = np.sqrt(np.diag(vcov))
    dfs = fit.bm_df(np.eye(len(times)))
    crits = stats.t.ppf(1.0 - alpha / 2.0, dfs)
    effects = [
        {
            "event_time": int(reference),
            "estimate": 0.0,
            "se": math.nan,
            "df": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "p_value": math.nan,
        }
    ]
    for k, t in enumerate(times):
        effects.append(
            {
                "event_time": int(t),
                "estimate": float(fit.coef[k]),
                "se": float(ses[k]),
                "df": float(dfs[k]),
                "ci_low": float(fit.coef[k] - crits[k] * ses[k]),
                "ci_high": float(fit.coef[k] + crits[k] * ses[k]),
                "p_value": float(2.0 * stats.t.sf(abs(fit.coef[k]) / ses[k], dfs[k])),
            }
        )
    effects.sort(key=lambda e: e["event_time"])
    pre_p = np.array([e["p_value"] for e in effects if e["event_time"] < 0
                      and e["event_time"] != reference], dtype=float)  # fmt: skip
    extras.update(
        se=se, df=df, event_study=effects, **_pre_trend(fit, times, pre_test_periods, pre_p)
    )
    return _comparison(
        data,
        arm,
        baseline,
        metric,
        method,
        alpha,
        estimate,
        ci_low,
        ci_high,
        p_value,
        extras,
    )


def _pre_trend(
    fit: ClusteredOLS, times: np.ndarray, last: int | None, p_values: np.ndarray
) -> dict[str, Any]:
    """The joint pre-trend test (see :func:`event_study`); ``p_values``: the per-period t
    tests of the pre-period effects, in the order of ``times < 0``."""
    pre = np.flatnonzero(times < 0)
    if last is not None:
        pre = pre[-last:]
        p_values = p_values[-last:] if len(p_values) else p_values
    q, n_g = len(pre), fit.n_clusters
    out: dict[str, Any] = {
        "pre_trend_p_value": math.nan,
        "pre_trend_F": math.nan,
        "pre_trend_df": [q, math.nan],
        "pre_trend_test": "HTZ",
        "pre_trend_status": "not_tested",
    }
    if q == 0:
        out["pre_trend_note"] = "no pre-period effect besides the reference to test"
        return out
    if q >= n_g - 1:
        out["pre_trend_note"] = (
            f"{q} pre-period effects from {n_g} units: a joint test needs q < G - 1; "
            "set pre_test_periods"
        )
        return out
    try:
        test = fit.hotelling(np.eye(len(times))[pre])
    except np.linalg.LinAlgError:
        test = {"F": math.nan, "df2": math.nan, "p_value": math.nan}
        reason = "the CR2 covariance of the pre-period effects is singular"
    else:
        reason = (
            f"the HTZ F test is not valid here (F {test['F']:.4g} on df [{q}, "
            f"{test['df2']:.4g}]: its denominator df must be > 0 and F >= 0)"
        )
    valid = (
        math.isfinite(test["F"]) and test["F"] >= 0.0
        and math.isfinite(test["df2"]) and test["df2"] > 0.0
        and math.isfinite(test["p_value"])
    )  # fmt: skip
    if valid:
        out.update(
            pre_trend_p_value=test["p_value"],
            pre_trend_F=test["F"],
            pre_trend_df=[q, float(test["df2"])],
            pre_trend_status="ok",
        )
        return out
    p = np.asarray(p_values, dtype=float)
    if p.size != q or not np.isfinite(p).all():
        out["pre_trend_note"] = reason + "; the per-period t tests are not available either"
        return out
    out.update(
        pre_trend_p_value=float(min(1.0, q * p.min())),
        pre_trend_test="bonferroni_t",
        pre_trend_status="fallback",
        pre_trend_note=reason + f"; Bonferroni over the {q} per-period CR2 t tests instead",
    )
    return out


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1).")


def _within(y: np.ndarray) -> np.ndarray:
    """Double demeaning: residuals of a balanced panel on unit and period effects."""
    return y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()


def _counts(data: PanelData) -> dict[str, int]:
    return {
        "n_treated": data.n_treated,
        "n_control": data.n_control,
        "n_pre": int((~data.post).sum()),
        "n_post": int(data.post.sum()),
    }


def _small_arm(data: PanelData) -> bool:
    return data.n_treated < 2 or data.n_control < 2


def _screen(
    data: PanelData, method: str, arm: str, baseline: str, metric: str, alpha: float
) -> Comparison | None:
    """Statuses found before fitting: no units in an arm, no pre or no post period."""
    y = np.asarray(data.y)
    if y.ndim != 2 or y.shape != (len(data.treated), len(data.post)):
        raise ValueError(
            f"data.y has shape {y.shape}, must be (units, periods) = "
            f"({len(data.treated)}, {len(data.post)})."
        )
    if not np.isfinite(y).all():
        raise ValueError("data.y has non-finite values.")
    n_units = y.shape[0]
    status = None
    if data.n_treated == 0 or data.n_control == 0:
        status = "no_units"
    elif not data.post.any():
        status = "no_post_period"
    elif data.post.all():
        status = "no_pre_period"
    if status is None:
        return None
    return degenerate(arm, baseline, metric, method, status, n_units, alpha, **_counts(data))


def _status(data: PanelData, fit: ClusteredOLS) -> str:
    """Statuses found after fitting: one unit in an arm, residuals all zero."""
    if _small_arm(data):
        return "one_unit_per_arm"
    scale = float(np.abs(data.y).max())
    if float(np.abs(fit.resid).max()) <= 1e-12 * scale or scale == 0.0:
        return "zero_variance"
    return OK


def _t_test(
    estimate: float, se: float, df: float, alpha: float
) -> tuple[float, float, float, float]:
    """Critical value, two-sided p-value and the t interval ``estimate -/+ t_crit se``."""
    from scipy import stats

    t_crit = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    p_value = float(2.0 * stats.t.sf(abs(estimate) / se, df))
    return t_crit, p_value, estimate - t_crit * se, estimate + t_crit * se


def _comparison(
    data: PanelData,
    arm: str,
    baseline: str,
    metric: str,
    method: str,
    alpha: float,
    estimate: float,
    ci_low: float,
    ci_high: float,
    p_value: float,
    extras: dict[str, Any],
) -> Comparison:
    return from_absolute(
        arm, baseline, metric, method, estimate, ci_low, ci_high, p_value,
        data.y.shape[0], data.treated_post_mean(), alpha=alpha, extras=extras,
    )  # fmt: skip
