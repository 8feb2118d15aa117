"""Hand-worked replays: one small case per rule and boundary of ``simulator/replay.py``.

Every number below is worked out by hand in the comments, from the rules R1-R12 of the
module docstring. Each case runs against the fast ``replay`` and against the plain reference
(``tests/simulator/reference_replay.py``) through the ``run`` fixture of ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from loyalty_pilot.simulator.programme import Programme

ECON = {"gross_margin": 0.3, "budget_share_of_revenue": 0.02}
VOUCHER = {"kind": "cash_voucher", "points": 100, "value": 5.0}
BIG_VOUCHER = {"kind": "cash_voucher", "points": 100_000, "value": 5.0}  # never reached


def make(**sections) -> Programme:
    """A programme: 1 point per currency unit, a 100-point voucher worth 5, unless overridden."""
    spec = {
        "programme": "case",
        "earn": {"points_per_currency": 1.0},
        "rewards": [VOUCHER],
        "economics": ECON,
    }
    spec.update(sections)
    return Programme.model_validate({k: v for k, v in spec.items() if v is not None})


def baskets(*rows) -> pd.DataFrame:
    """Rows ``(customer_id, date, amount[, department])``; basket ids follow the row order."""
    with_dept = any(len(r) == 4 for r in rows)
    frame = pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "basket_id": [f"b{i:03d}" for i in range(len(rows))],
            "date": pd.to_datetime([r[1] for r in rows]),
            "amount": [float(r[2]) for r in rows],
        }
    )
    if with_dept:
        frame["department"] = [r[3] if len(r) == 4 else None for r in rows]
    return frame


def months(result) -> list[str]:
    return [f"{m:%Y-%m}" for m in pd.to_datetime(result.ledger["month"])]


def col(result, column: str) -> list:
    """A ledger column as a list of plain Python numbers."""
    return [v.item() if hasattr(v, "item") else v for v in result.ledger[column].tolist()]


def row(result, month: str) -> pd.Series:
    ledger = result.ledger
    hit = ledger[pd.to_datetime(ledger["month"]) == pd.Timestamp(month + "-01")]
    assert len(hit) == 1, f"no single ledger row for {month}: {months(result)}"
    return hit.iloc[0]


def cust(result, customer_id: str) -> pd.Series:
    customers = result.customers
    hit = customers[customers["customer_id"].astype(str) == customer_id]
    assert len(hit) == 1, f"no single customer row {customer_id}"
    return hit.iloc[0]


def ids(result) -> list[str]:
    return [str(c) for c in result.customers["customer_id"]]


def approx(value):
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def day(value) -> pd.Timestamp:
    return pd.Timestamp(value)


def date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# ---------------------------------------------------------------------------------- R5 points


def test_points_are_floored_per_basket(run):
    res = run(baskets(("c1", "2024-01-05", 10.99), ("c1", "2024-01-06", 5.50)), make())
    # 1099 * 1 / 100 = 10.99 -> 10 ; 550 / 100 = 5.5 -> 5 ; 15 (flooring the sum would give 16)
    assert col(res, "points_earned") == [15]
    assert cust(res, "c1")["points_earned"] == 15
    assert cust(res, "c1")["balance_end"] == 15
    assert col(res, "outstanding_points") == [15]


def test_points_floor_has_the_epsilon(run):
    res = run(baskets(("c1", "2024-01-05", 30.00)), make(earn={"points_per_currency": 2.3}))
    # 3000 * 2.3 / 100 = 68.99999999999999 in floating point; + 1e-9 -> floor 69 (not 68)
    assert col(res, "points_earned") == [69]


def test_welcome_bonus_credited_at_the_first_basket(run):
    prog = make(earn={"points_per_currency": 1.0, "welcome_bonus": 50}, rewards=[BIG_VOUCHER])
    res = run(baskets(("c1", "2024-01-05", 20.00), ("c1", "2024-02-05", 30.00)), prog)
    # Jan: 20 points + 50 welcome; Feb: 30 points, no welcome
    assert col(res, "points_earned") == [20, 30]
    assert col(res, "welcome_points") == [50, 0]
    assert col(res, "new_members") == [1, 0]
    assert cust(res, "c1")["points_earned"] == 100  # with the welcome bonus
    assert cust(res, "c1")["balance_end"] == 100


def test_welcome_bonus_counts_towards_a_reward(run):
    prog = make(earn={"points_per_currency": 1.0, "welcome_bonus": 90})
    res = run(baskets(("c1", "2024-01-05", 10.00)), prog)
    # 10 points + 90 welcome = 100 >= 100 -> one voucher at the first basket, balance 0
    assert col(res, "rewards_issued") == [1]
    assert col(res, "points_converted") == [100]
    assert cust(res, "c1")["balance_end"] == 0
    assert cust(res, "c1")["days_to_first_reward"] == 0


# ------------------------------------------------------------------------------ R8 conversion


def test_two_rewards_in_one_basket(run):
    res = run(baskets(("c1", "2024-01-01", 30.00), ("c1", "2024-01-10", 190.00)), make())
    # 30 points, then 30 + 190 = 220 -> two vouchers of 100 points, 20 left
    assert col(res, "rewards_issued") == [2]
    assert col(res, "points_converted") == [200]
    assert col(res, "rewards_issued_cost") == [approx(10.0)]  # 2 x 5
    assert col(res, "rewards_issued_perceived") == [approx(10.0)]
    c1 = cust(res, "c1")
    assert c1["rewards_issued"] == 2
    assert c1["balance_end"] == 20
    assert pd.Timestamp(c1["first_reward_date"]) == day("2024-01-10")
    assert c1["days_to_first_reward"] == 9  # 10 Jan - 1 Jan


def test_reward_choice_by_shares_with_a_seed(run):
    prog = make(
        rewards=[
            {"kind": "cash_voucher", "points": 100, "value": 5.0, "share": 0.3},
            {"kind": "gift", "points": 200, "retail_value": 15.0, "unit_cost": 8.0, "share": 0.7},
        ]
    )
    data = baskets(
        ("c1", "2024-01-05", 200.0), ("c2", "2024-01-05", 200.0), ("c3", "2024-01-05", 200.0)
    )
    res = run(data, prog, seed=7)
    # default_rng(7): u = .625 .897 .776 (unused, uptake 1); v = .2252 .3002 .8736
    # cumsum(shares) = [.3, 1.]: searchsorted right -> 0, 1 (.3002 >= .3), 1
    assert res.customers["reward"].tolist() == [0, 1, 1]
    # c1: 200 points -> 2 vouchers (cost 10, perceived 10); c2, c3: one gift each
    # (cost 8, perceived 15): issued 4, cost 26, perceived 40
    assert col(res, "rewards_issued") == [4]
    assert col(res, "rewards_issued_cost") == [approx(26.0)]
    assert col(res, "rewards_issued_perceived") == [approx(40.0)]
    assert res.customers["rewards_issued"].tolist() == [2, 1, 1]


def test_equal_shares_when_none_given(run):
    prog = make(
        rewards=[
            {"kind": "cash_voucher", "points": 100, "value": 5.0},
            {"kind": "cash_voucher", "points": 300, "value": 20.0},
        ]
    )
    data = baskets(("c1", "2024-01-05", 1.0), ("c2", "2024-01-05", 1.0), ("c3", "2024-01-05", 1.0))
    res = run(data, prog, seed=7)
    # v = .2252 .3002 .8736 against cumsum [.5, 1.] -> 0, 0, 1
    assert res.customers["reward"].tolist() == [0, 0, 1]


def test_department_multipliers(run):
    prog = make(
        earn={"points_per_currency": 1.0, "department_multipliers": {"fresh": 2.0, "wine": 0.5}},
        rewards=[BIG_VOUCHER],
    )
    data = baskets(
        ("c1", "2024-01-01", 10.00, "fresh"),  # 1000 * 2 / 100 = 20
        ("c1", "2024-01-02", 10.01, "wine"),  # 1001 * .5 / 100 = 5.005 -> 5
        ("c1", "2024-01-03", 10.00, "dry"),  # no multiplier: 10
        ("c1", "2024-01-04", 10.00, None),  # missing department: 10
    )
    res = run(data, prog)
    assert col(res, "points_earned") == [45]  # 20 + 5 + 10 + 10


# ------------------------------------------------------------------------------------ R4 tiers


def tier_programme(**extra) -> Programme:
    return make(
        rewards=[BIG_VOUCHER],
        tiers=[
            {"name": "base", "min_spend_12m": 0.0},
            {
                "name": "gold",
                "min_spend_12m": 100.0,
                "multiplier": 2.0,
                "benefit": {"discount_rate": 0.1, "cost_per_member_year": 120.0},
            },
        ],
        **extra,
    )


def test_tier_on_rolling_365_days(run):
    data = baskets(
        ("c1", "2023-03-01", 100.00),
        ("c1", "2024-02-28", 10.00),
        ("c1", "2024-02-29", 10.00),
    )
    res = run(data, tier_programme())
    # 1 Mar 2023: no earlier spend -> base, 100 points.
    # 28 Feb 2024: window (28 Feb 2023, ...] holds 1 Mar 2023: 10000 cents >= 10000 -> gold,
    #   1000 * 1 * 2 / 100 = 20 points, discount 10.00 * 0.1 = 1.00 (gold benefit).
    # 29 Feb 2024: 1 Mar 2023 is exactly 365 days earlier (leap year) -> not counted;
    #   earlier spend 1000 cents -> base, 10 points, no discount.
    assert months(res)[0] == "2023-03"
    assert months(res)[-1] == "2024-02"
    assert len(months(res)) == 12
    assert sum(col(res, "points_earned")) == 130
    assert row(res, "2024-02")["points_earned"] == 30
    assert row(res, "2024-02")["discount_cost"] == approx(1.0)
    # Snapshots 31 Mar 2023 .. 31 Jan 2024 see 100.00 over (day - 365, day] -> gold;
    # the last snapshot (end = 29 Feb 2024) sees 20.00 -> base.
    assert col(res, "members_tier_gold") == [1] * 11 + [0]
    assert col(res, "members_tier_base") == [0] * 11 + [1]
    # gold benefit 120 / 12 = 10 per gold member and month
    assert col(res, "tier_benefit_cost") == [approx(10.0)] * 11 + [approx(0.0)]
    c1 = cust(res, "c1")
    assert c1["tier_end"] == "base"
    assert c1["top_tier"] == "gold"
    assert c1["points_earned"] == 130


def test_same_day_baskets_are_ordered_by_timestamp_then_basket_id(run):
    data = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1"],
            "basket_id": ["z", "b", "a"],
            "date": pd.to_datetime(["2024-05-01 08:00", "2024-05-01 12:00", "2024-05-01 12:00"]),
            "amount": [1.00, 10.00, 100.00],
        }
    )
    res = run(data, tier_programme())
    # order: z (08:00), a, b (12:00, by basket_id). z: base, 1 point; a: earlier 100 cents
    # -> base, 100 points; b: earlier 10100 cents -> gold, 1000 * 2 / 100 = 20 points.
    # (b before a would give 10 + 200 = 210.)
    assert col(res, "points_earned") == [121]


def test_tier_without_earn_gives_only_benefits(run):
    prog = make(
        earn=None,
        rewards=[{"kind": "discount", "rate": 0.05}],
        tiers=[
            {"name": "base", "min_spend_12m": 0.0},
            {"name": "gold", "min_spend_12m": 50.0, "benefit": {"discount_rate": 0.05}},
        ],
    )
    res = run(baskets(("c1", "2024-01-01", 60.00), ("c1", "2024-01-02", 100.00)), prog)
    # 60.00 * .05 = 3.00 (base); then earlier 6000 >= 5000 -> gold: 100.00 * (.05 + .05) = 10
    assert col(res, "discount_cost") == [approx(13.0)]
    assert col(res, "points_earned") == [0]
    assert cust(res, "c1")["reward"] == -1


# ---------------------------------------------------------------------------- R6/R7 expiry


@pytest.mark.parametrize(
    ("end", "march_lapse", "balance_end"),
    [(None, None, 5), (date("2024-03-29"), 0, 5), (date("2024-03-30"), 5, 0)],
)
def test_inactivity_expiry_exactly_at_the_window(run, end, march_lapse, balance_end):
    prog = make(rewards=[BIG_VOUCHER], expiry={"inactivity_days": 30})
    data = baskets(
        ("c1", "2024-01-01", 50.00),  # 50
        ("c1", "2024-01-30", 10.00),  # gap 29 < 30: no lapse, 60
        ("c1", "2024-02-29", 5.00),  # gap 30: 60 lapse on 30 Jan + 30 = 29 Feb, then +5
    )
    res = run(data, prog, end=end)
    assert row(res, "2024-01")["points_expired_inactivity"] == 0
    assert row(res, "2024-02")["points_expired_inactivity"] == 60
    assert row(res, "2024-02")["outstanding_points"] == 5
    # after the last basket the 5 lapse on 29 Feb + 30 = 30 Mar, only if that is <= end
    if march_lapse is None:
        assert months(res) == ["2024-01", "2024-02"]
    else:
        assert row(res, "2024-03")["points_expired_inactivity"] == march_lapse
    assert cust(res, "c1")["balance_end"] == balance_end
    assert cust(res, "c1")["points_expired"] == 60 + (march_lapse or 0)


def test_validity_k0_and_lapse_first_on_31_december(run):
    prog = make(rewards=[BIG_VOUCHER], expiry={"inactivity_days": 30, "validity_years": 0})
    data = baskets(
        ("c1", "2023-12-31", 40.00),  # 40 points, expire at the end of that very day (k = 0)
        ("c1", "2024-01-01", 10.00),  # 10 points (2024)
        ("c2", "2023-12-01", 20.00),  # lapses on 1 Dec + 30 = 31 Dec, before the validity
        ("c2", "2024-01-15", 5.00),
    )
    res = run(data, prog)
    assert months(res) == ["2023-12", "2024-01"]
    assert row(res, "2023-12")["points_expired_validity"] == 40  # c1 only; c2 had lapsed
    assert row(res, "2023-12")["points_expired_inactivity"] == 20
    assert row(res, "2023-12")["outstanding_points"] == 0
    assert row(res, "2024-01")["outstanding_points"] == 15  # 10 + 5
    assert cust(res, "c1")["points_expired"] == 40
    assert cust(res, "c2")["points_expired"] == 20


def test_validity_k1_uses_points_oldest_first(run):
    prog = make(expiry={"validity_years": 1})
    data = baskets(
        # c1: 80 (2023); 1 Mar 2024 +50 = 130 -> voucher, 100 taken oldest first:
        #     the 80 of 2023 and 20 of 2024 -> 30 of 2024 left
        ("c1", "2023-06-01", 80.00),
        ("c1", "2024-03-01", 50.00),
        # c2: 80 (2023) + 10 (2024) = 90, no voucher
        ("c2", "2023-06-01", 80.00),
        ("c2", "2024-03-01", 10.00),
    )
    res = run(data, prog, end=date("2025-12-31"))
    assert len(months(res)) == 31  # Jun 2023 .. Dec 2025
    # 31 Dec 2023: credited <= 2022 expires: nothing
    assert row(res, "2023-12")["points_expired_validity"] == 0
    # 31 Dec 2024: credited <= 2023: c1 0 (LIFO would give 30), c2 80
    assert row(res, "2024-12")["points_expired_validity"] == 80
    assert row(res, "2024-12")["outstanding_points"] == 40  # 30 + 10
    # 31 Dec 2025: credited <= 2024: c1 30, c2 10
    assert row(res, "2025-12")["points_expired_validity"] == 40
    assert row(res, "2025-12")["outstanding_points"] == 0
    assert cust(res, "c1")["points_expired"] == 30
    assert cust(res, "c2")["points_expired"] == 90
    # c1's voucher (1 Mar 2024) has no next basket: expires on 1 Mar + 90 = 30 May 2024
    assert row(res, "2024-05")["rewards_expired"] == approx(1.0)
    assert row(res, "2024-05")["breakage"] == approx(5.0)
    assert row(res, "2024-04")["pending_rewards"] == 1
    assert row(res, "2024-05")["pending_rewards"] == 0


# -------------------------------------------------------------------------------- R9 redemption


def test_redemption_within_validity_or_expiring(run):
    prog = make(redemption={"rate": 0.8, "validity_days": 30})
    data = baskets(
        ("c1", "2024-01-01", 100.00),  # voucher, balance 0
        ("c1", "2024-01-31", 1.00),  # = 1 Jan + 30: within -> .8 redeemed, .2 expire 31 Jan
        ("c2", "2024-01-15", 100.00),  # voucher
        ("c2", "2024-02-15", 1.00),  # 15 Jan + 31: too late -> expires on 14 Feb
    )
    res = run(data, prog)
    jan, feb = row(res, "2024-01"), row(res, "2024-02")
    assert jan["rewards_issued"] == 2
    assert jan["rewards_redeemed"] == approx(0.8)
    assert jan["redemption_cost"] == approx(4.0)  # .8 x 5
    assert jan["rewards_expired"] == approx(0.2)
    assert jan["breakage"] == approx(1.0)
    assert feb["rewards_redeemed"] == approx(0.0)
    assert feb["rewards_expired"] == approx(1.0)
    assert feb["breakage"] == approx(5.0)
    # 31 Jan: c1's voucher resolved that day; c2's pending. Liability:
    # c1 1 point x 5/100 x .8 = .04 ; c2 pending voucher 5 x .8 = 4 -> 4.04
    assert jan["pending_rewards"] == 1
    assert jan["outstanding_points"] == 1
    assert jan["liability"] == approx(4.04)
    # snapshot 15 Feb (end): nothing pending, 2 points -> .08
    assert pd.Timestamp(feb["snapshot"]) == day("2024-02-15")
    assert feb["pending_rewards"] == 0
    assert feb["liability"] == approx(0.08)
    assert feb["total_cost"] == approx(0.0)
    assert jan["total_cost"] == approx(4.0)
    assert cust(res, "c1")["rewards_redeemed"] == approx(0.8)
    assert cust(res, "c2")["rewards_redeemed"] == approx(0.0)


SAMPLED_DATA = [
    ("c1", "2024-01-10", 300.00),  # three vouchers
    ("c1", "2024-01-20", 1.00),  # within 30 days
    ("c2", "2024-01-05", 100.00),  # one voucher, issued before c1's
    ("c2", "2024-01-12", 1.00),  # within 30 days
]


def test_sampled_redemption_draws_in_customer_order(run):
    prog = make(redemption={"rate": 0.6, "validity_days": 30})
    res = run(baskets(*SAMPLED_DATA), prog, seed=7, sample=True, end=date("2024-02-29"))
    # default_rng(7): random(2), random(2) for R2, then binomial(3, .6) = 2 for c1 and
    # binomial(1, .6) = 0 for c2 (customer order; date order would draw c2 first: 1 and 1)
    assert cust(res, "c1")["rewards_redeemed"] == 2
    assert cust(res, "c2")["rewards_redeemed"] == 0
    assert row(res, "2024-01")["rewards_redeemed"] == 2
    assert row(res, "2024-01")["redemption_cost"] == approx(10.0)
    # not redeemed: c1 1 (expires 9 Feb), c2 1 (expires 4 Feb)
    assert row(res, "2024-01")["rewards_expired"] == 0
    assert row(res, "2024-02")["rewards_expired"] == 2
    assert row(res, "2024-02")["breakage"] == approx(10.0)
    # both resolved at their next baskets: nothing pending on 31 Jan; 2 points outstanding
    assert row(res, "2024-01")["pending_rewards"] == 0
    assert row(res, "2024-01")["liability"] == approx(2 * 0.05 * 0.6)


def test_sampled_is_reproducible_and_expected_is_the_mean(run):
    prog = make(redemption={"rate": 0.6, "validity_days": 30})
    one = run(baskets(*SAMPLED_DATA), prog, seed=7, sample=True, end=date("2024-02-29"))
    two = run(baskets(*SAMPLED_DATA), prog, seed=7, sample=True, end=date("2024-02-29"))
    pd.testing.assert_frame_equal(one.ledger, two.ledger)
    pd.testing.assert_frame_equal(one.customers, two.customers)
    res = run(baskets(*SAMPLED_DATA), prog, seed=7, end=date("2024-02-29"))
    # expected: c1 3 x .6 = 1.8, c2 .6; Jan 2.4 redeemed (cost 12); Feb 3 x .4 + .4 = 1.6
    assert cust(res, "c1")["rewards_redeemed"] == approx(1.8)
    assert cust(res, "c2")["rewards_redeemed"] == approx(0.6)
    assert row(res, "2024-01")["rewards_redeemed"] == approx(2.4)
    assert row(res, "2024-01")["redemption_cost"] == approx(12.0)
    assert row(res, "2024-02")["rewards_expired"] == approx(1.6)
    assert row(res, "2024-02")["breakage"] == approx(8.0)


# --------------------------------------------------------------------------------- R10 discounts


def test_fixed_discount_card_and_returns(run):
    prog = make(earn=None, rewards=[{"kind": "discount", "rate": 0.05}])
    data = baskets(("c1", "2024-01-03", 200.00), ("c1", "2024-01-20", -40.00))
    res = run(data, prog)
    # 200 x .05 = 10 ; -40 x .05 = -2 (given back) -> 8
    assert col(res, "discount_cost") == [approx(8.0)]
    assert col(res, "total_cost") == [approx(8.0)]
    assert col(res, "revenue") == [approx(160.0)]
    assert col(res, "points_earned") == [0]
    assert col(res, "liability") == [approx(0.0)]
    c1 = cust(res, "c1")
    assert c1["reward"] == -1
    assert c1["balance_end"] == 0
    assert c1["spend"] == approx(160.0)


def test_progressive_discount_crosses_a_step_and_resets_on_1_january(run):
    prog = make(
        earn=None,
        rewards=[
            {
                "kind": "progressive_discount",
                "scale": [
                    {"from_spend": 0.0, "rate": 0.0},
                    {"from_spend": 100.0, "rate": 0.02},
                    {"from_spend": 300.0, "rate": 0.05},
                ],
            }
        ],
    )
    data = baskets(
        ("c1", "2023-11-01", 150.00),  # earlier 0 -> 0
        ("c1", "2023-12-01", 200.00),  # earlier 150 -> 2 %: 4.00
        ("c1", "2023-12-15", 10.00),  # earlier 350 -> 5 %: 0.50
        ("c1", "2024-01-02", 100.00),  # new year: earlier 0 -> 0
        ("c1", "2024-01-03", 50.00),  # earlier 100 = the step exactly -> 2 %: 1.00
    )
    res = run(data, prog)
    assert months(res) == ["2023-11", "2023-12", "2024-01"]
    assert col(res, "discount_cost") == [approx(0.0), approx(4.5), approx(1.0)]


def test_returns_earn_nothing_and_give_the_discount_back(run):
    prog = make(rewards=[BIG_VOUCHER, {"kind": "discount", "rate": 0.1}])
    data = baskets(
        ("c1", "2024-01-03", 50.00), ("c1", "2024-01-04", -20.00), ("c1", "2024-01-05", 0.0)
    )
    res = run(data, prog)
    # 50 points, discount 5 ; return: 0 points, discount -2 ; zero basket: nothing
    assert col(res, "points_earned") == [50]
    assert col(res, "discount_cost") == [approx(3.0)]
    assert col(res, "revenue") == [approx(30.0)]
    assert col(res, "members_revenue") == [approx(30.0)]
    assert cust(res, "c1")["baskets"] == 3
    assert cust(res, "c1")["spend"] == approx(30.0)
    assert cust(res, "c1")["balance_end"] == 50


# ------------------------------------------------------------------------------- R2 enrolment


def test_anonymous_baskets_only_in_revenue(run):
    data = baskets(
        (None, "2024-01-02", 30.00),
        (np.nan, "2024-01-03", 5.00),
        ("c1", "2024-01-04", 20.00),
    )
    res = run(data, make())
    assert col(res, "revenue") == [approx(55.0)]
    assert col(res, "members_revenue") == [approx(20.0)]
    assert col(res, "members") == [1]
    assert col(res, "active_members") == [1]
    assert col(res, "points_earned") == [20]
    assert ids(res) == ["c1"]


def test_uptake_below_one_is_reproducible_for_the_seed(run):
    prog = make(
        enrolment={"uptake": 0.75},
        rewards=[
            {"kind": "cash_voucher", "points": 100, "value": 5.0},
            {"kind": "cash_voucher", "points": 200, "value": 12.0},
        ],
    )
    data = baskets(*[(f"c{i}", "2024-01-05", 10.00) for i in (1, 2, 3, 4)])
    res = run(data, prog, seed=42)
    # default_rng(42): u = .774 .439 .859 .697 -> u < .75: c2, c4
    # v = .094 .976 .761 .786 (drawn for all four) -> c2: 1, c4: 1 against [.5, 1.]
    assert ids(res) == ["c2", "c4"]
    assert res.customers["reward"].tolist() == [1, 1]
    assert col(res, "revenue") == [approx(40.0)]
    assert col(res, "members_revenue") == [approx(20.0)]
    assert col(res, "members") == [2]
    again = run(data, prog, seed=42)
    pd.testing.assert_frame_equal(res.customers, again.customers)
    everyone = run(data, make(), seed=42)
    assert ids(everyone) == ["c1", "c2", "c3", "c4"]
    assert col(everyone, "members_revenue") == [approx(40.0)]


def test_customer_ids_sorted_as_strings(run):
    prog = make(enrolment={"uptake": 0.75})
    data = baskets(("c9", "2024-01-05", 1.0), ("c10", "2024-01-05", 1.0), ("c2", "2024-01-05", 1.0))
    res = run(data, prog, seed=42)
    # sorted as strings: c10, c2, c9 get u = .774, .439, .859 -> only c2 joins
    assert ids(res) == ["c2"]


# --------------------------------------------------------------------------- R11 monthly costs


def test_running_and_referral_cost_per_month(run):
    prog = make(
        rewards=[
            {"kind": "cash_voucher", "points": 100, "value": 5.0, "share": 0.5},
            {"kind": "gift", "points": 200, "retail_value": 9.0, "unit_cost": 8.0, "share": 0.5},
        ],
        economics={**ECON, "running_cost_per_member_year": 24.0},
        referral={"bonus_referrer": 100, "bonus_referee": 50, "rate_per_member_year": 1.2},
    )
    data = baskets(("c1", "2024-01-10", 1.00), ("c2", "2024-02-10", 1.00))
    res = run(data, prog, end=date("2024-03-15"))
    # point value = .5 x 5/100 + .5 x 8/200 = .045 ; referral per member and month:
    # 1.2 / 12 x 150 x .045 x .8 = .54 ; running 24 / 12 = 2 per member and month
    assert months(res) == ["2024-01", "2024-02", "2024-03"]
    assert col(res, "members") == [1, 2, 2]
    assert col(res, "new_members") == [1, 1, 0]
    assert col(res, "active_members") == [1, 1, 0]
    assert col(res, "running_cost") == [approx(2.0), approx(4.0), approx(4.0)]  # Mar whole
    assert col(res, "referral_cost") == [approx(0.54), approx(1.08), approx(1.08)]
    assert col(res, "total_cost") == [approx(2.54), approx(5.08), approx(5.08)]
    snapshots = [pd.Timestamp(s) for s in res.ledger["snapshot"]]
    assert snapshots == [day("2024-01-31"), day("2024-02-29"), day("2024-03-15")]


# ------------------------------------------------------------------------------ R12 liability


def test_liability_at_month_end(run):
    prog = make(rewards=[{"kind": "gift", "points": 100, "retail_value": 5.0, "unit_cost": 3.0}])
    data = baskets(("c1", "2024-01-05", 40.00), ("c2", "2024-01-10", 120.00))
    res = run(data, prog, end=date("2024-04-30"))
    # c1: 40 points x 3/100 x .8 = .96 ; c2: 20 points -> .48 and a pending gift 3 x .8 = 2.4
    assert col(res, "outstanding_points") == [60, 60, 60, 60]
    # c2's gift expires on 10 Jan + 90 = 9 Apr (no next basket)
    assert col(res, "pending_rewards") == [1, 1, 1, 0]
    assert col(res, "liability") == [approx(3.84)] * 3 + [approx(1.44)]
    assert col(res, "rewards_expired") == [approx(0.0)] * 3 + [approx(1.0)]
    assert col(res, "breakage") == [approx(0.0)] * 3 + [approx(3.0)]


# --------------------------------------------------------------------------------- R1 window


WINDOW_DATA = [
    (None, "2023-11-30", 7.00),
    ("c1", "2023-12-20", 50.00),
    ("c1", "2024-01-20", 10.00),
    ("c2", "2024-02-25", 30.00),
    ("c1", "2024-03-05", 20.00),
]


def test_start_and_end_arguments(run):
    prog = make(earn={"points_per_currency": 1.0, "welcome_bonus": 50})
    res = run(baskets(*WINDOW_DATA), prog, start=date("2024-01-15"), end=date("2024-02-20"))
    # only c1's basket of 20 Jan is in the window; c1 enrols then, with the welcome bonus
    assert months(res) == ["2024-01", "2024-02"]
    snapshots = [pd.Timestamp(s) for s in res.ledger["snapshot"]]
    assert snapshots == [day("2024-01-31"), day("2024-02-20")]
    assert col(res, "revenue") == [approx(10.0), approx(0.0)]
    assert col(res, "points_earned") == [10, 0]
    assert col(res, "welcome_points") == [50, 0]
    assert ids(res) == ["c1"]
    c1 = cust(res, "c1")
    assert pd.Timestamp(c1["enrolled"]) == day("2024-01-20")
    assert c1["baskets"] == 1
    assert c1["balance_end"] == 60


def test_programme_start_and_default_end(run):
    prog = make(start=date("2024-02-01"))
    res = run(baskets(*WINDOW_DATA), prog)
    # window 1 Feb .. 5 Mar (the last basket)
    assert months(res) == ["2024-02", "2024-03"]
    assert col(res, "revenue") == [approx(30.0), approx(20.0)]
    assert ids(res) == ["c1", "c2"]
    enrolled = [pd.Timestamp(d) for d in res.customers["enrolled"]]
    assert enrolled == [day("2024-03-05"), day("2024-02-25")]


def test_default_window_is_the_data(run):
    res = run(baskets(*WINDOW_DATA), make())
    # first basket (anonymous) 30 Nov 2023 .. last 5 Mar 2024
    assert months(res) == ["2023-11", "2023-12", "2024-01", "2024-02", "2024-03"]
    assert sum(col(res, "revenue")) == approx(117.0)
    assert col(res, "members") == [0, 1, 1, 2, 2]
    assert math.isnan(cust(res, "c1")["days_to_first_reward"])
    assert pd.isna(cust(res, "c1")["first_reward_date"])


# ------------------------------------------------------------------ first advantage (Output)


def test_first_advantage_is_a_reward_or_a_discounted_purchase(run):
    prog = make(
        rewards=[
            {"kind": "cash_voucher", "points": 200, "value": 5.0},
            {
                "kind": "progressive_discount",
                "scale": [{"from_spend": 0.0, "rate": 0.0}, {"from_spend": 100.0, "rate": 0.02}],
            },
        ]
    )
    data = baskets(
        # c1: 60 + 150 = 210 points -> voucher on 5 Jan; no discount (earlier 60 < 100)
        ("c1", "2024-01-01", 60.00),
        ("c1", "2024-01-05", 150.00),
        # c2: 100 (0 %), then 5.00 with earlier 100 -> 2 %: discounted on 3 Jan;
        #     100 + 5 + 150 = 255 -> voucher on 10 Jan
        ("c2", "2024-01-01", 100.00),
        ("c2", "2024-01-03", 5.00),
        ("c2", "2024-01-10", 150.00),
    )
    res = run(data, prog)
    c1, c2 = cust(res, "c1"), cust(res, "c2")
    assert pd.Timestamp(c1["first_advantage_date"]) == day("2024-01-05")
    assert c1["days_to_first_advantage"] == 4
    assert pd.Timestamp(c2["first_reward_date"]) == day("2024-01-10")
    assert pd.Timestamp(c2["first_advantage_date"]) == day("2024-01-03")
    assert c2["days_to_first_advantage"] == 2
    # discounts: c2 5.00 x .02 = .10 and 150.00 x .02 = 3.00
    assert col(res, "discount_cost") == [approx(3.10)]


def test_first_advantage_skips_returns_and_zero_baskets(run):
    prog = make(earn=None, rewards=[{"kind": "discount", "rate": 0.05}])
    data = baskets(
        ("c1", "2024-01-01", -10.00),  # discount -0.50 given back: not an advantage
        ("c1", "2024-01-04", 0.00),  # nothing to discount
        ("c1", "2024-01-06", 20.00),  # 1.00 off: the first advantage, 5 days after enrolling
        ("c2", "2024-01-02", -5.00),  # only a return: no advantage at all
    )
    res = run(data, prog)
    assert pd.Timestamp(cust(res, "c1")["first_advantage_date"]) == day("2024-01-06")
    assert cust(res, "c1")["days_to_first_advantage"] == 5
    assert pd.isna(cust(res, "c2")["first_advantage_date"])
    assert math.isnan(cust(res, "c2")["days_to_first_advantage"])
    assert col(res, "discount_cost") == [approx(-0.5 + 1.0 - 0.25)]
