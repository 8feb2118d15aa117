"""Group-sequential boundaries pinned to published values, to scipy's multivariate normal
and to Monte Carlo Brownian paths; false-positive rates over weekly looks by simulation.

Published pins:

* K = 5 equally spaced looks, two-sided 0.05, Lan-DeMets O'Brien-Fleming type: 4.877,
  3.357, 2.680, 2.290, 2.031 (R gsDesign ``gsDesign(k=5, test.type=2, sfu=sfLDOF)`` and
  ldbounds ``bounds(1:5/5, iuse=c(1, 1), alpha=c(0.025, 0.025))``; Jennison & Turnbull
  2000, ch. 7).
* ldbounds ``bounds(c(0.10, 0.33, 1), iuse=c(1, 1), alpha=c(0.025, 0.025))``: boundaries
  6.9913, 3.7308, 1.9605, exit probabilities 2.7227e-12, 1.9097e-04, 4.9809e-02 (the
  transcript in "Output of bounds function (ldbounds package)", r-help, March 2020;
  ldbounds integrates on a coarser grid, hence the 2e-4 tolerance on its boundaries).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from loyalty_pilot.experiments.results import Comparison
from loyalty_pilot.experiments.sequential import (
    boundaries,
    crossing_probabilities,
    information_fraction,
    information_from_pre_period,
    look_correlation,
    monitor,
    monitor_comparisons,
    spent_alpha,
)


def brownian_z(n_paths: int, fractions: np.ndarray, seed: int) -> np.ndarray:
    """Cumulative z statistics at the looks: Brownian motion at ``t_k`` over ``sqrt(t_k)``."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n_paths, len(fractions))) * np.sqrt(np.diff(fractions, prepend=0))
    return np.cumsum(steps, axis=1) / np.sqrt(fractions)


def first_crossing_share(z: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Share of paths crossing for the first time at each look."""
    crossed = np.abs(z) >= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    return np.array([(first == k).mean() for k in range(z.shape[1])])


def test_obf_five_equal_looks_match_published_values():
    b = boundaries([0.2, 0.4, 0.6, 0.8, 1.0])
    assert b.z == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=5e-4)
    assert b.alpha_spent[-1] == pytest.approx(0.05, abs=1e-15)
    assert b.spending == "obf"


def test_obf_uneven_looks_match_ldbounds_transcript():
    b = boundaries([0.10, 0.33, 1.0])
    assert b.z == pytest.approx([6.9913, 3.7308, 1.9605], abs=2e-4)
    exits = np.diff(b.alpha_spent, prepend=0.0)
    assert exits[0] == pytest.approx(2.7227e-12, rel=1e-4)
    assert exits[1:] == pytest.approx([1.9097e-04, 4.9809e-02], rel=1e-4)


def test_spending_functions_by_hand():
    z = stats.norm.ppf(1 - 0.05 / 4)
    t = np.array([0.25, 0.5, 1.0])
    assert spent_alpha(t) == pytest.approx(4 * stats.norm.sf(z / np.sqrt(t)), rel=1e-12)
    assert spent_alpha(t, 0.1, "pocock") == pytest.approx(0.1 * np.log(1 + (math.e - 1) * t))
    # the first boundary is the marginal normal quantile of the first spend
    b = boundaries(t)
    assert b.z[0] == pytest.approx(stats.norm.isf(spent_alpha(0.25)[0] / 2), rel=1e-12)


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_boundaries_agree_with_multivariate_normal(spending):
    t = np.array([0.3, 0.45, 0.8, 1.0])
    b = boundaries(t, spending=spending)
    c = np.array(b.z)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for k in range(1, 4):
        inside = stats.multivariate_normal(np.zeros(k), cov[:k, :k]).cdf(
            c[:k], lower_limit=-c[:k], rng=np.random.default_rng(0)
        )
        assert 1 - inside == pytest.approx(b.alpha_spent[k - 1], abs=3e-5)


def test_published_boundaries_hold_by_monte_carlo():
    """2e5 Brownian paths: each look's first-crossing share is the spent increment."""
    t = np.linspace(0.2, 1.0, 5)
    z = brownian_z(200_000, t, seed=1)
    shares = first_crossing_share(z, np.array([4.877, 3.357, 2.680, 2.290, 2.031]))
    expected = np.diff(spent_alpha(t), prepend=0.0)
    mc_se = np.sqrt(expected * (1 - expected) / 200_000)
    assert np.all(np.abs(shares - expected) <= 4 * mc_se + 1e-5)
    assert shares.sum() == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / 200_000))


