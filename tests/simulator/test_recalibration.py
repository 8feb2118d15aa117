"""Recalibration: hand-worked normal-normal updates, Monte Carlo checks, edge cases, and the
recalibrated programme's projection moving with the evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loyalty_pilot.simulator.programme import Programme, Response, SegmentResponse, Uncertain
from loyalty_pilot.simulator.recalibration import (
    PARAMETERS,
    Observation,
    members_share,
    recalibrate,
    recalibrated_programme,
)


def response(v=(0.0, 0.03), b=(0.0, 0.04), c=(0.05, 0.03), **extra) -> Response:
    return Response(
        visit_uplift=Uncertain(mean=v[0], sd=v[1]),
        basket_uplift=Uncertain(mean=b[0], sd=b[1]),
        churn_reduction=Uncertain(mean=c[0], sd=c[1]),
        **extra,
    )


# ----------------------------------------------------------------------------- hand-worked


def test_sales_observation_hand_worked():
    """Prior log(1+v) ~ N(0, 0.03^2), log(1+b) ~ N(0, 0.04^2): the sum has variance
    0.0025. Observed log(1+s) = 0.10 with se 0.05 (variance 0.0025): the weight on the sum
    is 0.0025 / 0.005 = 0.5, its posterior mean 0.05, variance 0.00125. The gain splits in
    proportion to the prior variances: K = (0.0009, 0.0016) / 0.005 = (0.18, 0.32), so
    the means are 0.018 and 0.032, the variances 0.0009 * 0.82 = 0.000738 and
    0.0016 * 0.68 = 0.001088, the covariance -0.18 * 0.0016 = -0.000288."""
    r = recalibrate(response(), sales=Observation(0.10, 0.05))
    v, b, s = (r.parameters[n] for n in ("visit_uplift", "basket_uplift", "sales_uplift"))
    assert v.latent_posterior_mean == pytest.approx(0.018, abs=1e-12)
    assert b.latent_posterior_mean == pytest.approx(0.032, abs=1e-12)
    assert v.latent_posterior_sd == pytest.approx(math.sqrt(0.000738), rel=1e-12)
    assert b.latent_posterior_sd == pytest.approx(math.sqrt(0.001088), rel=1e-12)
    assert s.latent_posterior_mean == pytest.approx(0.05, abs=1e-12)
    assert s.latent_posterior_sd == pytest.approx(math.sqrt(0.00125), rel=1e-12)
    assert (v.weight, b.weight, s.weight) == pytest.approx((0.18, 0.32, 0.5), abs=1e-12)
    assert r.weight == pytest.approx(0.5, abs=1e-12)
    assert r.correlation == pytest.approx(-0.000288 / math.sqrt(0.000738 * 0.001088), rel=1e-9)
    # back to the Response's scale (delta method)
    assert v.posterior_mean == pytest.approx(math.expm1(0.018), rel=1e-12)
    assert v.posterior_sd == pytest.approx(math.exp(0.018) * math.sqrt(0.000738), rel=1e-12)
    # decorrelate="sales": both sds times k, independent draws keep the sum's variance
    k = math.sqrt(0.00125 / (0.000738 + 0.001088))
    assert r.sd_scale == pytest.approx(k, rel=1e-12)
    assert r.posterior.visit_uplift.sd == pytest.approx(v.posterior_sd * k, rel=1e-12)
    assert r.posterior.basket_uplift.sd == pytest.approx(b.posterior_sd * k, rel=1e-12)
    # churn untouched, exactly
    assert r.posterior.churn_reduction == r.prior.churn_reduction
    assert r.parameters["churn_reduction"].weight == 0


def test_marginal_mode_keeps_marginal_sds():
    r = recalibrate(response(), sales=Observation(0.10, 0.05), decorrelate="marginal")
    assert r.sd_scale == 1
    assert r.posterior.visit_uplift.sd == r.parameters["visit_uplift"].posterior_sd


def test_churn_observation_hand_worked():
    """Prior c ~ N(0.05, 0.03^2), observed 0.11 with se 0.04: w = 0.0009 / 0.0025 = 0.36,
    mean 0.05 + 0.36 * 0.06 = 0.0716, sd sqrt(0.0009 * 0.64) = 0.024."""
    r = recalibrate(response(), churn=Observation(0.11, 0.04))
    c = r.parameters["churn_reduction"]
    assert c.weight == pytest.approx(0.36, abs=1e-12)
    assert r.posterior.churn_reduction.mean == pytest.approx(0.0716, abs=1e-12)
    assert r.posterior.churn_reduction.sd == pytest.approx(0.024, abs=1e-12)
    assert r.posterior.visit_uplift == r.prior.visit_uplift
    assert r.weight == 0


def test_components_observed_separately_are_scalar_updates():
    """Visits and basket each a scalar precision-weighted update on the log scale; the
    sales estimate, given as well, is not used (it would count the evidence twice)."""
    prior = response(v=(0.03, 0.015), b=(0.01, 0.01))
    yv, sev = math.log(1.05), 0.02
    yb, seb = math.log(0.99), 0.005
    r = recalibrate(
        prior,
        sales=Observation(math.log(1.04), 0.01),
        visits=Observation(yv, sev),
        basket=Observation(yb, seb),
    )
    assert list(r.used) == ["visits", "basket"]
    assert any("sales not used" in n for n in r.notes)
    for name, (m, s), (y, se) in (
        ("visit_uplift", (0.03, 0.015), (yv, sev)),
        ("basket_uplift", (0.01, 0.01), (yb, seb)),
    ):
        mu0, tau0 = math.log1p(m), s / (1 + m)
        w = tau0**2 / (tau0**2 + se**2)
        p = r.parameters[name]
        assert p.weight == pytest.approx(w, rel=1e-12)
        assert p.latent_posterior_mean == pytest.approx(mu0 + w * (y - mu0), rel=1e-12)
        assert p.latent_posterior_sd == pytest.approx(tau0 * math.sqrt(1 - w), rel=1e-12)
    assert r.correlation == 0
    assert r.sd_scale == 1


def test_sales_with_one_component_uses_sales_only():
    r = recalibrate(response(), sales=Observation(0.1, 0.05), visits=Observation(0.2, 0.05))
    assert list(r.used) == ["sales"]
    assert any("visits not used" in n for n in r.notes)
    assert set(r.observations) == {"sales", "visits"}


# ----------------------------------------------------------------------------- Monte Carlo


def _weighted(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted mean, sd and the Monte Carlo standard error of the mean (Kish ESS)."""
    w = w / w.sum()
    mean = float(w @ x)
    sd = float(np.sqrt(w @ (x - mean) ** 2))
    ess = 1.0 / float(w @ w)
    return mean, sd, sd / math.sqrt(ess)


