"""Customer-level tests pinned to scipy / statsmodels on the raw rows (1e-9 relative)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from loyalty_pilot.experiments.customer import (
    compare,
    compare_all,
    cuped,
    evaluate_customers,
    proportion,
    ratio,
    sample_ratio_mismatch,
    welch,
)
from loyalty_pilot.experiments.evaluate import Evaluation
from loyalty_pilot.experiments.sufficient import SufficientStats, aggregate_frame

REL = 1e-9
ARMS = ("control", "cash", "gift")
LIFT = {"control": 0.0, "cash": 6.0, "gift": 2.0}


def make_customers(seed: int = 0, sizes: tuple[int, ...] = (500, 480, 510)) -> pd.DataFrame:
    """One row per customer: revenue after, revenue before, baskets, retained (0/1)."""
    rng = np.random.default_rng(seed)
    arm = np.repeat(ARMS[: len(sizes)], sizes)
    rng.shuffle(arm)
    n = len(arm)
    pre = rng.gamma(2.0, 25.0, n)
    lift = np.array([LIFT[a] for a in arm])
    revenue = 0.8 * pre + rng.normal(0, 20, n) + lift
    baskets = rng.poisson(3.0 + lift / 10, n) + 1
    retained = (rng.uniform(size=n) < 0.55 + lift / 100).astype(int)
    return pd.DataFrame(
        {"arm": arm, "revenue": revenue, "pre": pre, "baskets": baskets, "retained": retained}
    )


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return make_customers()


def rows(frame: pd.DataFrame, label: str, column: str) -> np.ndarray:
    return frame.loc[frame["arm"] == label, column].to_numpy(dtype=float)


def stats_of(frame: pd.DataFrame, **columns: str) -> dict[str, SufficientStats]:
    return aggregate_frame(frame, arm="arm", outcome=columns.pop("outcome", "revenue"), **columns)


def delta_relative(a: np.ndarray, b: np.ndarray, q: float) -> tuple[float, float, float]:
    """mean(a)/mean(b) - 1 and the delta-method interval on the log of the ratio (the
    gradient of log(ma / mb) is (1 / ma, -1 / mb)), from the raw rows."""
    ma, mb = a.mean(), b.mean()
    grad = np.array([1 / ma, -1 / mb])
    cov = np.diag([a.var(ddof=1) / a.size, b.var(ddof=1) / b.size])
    se = math.sqrt(grad @ cov @ grad)
    log_ratio = math.log(ma / mb)
    return ma / mb - 1, math.expm1(log_ratio - q * se), math.expm1(log_ratio + q * se)


def assert_pinned(c, ref, estimate: float, rel: float = REL) -> None:
    """Comparison vs scipy's TtestResult of the same two samples (arm, baseline)."""
    ci = ref.confidence_interval(confidence_level=1 - c.alpha)
    assert c.status == "ok"
    assert c.estimate == pytest.approx(estimate, rel=rel)
    assert c.extras["statistic"] == pytest.approx(ref.statistic, rel=rel)
    assert c.p_value == pytest.approx(ref.pvalue, rel=rel)
    assert c.extras["df"] == pytest.approx(ref.df, rel=rel)
    assert c.ci_low == pytest.approx(ci.low, rel=rel)
    assert c.ci_high == pytest.approx(ci.high, rel=rel)
    assert c.extras["se"] == pytest.approx(estimate / ref.statistic, rel=rel)


@pytest.mark.parametrize(("arm", "alpha"), [("cash", 0.05), ("gift", 0.1)])
def test_welch_pinned_to_scipy(customers, arm, alpha):
    s = stats_of(customers)
    c = welch(s[arm], s["control"], arm=arm, metric="revenue", alpha=alpha)
    a, b = rows(customers, arm, "revenue"), rows(customers, "control", "revenue")
    ref = st.ttest_ind(a, b, equal_var=False)
    assert_pinned(c, ref, a.mean() - b.mean())
    assert c.n_units == a.size + b.size
    assert (c.extras["n_arm"], c.extras["n_baseline"]) == (a.size, b.size)
    assert c.extras["mean_arm"] == pytest.approx(a.mean(), rel=REL)
    rel, low, high = delta_relative(a, b, st.t.ppf(1 - alpha / 2, ref.df))
    assert c.relative == pytest.approx(rel, rel=REL)
    assert c.rel_ci_low == pytest.approx(low, rel=REL)
    assert c.rel_ci_high == pytest.approx(high, rel=REL)


