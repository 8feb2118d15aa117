"""DiD, ANCOVA and event study on seeded synthetic store x week panels.

Each figure is pinned to an independent computation: statsmodels on the full dummy design
(CR1, HC2), or a brute-force dense implementation of the textbook CR2, Bell-McCaffrey
degrees of freedom and the HTZ test (Imbens & Kolesar 2016; Pustejovsky & Tipton 2018).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.experiments.did import ancova, did, event_study
from loyalty_pilot.experiments.panel import PanelData, wide_panel


def make_panel(
    n_units: int = 8,
    n_periods: int = 10,
    n_treated: int = 4,
    n_pre: int = 6,
    effect: float | np.ndarray = 1.0,
    seed: int = 0,
    rho: float = 0.5,
    pre_trend: float = 0.0,
) -> PanelData:
    """Unit and week effects, AR(1) noise, a known effect on treated units from ``n_pre``.

    ``effect`` may be a vector over the post weeks (a dynamic effect); ``pre_trend`` adds
    a linear trend to the treated units before the start (zero at the last pre week).
    """
    rng = np.random.default_rng(seed)
    eps = rng.normal(size=(n_units, n_periods))
    noise = np.empty_like(eps)
    noise[:, 0] = eps[:, 0] / math.sqrt(1 - rho**2)
    for t in range(1, n_periods):
        noise[:, t] = rho * noise[:, t - 1] + eps[:, t]
    y = 100 + 5 * rng.normal(size=(n_units, 1)) + 2 * rng.normal(size=(1, n_periods)) + noise
    treated = np.zeros(n_units, dtype=bool)
    treated[:n_treated] = True
    post = np.arange(n_periods) >= n_pre
    y[np.ix_(treated, post)] += effect
    event_time = np.arange(n_periods) - n_pre
    y[:, ~post] += pre_trend * np.outer(treated, event_time[~post] + 1)
    return PanelData(y, np.arange(n_units), np.arange(n_periods), treated, post)


def dummy_design(data: PanelData, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[columns, all unit dummies, period dummies but the first]`` and the unit ids."""
    n_units, n_periods = data.y.shape
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    units = (unit[:, None] == np.arange(n_units)).astype(float)
    periods = (period[:, None] == np.arange(1, n_periods)).astype(float)
    return np.column_stack([columns, units, periods]), unit


def sym_power(matrix: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    powered = np.array([v**power if v > 1e-12 else 0.0 for v in values])
    return vectors @ np.diag(powered) @ vectors.T


def brute_cr2(x: np.ndarray, y: np.ndarray, cluster: np.ndarray, n_coef: int):
    """Textbook CR2 on a dense design: coef, vcov and the p-vectors of each cluster.

    ``p[g]`` (n, n_coef) = ``M[:, g] A_g X_g (X'X)^-1 e_k'``, so that the BM df of
    ``c'beta`` is ``(tr G)^2 / ||G||^2`` with ``G[g, h] = (p_g c)' (p_h c)``.
    """
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    annihilator = np.eye(len(y)) - x @ xtx_inv @ x.T
    resid = annihilator @ y
    bread = xtx_inv[:n_coef]
    meat = np.zeros((n_coef, n_coef))
    p = []
    for g in np.unique(cluster):
        rows = cluster == g
        adjust = sym_power(annihilator[np.ix_(rows, rows)], -0.5)
        score = bread @ x[rows].T @ adjust @ resid[rows]
        meat += np.outer(score, score)
        p.append(annihilator[:, rows] @ adjust @ x[rows] @ bread.T)
    return beta[:n_coef], meat, p


def bm_df(p: list[np.ndarray], c: np.ndarray) -> float:
    vectors = [pg @ c for pg in p]
    gram = np.array([[a @ b for b in vectors] for a in vectors])
    return float(np.trace(gram) ** 2 / np.sum(gram**2))


def htz_p_value(beta, vcov, p, cmat) -> float:
    """clubSandwich's Wald_test(test="HTZ"), written from its R source."""
    from scipy import stats

    q = cmat.shape[0]
    est = cmat @ beta
    wald = est @ np.linalg.solve(cmat @ vcov @ cmat.T, est)
    pc = [pg @ cmat.T for pg in p]  # (n, q) per cluster
    arr = np.array([[a.T @ b for b in pc] for a in pc])  # [g, h, s, t]
    omega = sum(arr[g, g] for g in range(len(pc)))
    w = sym_power(omega, -0.5)
    b = np.einsum("as,ghst,tb->ghab", w, arr, w)
    var_mat = np.zeros((q, q))
    for s in range(q):
        for t in range(q):
            var_mat[s, t] = np.sum(b[:, :, s, t] * b[:, :, t, s]) + np.sum(
                b[:, :, s, s] * b[:, :, t, t]
            )
    nu = q * (q + 1) / var_mat.sum()
    return float(stats.f.sf((nu - q + 1) / (nu * q) * wald, q, nu - q + 1))


def d_column(data: PanelData) -> np.ndarray:
    return np.outer(data.treated, data.post).ravel().astype(float)[:, None]


# --- DiD ------------------------------------------------------------------------------


def test_did_cr1_matches_statsmodels_cluster():
    import statsmodels.api as sm

    data = make_panel(n_units=9, n_periods=12, n_treated=4, seed=3)
    design, unit = dummy_design(data, d_column(data))
    design = np.column_stack([np.ones(len(unit)), design[:, [0, *range(2, design.shape[1])]]])
    fit = sm.OLS(data.y.ravel(), design).fit(
        cov_type="cluster",
        cov_kwds={"groups": unit, "use_correction": True, "df_correction": True},
        use_t=True,
    )
    result = did(data, inference="cr1")
    assert result.estimate == pytest.approx(fit.params[1], rel=1e-8)
    assert result.extras["se"] == pytest.approx(fit.bse[1], rel=1e-8)
    assert result.p_value == pytest.approx(fit.pvalues[1], rel=1e-8)
    low, high = fit.conf_int()[1]
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-8)
    assert result.extras["df"] == 8


