"""ratio_did: the total-sales ratio-of-ratios DiD, pinned to hand-worked and independent figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments._power_kernels import welch_bm_df
from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.ratio import ratio_did, ratio_fits, recent_weeks


def chain_panel(n=9, n_periods=30, n_pre=20, treated=(1, 4, 6), seed=0, noise=0.1):
    """Stores of very different sizes (log-normal), multiplicative noise."""
    rng = np.random.default_rng(seed)
    size = 100.0 * np.exp(rng.normal(0.0, 1.0, n))
    trend = rng.normal(0.0, 0.01, n)[:, None] * np.arange(n_periods)
    y = size[:, None] * np.exp(trend + rng.normal(0.0, noise, (n, n_periods)))
    mask = np.zeros(n, dtype=bool)
    mask[list(treated)] = True
    return PanelData(y, np.arange(n), np.arange(n_periods), mask, np.arange(n_periods) >= n_pre)


def hand_panel():
    y = np.array(
        [
            [10.0, 10.0, 12.0, 12.0],
            [30.0, 30.0, 33.0, 33.0],
            [10.0, 10.0, 10.0, 10.0],
            [20.0, 20.0, 21.0, 21.0],
            [40.0, 40.0, 40.0, 44.0],
        ]
    )
    treated = np.array([True, True, False, False, False])
    return PanelData(y, np.arange(5), np.arange(4), treated, np.arange(4) >= 2)


def test_hand_worked_case():
    """Treated: pre 80, test 90 (x 9/8); controls: pre 140, test 146 (x 146/140)."""
    result = ratio_did(hand_panel())
    assert result.status == "ok"
    tau = math.log(90 / 80) - math.log(146 / 140)
    assert result.relative == pytest.approx((90 / 80) / (146 / 140) - 1, rel=1e-12)
    assert result.extras["log_estimate"] == pytest.approx(tau, rel=1e-12)
    # the absolute effect per treated store and week: m (1 - exp(-tau)), m = 90 / 4
    assert result.estimate == pytest.approx(22.5 * (1 - math.exp(-tau)), rel=1e-12)
    assert result.extras["growth_treated"] == pytest.approx(9 / 8)
    assert result.extras["growth_control"] == pytest.approx(146 / 140)
    assert result.extras["treated_share"] == pytest.approx(90 / 236)
    # hand-worked HC2: within each arm w_i = pre_i / arm pre, r_i = growth_i / arm growth,
    # V = sum w_i^2 (r_i - 1)^2 / (1 - w_i); the control store 10 -> 10 and so on.
    w1, r1 = np.array([10, 30]) / 40, np.array([1.2, 1.1]) / (9 / 8)
    w0, r0 = np.array([10, 20, 40]) / 70, np.array([1.0, 1.05, 1.05]) / (146 / 140)
    var = sum(np.sum(w**2 * (r - 1) ** 2 / (1 - w)) for w, r in ((w1, r1), (w0, r0)))
    assert result.extras["se"] == pytest.approx(math.sqrt(var), rel=1e-12)
    for key in ("n_treated", "n_control", "n_pre", "n_post"):
        assert result.extras[key] == {"n_treated": 2, "n_control": 3, "n_pre": 2, "n_post": 2}[key]
    assert result.extras["scale"] == "total"


def test_point_estimate_is_the_ratio_of_totals_by_pandas():
    data = chain_panel(n=12, treated=(0, 3, 5, 8, 10))
    long = pd.DataFrame(data.y).stack().rename("sales").reset_index()
    long.columns = ["store", "week", "sales"]
    long["treated"] = data.treated[long["store"]]
    long["post"] = data.post[long["week"]]
    totals = long.groupby(["treated", "post"])["sales"].sum()
    counterfactual = totals[True, False] * totals[False, True] / totals[False, False]
    theta = totals[True, True] / counterfactual - 1
    result = ratio_did(data)
    assert result.relative == pytest.approx(theta, rel=1e-12)
    m = long[long.treated & long.post]["sales"].mean()
    tau = math.log1p(theta)
    assert result.estimate == pytest.approx(m * (1 - math.exp(-tau)), rel=1e-10)


@pytest.mark.parametrize("treated", [(1, 4, 6), (0, 1, 2, 3, 4, 5), (2, 7)])
def test_variance_equals_statsmodels_wls_hc2_by_the_delta_method(treated):
    import statsmodels.api as sm

    data = chain_panel(treated=treated, seed=len(treated))
    post, pre = data.y[:, data.post].mean(axis=1), data.y[:, ~data.post].mean(axis=1)
    x = np.column_stack([data.treated, ~data.treated]).astype(float)
    fit = sm.WLS(post / pre, x, weights=pre).fit(cov_type="HC2")
    r1, r0 = fit.params  # the arms' growth ratios: weighted means of store growth
    grad = np.array([1 / r1, -1 / r0])
    result = ratio_did(data)
    assert result.extras["log_estimate"] == pytest.approx(math.log(r1 / r0), rel=1e-12)
    assert result.extras["se"] == pytest.approx(math.sqrt(grad @ fit.cov_params() @ grad), 1e-10)


def test_adjusted_variance_equals_statsmodels_wls_hc2():
    """adjust='regression': beta from the pooled WLS of log growth on the arms and the
    momentum; growths divided by exp(beta x); the variance of the arms' contrast of the
    relative adjusted growths by WLS HC2 with the momentum in the design."""
    import statsmodels.api as sm

    data = chain_panel(n=14, treated=(0, 2, 4, 6, 9, 11), seed=5)
    y, post_mask = data.y, data.post
    pre, post = y[:, ~post_mask].mean(axis=1), y[:, post_mask].mean(axis=1)
    k = recent_weeks(int((~post_mask).sum()))
    mom = np.log(y[:, ~post_mask][:, -k:].mean(axis=1) / pre)
    x = np.column_stack([data.treated, ~data.treated, mom - mom.mean()]).astype(float)
    beta = sm.WLS(np.log(post / pre), x, weights=pre).fit().params[2]
    adjusted = post * np.exp(-beta * x[:, 2])
    t = data.treated
    r1, r0 = adjusted[t].sum() / pre[t].sum(), adjusted[~t].sum() / pre[~t].sum()
    rel = adjusted / (np.where(t, r1, r0) * pre)
    fit = sm.WLS(rel, x, weights=pre).fit(cov_type="HC2")
    c = np.array([1.0, -1.0, 0.0])
    result = ratio_did(data, adjust="regression")
    assert result.extras["beta"] == pytest.approx(beta, rel=1e-9)
    assert result.extras["log_estimate"] == pytest.approx(math.log(r1 / r0), rel=1e-10)
    assert result.extras["se"] == pytest.approx(math.sqrt(c @ fit.cov_params() @ c), rel=1e-9)


@pytest.mark.parametrize("adjust", ["none", "regression"])
def test_df_is_bell_mccaffrey_by_dense_matrices(adjust):
    """Imbens-Kolesar df on the sqrt(w)-transformed OLS: (tr DM)^2 / tr(DMDM), M = I - H."""
    data = chain_panel(n=11, treated=(0, 1, 5, 7), seed=9)
    y, post_mask = data.y, data.post
    pre = y[:, ~post_mask].mean(axis=1)
    cols = [data.treated, ~data.treated]
    c = [1.0, -1.0]
    if adjust == "regression":
        k = recent_weeks(int((~post_mask).sum()))
        cols.append(np.log(y[:, ~post_mask][:, -k:].mean(axis=1) / pre))
        c.append(0.0)
    x = np.sqrt(pre)[:, None] * np.column_stack(cols).astype(float)
    bread = np.linalg.inv(x.T @ x)
    m = np.eye(len(x)) - x @ bread @ x.T
    lin = x @ bread @ np.array(c)
    d = np.diag(lin**2 / np.diag(m))
    df = np.trace(d @ m) ** 2 / np.trace(d @ m @ d @ m)
    assert ratio_did(data, adjust=adjust).extras["df"] == pytest.approx(df, rel=1e-10)


def test_equal_sales_give_the_welch_df_of_did():
    rng = np.random.default_rng(3)
    y = 100.0 * np.exp(rng.normal(0, 0.05, (10, 12)))
    y[:, :8] *= 100.0 / y[:, :8].mean(axis=1, keepdims=True)  # every pre mean is 100
    treated = np.arange(10) < 3
    result = ratio_did(PanelData(y, np.arange(10), np.arange(12), treated, np.arange(12) >= 8))
    assert result.extras["df"] == pytest.approx(welch_bm_df(3, 7), rel=1e-12)


def test_interval_is_honest_about_the_t_quantile_and_never_below_minus_100_percent():
    from scipy import stats

    data = chain_panel(n=8, treated=(0, 1, 2, 3), seed=2, noise=0.6)
    y = data.y.copy()
    y[np.ix_(data.treated, data.post)] *= 0.02  # the treated stores lose 98 % of sales
    result = ratio_did(PanelData(y, data.units, data.periods, data.treated, data.post))
    tau, se, df = (result.extras[k] for k in ("log_estimate", "se", "df"))
    crit = stats.t.ppf(0.975, df)
    assert result.extras["log_ci_low"] == pytest.approx(tau - crit * se)
    assert result.rel_ci_low == pytest.approx(math.expm1(tau - crit * se))
    assert -1.0 < result.rel_ci_low < result.relative < result.rel_ci_high
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(tau) / se, df))


@pytest.mark.parametrize("adjust", ["none", "regression"])
def test_a_multiplicative_effect_shifts_the_log_estimate_exactly(adjust):
    data = chain_panel(n=10, treated=(0, 3, 6, 9), seed=4)
    base = ratio_did(data, adjust=adjust)
    y = data.y.copy()
    y[np.ix_(data.treated, data.post)] *= 1.3
    moved = ratio_did(PanelData(y, data.units, data.periods, data.treated, data.post),
                      adjust=adjust)  # fmt: skip
    assert moved.extras["log_estimate"] - base.extras["log_estimate"] == pytest.approx(
        math.log(1.3), rel=1e-10
    )
    assert moved.extras["se"] == pytest.approx(base.extras["se"], rel=1e-10)
    assert moved.extras["df"] == pytest.approx(base.extras["df"], rel=1e-10)


def test_batched_fits_equal_single_panels():
    rng = np.random.default_rng(8)
    post = 100 * np.exp(rng.normal(0, 1, (5, 9)))
    pre = post * np.exp(rng.normal(0, 0.1, (5, 9)))
    fits = ratio_fits(post, pre, 4)
    for j in range(5):
        one = ratio_fits(post[j : j + 1], pre[j : j + 1], 4)
        assert one.estimate[0] == pytest.approx(fits.estimate[j], rel=1e-12)
        assert one.se[0] == pytest.approx(fits.se[j], rel=1e-12)
        assert one.df[0] == pytest.approx(fits.df[j], rel=1e-12)


def test_degenerate_data_returns_a_status():
    data = hand_panel()
    one = PanelData(data.y, data.units, data.periods, np.array([1, 0, 0, 0, 0], bool), data.post)
    assert ratio_did(one).status == "one_unit_per_arm"
    none = PanelData(data.y, data.units, data.periods, np.zeros(5, bool), data.post)
    assert ratio_did(none).status == "no_units"
    assert ratio_did(PanelData(data.y, data.units, data.periods, data.treated,
                               np.zeros(4, bool))).status == "no_post_period"  # fmt: skip
    y = data.y.copy()
    y[2, :2] = 0.0  # a store without pre-period sales has no growth
    zero_pre = ratio_did(PanelData(y, data.units, data.periods, data.treated, data.post))
    assert zero_pre.status == "not_identified"
    assert math.isnan(zero_pre.relative)
    assert zero_pre.extras["scale"] == "total"
    flat = np.tile(np.array([[1.0, 1.0, 1.1, 1.1]]), (5, 1)) * np.arange(1, 6)[:, None]
    assert ratio_did(PanelData(flat, data.units, data.periods, data.treated,
                               data.post)).status == "zero_variance"  # fmt: skip
    # every store's pre weeks are flat: the momentum is 0 for all, not identified
    assert ratio_did(data, adjust="regression").status == "not_identified"


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="adjust == 'cuped'"):
        ratio_did(hand_panel(), adjust="cuped")
    with pytest.raises(ValueError, match=r"alpha == 1\.5"):
        ratio_did(hand_panel(), alpha=1.5)