def test_ratio_pinned_to_linearization_and_statsmodels_wls(customers):
    s = stats_of(customers, denominator="baskets")
    c = ratio(s["cash"], s["control"], arm="cash", metric="basket_size")
    lin, r, se = {}, {}, {}
    for label in ("cash", "control"):
        y, x = rows(customers, label, "revenue"), rows(customers, label, "baskets")
        r[label] = y.sum() / x.sum()
        # delta method = Welch on the linearized values R + (y - R x) / mean(x)
        lin[label] = r[label] + (y - r[label] * x) / x.mean()
        # and = WLS of y/x on a constant, weights x, HC1 (statsmodels)
        fit = sm.WLS(y / x, np.ones_like(y), weights=x).fit(cov_type="HC1")
        assert fit.params[0] == pytest.approx(r[label], rel=REL)
        se[label] = fit.bse[0]
    ref = st.ttest_ind(lin["cash"], lin["control"], equal_var=False)
    assert_pinned(c, ref, r["cash"] - r["control"])
    assert c.extras["se"] == pytest.approx(math.hypot(se["cash"], se["control"]), rel=REL)
    rel, low, high = delta_relative(lin["cash"], lin["control"], st.t.ppf(0.975, ref.df))
    assert c.relative == pytest.approx(rel, rel=REL)
    assert c.rel_ci_low == pytest.approx(low, rel=REL)
    assert c.rel_ci_high == pytest.approx(high, rel=REL)
    assert c.method == "ratio"


def test_cuped_pinned_to_adjusted_rows(customers):
    s = stats_of(customers, covariate="pre")
    c = cuped(s["cash"], s["control"], arm="cash", metric="revenue")
    two = customers[customers["arm"].isin(["cash", "control"])]
    y, pre = two["revenue"].to_numpy(), two["pre"].to_numpy()
    theta = np.cov(y, pre, ddof=1)[0, 1] / pre.var(ddof=1)
    adjusted = two.assign(adj=y - theta * (pre - pre.mean()))
    a, b = rows(adjusted, "cash", "adj"), rows(adjusted, "control", "adj")
    ref = st.ttest_ind(a, b, equal_var=False)
    assert_pinned(c, ref, a.mean() - b.mean())
    assert c.extras["theta"] == pytest.approx(theta, rel=REL)
    rel, low, high = delta_relative(a, b, st.t.ppf(0.975, ref.df))
    assert c.relative == pytest.approx(rel, rel=REL)
    assert c.rel_ci_low == pytest.approx(low, rel=REL)
    assert c.rel_ci_high == pytest.approx(high, rel=REL)
    plain = welch(s["cash"], s["control"])
    assert c.extras["variance_reduction"] == pytest.approx(
        1 - c.extras["se"] ** 2 / plain.extras["se"] ** 2, rel=REL
    )
    assert c.extras["variance_reduction"] > 0.5  # pre explains most of the variance here


def test_cuped_agrees_with_ols_to_first_order(customers):
    """Not a pin: OLS y ~ arm + (pre - mean) uses the within-arm slope and a sandwich se;
    it agrees with CUPED's pooled theta to O(1/n)."""
    s = stats_of(customers, covariate="pre")
    c = cuped(s["cash"], s["control"])
    two = customers[customers["arm"].isin(["cash", "control"])]
    pre = two["pre"].to_numpy()
    design = sm.add_constant(
        np.column_stack([(two["arm"] == "cash").to_numpy(float), pre - pre.mean()])
    )
    fit = sm.OLS(two["revenue"].to_numpy(), design).fit(cov_type="HC2")
    assert abs(fit.params[1] - c.estimate) < 0.1 * c.extras["se"]
    assert fit.bse[1] == pytest.approx(c.extras["se"], rel=0.01)