def test_monte_carlo_on_the_latent_scale():
    """Sample the (log-scale) prior, weight by the likelihood of the sales observation:
    the posterior means and sds agree within Monte Carlo error."""
    prior = response(v=(0.03, 0.015), b=(0.01, 0.01), c=(0.05, 0.03))
    sales, churn = Observation(math.log(1.08), 0.02), Observation(-0.02, 0.05)
    r = recalibrate(prior, sales=sales, churn=churn)
    rng = np.random.default_rng(11)
    n = 400_000
    draws = {
        name: rng.normal(
            r.parameters[name].latent_prior_mean, r.parameters[name].latent_prior_sd, n
        )
        for name in ("visit_uplift", "basket_uplift", "churn_reduction")
    }
    total = draws["visit_uplift"] + draws["basket_uplift"]
    w_sales = np.exp(-0.5 * ((sales.estimate - total) / sales.se) ** 2)
    w_churn = np.exp(-0.5 * ((churn.estimate - draws["churn_reduction"]) / churn.se) ** 2)
    checks = {**draws, "sales_uplift": total}
    for name, x in checks.items():
        w = w_churn if name == "churn_reduction" else w_sales
        mean, sd, mc = _weighted(x, w)
        p = r.parameters[name]
        assert mean == pytest.approx(p.latent_posterior_mean, abs=4 * mc), name
        # the sd of a sample sd is about sd / sqrt(2 ESS) = mc / sqrt(2)
        assert sd == pytest.approx(p.latent_posterior_sd, abs=4 * mc), name