def test_crossing_probabilities_recursion_matches_spend_and_power():
    t = np.arange(1, 13) / 12
    b = boundaries(t)
    assert crossing_probabilities(b.z, t) == pytest.approx(np.diff(b.alpha_spent, prepend=0))
    # with drift: the power of the last look alone is the normal tail
    power = crossing_probabilities([math.inf] * 11 + [1.96], t, drift=2.8).sum()
    assert power == pytest.approx(stats.norm.sf(1.96 - 2.8) + stats.norm.cdf(-1.96 - 2.8))


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_twelve_weekly_looks_keep_alpha_where_naive_testing_does_not(spending):
    n_paths, k = 200_000, 12
    t = information_fraction(np.arange(1, k + 1), k)
    z = brownian_z(n_paths, t, seed=2)
    b = np.array(boundaries(t, spending=spending).z)
    fpr = (np.abs(z) >= b).any(axis=1).mean()
    naive = (np.abs(z) >= 1.96).any(axis=1).mean()
    assert abs(fpr - 0.05) <= 4 * math.sqrt(0.05 * 0.95 / n_paths)
    assert naive > 0.15


def test_unplanned_uneven_looks_keep_alpha():
    t = np.array([2, 3, 7, 8, 11]) / 12  # looks skipped and added; the last before the end
    z = brownian_z(200_000, t, seed=3)
    b = boundaries(t)
    fpr = (np.abs(z) >= np.array(b.z)).any(axis=1).mean()
    assert fpr == pytest.approx(b.alpha_spent[-1], abs=4 * math.sqrt(0.05 / 200_000))
    assert b.alpha_spent[-1] < 0.05


def test_small_sample_did_t_statistics_over_weekly_looks():
    """8 stores (4 treated), 8 pre weeks, 12 weekly looks, no effect: two-sample t on the
    unit contrasts (post mean so far - pre mean), 6 df, t-scale boundaries."""
    rng = np.random.default_rng(4)
    n_rep, n_pre, k = 20_000, 8, 12
    y = rng.normal(size=(n_rep, 8, n_pre + k))
    post = np.cumsum(y[:, :, n_pre:], axis=2) / np.arange(1, k + 1)
    contrast = post - y[:, :, :n_pre].mean(axis=2, keepdims=True)
    tr, co = contrast[:, :4], contrast[:, 4:]
    pooled = (tr.var(axis=1, ddof=1) + co.var(axis=1, ddof=1)) / 2
    t_stat = (tr.mean(axis=1) - co.mean(axis=1)) / np.sqrt(pooled / 2)
    fractions = information_fraction(np.arange(1, k + 1), k, pre_weeks=n_pre)
    bounds = np.array(boundaries(fractions).z)
    t_bounds = stats.t.isf(stats.norm.sf(bounds), 6)
    fpr = (np.abs(t_stat) >= t_bounds).any(axis=1).mean()
    naive = (np.abs(t_stat) >= stats.t.isf(0.025, 6)).any(axis=1).mean()
    assert 0.04 < fpr < 0.07  # about 0.06: the nominal-level translation is approximate
    assert naive > 0.15
    # monitor applies the same t-scale boundary
    look = monitor(t_stat[0], fractions, df=6)
    assert look.boundary == pytest.approx(t_bounds[-1])


def test_information_fraction_did_formula():
    k, big_k, p = np.array([1, 6, 12]), 12, 26
    expected = (1 / big_k + 1 / p) / (1 / k + 1 / p)
    assert information_fraction(k, big_k, pre_weeks=p) == pytest.approx(expected)
    assert information_fraction(12, 12, pre_weeks=p)[0] == 1.0
    with pytest.raises(ValueError, match="weeks_observed"):
        information_fraction([13], 12)