def test_proportion_pinned_to_statsmodels(customers):
    s = stats_of(customers, outcome="retained")
    c = proportion(s["cash"], s["control"], arm="cash", metric="retained")
    a, b = rows(customers, "cash", "retained"), rows(customers, "control", "retained")
    z, p = proportions_ztest([a.sum(), b.sum()], [a.size, b.size])
    low, high = confint_proportions_2indep(
        a.sum(), a.size, b.sum(), b.size, method="wald", compare="diff"
    )
    assert c.estimate == pytest.approx(a.mean() - b.mean(), rel=REL)
    assert c.extras["statistic"] == pytest.approx(z, rel=REL)
    assert c.p_value == pytest.approx(p, rel=REL)
    assert c.ci_low == pytest.approx(low, rel=REL)
    assert c.ci_high == pytest.approx(high, rel=REL)
    assert c.extras["df"] is None
    pa, pb = a.mean(), b.mean()
    # the relative interval: statsmodels' log interval of the ratio of two proportions
    low, high = confint_proportions_2indep(
        a.sum(), a.size, b.sum(), b.size, method="log", compare="ratio"
    )
    assert c.relative == pytest.approx(pa / pb - 1, rel=REL)
    assert c.rel_ci_low == pytest.approx(low - 1, rel=REL)
    assert c.rel_ci_high == pytest.approx(high - 1, rel=REL)
    se = math.sqrt(pa * (1 - pa) / a.size / pb**2 + pa**2 * pb * (1 - pb) / b.size / pb**4)
    assert c.extras["rel_se"] == pytest.approx(se, rel=REL)


def test_srm_pinned_to_scipy_chisquare():
    counts = {"control": 5_100, "cash": 4_950, "gift": 4_870}
    out = sample_ratio_mismatch(counts)
    ref = st.chisquare(list(counts.values()))
    assert out.statistic == pytest.approx(ref.statistic, rel=REL)
    assert out.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert out.df == 2
    shares = {"control": 0.5, "cash": 0.25, "gift": 0.25}
    out = sample_ratio_mismatch(counts, shares)
    total = sum(counts.values())
    ref = st.chisquare(list(counts.values()), [total * shares[a] for a in counts])
    assert out.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert out.p_value < 1e-100  # half planned in control, a third observed
    # a planned arm without customers counts as 0 observed
    out = sample_ratio_mismatch({"a": 60, "b": 40}, {"a": 1, "b": 1, "c": 1})
    ref = st.chisquare([60, 40, 0])
    assert out.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert out.observed == {"a": 60, "b": 40, "c": 0}
    assert math.isnan(sample_ratio_mismatch({"a": 10}).p_value)
    with pytest.raises(ValueError, match="no share for arm 'b'"):
        sample_ratio_mismatch({"a": 1, "b": 2}, {"a": 1})
    with pytest.raises(ValueError, match=r"expected_shares\['b'\] == 0.0"):
        sample_ratio_mismatch({"a": 1, "b": 2}, {"a": 1, "b": 0})


def test_degenerate_inputs_give_statuses():
    one = SufficientStats(1, 3.0, 9.0, sum_c=1.0, sum_c2=1.0, sum_yc=3.0)
    empty = SufficientStats(0, 0.0, 0.0, sum_c=0.0, sum_c2=0.0, sum_yc=0.0)
    many = SufficientStats(4, 10.0, 30.0, sum_c=4.0, sum_c2=6.0, sum_yc=11.0)
    for method in ("welch", "cuped"):
        assert compare(one, many, method).status == "one_unit_per_arm"
        assert compare(many, empty, method).status == "no_units"
    # constant outcome: 0.1 four times (one-pass rounding is not mistaken for variance)
    flat = SufficientStats(4, 0.4, 0.04000000000000001)
    c = welch(flat, SufficientStats(3, 0.3, 0.03))
    assert c.status == "zero_variance"
    assert c.estimate == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(c.p_value)
    # proportions all 0
    assert proportion(SufficientStats(5, 0.0, 0.0), SufficientStats(5, 0.0, 0.0)).status == (
        "zero_variance"
    )
    # ratio with no basket in an arm
    zero_x = SufficientStats(3, 0.0, 0.0, sum_x=0.0, sum_x2=0.0, sum_xy=0.0)
    ok_x = SufficientStats(3, 6.0, 14.0, sum_x=3.0, sum_x2=5.0, sum_xy=7.0)
    assert ratio(zero_x, ok_x).status == "not_identified"
    json.dumps(ratio(zero_x, ok_x).to_dict(), allow_nan=False)