def test_monte_carlo_on_the_response_scale():
    """The same with the projection's own prior (normal relative uplifts) and the exact
    likelihood of log((1+v)(1+b)): the delta-method posterior is within Monte Carlo error
    plus a small approximation allowance (the sds are a few percent)."""
    prior = response(v=(0.03, 0.015), b=(0.01, 0.01))
    sales = Observation(math.log(1.06), 0.015)
    r = recalibrate(prior, sales=sales, decorrelate="marginal")
    rng = np.random.default_rng(5)
    n = 400_000
    v = rng.normal(0.03, 0.015, n)
    b = rng.normal(0.01, 0.01, n)
    w = np.exp(-0.5 * ((sales.estimate - np.log((1 + v) * (1 + b))) / sales.se) ** 2)
    for name, x in (
        ("visit_uplift", v),
        ("basket_uplift", b),
        ("sales_uplift", (1 + v) * (1 + b) - 1),
    ):
        mean, sd, mc = _weighted(x, w)
        p = r.parameters[name]
        assert mean == pytest.approx(p.posterior_mean, abs=4 * mc + 3e-4), name
        assert sd == pytest.approx(p.posterior_sd, abs=4 * mc + 3e-4), name


# ----------------------------------------------------------------------------- edge cases


def test_no_evidence_gives_back_the_prior_exactly():
    prior = response(v=(0.03, 0.015), b=(0.01, 0.01), c=(0.05, 0.03))
    r = recalibrate(prior)
    assert r.posterior == prior
    assert r.weight == 0
    r = recalibrate(prior, sales=Observation(0.3, math.inf), churn=Observation(0.5, math.inf))
    assert r.posterior == prior
    assert not r.used
    assert sum("infinite" in n for n in r.notes) == 2
    assert all(r.parameters[n].weight == 0 for n in PARAMETERS)


def test_uninformative_components_leave_sales_in_use():
    r = recalibrate(
        response(),
        sales=Observation(0.1, 0.05),
        visits=Observation(0.2, math.inf),
        basket=Observation(0.0, math.inf),
    )
    assert list(r.used) == ["sales"]
    assert r.weight == pytest.approx(0.5)


def test_exact_observation_pins_the_observed_quantity():
    r = recalibrate(response(), sales=Observation(0.07, 0.0))
    s = r.parameters["sales_uplift"]
    assert s.latent_posterior_mean == pytest.approx(0.07, abs=1e-12)
    assert s.latent_posterior_sd == pytest.approx(0.0, abs=1e-9)
    assert r.weight == pytest.approx(1.0)
    assert r.posterior.visit_uplift.sd == pytest.approx(0.0, abs=1e-9)  # k = 0
    r = recalibrate(response(), churn=Observation(0.2, 0.0))
    assert r.posterior.churn_reduction == Uncertain(mean=0.2, sd=0.0)


def test_prior_sd_zero_dominates():
    # the visit uplift is known: the whole sales surprise goes to the basket size
    r = recalibrate(response(v=(0.02, 0.0), b=(0.0, 0.04)), sales=Observation(0.10, 0.04))
    assert r.posterior.visit_uplift == Uncertain(mean=0.02, sd=0.0)
    assert r.parameters["visit_uplift"].weight == 0
    expected = math.log1p(0.02) + 0.5 * (0.10 - math.log1p(0.02))  # equal variances
    assert r.parameters["sales_uplift"].latent_posterior_mean == pytest.approx(expected)
    assert any("visit_uplift: prior sd 0" in n for n in r.notes)
    # both known: nothing moves, even an exact observation
    known = response(v=(0.02, 0.0), b=(0.01, 0.0), c=(0.05, 0.0))
    for se in (0.03, 0.0):
        r = recalibrate(known, sales=Observation(0.5, se), churn=Observation(0.4, se))
        assert r.posterior == known
        assert r.weight == 0


def test_negative_estimates_move_down():
    prior = response(v=(0.03, 0.015), b=(0.01, 0.01))
    r = recalibrate(prior, sales=Observation.from_relative_se(-0.02, 0.01))
    assert r.posterior.visit_uplift.mean < 0.03
    assert r.posterior.basket_uplift.mean < 0.01
    assert r.parameters["sales_uplift"].posterior_mean < 0