def test_monitor_reports_crossing_direction_spend_and_repeated_interval():
    t = [0.25, 0.5, 0.75]
    look = monitor([0.5, -1.0, -2.5], t, estimate=-5.0, se=2.0)
    b = boundaries(t)
    assert look.look == 3
    assert look.boundary == pytest.approx(b.z[2])
    assert look.crossed is True
    assert look.direction == "lower"
    assert look.stopped_at == 3
    assert look.alpha_spent == pytest.approx(spent_alpha(0.75)[0])
    assert look.nominal_alpha == pytest.approx(2 * stats.norm.sf(b.z[2]))
    assert (look.ci_low, look.ci_high) == pytest.approx((-5 - b.z[2] * 2, -5 + b.z[2] * 2))
    assert look.ci_high < 0  # the repeated interval excludes 0 exactly when crossed
    d = look.to_dict()
    assert d["crossed"] is True
    assert len(d["history"]) == 3
    assert d["boundaries"]["looks"][0]["z"] == pytest.approx(b.z[0])

    quiet = monitor([3.0, 1.0], [0.5, 1.0])  # crossed at look 1, not now
    assert quiet.crossed is False
    assert quiet.direction is None
    assert quiet.stopped_at == 1
    assert "look 1" in quiet.note


def test_monitor_degenerate_statistic_and_bad_input():
    look = monitor([1.0, math.nan], [0.5, 1.0])
    assert look.crossed is False
    assert "not finite" in look.note
    assert look.to_dict()["statistic"] is None
    with pytest.raises(ValueError, match="information_fractions"):
        monitor([1.0, 2.0], [0.5, 0.4])
    with pytest.raises(ValueError, match="statistics"):
        monitor([1.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="spending"):
        boundaries([1.0], spending="haybittle")
    with pytest.raises(ValueError, match="estimate and se"):
        monitor([1.0], [1.0], estimate=1.0)


def test_monitor_comparisons_uses_se_and_df():
    def comp(estimate: float, se: float, df: float, status: str = "ok") -> Comparison:
        nan = math.nan
        return Comparison(
            "t", "c", "sales", "did", estimate, nan, nan, nan, nan, nan, nan, 8,
            status=status, extras={"se": se, "df": df},
        )  # fmt: skip

    comps = [comp(1.0, 2.0, 6.0), comp(math.nan, math.nan, 6.0, "zero_variance"), comp(9, 2, 5)]
    look = monitor_comparisons(comps, [0.25, 0.5, 0.75])
    direct = monitor([0.5, math.nan, 4.5], [0.25, 0.5, 0.75], df=[6, 6, 5], estimate=9, se=2)
    assert look.statistic == direct.statistic == 4.5
    assert look.boundary == pytest.approx(direct.boundary)
    assert look.df == 5.0
    assert look.ci_low == pytest.approx(9 - 2 * direct.boundary)
    z_only = monitor_comparisons(comps, [0.25, 0.5, 0.75], use_df=False)
    assert z_only.boundary == pytest.approx(z_only.z_boundary)


# --------------------------------------------------------------------------- DiD information


def _ar1_panels(rng: np.random.Generator, b: int, n: int, t: int, rho: float) -> np.ndarray:
    """(b, n, t) store weeks: unit effects and stationary AR(1) noise."""
    eps = rng.normal(size=(b, n, t))
    y = np.empty_like(eps)
    y[..., 0] = eps[..., 0] / math.sqrt(1 - rho**2)
    for k in range(1, t):
        y[..., k] = rho * y[..., k - 1] + eps[..., k]
    return y + 5 * rng.normal(size=(b, n, 1))


def _did_contrasts(y: np.ndarray, treated: np.ndarray, pre: int) -> np.ndarray:
    """(b, K) DiD estimates after 1..K test weeks (difference of arm means of each unit's
    mean over the first k test weeks minus its pre-period mean)."""
    post = np.cumsum(y[..., pre:], axis=-1) / np.arange(1, y.shape[-1] - pre + 1)
    u = post - y[..., :pre].mean(axis=-1, keepdims=True)
    return u[:, treated].mean(axis=1) - u[:, ~treated].mean(axis=1)


def test_information_from_the_pre_period_tracks_the_did_variance():
    """AR(1) 0.7 weeks: the exact fraction (Monte Carlo variance of the DiD at each look
    over that at the last) is far above k / K early on; the pre-period estimate moves
    most of the way there (it stays below: conservative)."""
    rng = np.random.default_rng(3)
    pre, planned, n = 16, 8, 16
    treated = np.arange(n) < n // 2
    y = _ar1_panels(rng, 20_000, n, pre + planned, 0.7)
    v = _did_contrasts(y, treated, pre).var(axis=0)
    exact = v[-1] / v
    estimated = np.mean([information_from_pre_period(y[i, :, :pre], planned)
                         for i in range(200)], axis=0)  # fmt: skip
    weeks = np.arange(1, planned + 1) / planned
    print("exact", exact.round(3), "estimated", estimated.round(3))
    assert exact[0] > 4 * weeks[0]
    assert estimated[0] > 3 * weeks[0]
    assert np.all(estimated <= exact + 0.05)
    assert estimated[-1] == 1.0
    assert np.all(np.diff(information_from_pre_period(y[0, :, :pre], planned)) > 0)


def test_overall_false_stop_rate_with_estimated_fractions():
    """Placebo: 16 stores, AR(1) 0.7 weeks, 8 weekly looks. For six pilots the fractions
    and the looks' correlation come from the pilot's own pre-period and give
    O'Brien-Fleming-type boundaries; the chance
    that a pilot with no effect ever crosses them is measured on 40,000 simulated pilots
    from the true joint distribution of the DiD z statistics (the Monte Carlo
    correlation of the contrasts). It stays at most alpha (0.05, band to 0.06)."""
    rng = np.random.default_rng(17)
    pre, planned, n = 16, 8, 16
    treated = np.arange(n) < n // 2
    est = _did_contrasts(_ar1_panels(rng, 40_000, n, pre + planned, 0.7), treated, pre)
    z = est / est.std(axis=0)
    y = _ar1_panels(rng, 6, n, pre + planned, 0.7)
    rates = []
    brownian = []
    for i in range(6):
        t = information_from_pre_period(y[i, :, :pre], planned)
        corr = look_correlation(y[i, :, :pre], planned)
        c = np.asarray(boundaries(t, correlation=corr).z)
        rates.append(float(np.mean((np.abs(z) >= c).any(axis=1))))
        c = np.asarray(boundaries(t).z)
        brownian.append(float(np.mean((np.abs(z) >= c).any(axis=1))))
    print("independent-increments boundaries:", np.round(brownian, 4))
    print("false-stop rates:", np.round(rates, 4))
    assert max(rates) <= 0.06
    assert float(np.mean(rates)) <= 0.055


def test_repeated_confidence_interval_at_every_look():
    est, ses = [0.3, 0.1, 0.05], [0.2, 0.1, 0.05]
    look = monitor([e / s for e, s in zip(est, ses, strict=True)], [0.3, 0.6, 1.0],
                   estimate=est[-1], se=ses[-1], estimates=est, ses=ses,
                   to_relative=math.expm1, information="pre_period")  # fmt: skip
    bounds = boundaries([0.3, 0.6, 1.0]).z
    for row, e, s, c in zip(look.history, est, ses, bounds, strict=True):
        assert row["ci_low"] == pytest.approx(e - c * s)
        assert row["ci_high"] == pytest.approx(e + c * s)
        assert row["rci_low"] == pytest.approx(math.expm1(e - c * s))
        assert row["rci_high"] == pytest.approx(math.expm1(e + c * s))
    assert look.rci_low == pytest.approx(math.expm1(0.05 - bounds[-1] * 0.05))
    out = look.to_dict()
    assert out["information"] == "pre_period"
    assert out["rci_high"] == pytest.approx(math.expm1(0.05 + bounds[-1] * 0.05))


def test_correlated_boundaries_reduce_to_the_recursion_for_brownian_looks():
    """Monte Carlo boundaries for the independent-increments correlation sqrt(t_i / t_j)
    agree with the exact recursion (to Monte Carlo error); a look that spends less than
    one path's share (here the first, 1.3e-6) gets an infinite boundary."""
    t = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    mc = boundaries(t, correlation=corr).z
    exact = boundaries(t).z
    assert mc[0] >= exact[0] - 0.06
    assert np.allclose(mc[1:], exact[1:], atol=0.06)