def test_cuped_with_a_constant_covariate_is_welch(customers):
    frame = customers.assign(pre=7.0)
    s = stats_of(frame, covariate="pre")
    c, w = cuped(s["gift"], s["control"]), welch(s["gift"], s["control"])
    assert c.extras["theta"] == 0.0
    assert c.estimate == pytest.approx(w.estimate, rel=1e-12)
    assert c.p_value == pytest.approx(w.p_value, rel=1e-12)


def test_wrong_statistics_raise():
    plain = SufficientStats(3, 3.0, 5.0)
    with pytest.raises(ValueError, match="no denominator sums"):
        ratio(plain, plain)
    with pytest.raises(ValueError, match="no covariate sums"):
        cuped(plain, plain)
    with pytest.raises(ValueError, match="0/1 outcome"):
        proportion(plain, plain)
    with pytest.raises(ValueError, match="method == 'ttest'"):
        compare(plain, plain, "ttest")
    with pytest.raises(ValueError, match=r"alpha == 1\.5"):
        compare(plain, plain, "welch", alpha=1.5)


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("welch", {}),
        ("cuped", {"covariate": "pre"}),
        ("ratio", {"denominator": "baskets"}),
        ("proportion", {}),
    ],
)
def test_evaluate_customers_all_pairs(customers, method, extra):
    outcome = "retained" if method == "proportion" else "revenue"
    evaluation, srm_p = evaluate_customers(
        customers, arm="arm", outcome=outcome, method=method, control="control", **extra
    )
    assert isinstance(evaluation, Evaluation)
    first_seen = [a for a in pd.unique(customers["arm"]) if a != "control"]
    assert first_seen == ["gift", "cash"]
    assert evaluation.arms == ("control", "gift", "cash")  # control, then first appearance
    assert [(c.arm, c.baseline) for c in evaluation.comparisons] == [
        ("gift", "control"), ("cash", "control"), ("cash", "gift"),
    ]  # fmt: skip
    assert evaluation.n_units == len(customers)
    direct = compare_all(
        {a: stats_of(customers, outcome=outcome, **extra)[a] for a in evaluation.arms},
        "control", method, metric=outcome,
    )  # fmt: skip
    assert evaluation.comparisons == direct
    assert srm_p == pytest.approx(st.chisquare([500, 480, 510]).pvalue, rel=REL)
    out = evaluation.to_dict()
    json.dumps(out, allow_nan=False)
    first = out["comparisons"][0]
    assert first["method"] == method
    assert {"p_value_raw", "p_value_adjusted", "se", "n_arm", "n_baseline"} <= set(first)
    assert first["p_value"] == first["p_value_raw"]


def test_evaluate_customers_zero_one_arms_and_shares():
    frame = make_customers(sizes=(300, 200)).assign(arm=lambda f: (f["arm"] == "cash").astype(int))
    evaluation, srm_p = evaluate_customers(
        frame, arm="arm", outcome="revenue", method="welch", control=0,
        expected_shares={0: 0.6, 1: 0.4},
    )  # fmt: skip
    assert evaluation.arms == ("control", "treatment")
    assert evaluation.comparisons[0].arm == "treatment"
    assert srm_p == pytest.approx(1.0)  # exactly the planned 60/40
    flipped, _ = evaluate_customers(frame, arm="arm", outcome="revenue", method="welch", control=1)
    as_bool, _ = evaluate_customers(
        frame.astype({"arm": bool}), arm="arm", outcome="revenue", method="welch", control=0
    )
    assert as_bool.comparisons == evaluation.comparisons
    assert flipped.comparisons[0].estimate == pytest.approx(-evaluation.comparisons[0].estimate)
    # integral float labels read as integers, booleans allowed for proportions
    frame = make_customers().assign(
        arm=lambda f: f["arm"].map({"control": 1.0, "cash": 2.0, "gift": 3.0})
    )
    frame["retained"] = frame["retained"].astype(bool)
    evaluation, _ = evaluate_customers(
        frame, arm="arm", outcome="retained", method="proportion", control="1"
    )
    assert evaluation.arms == ("1", "3", "2")  # control, then first appearance (gift)


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        ({"revenue": "abc"}, {}, "column 'revenue': value 'abc' at row 0"),
        ({"revenue": np.nan}, {}, "column 'revenue'"),
        ({}, {"outcome": "revenue", "method": "proportion"}, "column 'revenue' holds"),
        ({"retained": 2}, {"outcome": "retained", "method": "proportion"}, "'retained' holds 2"),
        ({}, {"method": "cuped"}, "needs a covariate"),
        ({}, {"covariate": "pre"}, "used by method='cuped' only"),
        ({}, {"method": "ratio"}, "needs a denominator"),
        ({}, {"method": "cuped", "covariate": "pre_x"}, "column 'pre_x' is not in the table"),
        ({"pre": "n/a"}, {"method": "cuped", "covariate": "pre"}, "column 'pre'"),
        ({}, {"control": "points"}, "control arm 'points' is not one of the arms"),
        ({"arm": None}, {}, "column 'arm' has a missing arm"),
        ({}, {"method": "mean"}, "method == 'mean'"),
        ({}, {"alpha": 0}, "alpha == 0"),
    ],
)
def test_evaluate_customers_errors_name_the_column(change, kwargs, match):
    frame = make_customers(sizes=(20, 20))
    frame = frame.astype(dict.fromkeys(change, object))
    for column, value in change.items():
        frame.loc[0, column] = value
    args = {"arm": "arm", "outcome": "revenue", "method": "welch", "control": "control"}
    with pytest.raises(ValueError, match=match):
        evaluate_customers(frame, **{**args, **kwargs})


