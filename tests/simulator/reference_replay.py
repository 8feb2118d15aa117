"""Reference replay: a plain, slow, obviously-correct reading of rules R1-R12.

This is the independent check of ``loyalty_pilot.simulator.replay.replay``: Python loops over
customers and baskets, ``datetime.date`` arithmetic, dicts and lists. numpy is used only for
the seeded draws of R2 and R9 (and the cumulative sum of R2, so that the inverse CDF sees the
same floating-point cut points). Nothing here is vectorised on purpose.

Readings of the specification where it leaves room (each also marked ``READING`` below):

* R1: "the first/last basket's date" is over *all* baskets (anonymous included), before the
  window is applied; ``start``/``end`` may be anything ``pd.Timestamp`` accepts.
* Dates with a time of day: the basket's *date* is the calendar day; the time only orders.
* R2: customer ids are turned into strings (``str``) for sorting *and* in the output.
* R4/R10: when the (net) spend is negative no threshold is <= it; the member then has the
  first tier / the first scale step (the first threshold is always 0).
* R5: the welcome bonus is credited even when the first basket is a return or zero basket.
* R6/R7: the balance is a FIFO list of lots ``[year credited, points]``; conversions and
  expiries take the oldest lots first, an inactivity lapse empties the list. This is the
  same as R7's ``max(0, balance - recent credits since the last lapse)`` formula.
* R9 (sampled): ``rng.binomial(n, rate)`` is drawn for *every* issuing basket, also when no
  next basket comes within the validity (the draw is then unused and all n expire).
* R9: rewards not redeemed expire on ``d + validity_days`` (month of that day) even when a
  next basket came within the validity (sampled: the n - k not drawn; expected: 1 - rate
  each); for the liability (R12) all of them are resolved on the next basket's date.
* R9: "next basket" is the next basket in the order of R3, also on the same day.
* R11/R12: snapshot values are taken at the *end* of the snapshot day (after that day's
  baskets, lapses, reward expiries and the 31 December validity expiry).
* R11: tier columns are named ``members_tier_<slug(name)>`` (``programme.slug``, "a name
  safe for a column"); the spec writes ``<name>``.
* ``first_advantage_date``: the first day with a reward issued or a *discounted purchase*,
  read as a basket with amount > 0 and a total discount rate > 0 (a return with a
  discount is not an advantage); ``days_to_first_advantage`` counts from enrolment.
* Expected mode: ``rewards_redeemed`` and ``rewards_expired`` are floats (ledger and
  customers); sampled mode: ints.
* ``top_tier`` looks at the member's baskets (R4 tiers) and at the snapshots on or after
  its enrolment.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections import defaultdict

import numpy as np
import pandas as pd

from loyalty_pilot.simulator.programme import (
    Discount,
    Programme,
    reward_cost,
    reward_perceived,
    slug,
)

LEDGER_COUNT_COLUMNS = [
    "new_members",
    "members",
    "active_members",
    "points_earned",
    "welcome_points",
    "points_expired_inactivity",
    "points_expired_validity",
    "points_converted",
    "rewards_issued",
    "outstanding_points",
    "pending_rewards",
]

LEDGER_COLUMNS = [
    "month",
    "snapshot",
    "revenue",
    "members_revenue",
    "new_members",
    "members",
    "active_members",
    "points_earned",
    "welcome_points",
    "points_expired_inactivity",
    "points_expired_validity",
    "points_converted",
    "rewards_issued",
    "rewards_issued_cost",
    "rewards_issued_perceived",
    "rewards_redeemed",
    "redemption_cost",
    "rewards_expired",
    "breakage",
    "discount_cost",
    "tier_benefit_cost",
    "running_cost",
    "referral_cost",
    "total_cost",
    "outstanding_points",
    "pending_rewards",
    "liability",
]

CUSTOMER_COLUMNS = [
    "customer_id",
    "enrolled",
    "reward",
    "baskets",
    "spend",
    "points_earned",
    "points_expired",
    "rewards_issued",
    "rewards_redeemed",
    "first_reward_date",
    "days_to_first_reward",
    "first_advantage_date",
    "days_to_first_advantage",
    "tier_end",
    "top_tier",
    "balance_end",
]


def cents_of(amount: float) -> int:
    return round(float(amount) * 100)


def _day(value) -> dt.date:
    return pd.Timestamp(value).date()


def _month_end(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    out = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _tier_of(spend_cents: int, tier_cents: list[int]) -> int:
    """Index of the highest threshold <= spend (READING: 0 when the spend is negative)."""
    best = 0
    for i, threshold in enumerate(tier_cents):
        if threshold <= spend_cents:
            best = i
    return best


class _Basket:
    def __init__(self, cid, basket_id, ts, cents, department):
        self.cid = cid
        self.basket_id = basket_id
        self.ts = ts
        self.day = ts.date()
        self.cents = cents
        self.department = department


def _read_baskets(baskets: pd.DataFrame, need_department: bool) -> list[_Basket]:
    if need_department and "department" not in baskets.columns:
        raise ValueError("department multipliers need a 'department' column")
    has_dept = "department" in baskets.columns
    out = []
    for row in baskets.to_dict("records"):
        cid = row["customer_id"]
        cid = None if cid is None or pd.isna(cid) else str(cid)
        dept = row["department"] if has_dept else None
        if dept is not None and pd.isna(dept):
            dept = None
        out.append(
            _Basket(cid, row["basket_id"], pd.Timestamp(row["date"]), cents_of(row["amount"]), dept)
        )
    return out


class _Points:
    """One member's balance as FIFO lots ``[year credited, points]`` and its history."""

    def __init__(self, validity_years: int | None):
        self.validity_years = validity_years
        self.lots: list[list[int]] = []
        self.events: list[tuple[dt.date, str, float]] = []
        self.history: list[tuple[dt.date, int]] = []  # (day, balance after a change)

    def balance(self) -> int:
        return sum(p for _, p in self.lots)

    def take_oldest(self, points: int) -> None:
        remaining = points
        while remaining > 0:
            lot = self.lots[0]
            used = min(lot[1], remaining)
            lot[1] -= used
            remaining -= used
            if lot[1] == 0:
                self.lots.pop(0)

    def calendar_events(self, first: dt.date, upto: dt.date, lapse_day: dt.date | None) -> None:
        """31 December expiries on days first..upto (end of day) and a lapse on lapse_day.

        ``lapse_day`` may be ``upto + 1`` (the day of the next basket, before it). On the same
        day the lapse comes before the 31 December expiry (R7).
        """
        todo = []
        if lapse_day is not None:
            assert lapse_day <= upto + dt.timedelta(days=1)
            todo.append((lapse_day, 0, "lapse"))
        if self.validity_years is not None:
            for year in range(first.year, upto.year + 1):
                dec31 = dt.date(year, 12, 31)
                if first <= dec31 <= upto:
                    todo.append((dec31, 1, "validity"))
        for day, _, kind in sorted(todo):
            if kind == "lapse":
                amount = self.balance()
                self.lots.clear()
                self.events.append((day, "points_expired_inactivity", amount))
            else:
                # R7: what was credited in a year <= Y - k expires (oldest lots)
                amount = 0
                for lot in self.lots:
                    if lot[0] <= day.year - self.validity_years:
                        amount += lot[1]
                        lot[1] = 0
                self.lots[:] = [lot for lot in self.lots if lot[1] > 0]
                self.events.append((day, "points_expired_validity", amount))
            self.history.append((day, self.balance()))


