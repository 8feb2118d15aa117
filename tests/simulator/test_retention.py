"""Retention baseline: BG/NBD and Gamma-Gamma pinned to the CDNOW published fits.

Independent checks: the published parameters (Fader, Hardie & Lee 2005; Fader & Hardie
2013), the likelihood written out without logs, quadrature of the closed forms over the
mixing distributions, and Monte Carlo simulation with the latent rates kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special

from loyalty_pilot.simulator.retention import (
    BGNBDFit,
    GammaGammaFit,
    empirical_retention,
    fit_bgnbd,
    fit_gamma_gamma,
    simulate_bgnbd,
    summary_from_transactions,
)

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample_transactions.csv"

# Fader, Hardie & Lee (2005), BG/NBD on the CDNOW sample, 39-week calibration period
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
# Fader & Hardie (2013), Gamma-Gamma on the same customers' mean repeat spend
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
# the log-likelihood pinned by the R package CLVTools (tests/testthat/test_correctness_gg.R)
CLVTOOLS_GG_LL = -4055.9177


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    transactions = pd.read_csv(CDNOW, dtype={"customer_id": str})
    return summary_from_transactions(
        transactions,
        amount="dollar_value",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        freq="W",
    )


@pytest.fixture(scope="module")
def cdnow_fit(cdnow: pd.DataFrame) -> BGNBDFit:
    return fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])


# --------------------------------------------------------------------------------------
# summary


def test_cdnow_summary_follows_the_fader_hardie_conventions(cdnow):
    assert len(cdnow) == 2357
    # customer 00004 bought on 1997-01-01, 01-18, 08-02 and 12-12 (file rows 2-5)
    row = cdnow.loc["00004"]
    assert row["frequency"] == 2
    assert row["recency"] == pytest.approx(213 / 7)  # 30.43 weeks in FHL's data
    assert row["T"] == pytest.approx(272 / 7)  # 38.86 weeks
    assert row["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert row["frequency_holdout"] == 1
    assert row["monetary_value_holdout"] == pytest.approx(26.48)
    assert cdnow["duration_holdout"].unique().tolist() == [39.0]
    # first purchases in the first 12 weeks of 1997: T from 27 to 38.86 weeks
    assert cdnow["T"].min() == pytest.approx(27.0)
    assert cdnow["T"].max() == pytest.approx(272 / 7)
    assert (cdnow["frequency"] > 0).sum() == 946
    assert (cdnow.loc[cdnow["frequency"] == 0, ["recency", "monetary_value"]] == 0).all().all()


def test_summary_hand_case_same_day_purchases_are_one_occasion():
    transactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-22", "2024-01-15", "2024-02-01"]
            ),
            "spend": [10.0, 5.0, 20.0, 30.0, 7.0, 9.0],
        }
    )
    out = summary_from_transactions(
        transactions,
        amount="spend",
        calibration_end="2024-01-29",
        observation_end="2024-02-12",
    )
    # c first buys after the calibration end: left out
    assert out.index.tolist() == ["a", "b"]
    assert out["frequency"].tolist() == [2, 0]
    assert out["recency"].tolist() == pytest.approx([3.0, 0.0])  # 21 days = 3 weeks
    assert out["T"].tolist() == pytest.approx([4.0, 2.0])  # 28 and 14 days
    assert out["monetary_value"].tolist() == pytest.approx([25.0, 0.0])  # (20 + 30) / 2
    assert out["frequency_holdout"].tolist() == [0, 0]
    assert out["duration_holdout"].tolist() == pytest.approx([2.0, 2.0])
    # distinct calendar weeks instead of days (weeks start on Monday; 2024-01-01 is one)
    weekly = summary_from_transactions(
        transactions, calibration_end="2024-01-29", freq="W", grain="W"
    )
    assert weekly.loc["a"].tolist() == pytest.approx([2, 3.0, 4.0])
    daily = summary_from_transactions(transactions, calibration_end="2024-01-29", freq="D")
    assert daily.loc["a", "recency"] == pytest.approx(21.0)


# --------------------------------------------------------------------------------------
# BG/NBD on CDNOW


def test_bgnbd_reproduces_the_published_cdnow_fit(cdnow_fit):
    for name, published in PUBLISHED_BGNBD.items():
        # published to 3 decimals: within half a unit of the last digit
        assert getattr(cdnow_fit, name) == pytest.approx(published, abs=5e-4), name
    assert cdnow_fit.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.05)
    assert cdnow_fit.n == 2357
    assert cdnow_fit.converged
    assert cdnow_fit.identifiable
    assert cdnow_fit.note == ""


def bgnbd_log_likelihood_written_out(r, alpha, a, b, x, t_x, big_t) -> float:
    """FHL (2005) eq. (6) without logs, one customer at a time."""
    total = 0.0
    beta = special.beta
    for xi, txi, ti in zip(x, t_x, big_t, strict=True):
        nbd = special.gamma(r + xi) * alpha**r / special.gamma(r)
        like = beta(a, b + xi) / beta(a, b) * nbd / (alpha + ti) ** (r + xi)
        if xi > 0:
            like += beta(a + 1, b + xi - 1) / beta(a, b) * nbd / (alpha + txi) ** (r + xi)
        total += np.log(like)
    return total


def test_bgnbd_log_likelihood_matches_the_written_out_formula(cdnow, cdnow_fit):
    params = (cdnow_fit.r, cdnow_fit.alpha, cdnow_fit.a, cdnow_fit.b)
    direct = bgnbd_log_likelihood_written_out(
        *params, cdnow["frequency"], cdnow["recency"], cdnow["T"]
    )
    assert cdnow_fit.log_likelihood == pytest.approx(direct, rel=1e-10)
    # and it is the maximum: any move of one parameter by 1 % lowers it
    for i in range(4):
        for factor in (0.99, 1.01):
            moved = list(params)
            moved[i] *= factor
            lower = bgnbd_log_likelihood_written_out(
                *moved, cdnow["frequency"], cdnow["recency"], cdnow["T"]
            )
            assert lower < cdnow_fit.log_likelihood


def test_bgnbd_does_not_depend_on_the_time_unit(cdnow, cdnow_fit):
    days = fit_bgnbd(cdnow["frequency"], cdnow["recency"] * 7, cdnow["T"] * 7)
    assert days.alpha == pytest.approx(cdnow_fit.alpha * 7, rel=1e-5)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(cdnow_fit, name), rel=1e-5)
    # the density of times in days is the one in weeks / 7 per repeat purchase
    shift = cdnow["frequency"].sum() * np.log(7)
    assert days.log_likelihood == pytest.approx(cdnow_fit.log_likelihood - shift, abs=1e-4)


def test_bgnbd_fit_from_another_start_reaches_the_same_optimum(cdnow, cdnow_fit):
    other = fit_bgnbd(
        cdnow["frequency"], cdnow["recency"], cdnow["T"], initial=(2.0, 20.0, 3.0, 0.5)
    )
    assert other.log_likelihood == pytest.approx(cdnow_fit.log_likelihood, abs=1e-6)
    assert other.b == pytest.approx(cdnow_fit.b, rel=1e-4)


# --------------------------------------------------------------------------------------
# BG/NBD expectations and P(alive)


def mixture_expectation(r, alpha, a, b, t):
    """E[(1 - exp(-lambda p t)) / p] with lambda ~ Gamma(r, alpha) (done in closed form)
    and p ~ Beta(a, b) by quadrature: expected purchases in t of a customer alive now."""

    def integrand(p):
        if p == 0:  # the limit r t / alpha
            return r * t / alpha / special.beta(a, b)
        return -np.expm1(-r * np.log1p(p * t / alpha)) / p / special.beta(a, b)

    value, _ = integrate.quad(integrand, 0, 1, weight="alg", wvar=(a - 1, b - 1))
    return value


def test_expected_purchases_matches_quadrature(cdnow_fit):
    f = cdnow_fit
    t = np.array([1.0, 39.0, 78.0])
    expected = [mixture_expectation(f.r, f.alpha, f.a, f.b, ti) for ti in t]
    assert f.expected_purchases(t) == pytest.approx(expected, rel=1e-7)
    assert f.expected_purchases(0.0) == pytest.approx(0.0, abs=1e-12)


def test_conditional_expectations_match_quadrature_and_hand_values(cdnow_fit):
    f = cdnow_fit
    x = np.array([0, 2, 7, 1])
    t_x = np.array([0.0, 30.43, 35.0, 2.0])
    big_t = np.array([38.86, 38.86, 38.86, 32.0])
    alive = f.probability_alive(x, t_x, big_t)
    # P(alive) by hand: 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))
    assert alive[0] == 1.0  # no repeat purchase: cannot have dropped out
    odds = f.a / (f.b + 1) * ((f.alpha + 38.86) / (f.alpha + 30.43)) ** (f.r + 2)
    assert alive[1] == pytest.approx(1 / (1 + odds), rel=1e-12)
    assert alive[2] > alive[1] > alive[3]  # recent and frequent is more likely alive
    # E[Y(t)] = P(alive) * E over the posterior (Gamma(r + x, alpha + T), Beta(a, b + x))
    got = f.conditional_expected_purchases(39.0, x, t_x, big_t)
    for i in range(4):
        inner = mixture_expectation(f.r + x[i], f.alpha + big_t[i], f.a, f.b + x[i], 39.0)
        assert got[i] == pytest.approx(alive[i] * inner, rel=1e-7), i


def test_probability_alive_and_forecast_are_calibrated_on_simulated_customers():
    rng = np.random.default_rng(2005)
    truth = BGNBDFit(0.243, 4.414, 0.793, 2.426, 0.0, 0, True, True, "")
    sim = simulate_bgnbd(truth.r, truth.alpha, truth.a, truth.b, 39.0, 40_000, rng)
    alive = truth.probability_alive(sim["frequency"], sim["recency"], sim["T"])
    repeat = sim["frequency"].to_numpy() > 0
    assert sim.loc[~repeat, "alive"].all()
    # E[P(alive | data)] = P(alive), overall and within bands of the prediction
    assert alive[repeat].mean() == pytest.approx(sim.loc[repeat, "alive"].mean(), abs=0.01)
    for low, high in ((0.0, 0.3), (0.3, 0.6), (0.6, 1.0)):
        band = repeat & (alive >= low) & (alive < high)
        assert band.sum() > 1000
        assert alive[band].mean() == pytest.approx(sim.loc[band, "alive"].mean(), abs=0.025)
    # forecast of the next 26 weeks against the latent rates: E[Y] = alive (1 - e^{-lpt}) / p
    lam, p = sim["lambda_"].to_numpy(), sim["p"].to_numpy()
    future = sim["alive"].to_numpy() * -np.expm1(-lam * p * 26.0) / p
    forecast = truth.conditional_expected_purchases(26.0, sim["frequency"], sim["recency"], 39.0)
    assert forecast.mean() == pytest.approx(future.mean(), rel=0.03)
    heavy = sim["frequency"].to_numpy() >= 3
    assert forecast[heavy].mean() == pytest.approx(future[heavy].mean(), rel=0.05)


# --------------------------------------------------------------------------------------
# BG/NBD on simulated data, identifiability


def test_bgnbd_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    n = 20_000
    sim = simulate_bgnbd(0.5, 5.0, 0.8, 2.5, rng.uniform(26, 52, n), n, rng)
    fit = fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert fit.identifiable
    assert fit.r == pytest.approx(0.5, rel=0.06)
    assert fit.alpha == pytest.approx(5.0, rel=0.06)
    assert fit.a == pytest.approx(0.8, rel=0.2)
    assert fit.b == pytest.approx(2.5, rel=0.2)
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.8 / 3.3, rel=0.06)


def test_frequent_shoppers_without_dropout_over_a_short_window_are_flagged():
    # about one purchase a week, nobody drops out (p ~ 1e-6), 8 weeks of history
    rng = np.random.default_rng(0)
    sim = simulate_bgnbd(5.0, 5.0, 1.0, 1e6, 8.0, 2000, rng)
    assert sim["alive"].all()
    fit = fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert not fit.identifiable
    assert "not identifiable" in fit.note
    assert "empirical_retention" in fit.note
    # "no dropout": a -> 0 against b, where the likelihood is flat
    assert "a at the bound of the search" in fit.note
    assert "information matrix is not positive definite" in fit.note
    # the purchase part is still estimated
    assert fit.r / fit.alpha == pytest.approx(1.0, rel=0.05)


def test_a_short_history_with_a_vague_dropout_rate_is_flagged_by_its_standard_error():
    # 300 CDNOW-like customers seen for 5 weeks: an interior optimum, but a / (a + b)
    # is known only within a factor of e^7
    rng = np.random.default_rng(0)
    sim = simulate_bgnbd(0.243, 4.414, 0.793, 2.426, 5.0, 300, rng)
    fit = fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert fit.converged
    assert not fit.identifiable
    assert "standard error" in fit.note
    assert "bound" not in fit.note
    # 3,000 such customers followed for 39 weeks are identified
    rng = np.random.default_rng(0)
    longer = simulate_bgnbd(0.243, 4.414, 0.793, 2.426, 39.0, 3000, rng)
    assert fit_bgnbd(longer["frequency"], longer["recency"], longer["T"]).identifiable


# --------------------------------------------------------------------------------------
# Gamma-Gamma


def test_gamma_gamma_reproduces_the_published_cdnow_fit(cdnow):
    fit = fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    assert isinstance(fit, GammaGammaFit)
    assert fit.n == 946
    assert fit.converged
    for name, published in PUBLISHED_GG.items():
        # published to 2 decimals
        assert getattr(fit, name) == pytest.approx(published, abs=5e-3), name
    assert fit.log_likelihood == pytest.approx(CLVTOOLS_GG_LL, abs=1e-3)


def gamma_gamma_density_by_quadrature(p, q, v, x, m):
    """Density of the mean of x spends ~ Gamma(p, nu), mixed over nu ~ Gamma(q, v)."""

    def integrand(nu):
        mean_density = np.exp(
            p * x * np.log(nu * x) + (p * x - 1) * np.log(m) - nu * x * m - special.gammaln(p * x)
        )
        prior = np.exp(q * np.log(v) + (q - 1) * np.log(nu) - v * nu - special.gammaln(q))
        return mean_density * prior

    value, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)
    return value


def test_gamma_gamma_matches_an_independent_fit(cdnow):
    repeat = cdnow[cdnow["frequency"] > 0]
    x = repeat["frequency"].to_numpy(dtype=float)
    m = repeat["monetary_value"].to_numpy()
    fit = fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])

    # the closed form written below agrees with quadrature over nu
    def closed_form(p, q, v, xi, mi):
        return np.exp(
            special.gammaln(p * xi + q)
            - special.gammaln(p * xi)
            - special.gammaln(q)
            + q * np.log(v)
            + (p * xi - 1) * np.log(mi)
            + p * xi * np.log(xi)
            - (p * xi + q) * np.log(v + mi * xi)
        )

    for xi, mi in ((1.0, 12.0), (3.0, 40.0), (10.0, 80.0)):
        assert closed_form(6.0, 3.5, 15.0, xi, mi) == pytest.approx(
            gamma_gamma_density_by_quadrature(6.0, 3.5, 15.0, xi, mi), rel=1e-8
        )

    # Nelder-Mead on the untransformed parameters, from another start
    def negative(params):
        if np.any(params <= 0):
            return np.inf
        return -np.sum(np.log(closed_form(*params, x, m)))

    other = optimize.minimize(
        negative,
        [2.0, 2.0, 30.0],
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 20_000},
    )
    assert other.success
    assert [fit.p, fit.q, fit.v] == pytest.approx(other.x, rel=1e-4)
    assert fit.log_likelihood == pytest.approx(-other.fun, abs=1e-6)


def test_gamma_gamma_recovers_simulated_parameters_and_its_expectation_is_calibrated():
    rng = np.random.default_rng(13)
    n, p, q, v = 5000, 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1 / v, size=n)
    x = 1 + rng.poisson(2.0, size=n)
    m = rng.gamma(p * x, 1 / (nu * x))  # mean of x spends ~ Gamma(p, rate nu)
    fit = fit_gamma_gamma(x, m)
    assert fit.p == pytest.approx(p, rel=0.1)
    assert fit.q == pytest.approx(q, rel=0.1)
    assert fit.v == pytest.approx(v, rel=0.15)
    assert fit.mean_spend == pytest.approx(p * v / (q - 1), rel=0.03)
    # E[E[M | x, m]] = E[p / nu]: the expectation is calibrated against the latent means
    truth = GammaGammaFit(p, q, v, 0.0, n, True)
    expected = truth.conditional_expected_average_profit(x, m)
    assert expected.mean() == pytest.approx((p / nu).mean(), rel=0.02)
    high = m > np.quantile(m, 0.9)
    assert expected[high].mean() == pytest.approx((p / nu)[high].mean(), rel=0.05)


def test_conditional_expected_average_profit_hand_values():
    fit = GammaGammaFit(p=6.0, q=4.0, v=15.0, log_likelihood=0.0, n=0, converged=True)
    got = fit.conditional_expected_average_profit([0, 2], [0.0, 50.0])
    # x = 0: population mean p v / (q - 1) = 30; x = 2: 6 (15 + 100) / (12 + 3) = 46
    assert got.tolist() == pytest.approx([30.0, 46.0])


# --------------------------------------------------------------------------------------
# empirical retention


def retention_log() -> pd.DataFrame:
    rows = [
        ("A", "loyal", "2024-01-10"),
        ("A", "loyal", "2024-02-05"),  # month 1: (Jan 31, Feb 29]
        ("A", "loyal", "2024-03-31"),  # month 2: (Feb 29, Mar 31], edge included
        ("B", "loyal", "2024-01-31"),  # on the reference date: in the cohort
        ("B", "loyal", "2024-02-29"),  # month 1
        ("C", "loyal", "2023-12-01"),  # never again
        ("D", "lost", "2024-01-02"),
        ("D", "lost", "2024-04-10"),  # month 3, not fully observed
        ("E", "lost", "2024-01-15"),
        ("E", "lost", "2024-02-10"),  # month 1, twice
        ("E", "lost", "2024-02-20"),
        ("F", "lost", "2024-02-15"),  # first purchase after the reference date: not counted
        ("G", "lost", "2024-01-20"),
        ("G", "lost", "2024-05-01"),  # after the observation end: ignored
    ]
    return pd.DataFrame(rows, columns=["customer_id", "segment", "date"])


def test_empirical_retention_hand_case():
    out = empirical_retention(
        retention_log(),
        horizon_months=3,
        reference_date="2024-01-31",
        observation_end="2024-04-15",
    )
    assert out["segment"].tolist() == ["lost"] * 3 + ["loyal"] * 3
    assert out["month"].tolist() == [1, 2, 3, 1, 2, 3]
    assert out["customers"].tolist() == [3, 3, 3, 3, 3, 3]  # D E G; A B C
    assert out["active"].tolist() == [1, 0, 1, 2, 1, 0]
    assert out["retained"].tolist() == [2, 1, 1, 2, 1, 0]
    nan = np.nan
    assert out["active_share"].tolist() == pytest.approx(
        [1 / 3, 0, nan, 2 / 3, 1 / 3, nan], nan_ok=True
    )
    assert out["retained_share"].tolist() == pytest.approx(
        [2 / 3, 1 / 3, nan, 2 / 3, 1 / 3, nan], nan_ok=True
    )


def test_empirical_retention_default_reference_date_covers_the_horizon():
    # last purchase 2024-05-01; 2 months back: reference 2024-03-01
    out = empirical_retention(retention_log(), horizon_months=2)
    # cohort at 2024-03-01: A B C (loyal), D E F G (lost); month 1 = (Mar 1, Apr 1]
    assert out["customers"].tolist() == [4, 4, 3, 3]
    assert out["active"].tolist() == [0, 2, 1, 0]  # D Apr 10 and G May 1 in month 2
    assert out["active_share"].tolist() == pytest.approx([0, 0.5, 1 / 3, 0])


# --------------------------------------------------------------------------------------
# input validation


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_bgnbd([-1, 0], [0, 0], [5, 5]), "frequency must be >= 0"),
        (lambda: fit_bgnbd([1, 0], [-1, 0], [5, 5]), "recency must be >= 0"),
        (lambda: fit_bgnbd([1, 0], [1, 0], [np.nan, 5]), "T must be finite"),
        (lambda: fit_bgnbd([1.5, 0], [1, 0], [5, 5]), "frequency must be whole"),
        (lambda: fit_bgnbd([1, 0], [6, 0], [5, 5]), "recency must be <= T"),
        (lambda: fit_bgnbd([0, 0], [1, 0], [5, 5]), "recency must be 0 when frequency is 0"),
        (lambda: fit_bgnbd([1, 0, 2], [1, 0], [5, 5]), "same length"),
        (lambda: fit_bgnbd([1], [1], [5]), "at least 2"),
        (lambda: fit_bgnbd([1, 0], [1, 0], [5, 5], initial=(1, 0, 1, 1)), "initial alpha"),
        (lambda: fit_gamma_gamma([1, 2], [10.0, 0.0]), "monetary_value must be > 0"),
        (lambda: fit_gamma_gamma([1, -2], [10.0, 5.0]), "frequency must be >= 0"),
        (lambda: fit_gamma_gamma([1, 0], [10.0, 0.0]), "frequency > 0"),
        (lambda: simulate_bgnbd(1, 1, 0, 1, 5.0, 10, np.random.default_rng(0)), "a == 0"),
        (lambda: simulate_bgnbd(1, 1, 1, 1, 5.0, 0, np.random.default_rng(0)), "n == 0"),
        (lambda: empirical_retention(retention_log(), horizon_months=0), "horizon_months"),
        (lambda: empirical_retention(retention_log().drop(columns="segment")), "'segment'"),
        (
            lambda: empirical_retention(retention_log().assign(segment=list("ab") * 7)),
            "segment must be constant within a customer",
        ),
        (
            lambda: summary_from_transactions(retention_log(), freq="M"),
            "freq == 'M'",
        ),
        (
            lambda: summary_from_transactions(retention_log(), amount="spend"),
            "no column 'spend'",
        ),
        (
            lambda: summary_from_transactions(
                retention_log(), calibration_end="2024-03-01", observation_end="2024-02-01"
            ),
            "observation_end",
        ),
    ],
)
def test_invalid_input_raises_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_probability_alive_rejects_recency_after_t(cdnow_fit):
    with pytest.raises(ValueError, match="recency must be <= T"):
        cdnow_fit.probability_alive([1], [10.0], [5.0])
    with pytest.raises(ValueError, match="t must be >= 0"):
        cdnow_fit.expected_purchases([-1.0])