def test_evaluate_customers_nullable_columns():
    frame = make_customers(sizes=(20, 20)).astype({"revenue": "Float64", "retained": "Int64"})
    plain, _ = evaluate_customers(
        frame.astype({"revenue": float}), arm="arm", outcome="revenue", method="welch",
        control="control",
    )  # fmt: skip
    nullable, _ = evaluate_customers(
        frame, arm="arm", outcome="revenue", method="welch", control="control"
    )
    assert nullable.comparisons == plain.comparisons
    frame.loc[5, "revenue"] = pd.NA
    with pytest.raises(ValueError, match="column 'revenue': value <NA> at row 5"):
        evaluate_customers(frame, arm="arm", outcome="revenue", method="welch", control="control")


def test_evaluate_customers_only_control():
    frame = make_customers(sizes=(20,))
    with pytest.raises(ValueError, match="only the control arm 'control'"):
        evaluate_customers(frame, arm="arm", outcome="revenue", method="welch", control="control")


def _lognormal_pilots(rng, n_pilots: int, per_arm: int, sigma: float, lift: float):
    """Customer sales, lognormal, the arm's mean x (1 + lift): per pilot and arm
    (n, sum y, sum y^2), vectorized over the pilots."""
    base = rng.lognormal(0.0, sigma, (n_pilots, 2, per_arm))
    base[:, 0] *= 1.0 + lift
    return base.sum(axis=2), (base**2).sum(axis=2)


def test_relative_interval_never_crosses_minus_100_percent_and_covers():
    """Seeded simulation: 10 customers per arm, sigma 1.5 (the ratio-scale delta method's
    lower bound falls below -100 % in most of these pilots), and 200 per arm, sigma 0.8,
    where the log interval still covers the true -30 % about 95 % of the time."""
    rng = np.random.default_rng(20240612)
    lift = -0.3
    sums, sums2 = _lognormal_pilots(rng, 2000, 10, 1.5, lift)
    lows, below_old = [], 0
    for s, s2 in zip(sums, sums2, strict=True):
        c = welch(SufficientStats(10, s[0], s2[0]), SufficientStats(10, s[1], s2[1]))
        lows.append(c.rel_ci_low)
        below_old += c.relative - st.t.ppf(0.975, c.extras["df"]) * c.extras["rel_se"] < -1
    lows = np.array(lows)
    assert np.all(np.isfinite(lows))
    assert np.all(lows > -1.0)
    assert below_old > 1000  # the ratio-scale interval's lower bound: below -100 % in most
    sums, sums2 = _lognormal_pilots(rng, 2000, 200, 0.8, lift)
    covered = 0
    for s, s2 in zip(sums, sums2, strict=True):
        c = welch(SufficientStats(200, s[0], s2[0]), SufficientStats(200, s[1], s2[1]))
        covered += c.rel_ci_low <= lift <= c.rel_ci_high
    # binomial sd of the coverage over 2,000 pilots: 0.49 points; the band is 3 sd wide
    assert 0.935 <= covered / 2000 <= 0.965
