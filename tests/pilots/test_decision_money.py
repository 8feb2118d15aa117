"""The expected-profit rule's extension and the interval rule's weeks to settle
(pilots.decision_money), by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from loyalty_pilot.experiments.value import Economics, Normal, evsi, posterior
from loyalty_pilot.pilots.decision_money import best_extension, se_scaling, weeks_to_settle
from loyalty_pilot.pilots.money import WEEKS_PER_MONTH, ArmMoney

ECON = Economics.from_break_even(1e6, 0.005, 1e6, 0.10)


def test_se_scaling_follows_the_design_mde_and_falls_back_to_independent_weeks():
    root = {w: 1 / math.sqrt(w) for w in (8, 12, 16, 26)}  # an MDE falling as 1 / sqrt(w)
    assert se_scaling(root, 12, 16) == pytest.approx(math.sqrt(12 / 16), rel=1e-12)
    assert se_scaling(root, 12, 40) == pytest.approx(math.sqrt(12 / 40), rel=1e-12)  # extrapolated
    slow = {8: 0.10, 16: 0.09}  # serially correlated weeks: the se falls slowly
    assert se_scaling(slow, 8, 16) == pytest.approx(0.9)
    assert se_scaling({}, 12, 16) == pytest.approx(math.sqrt(12 / 16))


def test_weeks_to_settle_by_hand_is_never_zero_and_can_say_none():
    row = {"log_estimate": math.log1p(0.03), "se": 0.01, "df": 20.0, "scale": "total"}
    t = stats.t.ppf(1 - 0.025 / 2, 20)
    gap = math.log1p(0.03) - math.log1p(0.005)
    # with se falling as sqrt(12 / (12 + e)): the first e with t 0.01 sqrt(12/(12+e)) < gap
    expected = next(e for e in range(1, 27) if t * 0.01 * math.sqrt(12 / (12 + e)) < gap)
    assert weeks_to_settle(row, 0.005, 0.025, 12, {}) == expected
    settled = {"log_estimate": math.log1p(0.2), "se": 0.01, "df": 20.0, "scale": "total"}
    assert weeks_to_settle(settled, 0.005, 0.025, 12, {}) == 1  # at least one more week
    on_it = {"log_estimate": math.log1p(0.005), "se": 0.01, "df": 20.0, "scale": "total"}
    assert weeks_to_settle(on_it, 0.005, 0.025, 12, {}) is None


def _arm(post: Normal, se: float) -> ArmMoney:
    return ArmMoney("cash", ECON, Normal(0.004, 0.01), "assumptions", 0.01, 0.0, se, post)


def test_best_extension_is_the_largest_net_value_and_worth_less_once_bought():
    prior = Normal(0.004, 0.01)
    post = posterior(prior, 0.003, 0.02)
    money = _arm(post, 0.02)
    chosen = best_extension(money, 12, 50_000.0, {}, 12)
    assert chosen is not None
    weeks, value, cost = chosen
    new = 0.02 * math.sqrt(12 / (12 + weeks))
    added = 1 / math.sqrt(1 / new**2 - 1 / 0.02**2)
    assert value == pytest.approx(evsi(post, added, ECON), rel=1e-12)
    after = ECON.value_of_deciding(post) + value
    horizon = 12 * WEEKS_PER_MONTH
    assert cost == pytest.approx(0.01 * 50_000.0 * weeks + after * weeks / horizon, rel=1e-12)
    # after those weeks (the posterior sharper, the se smaller) the same weeks are worth less
    later = posterior(post, 0.003, added)
    again = best_extension(_arm(later, new), 12 + weeks, 50_000.0, {}, 12)
    assert again is None or again[1] < value


def test_no_extension_when_the_rule_already_goes_or_without_a_pilot_estimate():
    sure = Normal(math.log1p(0.05), 0.002)
    assert best_extension(_arm(sure, 0.01), 12, 50_000.0, {}, 12) is None
    blank = ArmMoney("cash", ECON, Normal(0.004, 0.01), "assumptions", 0.01)
    assert best_extension(blank, 12, 50_000.0, {}, 12) is None


def test_an_early_stop_reads_the_repeated_confidence_interval():
    from types import SimpleNamespace

    from loyalty_pilot.pilots.report_build import _with_rci
    from loyalty_pilot.reports.document import ArmResult

    row = ArmResult("cash", "control", "cash", 0.06, 0.02, 0.10, 1.0, 0.01, None, 16, "ok",
                    "ratio")  # fmt: skip
    crossed = SimpleNamespace(
        history=({"look": 6, "crossed": True, "statistic": 3.4},), rci_low=0.004, rci_high=0.12
    )
    early = _with_rci(row, crossed, weeks_seen=6, planned=12)
    assert (early.rel_ci_low, early.rel_ci_high, early.method) == (0.004, 0.12, "ratio+rci")
    assert _with_rci(row, crossed, weeks_seen=12, planned=12) is row  # ran its length
    down = SimpleNamespace(
        history=({"look": 6, "crossed": True, "statistic": -3.4},), rci_low=-0.2, rci_high=-0.01
    )
    assert _with_rci(row, down, weeks_seen=6, planned=12) is row  # harm is no efficacy stop


def test_the_report_rollout_reads_the_documents_version(monkeypatch):
    from types import SimpleNamespace

    from loyalty_pilot.pilots import pilot_freeze
    from loyalty_pilot.pilots.report_build import _rollout

    seen = {}

    def plan(con, pf, data, *, version=None, say=None):
        seen["version"] = version
        raise RuntimeError("stop here")

    monkeypatch.setattr(pilot_freeze, "rollout_plan", plan)
    pf = SimpleNamespace(spec=SimpleNamespace(unit="store"))
    with pytest.raises(RuntimeError, match="stop here"):
        _rollout(None, pf, None, 3)
    assert seen["version"] == 3


def test_the_likelihood_reads_the_log_scale_or_the_relative_interval():
    from loyalty_pilot.pilots.decision_money import comparison_likelihood

    ratio = {"log_estimate": 0.03, "se": 0.01, "df": 12.0, "scale": "total", "relative": 0.0305}
    x, se = comparison_likelihood(ratio)
    assert x == 0.03
    assert se == pytest.approx(0.01 * stats.t.ppf(0.975, 12) / stats.norm.ppf(0.975))
    # a customer test: the se is in currency, only the relative interval is on the uplift
    cuped = {"relative": 0.045, "rel_ci_low": 0.029, "rel_ci_high": 0.060, "se": 0.82,
             "alpha": 0.05, "scale": "level"}  # fmt: skip
    x, se = comparison_likelihood(cuped)
    assert x == pytest.approx(math.log1p(0.045))
    width = math.log1p(0.060) - math.log1p(0.029)
    assert se == pytest.approx(width / (2 * stats.norm.ppf(0.975)), rel=1e-12)
    assert comparison_likelihood({**ratio, "status": "zero_variance"}) == (None, None)
    assert comparison_likelihood({"relative": 0.01, "scale": "level"}) == (None, None)


class _Projection:
    """The few fields arm_money reads, by hand."""

    def __init__(self, draws):
        from types import SimpleNamespace

        self.totals = {"revenue": 10_000_000.0, "cost_replay": 50_000.0}
        self.break_even_uplift = 0.005
        self.samples = {"incremental_revenue": 10_000_000.0 * np.asarray(draws)}
        self.programme = SimpleNamespace(programme="cash")


def test_arm_money_priors_and_the_sceptical_one_expects_no_profit():
    from types import SimpleNamespace

    from loyalty_pilot.pilots.money import arm_money

    draws = np.expm1(np.random.default_rng(0).normal(0.01, 0.004, 2000))
    spec = SimpleNamespace(prior="assumptions", loss_threshold=None, horizon_months=12,
                           max_loss_probability=0.1)  # fmt: skip
    money = arm_money("cash", _Projection(draws), spec)
    assert money.prior.mean == pytest.approx(np.log1p(draws).mean(), rel=1e-12)
    assert money.economics.loss_threshold == 50_000.0  # one year of cost over 12 months
    assert money.cost_per_sales == pytest.approx(0.005)
    sceptical = arm_money("cash", _Projection(draws), SimpleNamespace(**{**vars(spec),
                          "prior": "sceptical"}))  # fmt: skip
    assert sceptical.prior.uplift_mean == pytest.approx(0.005, rel=1e-12)
    assert sceptical.economics.expected_profit(sceptical.prior) == pytest.approx(0, abs=1e-6)
    assert sceptical.prior.sd == pytest.approx(money.prior.sd)
    # a customer pilot's uplift is the members': a share of it reaches total sales
    members = arm_money("cash", _Projection(draws), spec, estimate=math.log1p(0.05), se=0.01,
                        members_share=0.4)  # fmt: skip
    assert members.estimate == pytest.approx(math.log1p(0.4 * 0.05))
    assert members.se == pytest.approx(0.01 * 0.4 * 1.05 / 1.02)


def test_a_customer_pilots_share_of_the_chains_pre_period_sales():
    import datetime as dt

    import duckdb
    import pandas as pd

    from loyalty_pilot.pilots.decision_money import customers_share

    con = duckdb.connect()
    con.execute("CREATE TABLE baskets (date DATE, amount DOUBLE)")
    con.execute(
        "INSERT INTO baskets VALUES ('2025-01-06', 100), ('2025-01-07', 300), "
        "('2025-03-01', 1000)"  # after the pre-period: not counted
    )
    period = SimpleNamespace(start=dt.date(2025, 1, 6), end=dt.date(2025, 2, 2))
    pf = SimpleNamespace(spec=SimpleNamespace(pre_period=period), error=ValueError)
    data = SimpleNamespace(wide=pd.DataFrame({"w1": [50.0, 30.0], "w2": [20.0, 0.0]}))
    assert customers_share(con, pf, data) == pytest.approx(100.0 / 400.0)
