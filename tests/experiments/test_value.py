"""The money decision's statistics, pinned: the posterior against a conjugate hand
computation, the closed-form EVSI against a Monte Carlo preposterior, the symmetric
two-arm case against Feit & Berman's (2019) optimal sample size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from loyalty_pilot.experiments.value import (
    Economics,
    Normal,
    evsi,
    evsi_monte_carlo,
    posterior,
    prior_from_draws,
    roll_optimal_n,
    roll_profit,
)

ECON = Economics.from_break_even(1_000_000.0, 0.005, 1_000_000.0, 0.10)


def test_posterior_is_the_conjugate_update():
    prior = Normal(0.01, 0.02)
    post = posterior(prior, 0.03, 0.01)
    # precision-weighted by hand: weights 2500 and 10000
    assert post.mean == pytest.approx((2500 * 0.01 + 10000 * 0.03) / 12500, rel=1e-12)
    assert post.sd == pytest.approx(math.sqrt(1 / 12500), rel=1e-12)


def test_prior_from_draws_and_lognormal_moments():
    rng = np.random.default_rng(1)
    u = np.expm1(rng.normal(0.02, 0.01, 200_000))
    prior = prior_from_draws(u)
    assert prior.mean == pytest.approx(0.02, abs=1e-4)
    assert prior.sd == pytest.approx(0.01, rel=1e-2)
    assert prior.uplift_mean == pytest.approx(u.mean(), rel=1e-3)
    assert prior.uplift_sd == pytest.approx(u.std(), rel=1e-2)
    back = Normal.of_uplift(prior.uplift_mean, prior.uplift_sd)
    assert back.mean == pytest.approx(prior.mean, rel=1e-9)
    assert back.sd == pytest.approx(prior.sd, rel=1e-9)
    with pytest.raises(ValueError, match="every draw is the same"):
        prior_from_draws([0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="must be > -1"):
        prior_from_draws([0.1, -1.5])


def test_expected_profit_and_probabilities_by_quadrature():
    belief = Normal(0.004, 0.006)
    density = stats.norm(belief.mean, belief.sd)
    expected, _ = integrate.quad(
        lambda x: ECON.profit(np.expm1(x)) * density.pdf(x), -0.1, 0.1, points=[0.004]
    )
    assert ECON.expected_profit(belief) == pytest.approx(expected, rel=1e-7)
    # a loss of more than a year of cost (L = cost): an uplift below 0
    assert ECON.loss_uplift == pytest.approx(0.0, abs=1e-15)
    assert ECON.prob_loss(belief) == pytest.approx(density.cdf(0.0), rel=1e-12)
    assert ECON.prob_above_break_even(belief) == pytest.approx(
        density.sf(math.log1p(0.005)), rel=1e-12
    )


def test_go_cut_is_where_the_rule_flips():
    for sd in (0.001, 0.004, 0.02):
        cut = float(ECON.go_cut(sd))
        above, below = Normal(cut + 1e-9, sd), Normal(cut - 1e-9, sd)
        assert ECON.go(above)
        assert not ECON.go(below)
        ok = lambda b: ECON.expected_profit(b) > 0 and ECON.prob_loss(b) <= 0.10  # noqa: E731
        assert ok(above)
        assert not ok(below)


@pytest.mark.parametrize(
    ("m0", "s0", "se"),
    [(0.004, 0.01, 0.01), (0.01, 0.01, 0.005), (-0.002, 0.02, 0.03), (0.006, 0.003, 0.02)],
)
def test_closed_form_evsi_matches_a_monte_carlo_preposterior(m0, s0, se):
    prior = Normal(m0, s0)
    closed = evsi(prior, se, ECON)
    mc, mc_se = evsi_monte_carlo(prior, se, ECON, n=400_000, rng=5)
    assert abs(closed - mc) < 4 * mc_se + 1e-6 * ECON.cost
    assert evsi(prior, np.array([se, 1e9]), ECON)[1] == pytest.approx(0.0, abs=1e-3)


def test_more_information_is_worth_more_without_the_loss_limit():
    loose = Economics.from_break_even(1e6, 0.005, 1e12, 0.5)  # the loss limit never binds
    prior = Normal(0.004, 0.01)
    values = evsi(prior, np.array([0.04, 0.02, 0.01, 0.005, 0.001]), loose)
    assert np.all(np.diff(values) > 0)
    assert values[0] > 0
    # perfect information: E[max(profit, 0)] - max(E[profit], 0)
    x = np.random.default_rng(0).normal(0.004, 0.01, 1_000_000)
    perfect = np.maximum(loose.profit(np.expm1(x)), 0).mean() - max(loose.expected_profit(prior), 0)
    assert evsi(prior, 1e-7, loose) == pytest.approx(perfect, rel=5e-3)


def test_test_and_roll_symmetric_case_matches_the_paper():
    population, mu, sigma, s = 100_000, 0.68, 0.03, 0.46  # scale of the paper's example
    n = np.arange(1, 20_000)
    paper = (population - 2 * n) * (
        mu + math.sqrt(2) * sigma**2 / (math.sqrt(math.pi) * np.sqrt(2 * sigma**2 + 2 / n * s**2))
    ) + mu * 2 * n
    ours = roll_profit(n, n, population, mu, sigma, s)
    np.testing.assert_allclose(ours, paper, rtol=1e-12)
    best = int(n[np.argmax(ours)])
    assert abs(best - roll_optimal_n(population, sigma, s)) <= 1
    # the paper's closed form is the stationary point of its profit
    assert roll_optimal_n(population, sigma, s) == pytest.approx(
        math.sqrt(population / 4 * (s / sigma) ** 2 + (0.75 * (s / sigma) ** 2) ** 2)
        - 0.75 * (s / sigma) ** 2
    )


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="sd == 0"):
        Normal(0.0, 0.0)
    with pytest.raises(ValueError, match="loss_threshold == 0"):
        Economics(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="max_loss_probability == 1"):
        Economics(1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="se == 0"):
        posterior(Normal(0, 1), 0.0, 0.0)


def test_several_arms_by_monte_carlo_reduce_to_the_closed_form_with_one():
    from loyalty_pilot.experiments.value import evsi_arms

    prior = Normal(0.004, 0.01)
    after, now, gain = evsi_arms([prior], [0.01], [ECON], n=400_000, rng=2)
    assert gain == pytest.approx(evsi(prior, 0.01, ECON), rel=0.02)
    assert after - now == pytest.approx(gain)
    # a second arm can only add value (the best of two)
    _, _, two = evsi_arms([prior, Normal(0.002, 0.01)], [0.01, 0.01], [ECON, ECON], rng=2)
    assert two > gain * 0.99


def test_prob_better_matches_a_monte_carlo():
    from loyalty_pilot.experiments.value import prob_better

    a, b = Normal(0.01, 0.01), Normal(0.006, 0.004)
    econ_b = Economics.from_break_even(5e5, 0.004, 5e5, 0.1)
    rng = np.random.default_rng(4)
    xa = rng.normal(a.mean, a.sd, 1_000_000)
    xb = rng.normal(b.mean, b.sd, 1_000_000)
    mc = np.mean(ECON.profit(np.expm1(xa)) > econ_b.profit(np.expm1(xb)))
    assert prob_better(a, ECON, b, econ_b) == pytest.approx(mc, abs=2e-3)
    assert prob_better(a, ECON, b, econ_b) + prob_better(b, econ_b, a, ECON) == pytest.approx(1)


def test_prob_better_with_very_different_spreads_matches_the_exact_value():
    from loyalty_pilot.experiments.value import prob_better

    # same economics: profit_a > profit_b exactly when x_a > x_b
    a, b = Normal(0.01, 1e-5), Normal(0.0105, 0.01)
    exact = stats.norm.cdf((a.mean - b.mean) / math.hypot(a.sd, b.sd))
    assert prob_better(a, ECON, b, ECON) == pytest.approx(exact, abs=1e-4)
    assert prob_better(b, ECON, a, ECON) == pytest.approx(1 - exact, abs=1e-4)


def test_the_interval_rules_value_by_quadrature_and_by_monte_carlo():
    from loyalty_pilot.experiments.value import value_after_interval, value_after_interval_arms

    prior, se = Normal(0.006, 0.01), 0.008
    cut = math.log1p(0.005) + 1.96 * se
    rng = np.random.default_rng(8)
    x = rng.normal(prior.mean, prior.sd, 1_000_000)
    x_hat = x + se * rng.standard_normal(x.size)
    mc = np.where(x_hat > cut, ECON.profit(np.expm1(x)), 0.0)
    closed = value_after_interval(prior, se, ECON, cut)
    assert abs(closed - mc.mean()) < 4 * mc.std() / math.sqrt(x.size)
    one = value_after_interval_arms([prior], [se], [ECON], [cut], n=400_000, rng=3)
    assert one == pytest.approx(closed, rel=0.03)
    # a stricter rule (a higher cut) loses value here: the prior says the programme pays
    assert value_after_interval(prior, se, ECON, cut + 0.02) < closed