def reference_replay(
    baskets: pd.DataFrame,
    programme: Programme,
    *,
    seed: int = 0,
    start=None,
    end=None,
    sample: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    earn = programme.earn
    dept_mult = dict(earn.department_multipliers) if earn is not None else {}
    all_baskets = _read_baskets(baskets, need_department=bool(dept_mult))

    # ---- R1 window
    if start is not None:
        start_day = _day(start)
    elif programme.start is not None:
        start_day = programme.start
    else:
        start_day = min(b.day for b in all_baskets)
    end_day = _day(end) if end is not None else max(b.day for b in all_baskets)
    window = [b for b in all_baskets if start_day <= b.day <= end_day]

    # ---- R2 enrolment and reward choice
    ids = sorted({b.cid for b in window if b.cid is not None})
    rng = np.random.default_rng(seed)
    u = rng.random(len(ids))
    v = rng.random(len(ids))
    point_rewards = programme.point_rewards
    shares = programme.reward_shares
    cuts = [float(c) for c in np.cumsum(shares)] if shares else []
    uptake = programme.enrolment.uptake
    member_reward: dict[str, int] = {}
    for i, cid in enumerate(ids):
        if uptake == 1 or float(u[i]) < uptake:
            if point_rewards:
                index = sum(1 for c in cuts if c <= float(v[i]))  # searchsorted side='right'
                member_reward[cid] = min(index, len(point_rewards) - 1)
            else:
                member_reward[cid] = -1
    members = sorted(member_reward)

    by_member: dict[str, list[_Basket]] = defaultdict(list)
    for b in window:
        if b.cid in member_reward:
            by_member[b.cid].append(b)
    for cid in members:
        by_member[cid].sort(key=lambda b: (b.ts, b.basket_id))  # R3

    tiers = programme.tiers
    tier_cents = [cents_of(t.min_spend_12m) for t in tiers]
    scale = programme.progressive.scale if programme.progressive is not None else []
    scale_cents = [cents_of(s.from_spend) for s in scale]
    card_rate = sum(r.rate for r in programme.rewards if isinstance(r, Discount))
    inactivity = programme.expiry.inactivity_days
    validity_years = programme.expiry.validity_years
    validity_days = programme.redemption.validity_days
    red_rate = programme.redemption.rate

    # events: (day, column, value); ledger sums them per month (only days <= end)
    events: list[tuple[dt.date, str, float]] = []
    # per member state for snapshots
    balance_history: dict[str, list[tuple[dt.date, int]]] = {}
    reward_groups: dict[str, list[dict]] = {}
    member_events: dict[str, list[tuple[dt.date, str, float]]] = {}
    basket_tiers: dict[str, list[int]] = {}

    for b in window:
        events.append((b.day, "revenue", b.cents / 100))

    for cid in members:
        bks = by_member[cid]
        reward = point_rewards[member_reward[cid]] if point_rewards else None
        state = _Points(validity_years)
        mev = state.events
        lots = state.lots
        history = state.history
        balance = state.balance
        take_oldest = state.take_oldest
        calendar_events = state.calendar_events
        groups: list[dict] = []
        btiers: list[int] = []

        for j, b in enumerate(bks):
            if j > 0:
                prev = bks[j - 1].day
                if b.day > prev:
                    lapse = None
                    if inactivity is not None and (b.day - prev).days >= inactivity:
                        lapse = prev + dt.timedelta(days=inactivity)  # <= b.day
                    # Dec 31 of days prev..b.day-1 (end of day), lapse on its day
                    calendar_events(prev, b.day - dt.timedelta(days=1), lapse)
            # R4 tier from earlier baskets dated strictly after day - 365
            tier = 0
            if tiers:
                spend = sum(e.cents for e in bks[:j] if e.day > b.day - dt.timedelta(days=365))
                tier = _tier_of(spend, tier_cents)
            btiers.append(tier)
            mev.append((b.day, "basket", 1))
            mev.append((b.day, "members_revenue", b.cents / 100))
            # R5 points
            if earn is not None:
                points = 0
                if b.cents > 0:
                    rate = earn.points_per_currency
                    rate = rate * dept_mult.get(b.department, 1.0)
                    rate = rate * (tiers[tier].multiplier if tiers else 1.0)
                    points = math.floor(b.cents * rate / 100 + 1e-9)
                mev.append((b.day, "points_earned", points))
                credit = points
                if j == 0:
                    mev.append((b.day, "welcome_points", earn.welcome_bonus))
                    credit += earn.welcome_bonus
                if credit:
                    if lots and lots[-1][0] == b.day.year:
                        lots[-1][1] += credit
                    else:
                        lots.append([b.day.year, credit])
            # R8 conversion
            issued = 0
            if reward is not None:
                while balance() >= reward.points:
                    take_oldest(reward.points)
                    issued += 1
            if issued:
                mev.append((b.day, "points_converted", issued * reward.points))
                mev.append((b.day, "rewards_issued", issued))
                mev.append((b.day, "rewards_issued_cost", issued * reward_cost(reward)))
                mev.append((b.day, "rewards_issued_perceived", issued * reward_perceived(reward)))
                # R9
                drawn = int(rng.binomial(issued, red_rate)) if sample else None
                expire_day = b.day + dt.timedelta(days=validity_days)
                nxt = bks[j + 1] if j + 1 < len(bks) else None
                cost = reward_cost(reward)
                if nxt is not None and nxt.day <= expire_day:
                    redeemed = drawn if sample else issued * red_rate
                    expired = issued - drawn if sample else issued * (1 - red_rate)
                    resolved = nxt.day
                    mev.append((nxt.day, "rewards_redeemed", redeemed))
                    mev.append((nxt.day, "redemption_cost", redeemed * cost))
                else:
                    expired = issued if sample else float(issued)
                    resolved = expire_day
                mev.append((expire_day, "rewards_expired", expired))
                mev.append((expire_day, "breakage", expired * cost))
                groups.append({"issued": b.day, "n": issued, "resolved": resolved})
            # R10 discounts
            rate = card_rate
            if scale:
                spend_year = sum(e.cents for e in bks[:j] if e.day.year == b.day.year)
                rate = rate + scale[_tier_of(spend_year, scale_cents)].rate
            if tiers and tiers[tier].benefit is not None:
                rate = rate + tiers[tier].benefit.discount_rate
            mev.append((b.day, "discount_cost", b.cents / 100 * rate))
            if b.cents > 0 and rate > 0:
                mev.append((b.day, "discounted_purchase", 1))
            history.append((b.day, balance()))

        # after the last basket: Dec 31s from its day to end, lapse if <= end
        last = bks[-1].day
        lapse = last + dt.timedelta(days=inactivity) if inactivity is not None else None
        if lapse is not None and lapse > end_day:
            lapse = None
        calendar_events(last, end_day, lapse)

        mev.append((bks[0].day, "new_members", 1))
        member_events[cid] = mev
        balance_history[cid] = history
        reward_groups[cid] = groups
        basket_tiers[cid] = btiers
        events.extend(mev)

    # ---- R11 / R12 ledger
    months = _months(start_day, end_day)
    point_value = sum(
        s * reward_cost(r) / r.points for s, r in zip(shares, point_rewards, strict=True)
    )
    econ = programme.economics
    referral = programme.referral
    enrolled_on = {cid: by_member[cid][0].day for cid in members}

    def balance_on(cid: str, day: dt.date) -> int:
        value = 0
        for when, bal in balance_history[cid]:
            if when <= day:
                value = bal
        return value

    def pending_on(cid: str, day: dt.date) -> int:
        return sum(g["n"] for g in reward_groups[cid] if g["issued"] <= day < g["resolved"])

    def snapshot_tier(cid: str, day: dt.date) -> int:
        spend = sum(b.cents for b in by_member[cid] if day - dt.timedelta(days=365) < b.day <= day)
        return _tier_of(spend, tier_cents)

    sums_by_month: dict[dt.date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    active: dict[dt.date, set[str]] = defaultdict(set)
    for day, column, value in events:
        if day <= end_day:
            sums_by_month[dt.date(day.year, day.month, 1)][column] += value
    for cid in members:
        for b in by_member[cid]:
            active[dt.date(b.day.year, b.day.month, 1)].add(cid)

    expected_mode = not sample
    rows = []
    snapshot_tiers: dict[str, list[int]] = defaultdict(list)
    for month in months:
        snap = min(_month_end(month), end_day)
        s = sums_by_month[month]
        row: dict[str, object] = {"month": month, "snapshot": snap}
        row["revenue"] = s["revenue"]
        row["members_revenue"] = s["members_revenue"]
        row["new_members"] = int(s["new_members"])
        enrolled = [cid for cid in members if enrolled_on[cid] <= snap]
        row["members"] = len(enrolled)
        row["active_members"] = len(active[month])
        for column in [
            "points_earned",
            "welcome_points",
            "points_expired_inactivity",
            "points_expired_validity",
            "points_converted",
            "rewards_issued",
        ]:
            row[column] = int(s[column])
        row["rewards_issued_cost"] = s["rewards_issued_cost"]
        row["rewards_issued_perceived"] = s["rewards_issued_perceived"]
        if expected_mode:
            row["rewards_redeemed"] = float(s["rewards_redeemed"])
            row["rewards_expired"] = float(s["rewards_expired"])
        else:
            row["rewards_redeemed"] = int(s["rewards_redeemed"])
            row["rewards_expired"] = int(s["rewards_expired"])
        row["redemption_cost"] = s["redemption_cost"]
        row["breakage"] = s["breakage"]
        row["discount_cost"] = s["discount_cost"]
        counts = [0] * len(tiers)
        for cid in enrolled:
            if tiers:
                t = snapshot_tier(cid, snap)
                counts[t] += 1
                snapshot_tiers[cid].append(t)
        row["tier_benefit_cost"] = sum(
            (
                counts[i] * t.benefit.cost_per_member_year / 12
                for i, t in enumerate(tiers)
                if t.benefit is not None
            ),
            0.0,
        )
        row["running_cost"] = econ.running_cost_per_member_year / 12 * len(enrolled)
        row["referral_cost"] = (
            referral.rate_per_member_year
            / 12
            * len(enrolled)
            * (referral.bonus_referrer + referral.bonus_referee)
            * point_value
            * red_rate
            if referral is not None
            else 0.0
        )
        row["total_cost"] = (
            row["redemption_cost"]
            + row["discount_cost"]
            + row["tier_benefit_cost"]
            + row["running_cost"]
            + row["referral_cost"]
        )
        outstanding = 0
        pending = 0
        liability = 0.0
        for cid in enrolled:
            bal = balance_on(cid, snap)
            pend = pending_on(cid, snap)
            outstanding += bal
            pending += pend
            if point_rewards:
                r = point_rewards[member_reward[cid]]
                liability += bal * reward_cost(r) / r.points * red_rate
                liability += pend * reward_cost(r) * red_rate
        row["outstanding_points"] = outstanding
        row["pending_rewards"] = pending
        row["liability"] = liability
        for i, t in enumerate(tiers):
            row[f"members_tier_{slug(t.name)}"] = counts[i]
        rows.append(row)

    ledger = pd.DataFrame(
        rows, columns=LEDGER_COLUMNS + [f"members_tier_{slug(t.name)}" for t in tiers]
    )
    for column in ["month", "snapshot"]:
        ledger[column] = pd.to_datetime(ledger[column])
    for column in LEDGER_COUNT_COLUMNS + [f"members_tier_{slug(t.name)}" for t in tiers]:
        ledger[column] = ledger[column].astype("int64")
    redeemed_dtype = "float64" if expected_mode else "int64"
    ledger["rewards_redeemed"] = ledger["rewards_redeemed"].astype(redeemed_dtype)
    ledger["rewards_expired"] = ledger["rewards_expired"].astype(redeemed_dtype)

    # ---- customers
    crow = []
    for cid in members:
        mev = [e for e in member_events[cid] if e[0] <= end_day]
        total: dict[str, float] = defaultdict(float)
        for _, column, value in mev:
            total[column] += value
        issue_days = [day for day, column, value in mev if column == "rewards_issued" and value]
        first_reward = min(issue_days) if issue_days else None
        advantage_days = [
            day
            for day, column, value in mev
            if column in ("rewards_issued", "discounted_purchase") and value
        ]
        first_advantage = min(advantage_days) if advantage_days else None
        end_tier = snapshot_tiers[cid][-1] if tiers else None
        top = max(basket_tiers[cid] + snapshot_tiers[cid]) if tiers else None
        crow.append(
            {
                "customer_id": cid,
                "enrolled": enrolled_on[cid],
                "reward": member_reward[cid],
                "baskets": int(total["basket"]),
                "spend": sum(b.cents for b in by_member[cid]) / 100,
                "points_earned": int(total["points_earned"] + total["welcome_points"]),
                "points_expired": int(
                    total["points_expired_inactivity"] + total["points_expired_validity"]
                ),
                "rewards_issued": int(total["rewards_issued"]),
                "rewards_redeemed": (
                    float(total["rewards_redeemed"])
                    if expected_mode
                    else int(total["rewards_redeemed"])
                ),
                "first_reward_date": first_reward,
                "days_to_first_reward": (
                    float((first_reward - enrolled_on[cid]).days)
                    if first_reward is not None
                    else math.nan
                ),
                "first_advantage_date": first_advantage,
                "days_to_first_advantage": (
                    float((first_advantage - enrolled_on[cid]).days)
                    if first_advantage is not None
                    else math.nan
                ),
                "tier_end": tiers[end_tier].name if tiers else "",
                "top_tier": tiers[top].name if tiers else "",
                "balance_end": balance_on(cid, end_day),
            }
        )
    customers = pd.DataFrame(crow, columns=CUSTOMER_COLUMNS)
    customers["enrolled"] = pd.to_datetime(customers["enrolled"])
    for column in ["first_reward_date", "first_advantage_date"]:
        customers[column] = pd.to_datetime(customers[column])
    customers["customer_id"] = customers["customer_id"].astype(object)
    for column in [
        "reward",
        "baskets",
        "points_earned",
        "points_expired",
        "rewards_issued",
        "balance_end",
    ]:
        customers[column] = customers[column].astype("int64")
    customers["rewards_redeemed"] = customers["rewards_redeemed"].astype(redeemed_dtype)
    customers["spend"] = customers["spend"].astype("float64")
    for column in ["days_to_first_reward", "days_to_first_advantage"]:
        customers[column] = customers[column].astype("float64")
    return ledger, customers
