"""Output side of :mod:`loyalty_pilot.simulator.replay`: the monthly ledger, the members'
summary and the totals (rules R11 and R12 of the replay's docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.simulator import _replay_kernels as _k
from loyalty_pilot.simulator._replay_input import _EPOCH, _month_index
from loyalty_pilot.simulator._replay_rules import _tier_of
from loyalty_pilot.simulator.programme import Programme, reward_cost, slug


def _ledger(
    programme: Programme, parts: dict[str, Any], revenue: np.ndarray, months: dict[str, Any]
) -> pd.DataFrame:
    n_months = len(months["first"])
    e_day = parts["e_day"]
    c, month = parts["c"], parts["month"]
    issuing = parts["issuing"]
    issue_month = month[issuing]

    def per_month(index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (float) or count by ledger row."""
        counts = np.bincount(index, weights=weights, minlength=n_months)
        return counts if weights is None else counts.astype(float)

    located: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}

    def by_day(days: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (or count) by the month of ``days``; days after ``end`` drop out."""
        if id(days) not in located:  # each array of days is located once
            inside = None if (len(days) == 0 or days.max() <= e_day) else days <= e_day
            chosen = days if inside is None else days[inside]
            located[id(days)] = (inside, _month_index(chosen, months))
        inside, index = located[id(days)]
        w = None if weights is None else np.asarray(weights, dtype=float)
        if w is not None and inside is not None:
            w = w[inside]
        return per_month(index, w)

    starts = parts["starts"]
    new_members = per_month(month[starts])
    members = np.cumsum(new_members)
    new_visit = parts["first"].copy()  # a member's first basket, or first of a month
    new_visit[1:] |= month[1:] != month[:-1]
    active_members = per_month(month[new_visit])
    del new_visit
    rewards = parts["rewards"]  # issuing baskets only
    converted = rewards * parts["threshold_at"](issuing)
    cost_i = parts["cost_m"][c[issuing]]
    expiry_day = parts["issue_day"] + parts["valid_days"]
    resolve_day = parts["resolve_day"]
    v_day, v_run, v_points = parts["validity_events"]
    run_member = parts["run_member"]
    lapsed = parts["lapse_day"] <= e_day
    lapse_day = parts["lapse_day"][lapsed]
    lapse_points = parts["lapse_points"][lapsed]
    lapse_member = run_member[lapsed]
    v_member = run_member[v_run]

    n = parts["n"]
    credit = parts["credit"]

    def dense_sum(weights: Any) -> np.ndarray:
        """Sum of ``weights(part)`` (float) over all baskets by ledger row, blockwise."""
        return _k.sum_by(np.zeros(n_months), n, lambda part: month[part], weights)

    # Points credited (welcome bonus included): whole numbers, exact in float64 sums; and
    # their value: the change of balance of each basket at its member's cost per point.
    # One pass for both (each sum in basket order, as ``dense_sum``).
    per_point = parts["per_point_m"]
    uniform = len(per_point) and (per_point == per_point[0]).all()
    credited, change_sum = np.zeros(n_months), np.zeros(n_months)
    for part in _k.blocks(n):
        index = month[part]
        change = credit[part].astype(float)
        np.add.at(credited, index, change)
        i0, i1 = np.searchsorted(issuing, (part.start, part.stop))
        change[issuing[i0:i1] - part.start] -= converted[i0:i1]
        change *= per_point[0] if uniform else per_point[c[part]]
        np.add.at(change_sum, index, change)
    welcome = per_month(month[starts]) * float(parts["welcome_bonus"])
    # Outstanding points and pending rewards: every change dated, summed up to each snapshot.
    outstanding = np.cumsum(
        credited - per_month(issue_month, converted)
        - by_day(v_day, v_points) - by_day(lapse_day, lapse_points)
    )  # fmt: skip
    points_value = np.cumsum(
        change_sum
        - by_day(v_day, v_points * per_point[v_member])
        - by_day(lapse_day, lapse_points * per_point[lapse_member])
    )
    pending = np.cumsum(per_month(issue_month, rewards) - by_day(resolve_day, rewards))
    pending_value = np.cumsum(
        per_month(issue_month, rewards * cost_i) - by_day(resolve_day, rewards * cost_i)
    )
    redemption_rate = programme.redemption.rate

    tiers = programme.tiers
    tier_counts = np.zeros((len(tiers), n_months))
    if tiers:
        snapshot = parts["snapshot"]
        tier_counts = _tier_counts(snapshot["at_least"], parts["thresholds"], parts["m"], members)
    tier_cost = np.array([t.benefit.cost_per_member_year if t.benefit else 0.0 for t in tiers])
    tier_benefit_cost = (tier_cost[:, None] * tier_counts).sum(axis=0) / 12 if tiers else 0.0
    economics = programme.economics
    running_cost = members * economics.running_cost_per_member_year / 12
    referral_cost = np.zeros(n_months)
    if programme.referral is not None:
        shares = np.array(programme.reward_shares)
        point_value = float(
            (shares * np.array([reward_cost(r) / r.points for r in programme.point_rewards])).sum()
        )
        bonus = programme.referral.bonus_referrer + programme.referral.bonus_referee
        referral_cost = (
            programme.referral.rate_per_member_year / 12 * members * bonus * point_value
            * redemption_rate
        )  # fmt: skip
    discount = parts["discount"]
    cents = parts["cents"]
    ledger = pd.DataFrame(
        {
            "month": months["month"].astype("datetime64[ns]"),
            "snapshot": (_EPOCH + months["snapshot"]).astype("datetime64[ns]"),
            "revenue": revenue,
            "members_revenue": (
                dense_sum(lambda part: cents[part] / 100)
                if parts.get("members_revenue") is None
                else parts["members_revenue"]
            ),
            "new_members": new_members.astype(np.int64),
            "members": members.astype(np.int64),
            "active_members": active_members.astype(np.int64),
            "points_earned": (credited - welcome).round().astype(np.int64),
            "welcome_points": welcome.round().astype(np.int64),
            "points_expired_inactivity": by_day(lapse_day, lapse_points).round().astype(np.int64),
            "points_expired_validity": by_day(v_day, v_points).round().astype(np.int64),
            "points_converted": per_month(issue_month, converted).round().astype(np.int64),
            "rewards_issued": per_month(issue_month, rewards).round().astype(np.int64),
            "rewards_issued_cost": per_month(issue_month, rewards * cost_i),
            "rewards_issued_perceived": per_month(
                issue_month, rewards * parts["perceived_m"][c[issuing]]
            ),
            "rewards_redeemed": by_day(resolve_day, parts["redeemed"]),
            "redemption_cost": by_day(resolve_day, parts["redeemed"] * cost_i),
            "rewards_expired": by_day(expiry_day, parts["expired_rewards"]),
            "breakage": by_day(expiry_day, parts["expired_rewards"] * cost_i),
            "discount_cost": (
                np.zeros(n_months) if discount is None else dense_sum(discount.__getitem__)
            ),
            "tier_benefit_cost": tier_benefit_cost + np.zeros(n_months),
            "running_cost": running_cost,
            "referral_cost": referral_cost,
        }
    )
    ledger["total_cost"] = (
        ledger["redemption_cost"] + ledger["discount_cost"] + ledger["tier_benefit_cost"]
        + ledger["running_cost"] + ledger["referral_cost"]
    )  # fmt: skip
    if parts["sampled"]:  # whole rewards: counts are integers
        for column in ("rewards_redeemed", "rewards_expired"):
            ledger[column] = ledger[column].round().astype(np.int64)
    ledger["outstanding_points"] = np.rint(outstanding).astype(np.int64)
    ledger["pending_rewards"] = np.rint(pending).astype(np.int64)
    ledger["liability"] = (points_value + pending_value) * redemption_rate
    for i, t in enumerate(tiers):
        ledger[f"members_tier_{slug(t.name)}"] = tier_counts[i].astype(np.int64)
    return ledger


def _tier_counts(
    at_least: np.ndarray, thresholds: np.ndarray, m: int, members: np.ndarray
) -> np.ndarray:
    """Members in each tier on each snapshot day (float, tiers x months).

    Tiers rise with the spend: the members at tier >= i (i >= 1) are those whose spend
    reaches threshold i. Members not yet enrolled have no spend: they are taken out of the
    tier of a zero spend.
    """
    at_or_above = at_least.astype(float)
    at_or_above[0] = m  # every member has a tier
    counts = at_or_above.copy()
    counts[:-1] -= at_or_above[1:]
    counts[_tier_of(thresholds, np.zeros(1))[0]] -= m - members
    return counts


def _customers(
    programme: Programme, parts: dict[str, Any], ids: np.ndarray, member_choice: np.ndarray
) -> pd.DataFrame:
    m = parts["m"]
    c, day = parts["c"], parts["day"]
    e_day = parts["e_day"]
    starts = parts["starts"]
    issuing = parts["issuing"]

    def per_member(values: np.ndarray, members: np.ndarray) -> np.ndarray:
        return np.bincount(members, weights=np.asarray(values, dtype=float), minlength=m)

    rewards = parts["rewards"]
    c_issuing = c[issuing]
    never = np.iinfo(np.int64).max
    first_reward = np.full(m, never)  # days rise within a member: its first issuing basket
    head = np.ones(len(issuing), dtype=bool)
    np.not_equal(c_issuing[1:], c_issuing[:-1], out=head[1:])
    first_reward[c_issuing[head]] = parts["issue_day"][head]
    has_reward = first_reward != never
    first_advantage = first_reward.copy()
    discount = parts["discount"]
    if discount is not None:
        advantaged = discount > 0
        advantaged &= parts["cents"] > 0
        at = np.flatnonzero(advantaged)
        del advantaged
        c_at = c[at]
        head = np.ones(len(at), dtype=bool)
        np.not_equal(c_at[1:], c_at[:-1], out=head[1:])
        np.minimum.at(first_advantage, c_at[head], day[at[head]])
    has_advantage = first_advantage != never
    _, v_run, v_points = parts["validity_events"]
    lapsed = parts["lapse_day"] <= e_day
    run_member = parts["run_member"]
    expired = per_member(v_points, run_member[v_run]) + per_member(
        parts["lapse_points"][lapsed], run_member[lapsed]
    )
    converted = rewards * parts["threshold_at"](issuing)
    points_earned = parts["credit_m"]
    balance_end = points_earned - per_member(converted, c_issuing) - expired
    enrol = day[starts].astype(np.int64)
    tiers = programme.tiers
    names = pd.array([t.name for t in tiers] or [""], dtype="str")  # text once, then taken
    if tiers:
        tier_end = names.take(parts["snapshot"]["tier_end"].astype(np.intp))
        top = parts["snapshot"]["top"].copy()
        if m:
            np.maximum(top, np.maximum.reduceat(parts["tier"], starts), out=top)
        top_tier = names.take(top.astype(np.intp))
    else:
        tier_end = top_tier = names.take(np.zeros(m, dtype=np.intp))
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "enrolled": (_EPOCH + enrol).astype("datetime64[ns]"),
            "reward": member_choice.astype(np.int64),
            "baskets": np.diff(np.append(starts, len(c))).astype(np.int64),
            "spend": parts["spend_m"] / 100,
            "points_earned": points_earned,
            "points_expired": expired.round().astype(np.int64),
            "rewards_issued": per_member(rewards, c_issuing).round().astype(np.int64),
            "rewards_redeemed": _counts(per_member(parts["redeemed"], c_issuing), parts["sampled"]),
            "first_reward_date": _dates_or_nat(first_reward, has_reward),
            "days_to_first_reward": np.where(has_reward, first_reward - enrol, np.nan),
            "first_advantage_date": _dates_or_nat(first_advantage, has_advantage),
            "days_to_first_advantage": np.where(has_advantage, first_advantage - enrol, np.nan),
            "tier_end": tier_end,
            "top_tier": top_tier,
            "balance_end": balance_end.round().astype(np.int64),
        }
    )
    return frame  # members are numbered in customer_id (text) order: already sorted


def _counts(values: np.ndarray, whole: bool) -> np.ndarray:
    """Sampled counts are whole numbers (int64); expected ones stay fractional."""
    return values.round().astype(np.int64) if whole else values


def _dates_or_nat(days: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = (_EPOCH + np.where(present, days, 0)).astype("datetime64[ns]")
    out[~present] = np.datetime64("NaT")
    return out


def _totals(ledger: pd.DataFrame, identified: int, members: int) -> dict[str, Any]:
    revenue = float(ledger["revenue"].sum())
    cost = float(ledger["total_cost"].sum())
    return {
        "revenue": revenue,
        "members_revenue": float(ledger["members_revenue"].sum()),
        "identified_customers": identified,
        "members": members,
        "cost": cost,
        "cost_share": cost / revenue if revenue else float("nan"),
        "rewards_issued": int(ledger["rewards_issued"].sum()),
        "rewards_value": float(ledger["rewards_issued_cost"].sum()),
        "rewards_perceived": float(ledger["rewards_issued_perceived"].sum()),
        "rewards_redeemed": float(ledger["rewards_redeemed"].sum()),
        "breakage": float(ledger["breakage"].sum()),
        "discount_cost": float(ledger["discount_cost"].sum()),
        "liability_end": float(ledger["liability"].iloc[-1]),
        "outstanding_points_end": int(ledger["outstanding_points"].iloc[-1]),
    }
