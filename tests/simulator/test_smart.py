"""SMART check: each letter against a hand-worked case."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from loyalty_pilot.simulator.programme import Programme
from loyalty_pilot.simulator.replay import replay
from loyalty_pilot.simulator.smart import count_rules, smart_check, value_per_100

ECONOMICS = {"gross_margin": 0.3, "budget_share_of_revenue": 0.02}


def programme(**parts) -> Programme:
    return Programme.model_validate({"programme": "p", "economics": ECONOMICS, **parts})


def test_rules_and_value_of_a_cash_voucher():
    p = programme(
        earn={"points_per_currency": 2.0, "welcome_bonus": 50},
        rewards=[{"kind": "cash_voucher", "points": 400, "value": 5.0}],
        expiry={"inactivity_days": 365},
    )
    # earn, welcome bonus, one reward, its validity, inactivity expiry
    assert count_rules(p) == 5
    # 100 spent -> 200 points -> 200 / 400 vouchers of 5 = 2.50
    assert value_per_100(p) == pytest.approx(2.5)


def test_value_of_gifts_uses_retail_value_and_shares():
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[
            {"kind": "gift", "points": 500, "retail_value": 10, "unit_cost": 4, "share": 0.25},
            {"kind": "gift", "points": 1000, "retail_value": 30, "unit_cost": 12, "share": 0.75},
        ],
    )
    # per point: 0.25 * 10/500 + 0.75 * 30/1000 = 0.005 + 0.0225 = 0.0275; x 100 = 2.75
    assert value_per_100(p) == pytest.approx(2.75)
    assert count_rules(p) == 1 + 2 + 1


def test_discounts_tiers_and_referral_count_as_rules():
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[
            {"kind": "cash_voucher", "points": 500, "value": 5.0},
            {"kind": "discount", "rate": 0.01},
            {
                "kind": "progressive_discount",
                "scale": [
                    {"from_spend": 0, "rate": 0},
                    {"from_spend": 500, "rate": 0.02},
                    {"from_spend": 900, "rate": 0.03},
                ],
            },
        ],
        tiers=[{"name": "a", "min_spend_12m": 0}, {"name": "b", "min_spend_12m": 10}],
        referral={"bonus_referrer": 10, "rate_per_member_year": 0.1},
        expiry={"validity_years": 1},
    )
    # earn 1 + voucher 1 + validity 1 + card 1 + two non-zero steps 2 + one extra tier 1
    # + fixed validity 1 + referral 1 = 9
    assert count_rules(p) == 9
    # 1 (points) + 1 (card) + 2 (first non-zero step)
    assert value_per_100(p) == pytest.approx(4.0)
    check = smart_check(p)
    assert check.to_dict()["S"]["pass"] is False
    assert check.passed is False


def test_without_baskets_a_r_t_are_not_evaluated():
    p = programme(rewards=[{"kind": "discount", "rate": 0.02}])
    check = smart_check(p)
    letters = check.to_dict()
    assert letters["S"]["pass"] is True
    assert letters["M"]["figure"] == pytest.approx(2.0)
    assert [letters[x]["pass"] for x in "ART"] == [None, None, None]
    assert check.verdict == "incomplete"


def baskets(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "basket_id": [f"b{i}" for i in range(len(rows))],
            "date": pd.to_datetime([r[1] for r in rows]),
            "amount": [r[2] for r in rows],
        }
    )


def test_attainable_realistic_time_bound_by_hand():
    # Five members enrolled on 2024-01-01; the data end on 2025-03-01, so all five are
    # observed for 12 months. Reward at 100 points (1 point per euro).
    rows = [
        ("a", "2024-01-01", 60), ("a", "2024-01-11", 50), ("a", "2024-01-20", 5),  # day 10
        ("b", "2024-01-01", 60), ("b", "2024-03-01", 50),  # day 60
        ("c", "2024-01-01", 10), ("c", "2024-06-30", 10),  # never
        ("d", "2024-01-01", 99), ("d", "2025-01-08", 1),  # day 373: after 365
        ("e", "2024-01-01", 150),  # day 0
        ("f", "2025-03-01", 10),  # enrolled too late to be observed
    ]  # fmt: skip
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[{"kind": "cash_voucher", "points": 100, "value": 1.0}],
        redemption={"rate": 1.0, "validity_days": 30},
    )
    result = replay(baskets(rows), p)
    letters = smart_check(p, result).to_dict()
    # reached within 365 days: a, b, e -> 3 of 5 observed
    assert letters["A"]["figure"] == pytest.approx(3 / 5)
    assert letters["A"]["pass"] is True
    assert "5 members observed" in letters["A"]["note"]
    # cost: a reward is redeemed (rate 1) only when a basket follows within 30 days:
    # a's (issued 01-11, next basket 01-20) -> 1.0
    revenue = sum(r[2] for r in rows)
    assert letters["R"]["figure"] == pytest.approx(1.0 / revenue)
    assert letters["R"]["pass"] is True
    # same span for all, so annual rates follow basket counts a 3, b 2, c 2, d 2, e 1: the
    # 40th and 60th percentiles are both 2 -> b, c, d -> days 60, never, 373 -> median 373
    assert letters["T"]["figure"] == pytest.approx(373)
    assert letters["T"]["pass"] is False


def test_time_bound_fails_when_the_median_member_never_gets_there():
    rows = [(c, "2024-01-01", 10.0) for c in "abcde"] + [("z", "2025-06-01", 1.0)]
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[{"kind": "cash_voucher", "points": 1000, "value": 10.0}],
    )
    letters = smart_check(p, replay(baskets(rows), p)).to_dict()
    assert letters["A"]["figure"] == 0.0
    assert letters["A"]["pass"] is False
    assert letters["T"]["figure"] is None  # infinite: never within the history
    assert letters["T"]["pass"] is False
    assert math.isinf(smart_check(p, replay(baskets(rows), p)).letters[4].figure)


def test_a_year_of_baskets_is_annualized_by_kaplan_meier_by_hand():
    # The baskets run from 2024-01-01 to 2024-12-29 (52 weeks): no member is observed for
    # 12 months. Reward at 100 points. Members observed 91 days or more (tenure to the
    # end): a, b, c, d, e (363 days), g (181), h (119); z (28 days) is left out.
    rows = [
        ("a", "2024-01-01", 60), ("a", "2024-01-11", 50), ("a", "2024-12-29", 5),  # day 10
        ("b", "2024-01-01", 60), ("b", "2024-03-01", 50),  # day 60
        ("c", "2024-01-01", 10), ("c", "2024-06-30", 10),  # none: censored at 363
        ("d", "2024-01-01", 99),  # none: censored at 363
        ("e", "2024-01-01", 150),  # day 0
        ("g", "2024-07-01", 50), ("g", "2024-07-06", 60),  # day 5
        ("h", "2024-09-01", 10),  # none: censored at 119
        ("z", "2024-12-01", 10),  # 28 days: too short to count
    ]  # fmt: skip
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[{"kind": "cash_voucher", "points": 100, "value": 1.0}],
        redemption={"rate": 1.0, "validity_days": 30},
    )
    check = smart_check(p, replay(baskets(rows), p))
    letters = check.to_dict()
    # Kaplan-Meier: day 0 (7 at risk) 6/7, day 5 (6) 5/7, day 10 (5) 4/7, day 60 (4: b, c,
    # d, h) 3/7; S(363) = 3/7, scaled to a year at the same hazard: (3/7) ** (365 / 363)
    assert letters["A"]["figure"] == pytest.approx(1 - (3 / 7) ** (365 / 363), rel=1e-12)
    assert letters["A"]["pass"] is True
    assert letters["A"]["note"].startswith("annualized: 7 members observed 91 to 363 days")
    # annual basket rates 365 * baskets / (tenure + 1): d, e 1.003; b, c 2.005; a 3.008;
    # h 3.042; g 4.011 -> the 40th-60th percentile band is b and c: b at day 60, c
    # censored at 363 -> the Kaplan-Meier median is 60
    assert letters["T"]["figure"] == pytest.approx(60)
    assert letters["T"]["pass"] is True
    assert check.verdict == "pass"


def test_fifty_two_weeks_of_a_chain_give_a_verdict_not_incomplete():
    import numpy as np

    rng = np.random.default_rng(3)
    rows = []
    for k in range(300):  # members with a weekly-ish habit, first seen over the year
        first = int(rng.integers(0, 200))
        days = np.unique(first + np.cumsum(rng.integers(1, 15, size=40)))
        for day in days[days < 364]:
            rows.append((f"c{k:03d}", str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day))),
                         float(rng.uniform(5, 40))))  # fmt: skip
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[{"kind": "cash_voucher", "points": 300, "value": 3.0}],
    )
    result = replay(baskets(rows), p)
    assert (pd.Timestamp(result.end) - result.customers["enrolled"]).dt.days.max() < 365
    check = smart_check(p, result)
    letters = check.to_dict()
    assert letters["A"]["pass"] is not None
    assert letters["T"]["pass"] is not None
    assert 0 < letters["A"]["figure"] <= 1
    assert "annualized" in letters["A"]["note"]
    assert check.verdict in ("pass", "fail")


def test_too_short_a_history_says_why_attainable_is_not_evaluated():
    rows = [(c, "2024-01-01", 10.0) for c in "abc"] + [("a", "2024-02-15", 200.0)]
    p = programme(
        earn={"points_per_currency": 1.0},
        rewards=[{"kind": "cash_voucher", "points": 100, "value": 1.0}],
    )
    letters = smart_check(p, replay(baskets(rows), p)).to_dict()
    assert [letters[x]["pass"] for x in "AT"] == [None, None]
    assert letters["A"]["note"] == (
        "no member observed for 12 months nor for 91 days (the longest tenure is 45 days): "
        "not evaluated"
    )
