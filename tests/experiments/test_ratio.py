"""ratio_did: the total-sales ratio-of-ratios DiD, pinned to hand-worked and independent figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.panel import PanelData
from loyalty_pilot.experiments.ratio import ratio_did, ratio_fits, recent_weeks, tail_probability


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
    # hand-worked CR2 under the working model Var(r_i) ~ phi_i = pre_i^-1/2: within each
    # arm, w_i = pre_i / arm pre, r_i = growth_i / arm growth, the residual r_i - sum w r
    # has variance phi_i (1 - 2 w_i) + sum_j w_j^2 phi_j, so
    # V = sum w_i^2 (r_i - 1)^2 phi_i / (phi_i (1 - 2 w_i) + sum_j w_j^2 phi_j).
    pre1, pre0 = np.array([10.0, 30.0]), np.array([10.0, 20.0, 40.0])
    w1, r1 = pre1 / 40, np.array([1.2, 1.1]) / (9 / 8)
    w0, r0 = pre0 / 70, np.array([1.0, 1.05, 1.05]) / (146 / 140)
    var = 0.0
    for pre, w, r in ((pre1, w1, r1), (pre0, w0, r0)):
        phi = pre**-0.5
        var += np.sum(w**2 * (r - 1) ** 2 * phi / (phi * (1 - 2 * w) + np.sum(w**2 * phi)))
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


def dense_cr2(x, pre, y, c, power):
    """Independent dense CR2 of ``c' coef`` of the WLS of ``y`` on ``x`` (weights ``pre``)
    under the working model ``Var(y_i) ~ pre_i^-power``: ``M = (I-H) Phi (I-H)'``,
    ``V = sum l_i^2 e_i^2 phi_i / M_ii``. Also returns ``l``, ``e``, ``phi`` and ``M``."""
    import statsmodels.api as sm

    fit = sm.WLS(y, x, weights=pre).fit()
    w = np.diag(pre)
    bread = np.linalg.inv(x.T @ w @ x)
    hat = x @ bread @ x.T @ w
    lin = w @ x @ bread @ c
    phi = pre**-power
    m = (np.eye(len(y)) - hat) @ np.diag(phi) @ (np.eye(len(y)) - hat).T
    var = np.sum(lin**2 * fit.resid**2 * phi / np.diag(m))
    return fit, var, lin, phi, m


@pytest.mark.parametrize("treated", [(1, 4, 6), (0, 1, 2, 3, 4, 5), (2, 7)])
def test_variance_equals_statsmodels_wls_hc2_with_the_one_over_sales_model(treated, monkeypatch):
    """With Var(growth) ~ 1 / pre the CR2 correction is the HC2 of the WLS (statsmodels)."""
    import statsmodels.api as sm

    from loyalty_pilot.experiments import ratio

    monkeypatch.setattr(ratio, "VARIANCE_POWER", 1.0)
    data = chain_panel(treated=treated, seed=len(treated))
    post, pre = data.y[:, data.post].mean(axis=1), data.y[:, ~data.post].mean(axis=1)
    x = np.column_stack([data.treated, ~data.treated]).astype(float)
    fit = sm.WLS(post / pre, x, weights=pre).fit(cov_type="HC2")
    r1, r0 = fit.params  # the arms' growth ratios: weighted means of store growth
    grad = np.array([1 / r1, -1 / r0])
    result = ratio_did(data)
    assert result.extras["log_estimate"] == pytest.approx(math.log(r1 / r0), rel=1e-12)
    assert result.extras["se"] == pytest.approx(math.sqrt(grad @ fit.cov_params() @ grad), 1e-10)


@pytest.mark.parametrize("treated", [(1, 4, 6), (0, 1, 2, 3, 4, 5), (2, 7)])
def test_variance_equals_a_dense_cr2_under_the_working_model(treated):
    """The default working model Var(growth_i) ~ pre_i^-1/2: dense matrices, statsmodels
    residuals of the WLS of the relative growths on the arms."""
    data = chain_panel(treated=treated, seed=len(treated))
    post, pre = data.y[:, data.post].mean(axis=1), data.y[:, ~data.post].mean(axis=1)
    t = data.treated
    r1, r0 = post[t].sum() / pre[t].sum(), post[~t].sum() / pre[~t].sum()
    x = np.column_stack([t, ~t]).astype(float)
    _, var, *_ = dense_cr2(x, pre, post / (np.where(t, r1, r0) * pre), np.array([1.0, -1.0]), 0.5)
    assert ratio_did(data).extras["se"] == pytest.approx(math.sqrt(var), rel=1e-10)


def test_adjusted_variance_equals_statsmodels_wls_and_a_dense_cr2():
    """adjust='regression': beta from the pooled WLS of log growth on the arms and the
    momentum; growths divided by exp(beta x); the variance of the arms' contrast of the
    relative adjusted growths by the CR2 with the momentum in the design."""
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
    c = np.array([1.0, -1.0, 0.0])
    _, var, *_ = dense_cr2(x, pre, rel, c, 0.5)
    result = ratio_did(data, adjust="regression")
    assert result.extras["beta"] == pytest.approx(beta, rel=1e-9)
    assert result.extras["log_estimate"] == pytest.approx(math.log(r1 / r0), rel=1e-10)
    assert result.extras["se"] == pytest.approx(math.sqrt(var), rel=1e-9)
    # and with Var ~ 1 / pre it is statsmodels' HC2
    hc2 = sm.WLS(rel, x, weights=pre).fit(cov_type="HC2")
    _, var1, *_ = dense_cr2(x, pre, rel, c, 1.0)
    assert var1 == pytest.approx(c @ hc2.cov_params() @ c, rel=1e-9)


def test_tail_probability_is_student_t_for_equal_eigenvalues():
    from scipy import stats

    for nu in (1, 2, 3, 7, 20):
        lam = np.zeros((3, nu + 1))
        lam[:, :nu] = 1.0 / nu
        b = np.zeros((3, nu + 1))
        b[:, nu] = 1.0
        q = np.array([1.0, 2.0, 3.0])
        assert tail_probability(lam, b, q) == pytest.approx(2 * stats.t.sf(q, nu), abs=1e-6)


def test_tail_probability_equals_a_seeded_simulation():
    """Unequal eigenvalues and a numerator correlated with the denominator."""
    rng = np.random.default_rng(1)
    lam = np.array([[0.7, 0.2, 0.1, 0.0], [0.05, 0.05, 0.4, 0.5]])
    b = np.array([[0.3, 0.0, 0.4, 0.866], [0.6, 0.0, 0.0, 0.8]])
    q = np.array([2.5, 2.0])
    w = rng.standard_normal((400_000, 4))
    for j in range(2):
        hits = (w @ b[j]) ** 2 > q[j] ** 2 * (w**2 @ lam[j])
        se = math.sqrt(hits.mean() * (1 - hits.mean()) / len(w))
        assert tail_probability(lam[j : j + 1], b[j : j + 1], q[j : j + 1])[0] == pytest.approx(
            hits.mean(), abs=4 * se
        )


@pytest.mark.parametrize(
    ("adjust", "treated", "n"), [("none", (0, 1, 5, 7), 11), ("none", (2, 5, 9, 13), 40),
                                 ("regression", (0, 1, 5, 7), 11)],
)  # fmt: skip
def test_df_give_the_exact_level_under_the_working_model(adjust, treated, n):
    """Simulated regressands with Var ~ pre^-1/2 (seeded): the t test with the reported df
    rejects 5 % of the time, where the Bell-McCaffrey df of a small arm of unequal sales
    do not (4 treated stores against 36 others: about 1.6 %)."""
    from scipy import stats

    data = chain_panel(n=n, treated=treated, seed=9)
    y, post_mask = data.y, data.post
    pre = y[:, ~post_mask].mean(axis=1)
    cols = [data.treated, ~data.treated]
    c = [1.0, -1.0]
    if adjust == "regression":
        k = recent_weeks(int((~post_mask).sum()))
        mom = np.log(y[:, ~post_mask][:, -k:].mean(axis=1) / pre)
        cols.append(mom - mom.mean())
        c.append(0.0)
    x = np.column_stack(cols).astype(float)
    _, _, lin, phi, m = dense_cr2(x, pre, np.ones(n), np.array(c), 0.5)
    w = np.diag(pre)
    bread = np.linalg.inv(x.T @ w @ x)
    resid_op = np.eye(n) - x @ bread @ x.T @ w
    rng = np.random.default_rng(7)
    sim = rng.standard_normal((200_000, n)) * np.sqrt(phi)
    e = sim @ resid_op.T
    t_stat = (sim @ lin) / np.sqrt((e**2) @ (lin**2 * phi / np.diag(m)))
    df = ratio_did(data, adjust=adjust).extras["df"]
    rate = np.mean(np.abs(t_stat) > stats.t.ppf(0.975, df))
    assert rate == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / len(sim)))
    if n == 40:  # the Satterthwaite df (about 2 here) are far too conservative
        d = lin**2 * phi / np.diag(m)
        bm = np.sum(d * np.diag(m)) ** 2 / np.trace(np.diag(d) @ m @ np.diag(d) @ m)
        assert np.mean(np.abs(t_stat) > stats.t.ppf(0.975, bm)) < 0.03


def test_equal_arms_of_equal_sales_give_the_pooled_t_df():
    """Equal pre sales, equal arms: V = (s1^2 + s0^2) / m, the pooled two-sample t."""
    rng = np.random.default_rng(3)
    y = 100.0 * np.exp(rng.normal(0, 0.05, (10, 12)))
    y[:, :8] *= 100.0 / y[:, :8].mean(axis=1, keepdims=True)  # every pre mean is 100
    treated = np.arange(10) < 5
    result = ratio_did(PanelData(y, np.arange(10), np.arange(12), treated, np.arange(12) >= 8))
    assert result.extras["df"] == pytest.approx(8.0, rel=1e-4)  # quadrature accuracy


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


def test_beyond_the_exact_df_cap_the_df_are_bell_mccaffreys(monkeypatch):
    from loyalty_pilot.experiments import ratio

    rng = np.random.default_rng(5)
    pre = rng.lognormal(10, 0.5, (20, 12))
    post = pre * rng.lognormal(0, 0.05, (20, 12))
    exact = ratio.ratio_fits(post, pre, 4)
    monkeypatch.setattr(ratio, "EXACT_DF_MAX_UNITS", 11)
    capped = ratio.ratio_fits(post, pre, 4)
    np.testing.assert_array_equal(capped.estimate, exact.estimate)
    np.testing.assert_array_equal(capped.se, exact.se)
    assert not np.allclose(capped.df, exact.df)  # the exact df differ from Bell-McCaffrey's
    monkeypatch.setattr(ratio, "exact_df", lambda *a: pytest.fail("exact df beyond the cap"))
    ratio.ratio_fits(post, pre, 4)
