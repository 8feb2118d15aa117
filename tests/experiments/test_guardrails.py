"""Guardrail non-inferiority tests pinned by hand to scipy's t and normal distributions."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from loyalty_pilot.experiments.did import did
from loyalty_pilot.experiments.guardrails import (
    HIGHER_IS_WORSE,
    RATE_METRICS,
    check_guardrails,
    default_direction,
    default_kind,
    guardrail,
    non_inferiority,
    rate_panel,
)
from loyalty_pilot.experiments.panel import PanelData, PanelError
from loyalty_pilot.experiments.results import degenerate, from_absolute, relative_from_absolute


def comparison(metric, estimate, se, df=None, treated_mean=100.0, alpha=0.05, extras=True):
    """A Comparison with a t (or normal) interval around ``estimate``."""
    q = stats.t.ppf(1 - alpha / 2, df) if df else stats.norm.ppf(1 - alpha / 2)
    p = 2 * (stats.t.sf(abs(estimate / se), df) if df else stats.norm.sf(abs(estimate / se)))
    ex = {"se": se, "df": df} if extras else {}
    return from_absolute(
        "cash", "control", metric, "did", estimate, estimate - q * se, estimate + q * se, p, 12,
        treated_mean, alpha=alpha, extras=ex,
    )  # fmt: skip


def test_absolute_higher_is_better_by_hand_t():
    est, se, df, margin = -0.003, 0.0015, 9.3, 0.005
    r = non_inferiority(est, se, margin=margin, df=df, metric="gross_margin_rate")
    assert r.bound == pytest.approx(est - stats.t.ppf(0.95, df) * se, rel=1e-12)
    assert r.p_value == pytest.approx(stats.t.sf((est + margin) / se, df), rel=1e-12)
    assert r.passed is (r.bound > -margin)
    assert r.passed is (r.p_value < 0.05)
    assert r.kind == "absolute"
    assert r.direction == "higher_is_better"
    assert "lower bound" in r.reason


def test_absolute_higher_is_worse_by_hand_normal():
    est, se, margin = 0.004, 0.002, 0.005
    r = non_inferiority(est, se, margin=margin, direction="higher_is_worse", alpha=0.1)
    assert r.bound == pytest.approx(est + stats.norm.ppf(0.9) * se, rel=1e-12)
    assert r.p_value == pytest.approx(stats.norm.sf((margin - est) / se), rel=1e-12)
    assert r.passed is False
    assert r.p_value > 0.1
    assert "upper bound" in r.reason
    assert "failed" in r.reason


def test_bound_on_the_margin_has_p_value_alpha():
    se, df, margin = 1.0, 7.0, 2.0
    est = -margin + stats.t.ppf(0.95, df) * se  # the lower bound sits exactly on -margin
    r = non_inferiority(est, se, margin=margin, df=df)
    assert r.bound == pytest.approx(-margin)
    assert r.p_value == pytest.approx(0.05, rel=1e-10)


@pytest.mark.parametrize("direction", ["higher_is_better", "higher_is_worse"])
def test_relative_margin_through_the_comparisons_relative_scale(direction):
    m, est, se, df, margin = 250.0, -3.0, 2.0, 6.5, 0.02
    c = comparison("visits", est, se, df=df, treated_mean=m)
    r = guardrail(c, margin=margin, direction=direction)
    q = stats.t.ppf(0.95, df)
    if direction == "higher_is_better":
        bound_abs = est - q * se
        absolute_margin = margin * m / (1 - margin)  # rel(-absolute_margin) == -margin
        p = stats.t.sf((est + absolute_margin) / se, df)
        assert relative_from_absolute(-absolute_margin, m) == pytest.approx(-margin)
        assert r.passed is (r.bound > -margin)
    else:
        bound_abs = est + q * se
        absolute_margin = margin * m / (1 + margin)
        p = stats.t.sf((absolute_margin - est) / se, df)
        assert relative_from_absolute(absolute_margin, m) == pytest.approx(margin)
        assert r.passed is (r.bound < margin)
    assert r.kind == "relative"
    assert r.estimate == pytest.approx(c.relative)
    assert r.bound == pytest.approx(relative_from_absolute(bound_abs, m), rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-10)
    assert r.passed is bool(p < 0.05)


def test_defaults_follow_the_pilot_yaml_conventions():
    from loyalty_pilot.pilots import pilotspec

    assert RATE_METRICS == pilotspec.RATE_METRICS
    assert HIGHER_IS_WORSE == pilotspec.HIGHER_IS_WORSE
    assert default_kind("gross_margin_rate") == "absolute"
    assert default_kind("visits") == "relative"
    assert default_direction("programme_cost_share") == "higher_is_worse"
    assert default_direction("gross_margin_rate") == "higher_is_better"
    r = guardrail(comparison("programme_cost_share", 0.001, 0.0004, df=8), margin=0.003)
    assert (r.direction, r.kind, r.passed) == ("higher_is_worse", "absolute", True)


def test_interval_fallback_without_standard_error():
    # a 90 % two-sided interval's lower bound is exactly the one-sided 95 % bound
    c90 = comparison("gross_margin_rate", -0.001, 0.001, alpha=0.10, extras=False)
    r = guardrail(c90, margin=0.003)
    assert r.bound == c90.ci_low
    assert r.passed is True
    assert math.isnan(r.p_value)
    assert "conservative" in r.reason
    # a 95 % interval is wider than needed: still usable (conservative)
    c95 = comparison("gross_margin_rate", -0.001, 0.001, alpha=0.05, extras=False)
    assert guardrail(c95, margin=0.003).bound == c95.ci_low
    # an 80 % interval is too narrow: not tested
    c80 = comparison("gross_margin_rate", -0.001, 0.001, alpha=0.20, extras=False)
    r80 = guardrail(c80, margin=0.003)
    assert r80.passed is None
    assert "narrower" in r80.reason


def test_degenerate_and_missing_estimates_are_not_tested():
    d = degenerate("cash", "control", "returns_rate", "did", "one_unit_per_arm", 3)
    r = guardrail(d, margin=0.01)
    assert r.passed is None
    assert math.isnan(r.p_value)
    assert "one_unit_per_arm" in r.reason
    assert r.to_dict()["p_value"] is None
    assert non_inferiority(1.0, 0.0, margin=1.0).passed is None


def test_check_guardrails_from_yaml_like_entries():
    comps = {
        "gross_margin_rate": comparison("gross_margin_rate", -0.001, 0.001, df=10),
        "visits": comparison("visits", -20.0, 5.0, df=10, treated_mean=1000.0),
    }
    entries = [
        SimpleNamespace(metric="gross_margin_rate", margin=0.005),
        {"metric": "visits", "margin": 0.02},
        {"metric": "returns_rate", "margin": 0.002},
    ]
    out = check_guardrails(comps, entries)
    assert [r.metric for r in out] == ["gross_margin_rate", "visits", "returns_rate"]
    assert out[0].passed is True
    assert out[1].kind == "relative"
    assert out[1].passed is False  # -2 % point estimate against a 2 % margin
    assert out[2].passed is None
    assert out[2].direction == "higher_is_worse"
    assert "no estimate" in out[2].reason


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="direction"):
        non_inferiority(0.0, 1.0, margin=0.1, direction="up")
    with pytest.raises(ValueError, match="margin"):
        non_inferiority(0.0, 1.0, margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        non_inferiority(0.0, 1.0, margin=1.5, kind="relative", treated_post_mean=10.0)
    with pytest.raises(ValueError, match="treated_post_mean"):
        non_inferiority(0.0, 1.0, margin=0.1, kind="relative")


def test_rate_panel_feeds_the_estimator():
    rng = np.random.default_rng(0)
    sales = rng.uniform(800, 1200, size=(8, 10))
    margin = sales * rng.uniform(0.28, 0.32, size=(8, 10))
    treated = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    post = np.arange(10) >= 6
    units, periods = np.arange(8), np.arange(10)
    num = PanelData(margin, units, periods, treated, post)
    rate = rate_panel(num, PanelData(sales, units, periods, treated, post))
    assert rate.y == pytest.approx(margin / sales)
    r = guardrail(did(rate, metric="gross_margin_rate"), margin=0.01)
    assert r.passed is not None
    assert r.kind == "absolute"
    sales[2, 3] = 0.0
    with pytest.raises(PanelError, match="unit 2 period 3"):
        rate_panel(num, sales)
