"""P(GO) of the decision rules by placebo fits, pinned to closed forms and to the
one-at-a-time posterior of :mod:`loyalty_pilot.experiments.value`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from loyalty_pilot.experiments.decision_power import (
    IntervalRule,
    ProfitRule,
    go_curve,
    go_share,
    likelihood_se,
    mde_go,
)
from loyalty_pilot.experiments.value import Economics, Normal, posterior

SE = 0.02


@pytest.fixture(scope="module")
def placebos():
    rng = np.random.default_rng(3)
    n = 200_000
    return SE * rng.standard_normal(n), np.full(n, SE), np.full(n, np.inf)


def test_interval_rule_matches_the_normal_closed_form(placebos):
    rule = IntervalRule(alpha=0.05, threshold=0.005)
    z = stats.norm.ppf(0.975)
    for u in (0.0, 0.005, 0.05, 0.08):
        exact = stats.norm.sf((math.log1p(0.005) + z * SE - math.log1p(u)) / SE)
        assert go_share(rule, *placebos, u) == pytest.approx(exact, abs=3e-3)


def test_interval_rule_uses_t_with_the_fits_df():
    rule = IntervalRule(alpha=0.05, threshold=0.0)
    t = stats.t.ppf(0.975, 7)
    x = np.array([t * SE * 0.999, t * SE * 1.001])
    assert list(rule.go(x, np.full(2, SE), np.full(2, 7.0))) == [False, True]


def test_profit_rule_equals_the_posterior_decision_one_by_one():
    prior = Normal(0.004, 0.01)
    econ = Economics.from_break_even(1e6, 0.005, 1e6, 0.10)
    rule = ProfitRule(prior, econ)
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.02, 300)
    se = rng.uniform(0.005, 0.03, 300)
    df = rng.uniform(3, 40, 300)
    vectorized = rule.go(x, se, df)
    one_by_one = [
        econ.go(posterior(prior, xi, float(likelihood_se(si, di))))
        for xi, si, di in zip(x, se, df, strict=True)
    ]
    assert list(vectorized) == one_by_one
    assert 0 < vectorized.mean() < 1


def test_likelihood_se_carries_the_t_interval():
    assert float(likelihood_se(1.0, 5)) == pytest.approx(
        stats.t.ppf(0.975, 5) / stats.norm.ppf(0.975)
    )
    assert float(likelihood_se(1.0, np.inf)) == 1.0


def test_mde_go_is_where_the_curve_reaches_the_target(placebos):
    rule = IntervalRule(alpha=0.05, threshold=0.005)
    mde = mde_go(rule, *placebos, target=0.8)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert mde == pytest.approx(math.expm1(math.log1p(0.005) + z * SE), abs=2e-3)
    assert go_share(rule, *placebos, mde) >= 0.8
    assert go_share(rule, *placebos, mde * 0.98) < 0.8
    curve = go_curve(rule, *placebos, [0.0, 0.01, 0.05, 0.1])
    assert curve == sorted(curve)
    never = IntervalRule(alpha=0.05, threshold=20.0)
    assert mde_go(never, *placebos) == math.inf


def test_degenerate_placebos_count_as_no_go():
    rule = IntervalRule(alpha=0.05, threshold=0.0)
    x = np.array([1.0, np.nan, 1.0])
    se = np.array([0.01, 0.01, np.nan])
    assert go_share(rule, x, se, np.full(3, np.inf), 0.0) == pytest.approx(1 / 3)


NORMAL_RULES = [
    IntervalRule(alpha=0.025, threshold=0.005),
    ProfitRule(Normal(0.004, 0.01), Economics.from_break_even(1e6, 0.005, 1e6, 0.10)),
    ProfitRule(Normal(0.03, 0.01), Economics.from_break_even(1e6, 0.005, 1e6, 0.10)),
]


@pytest.mark.parametrize("rule", NORMAL_RULES)
def test_normal_closed_forms_match_the_placebo_curve_and_mde(placebos, rule):
    from loyalty_pilot.experiments.decision_power import go_curve_normal, mde_go_normal

    uplifts = [0.0, 0.005, 0.01, 0.03, 0.06]
    closed = go_curve_normal(rule, SE, uplifts)
    assert closed == pytest.approx(go_curve(rule, *placebos, uplifts), abs=3e-3)
    assert closed == sorted(closed)
    closed_mde = mde_go_normal(rule, SE, target=0.8)
    assert closed_mde == pytest.approx(mde_go(rule, *placebos, target=0.8), abs=1e-3)


def test_normal_closed_forms_at_the_edges():
    from loyalty_pilot.experiments.decision_power import (
        go_curve_normal,
        go_cut_normal,
        mde_go_normal,
    )

    sure = ProfitRule(Normal(0.05, 0.01), Economics.from_break_even(1e6, 0.005, 1e6, 0.10))
    assert mde_go_normal(sure, 0.02) == 0.0  # the prior alone goes: P(GO | 0) >= target
    never = ProfitRule(Normal(0.0, 0.01), Economics(0.0, 1e6, 1e6, 0.1))  # no slope: no GO
    assert go_cut_normal(never, 0.02) == math.inf
    assert go_curve_normal(never, 0.02, [0.0, 1.0]) == [0.0, 0.0]
    assert mde_go_normal(never, 0.02) == math.inf
    with pytest.raises(ValueError, match="se"):
        go_cut_normal(sure, 0.0)