@pytest.mark.parametrize(
    ("n_units", "n_treated", "n_periods", "seed"), [(8, 4, 10, 0), (10, 3, 7, 1), (7, 5, 12, 2)]
)
def test_did_cr2_and_bm_df_match_dense_textbook(n_units, n_treated, n_periods, seed):
    data = make_panel(n_units, n_periods, n_treated, n_pre=n_periods // 2, seed=seed)
    design, unit = dummy_design(data, d_column(data))
    beta, meat, p = brute_cr2(design, data.y.ravel(), unit, 1)
    result = did(data)
    assert result.estimate == pytest.approx(beta[0], rel=1e-8)
    assert result.extras["se"] == pytest.approx(math.sqrt(meat[0, 0]), rel=1e-8)
    assert result.extras["df"] == pytest.approx(bm_df(p, np.ones(1)), rel=1e-8)


def test_cr2_is_more_cautious_than_cr1_with_few_treated_units():
    data = make_panel(n_units=10, n_periods=12, n_treated=2, effect=2.0, seed=5)
    cr1, cr2 = did(data, inference="cr1"), did(data, inference="cr2")
    assert cr2.estimate == cr1.estimate
    assert cr2.p_value > cr1.p_value
    assert cr2.ci_high - cr2.ci_low > cr1.ci_high - cr1.ci_low


def test_did_on_a_long_panel_from_wide_panel():
    data = make_panel(n_units=12, n_periods=20, n_treated=6, n_pre=12, seed=9)
    long = pd.DataFrame(
        [(f"s{i:02d}", t, data.y[i, t]) for i in range(12) for t in range(20)],
        columns=["store", "week", "sales"],
    )
    panel = wide_panel(
        long,
        unit="store",
        period="week",
        outcome="sales",
        treated={f"s{i:02d}": i < 6 for i in range(12)},
        start=12,
    )
    result = did(panel, metric="sales")
    assert result.estimate == pytest.approx(did(data).estimate, rel=1e-12)
    post, pre = data.post, ~data.post
    diff = data.y[:6].mean(0) - data.y[6:].mean(0)
    assert result.estimate == pytest.approx(diff[post].mean() - diff[pre].mean(), rel=1e-10)
    assert result.n_units == 12
    assert result.to_dict()["metric"] == "sales"


def test_wild_bootstrap_is_reproducible_and_close_to_cr2():
    data = make_panel(n_units=40, n_periods=20, n_treated=20, n_pre=12, effect=-0.1, seed=11)
    first = did(data, inference="wild", n_boot=9999, rng=42)
    again = did(data, inference="wild", n_boot=9999, rng=np.random.default_rng(42))
    other = did(data, inference="wild", n_boot=9999, rng=7)
    cr2 = did(data)
    assert first.to_dict() == again.to_dict()
    assert (other.p_value, other.ci_low) != (first.p_value, first.ci_low)
    assert first.extras["boot_weights"] == "rademacher"
    assert 0.005 < cr2.p_value < 0.2
    assert first.p_value == pytest.approx(cr2.p_value, abs=0.02)
    assert first.ci_low < first.estimate < first.ci_high
    assert first.ci_low == pytest.approx(cr2.ci_low, abs=0.1 * cr2.extras["se"])
    assert first.ci_high == pytest.approx(cr2.ci_high, abs=0.1 * cr2.extras["se"])


def test_wild_bootstrap_interval_inverts_its_test():
    data = make_panel(n_units=8, n_periods=10, n_treated=4, effect=1.5, seed=4)
    result = did(data, inference="wild", n_boot=1999, rng=3)
    assert result.extras["boot_weights"] == "webb"
    assert result.ci_low < result.estimate < result.ci_high
    # shift the outcome by the bound: the null 0 is then the bound, p ~ alpha
    for bound in (result.ci_low, result.ci_high):
        y = data.y - bound * np.outer(data.treated, data.post)
        shifted = PanelData(y, data.units, data.periods, data.treated, data.post)
        p = did(shifted, inference="wild", n_boot=1999, rng=3).p_value
        assert p == pytest.approx(0.05, abs=0.002)


def test_aa_placebo_rejection_rates():
    rates = {"cr2": 0, "cr1": 0}
    n_sim = 300
    for seed in range(n_sim):
        data = make_panel(
            n_units=8, n_periods=20, n_treated=3, n_pre=12, effect=0.0, seed=10_000 + seed
        )
        for inference in rates:
            rates[inference] += did(data, inference=inference).p_value < 0.05
    cr2, cr1 = rates["cr2"] / n_sim, rates["cr1"] / n_sim
    print(f"A/A rejection at 5%: CR2 {cr2:.3f}, CR1 {cr1:.3f}")
    assert 0.02 <= cr2 <= 0.09
    assert cr2 <= cr1


# --- ANCOVA ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n_units", "n_treated", "seed"), [(12, 6, 0), (9, 3, 1)])
def test_ancova_matches_statsmodels_hc2(n_units, n_treated, seed):
    import statsmodels.api as sm

    data = make_panel(n_units, 14, n_treated, n_pre=8, effect=1.0, seed=seed)
    pre, post = data.y[:, ~data.post].mean(1), data.y[:, data.post].mean(1)
    design = np.column_stack([np.ones(n_units), data.treated.astype(float), pre])
    fit = sm.OLS(post, design).fit(cov_type="HC2", use_t=True)
    result = ancova(data, df_method="residual")
    assert result.estimate == pytest.approx(fit.params[1], rel=1e-10)
    assert result.extras["se"] == pytest.approx(fit.bse[1], rel=1e-10)
    assert result.extras["df"] == n_units - 3
    assert result.p_value == pytest.approx(fit.pvalues[1], rel=1e-8)
    # default: Bell-McCaffrey df from the dense textbook formula (singleton clusters)
    _, meat, p = brute_cr2(design, post, np.arange(n_units), 3)
    bm = ancova(data)
    assert bm.extras["se"] == pytest.approx(math.sqrt(meat[1, 1]), rel=1e-10)
    assert bm.extras["df"] == pytest.approx(bm_df(p, np.array([0.0, 1.0, 0.0])), rel=1e-8)
    assert bm.extras["df"] < n_units - 3


# --- event study ----------------------------------------------------------------------


def test_event_study_matches_dense_textbook_and_htz():
    data = make_panel(n_units=9, n_periods=8, n_treated=4, n_pre=5, seed=21, pre_trend=0.3)
    n_pre, n_periods = 5, 8
    times = [k for k in range(-n_pre, n_periods - n_pre) if k != -1]
    columns = np.column_stack(
        [np.outer(data.treated, np.arange(n_periods) - n_pre == k).ravel() for k in times]
    ).astype(float)
    design, unit = dummy_design(data, columns)
    beta, vcov, p = brute_cr2(design, data.y.ravel(), unit, len(times))
    result = event_study(data)
    effects = [e for e in result.extras["event_study"] if e["event_time"] != -1]
    assert [e["event_time"] for e in effects] == times
    assert [e["estimate"] for e in effects] == pytest.approx(beta, rel=1e-8)
    assert [e["se"] for e in effects] == pytest.approx(np.sqrt(np.diag(vcov)), rel=1e-8)
    dfs = [bm_df(p, row) for row in np.eye(len(times))]
    assert [e["df"] for e in effects] == pytest.approx(dfs, rel=1e-8)
    average = np.array([k >= 0 for k in times]) / 3
    assert result.estimate == pytest.approx(average @ beta, rel=1e-8)
    assert result.extras["se"] == pytest.approx(math.sqrt(average @ vcov @ average), rel=1e-8)
    assert result.extras["df"] == pytest.approx(bm_df(p, average), rel=1e-8)
    pre = np.eye(len(times))[[k < 0 for k in times]]
    expected = htz_p_value(beta, vcov, p, pre)
    assert result.extras["pre_trend_p_value"] == pytest.approx(expected, rel=1e-8)
    assert result.extras["pre_trend_df"][0] == 4


def test_event_study_recovers_a_dynamic_effect():
    dynamic = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    data = make_panel(n_units=30, n_periods=18, n_treated=15, n_pre=12, effect=dynamic, seed=5)
    result = event_study(data)
    post = [e for e in result.extras["event_study"] if e["event_time"] >= 0]
    assert [e["event_time"] for e in post] == list(range(6))
    for e, truth in zip(post, dynamic, strict=True):
        assert abs(e["estimate"] - truth) < 3 * e["se"]
        assert e["ci_low"] < e["estimate"] < e["ci_high"]
    assert result.estimate == pytest.approx(np.mean([e["estimate"] for e in post]), rel=1e-12)
    assert result.estimate == pytest.approx(dynamic.mean(), abs=3 * result.extras["se"])
    reference = [e for e in result.extras["event_study"] if e["event_time"] == -1]
    assert reference[0]["estimate"] == 0.0
    # each effect is a difference of arm means against the reference week
    diff = data.y[:15].mean(0) - data.y[15:].mean(0)
    assert [e["estimate"] for e in post] == pytest.approx(diff[12:] - diff[11], rel=1e-8)


def test_pre_trend_test_detects_an_injected_trend():
    clean = event_study(make_panel(30, 18, 15, n_pre=12, seed=1))
    trend = event_study(make_panel(30, 18, 15, n_pre=12, seed=1, pre_trend=0.25))
    print("pre-trend p:", clean.extras["pre_trend_p_value"], trend.extras["pre_trend_p_value"])
    assert clean.extras["pre_trend_p_value"] > 0.1
    assert trend.extras["pre_trend_p_value"] < 0.01
    assert clean.extras["pre_trend_df"][0] == 11


def test_pre_trend_test_keeps_its_level_without_trend():
    p_values = np.array(
        [
            event_study(make_panel(12, 10, 6, n_pre=6, seed=20_000 + seed)).extras[
                "pre_trend_p_value"
            ]
            for seed in range(200)
        ]
    )
    rate = float(np.mean(p_values < 0.05))
    print(f"pre-trend test A/A rejection at 5%: {rate:.3f}")
    assert 0.02 <= rate <= 0.09


def test_pre_trend_needs_fewer_effects_than_clusters():
    data = make_panel(n_units=8, n_periods=20, n_treated=4, n_pre=12, seed=1)
    full = event_study(data)
    assert math.isnan(full.extras["pre_trend_p_value"])
    assert "q < G - 1" in full.extras["pre_trend_note"]
    assert full.status == "ok"
    last = event_study(data, pre_test_periods=3)
    assert 0.0 < last.extras["pre_trend_p_value"] < 1.0
    assert last.extras["pre_trend_df"][0] == 3
    only_reference = event_study(make_panel(8, 6, 4, n_pre=1, seed=1))
    assert math.isnan(only_reference.extras["pre_trend_p_value"])


def test_event_study_reference_period():
    data = make_panel(n_units=10, n_periods=10, n_treated=5, n_pre=6, seed=2)
    result = event_study(data, reference=-3)
    diff = data.y[:5].mean(0) - data.y[5:].mean(0)
    effects = {e["event_time"]: e["estimate"] for e in result.extras["event_study"]}
    assert effects[-3] == 0.0
    assert effects[-1] == pytest.approx(diff[5] - diff[3], rel=1e-8)
    with pytest.raises(ValueError, match="reference == -7"):
        event_study(data, reference=-7)
    with pytest.raises(ValueError, match="reference == 0"):
        event_study(data, reference=0)


# --- relative uplift, degenerate input, arguments --------------------------------------


@pytest.mark.parametrize("estimator", [did, ancova, event_study])
def test_relative_uplift_maps_estimate_and_bounds(estimator):
    data = make_panel(n_units=12, n_periods=14, n_treated=6, n_pre=8, effect=3.0, seed=6)
    result = estimator(data)
    mean = data.y[np.ix_(data.treated, data.post)].mean()
    for absolute, relative in [
        (result.estimate, result.relative),
        (result.ci_low, result.rel_ci_low),
        (result.ci_high, result.rel_ci_high),
    ]:
        assert relative == pytest.approx(absolute / (mean - absolute), rel=1e-12)
    assert result.rel_ci_low < result.relative < result.rel_ci_high
    assert result.relative == pytest.approx(0.03, abs=0.02)


@pytest.mark.parametrize("estimator", [did, ancova, event_study])
def test_degenerate_statuses(estimator):
    one = make_panel(n_units=6, n_periods=8, n_treated=1, n_pre=4, seed=1)
    result = estimator(one)
    assert result.status == "one_unit_per_arm"
    assert math.isnan(result.p_value)
    if estimator is did:
        diff = one.y[0] - one.y[1:].mean(0)
        assert result.estimate == pytest.approx(diff[4:].mean() - diff[:4].mean(), rel=1e-10)
    else:
        assert math.isfinite(result.estimate)
    base = make_panel(n_units=6, n_periods=8, n_treated=3, n_pre=4, seed=1)

    def variant(post=None, treated=None, y=None):
        return PanelData(
            base.y if y is None else y,
            base.units,
            base.periods,
            base.treated if treated is None else treated,
            base.post if post is None else post,
        )

    assert estimator(variant(post=np.ones(8, bool))).status == "no_pre_period"
    assert estimator(variant(post=np.zeros(8, bool))).status == "no_post_period"
    assert estimator(variant(treated=np.zeros(6, bool))).status == "no_units"
    exact = (
        50 + np.arange(6)[:, None] + np.arange(8)[None, :] + 2.5 * np.outer(base.treated, base.post)
    )
    zero = estimator(variant(y=exact))
    assert zero.status == "zero_variance"
    assert zero.estimate == pytest.approx(2.5, rel=1e-9)
    assert zero.to_dict()["ci_low"] is None
    assert estimator(base).status == "ok"


@pytest.mark.parametrize("estimator", [did, ancova, event_study])
def test_invalid_arguments_name_the_parameter(estimator):
    data = make_panel()
    with pytest.raises(ValueError, match=r"alpha == 1.2, must be in \(0, 1\)"):
        estimator(data, alpha=1.2)
    with pytest.raises(ValueError, match="alpha == 0"):
        estimator(data, alpha=0)


def test_invalid_did_and_ancova_options():
    data = make_panel()
    with pytest.raises(ValueError, match="inference == 'hc1'"):
        did(data, inference="hc1")
    with pytest.raises(ValueError, match="n_boot == 0"):
        did(data, inference="wild", n_boot=0)
    with pytest.raises(ValueError, match="df_method == 'x'"):
        ancova(data, df_method="x")


def test_pre_trend_never_reports_an_impossible_f_test():
    """Two treated units of ten: HTZ's denominator df nu - q + 1 goes negative (F < 0).
    The test falls back to Bonferroni over the per-period t tests, pinned to the event
    study's own per-period p-values; the F and its second df are not reported."""
    data = make_panel(n_units=10, n_periods=20, n_treated=2, n_pre=14, seed=0)
    result = event_study(data, pre_test_periods=7)
    extras = result.extras
    assert extras["pre_trend_status"] == "fallback"
    assert extras["pre_trend_test"] == "bonferroni_t"
    assert math.isnan(extras["pre_trend_F"])
    assert math.isnan(extras["pre_trend_df"][1])
    assert "not valid" in extras["pre_trend_note"]
    pre = [e["p_value"] for e in extras["event_study"] if -8 <= e["event_time"] <= -2]
    assert len(pre) == 7
    assert extras["pre_trend_p_value"] == pytest.approx(min(1.0, 7 * min(pre)), rel=1e-12)
    ok = event_study(make_panel(10, 20, 5, n_pre=14, seed=0), pre_test_periods=4).extras
    assert ok["pre_trend_status"] == "ok"
    assert ok["pre_trend_F"] >= 0
    assert ok["pre_trend_df"][1] > 0


def test_pre_trend_fallback_keeps_its_level():
    """A/A: with two treated units of ten the fallback test rejects at most alpha."""
    p = np.array([
        event_study(make_panel(10, 12, 2, n_pre=8, seed=31_000 + s), pre_test_periods=5)
        .extras["pre_trend_p_value"] for s in range(150)
    ])  # fmt: skip
    assert np.isfinite(p).all()
    assert float(np.mean(p < 0.05)) <= 0.065
