"""Property tests: the fast replay equals the plain reference replay, example by example.

Hypothesis generates small basket sets (a few customers and anonymous baskets, dates
clustered around the 365-day, inactivity and year-end boundaries, returns and zero
baskets) and programmes combining every mechanism of R1-R12, in both modes. Integers must
be equal, money equal to 1e-9, dates equal.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from reference_replay import CUSTOMER_COLUMNS, LEDGER_COLUMNS, reference_replay

from loyalty_pilot.simulator.programme import Programme

DATE_COLUMNS = {"month", "snapshot", "enrolled", "first_reward_date", "first_advantage_date"}
ANCHORS = [
    dt.date(2023, 1, 1),
    dt.date(2023, 3, 1),
    dt.date(2023, 12, 31),
    dt.date(2024, 2, 28),
    dt.date(2024, 12, 30),
]
# gaps near the boundaries: inactivity windows (30, 90), 365 days, validity (30, 90)
OFFSETS = [0, 1, 2, 29, 30, 31, 59, 60, 61, 89, 90, 91, 364, 365, 366, 395]
CUSTOMERS = ["c1", "c2", "c3", "c4", "c5", "c6"]


# ----------------------------------------------------------------------------- strategies


@st.composite
def basket_sets(draw) -> pd.DataFrame:
    n_customers = draw(st.integers(1, 6))
    who = [*CUSTOMERS[:n_customers], None]
    n = draw(st.integers(1, 30))
    rows = []
    for i in range(n):
        anchor = draw(st.sampled_from(ANCHORS))
        offset = draw(st.one_of(st.sampled_from(OFFSETS), st.integers(0, 400)))
        hour = draw(st.sampled_from([0, 0, 0, 9, 18]))
        cents = draw(
            st.one_of(
                st.sampled_from([0, 1, 99, 100, 5000, 9999, 10000, 10001, -2000, 25000]),
                st.integers(-5000, 40000),
            )
        )
        rows.append(
            {
                "customer_id": draw(st.sampled_from(who)),
                "basket_id": f"b{draw(st.integers(0, 99)):02d}-{i:02d}",
                "date": pd.Timestamp(anchor + dt.timedelta(days=offset)) + pd.Timedelta(hours=hour),
                "amount": cents / 100,
                "department": draw(st.sampled_from(["fresh", "dry", "wine", None])),
            }
        )
    return pd.DataFrame(rows)


def point_reward(draw, with_share: float | None) -> dict:
    points = draw(st.sampled_from([50, 100, 150, 300, 1000]))
    if draw(st.booleans()):
        reward = {
            "kind": "cash_voucher",
            "points": points,
            "value": draw(st.sampled_from([1.0, 5.0, 12.5])),
        }
    else:
        reward = {
            "kind": "gift",
            "points": points,
            "retail_value": draw(st.sampled_from([4.0, 15.0])),
            "unit_cost": draw(st.sampled_from([2.5, 8.0])),
        }
    if with_share is not None:
        reward["share"] = with_share
    return reward


@st.composite
def programmes(draw) -> dict:
    n_points = draw(st.integers(0, 3))
    shares = None
    if n_points and draw(st.booleans()):
        shares = {1: [1.0], 2: [0.3, 0.7], 3: [0.25, 0.25, 0.5]}[n_points]
    rewards = [point_reward(draw, shares[i] if shares else None) for i in range(n_points)]
    if draw(st.booleans()) or not rewards:
        if draw(st.booleans()) or not rewards:
            rewards.append({"kind": "discount", "rate": draw(st.sampled_from([0.02, 0.05]))})
        if draw(st.booleans()):
            rewards.append(
                {
                    "kind": "progressive_discount",
                    "scale": [
                        {"from_spend": 0.0, "rate": draw(st.sampled_from([0.0, 0.01]))},
                        {"from_spend": 100.0, "rate": 0.03},
                        {"from_spend": 250.0, "rate": 0.05},
                    ],
                }
            )
    draw(st.randoms()).shuffle(rewards)
    spec: dict = {
        "programme": "prop",
        "rewards": rewards,
        "economics": {
            "gross_margin": 0.3,
            "budget_share_of_revenue": 0.02,
            "running_cost_per_member_year": draw(st.sampled_from([0.0, 6.0, 24.0])),
        },
        "enrolment": {"uptake": draw(st.sampled_from([1.0, 1.0, 0.5, 0.8]))},
        "redemption": {
            "rate": draw(st.sampled_from([0.0, 0.5, 0.8, 1.0])),
            "validity_days": draw(st.sampled_from([1, 30, 90, 365])),
        },
    }
    has_earn = n_points > 0 or draw(st.booleans())
    if has_earn:
        spec["earn"] = {
            "points_per_currency": draw(st.sampled_from([0.1, 0.5, 1.0, 1.5, 2.3])),
            "welcome_bonus": draw(st.sampled_from([0, 0, 20, 150])),
            "department_multipliers": draw(
                st.sampled_from([{}, {"fresh": 2.0}, {"fresh": 1.5, "wine": 0.5}])
            ),
        }
        spec["expiry"] = {
            "inactivity_days": draw(st.sampled_from([None, 30, 60, 90, 365])),
            "validity_years": draw(st.sampled_from([None, 0, 1, 2])),
        }
    n_tiers = draw(st.integers(0, 3))
    thresholds = [0.0, draw(st.sampled_from([50.0, 100.0])), 250.0][:n_tiers]
    tiers = []
    for i, threshold in enumerate(thresholds):
        tier: dict = {"name": f"t{i}", "min_spend_12m": threshold}
        if has_earn:
            tier["multiplier"] = draw(st.sampled_from([1.0, 1.5, 2.0]))
        if draw(st.booleans()):
            tier["benefit"] = {
                "discount_rate": draw(st.sampled_from([0.0, 0.02])),
                "cost_per_member_year": draw(st.sampled_from([0.0, 12.0])),
            }
        tiers.append(tier)
    spec["tiers"] = tiers
    if n_points and draw(st.booleans()):
        spec["referral"] = {
            "bonus_referrer": draw(st.sampled_from([0, 100])),
            "bonus_referee": draw(st.sampled_from([0, 50])),
            "rate_per_member_year": draw(st.sampled_from([0.0, 0.5, 2.0])),
        }
    return spec


@st.composite
def windows(draw, data: pd.DataFrame) -> dict:
    days = sorted(pd.to_datetime(data["date"]).dt.date)
    kwargs: dict = {"seed": draw(st.integers(0, 2**16)), "sample": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["start"] = draw(st.sampled_from(days)) + dt.timedelta(
            days=draw(st.sampled_from([-3, 0, 1]))
        )
    if draw(st.booleans()):
        kwargs["end"] = draw(st.sampled_from(days)) + dt.timedelta(
            days=draw(st.sampled_from([0, 1, 45, 400]))
        )
    if "start" in kwargs and "end" in kwargs and kwargs["end"] < kwargs["start"]:
        kwargs["start"], kwargs["end"] = kwargs["end"], kwargs["start"]
    if "start" in kwargs and kwargs["start"] > kwargs.get("end", days[-1]):
        del kwargs["start"]
    return kwargs


# ----------------------------------------------------------------------------- comparison


def differences(fast: pd.DataFrame, ref: pd.DataFrame, what: str, columns: list[str]) -> list[str]:
    """Readable differences, column by column, of the documented ``columns``."""
    problems = []
    missing = [c for c in columns if c not in fast.columns]
    if missing:
        problems.append(f"{what}: fast lacks columns {missing}")
    if len(fast) != len(ref):
        return [*problems, f"{what}: {len(fast)} rows (fast) != {len(ref)} rows (reference)"]
    fast = fast.reset_index(drop=True)
    ref = ref.reset_index(drop=True)
    for column in columns:
        if column in missing:
            continue
        f, r = fast[column], ref[column]
        if column in DATE_COLUMNS:
            fv, rv = pd.to_datetime(f), pd.to_datetime(r)
            bad = ~((fv == rv) | (fv.isna() & rv.isna()))
        elif r.dtype.kind in "iu":
            fv = pd.to_numeric(f)
            bad = ~(np.isclose(fv.astype(float), r.astype(float), rtol=0, atol=0))
            if not bad.any() and not np.all(np.mod(fv.astype(float), 1) == 0):
                problems.append(f"{what}.{column}: fast has non-integers {fv.tolist()}")
        elif r.dtype.kind == "f":
            fv = pd.to_numeric(f).astype(float)
            bad = ~np.isclose(fv, r.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True)
        else:
            bad = f.astype(str) != r.astype(str)
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            rows = np.flatnonzero(bad)[:5]
            label = (
                ref["month"].iloc[rows].dt.strftime("%Y-%m").tolist()
                if "month" in ref.columns
                else ref["customer_id"].iloc[rows].tolist()
            )
            problems.append(
                f"{what}.{column} at {label}: fast {f.iloc[rows].tolist()} "
                f"!= reference {r.iloc[rows].tolist()}"
            )
    return problems


def tier_columns(programme: Programme) -> list[str]:
    from loyalty_pilot.simulator.programme import slug

    return [f"members_tier_{slug(t.name)}" for t in programme.tiers]


def compare(fast_replay, data: pd.DataFrame, spec: dict, kwargs: dict) -> None:
    programme = Programme.model_validate(spec)
    note(f"baskets = {data.to_dict('list')!r}")
    note(f"programme = {spec!r}")
    note(f"kwargs = {kwargs!r}")
    ledger, customers = reference_replay(data, programme, **kwargs)
    result = fast_replay(data, programme, **kwargs)
    problems = differences(
        result.ledger, ledger, "ledger", LEDGER_COLUMNS + tier_columns(programme)
    ) + differences(result.customers, customers, "customers", CUSTOMER_COLUMNS)
    assert not problems, "\n".join(problems)


SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)


@SETTINGS
@given(data=st.data())
def test_fast_replay_equals_reference(fast, data):
    baskets = data.draw(basket_sets(), label="baskets")
    spec = data.draw(programmes(), label="programme")
    kwargs = data.draw(windows(baskets), label="kwargs")
    if "start" in kwargs and data.draw(st.booleans(), label="start in the programme"):
        spec["start"] = kwargs.pop("start")
    compare(fast, baskets, spec, kwargs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_replay_equals_reference_points_only(fast, data):
    """Points-heavy programmes (low thresholds, many conversions and expiries)."""
    baskets = data.draw(basket_sets(), label="baskets")
    spec = data.draw(programmes(), label="programme")
    spec["earn"] = {"points_per_currency": 1.0, "welcome_bonus": 20}
    spec["rewards"] = [{"kind": "cash_voucher", "points": 50, "value": 2.0}]
    spec["expiry"] = data.draw(
        st.sampled_from(
            [
                {"inactivity_days": 30},
                {"validity_years": 0},
                {"validity_years": 1, "inactivity_days": 90},
                {"validity_years": 2, "inactivity_days": 365},
            ]
        ),
        label="expiry",
    )
    kwargs = data.draw(windows(baskets), label="kwargs")
    compare(fast, baskets, spec, kwargs)


def test_documented_columns_in_order(fast):
    """Output columns in the documented order (extra columns may follow the documented)."""
    spec = {
        "programme": "cols",
        "earn": {"points_per_currency": 1.0},
        "rewards": [{"kind": "cash_voucher", "points": 100, "value": 5.0}],
        "tiers": [{"name": "base", "min_spend_12m": 0.0}, {"name": "gold", "min_spend_12m": 1.0}],
        "economics": {"gross_margin": 0.3, "budget_share_of_revenue": 0.02},
    }
    data = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "basket_id": ["b1"],
            "date": [pd.Timestamp("2024-01-01")],
            "amount": [10.0],
        }
    )
    result = fast(data, Programme.model_validate(spec))
    ledger_cols = [c for c in result.ledger.columns if c in LEDGER_COLUMNS or "tier" in c]
    assert ledger_cols == [*LEDGER_COLUMNS, "members_tier_base", "members_tier_gold"]
    customer_cols = [c for c in result.customers.columns if c in CUSTOMER_COLUMNS]
    assert customer_cols == CUSTOMER_COLUMNS


@pytest.mark.parametrize("sample", [False, True])
def test_comparison_can_fail(sample):
    """The comparison itself notices a changed integer, amount, date and string."""
    spec = {
        "programme": "self",
        "earn": {"points_per_currency": 1.0},
        "rewards": [{"kind": "cash_voucher", "points": 100, "value": 5.0}],
        "tiers": [{"name": "t0", "min_spend_12m": 0.0}],
        "economics": {"gross_margin": 0.3, "budget_share_of_revenue": 0.02},
    }
    data = pd.DataFrame(
        {
            "customer_id": ["c1", "c1"],
            "basket_id": ["b1", "b2"],
            "date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "amount": [150.0, 10.0],
        }
    )
    ledger, customers = reference_replay(data, Programme.model_validate(spec), sample=sample)
    assert differences(ledger, ledger.copy(), "ledger", LEDGER_COLUMNS) == []
    for column, change in [
        ("points_earned", lambda s: s + 1),
        ("revenue", lambda s: s + 1e-6),
        ("snapshot", lambda s: s + pd.Timedelta(days=1)),
    ]:
        other = ledger.copy()
        other[column] = change(other[column])
        assert len(differences(other, ledger, "ledger", LEDGER_COLUMNS)) == 1
    other = customers.copy()
    other["tier_end"] = "x"
    assert len(differences(other, customers, "customers", CUSTOMER_COLUMNS)) == 1
    other = customers.drop(columns=["balance_end"])
    assert len(differences(other, customers, "customers", CUSTOMER_COLUMNS)) == 1