def test_churn_posterior_at_or_below_minus_one_is_refused():
    with pytest.raises(ValueError, match="churn_reduction mean"):
        recalibrate(response(c=(0.0, 1.0)), churn=Observation(-5.0, 0.01))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sales": Observation(0.1, 0.1), "members_share": 0.0}, "members_share"),
        ({"sales": Observation(0.1, 0.1), "members_share": 1.5}, "members_share"),
        ({"sales": Observation(0.1, 0.1), "decorrelate": "none"}, "decorrelate"),
        ({"sales": Observation(-0.5, 0.1), "members_share": 0.3}, "at or below zero"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recalibrate(response(), **kwargs)


@pytest.mark.parametrize(
    ("estimate", "se"), [(math.nan, 0.1), (math.inf, 0.1), (0.1, -0.1), (0.1, math.nan)]
)
def test_bad_observations(estimate, se):
    with pytest.raises(ValueError, match="must be"):
        Observation(estimate, se)


def test_observation_from_relative_interval():
    z = 1.959963984540054
    obs = Observation.from_relative(
        0.05, math.expm1(math.log(1.05) - z * 0.02), math.expm1(math.log(1.05) + z * 0.02)
    )
    assert obs.estimate == pytest.approx(math.log(1.05))
    assert obs.se == pytest.approx(0.02, rel=1e-9)
    assert obs.relative == pytest.approx(0.05)
    with pytest.raises(ValueError, match="relative"):
        Observation.from_relative(-1.0, -1.0, 0.1)
    assert Observation.from_relative_se(0.25, 0.05).se == pytest.approx(0.04)


def test_members_share_maps_store_uplift_to_members():
    """A +3 % store uplift with members making 30 % of the revenue is +10 % for members."""
    se = 0.01
    r = recalibrate(response(), sales=Observation(math.log(1.03), se), members_share=0.3)
    used = r.used["sales"]
    assert used.estimate == pytest.approx(math.log(1.10), rel=1e-12)
    assert used.se == pytest.approx(se * 1.03 / (0.3 + 0.03), rel=1e-12)
    assert r.observations["sales"].estimate == pytest.approx(math.log(1.03))


def test_segments_are_kept_with_a_note():
    seg = {"champions": SegmentResponse(visit_uplift=Uncertain(mean=0.05, sd=0.02))}
    r = recalibrate(response(segments=seg), sales=Observation(0.1, 0.05))
    assert r.posterior.segments == seg
    assert any("champions" in n for n in r.notes)


def test_to_dict_is_json_ready():
    import json

    r = recalibrate(response(), sales=Observation(0.1, math.inf), churn=Observation(0.1, 0.1))
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert json.loads(text)["observations"]["sales"]["se"] is None


# ----------------------------------------------------------------------------- programme


PROGRAMME = {
    "programme": "voucher",
    "enrolment": {"uptake": 0.6},
    "earn": {"points_per_currency": 1.0, "welcome_bonus": 100},
    "rewards": [{"kind": "cash_voucher", "points": 500, "value": 5.0}],
    "economics": {"gross_margin": 0.3, "budget_share_of_revenue": 0.02},
    "response": {
        "visit_uplift": {"mean": 0.03, "sd": 0.015},
        "basket_uplift": {"mean": 0.01, "sd": 0.01},
        "churn_reduction": {"mean": 0.05, "sd": 0.03},
    },
}


def test_recalibrated_programme_swaps_the_response_only():
    programme = Programme.model_validate(PROGRAMME)
    r = recalibrate(programme.response, sales=Observation(0.1, 0.02))
    new = recalibrated_programme(programme, r)
    assert new.response == r.posterior
    assert new.model_dump(exclude={"response"}) == programme.model_dump(exclude={"response"})
    with pytest.raises(ValueError, match="not the recalibration's prior"):
        recalibrated_programme(new, r)


def test_projection_moves_with_the_evidence():
    """The full chain: project() with the recalibrated programme on a small synthetic
    chain. Strong evidence above the prior raises every profit quantile, below lowers it,
    and a precise pilot narrows the spread."""
    from loyalty_pilot.pilots.synthetic import generate
    from loyalty_pilot.simulator.projection import RetentionBaseline, project

    baskets = generate(stores=2, regions=1, customers=300, weeks=30, seed=1).baskets
    programme = Programme.model_validate(PROGRAMME)
    kwargs = {
        "horizon_months": 6,
        "draws": 400,
        "seed": 2,
        "retention": RetentionBaseline("none", note="test"),
    }
    before = project(baskets, programme, **kwargs)
    share = members_share(before)
    assert 0 < share < 1
    results = {}
    for label, relative in (("up", 0.04), ("down", -0.01)):
        r = recalibrate(
            programme.response,
            sales=Observation.from_relative_se(relative, 0.002),
            members_share=share,
        )
        results[label] = project(baskets, recalibrated_programme(programme, r), **kwargs).profit
    prior = before.profit
    for q in ("mean", "p10", "p50", "p90"):
        assert getattr(results["up"], q) > getattr(prior, q) > getattr(results["down"], q), q
    assert results["up"].p90 - results["up"].p10 < prior.p90 - prior.p10
