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


def _locate(days: np.ndarray, e_day: int, months: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """Ledger rows of ``days``, those after ``end`` dropped: (kept mask or None, rows)."""
    inside = None if (len(days) == 0 or days.max() <= e_day) else days <= e_day
    return inside, _month_index(days if inside is None else days[inside], months)


def _at(located: tuple[Any, np.ndarray], weights: Any, n_months: int) -> np.ndarray:
    """Sum ``weights`` (float) by the ledger rows of :func:`_locate`."""
    inside, index = located
    w = np.asarray(weights, dtype=float)
    return np.bincount(index, weights=w if inside is None else w[inside], minlength=n_months)


def _ledger_flows(
    programme: Programme, parts: dict[str, Any], months: dict[str, Any]
) -> dict[str, Any]:
    """The ledger's monthly flows of one chunk of members (summed over chunks in order).

    Counts are int64 and money in cents is summed exactly (int64), so their totals do not
    depend on the chunks; the other money flows are float sums in basket order within
    the chunk. Also returns what the redemption flows need (issuing baskets only).
    """
    n_months = len(months["first"])
    e_day = parts["e_day"]
    c, month = parts["c"], parts["month"]
    issuing = parts["issuing"]
    issue_month = month[issuing]

    def per_month(index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (float) or count (int64) by ledger row."""
        counts = np.bincount(index, weights=weights, minlength=n_months)
        return counts.astype(np.int64) if weights is None else counts.astype(float)

    starts = parts["starts"]
    new_members = per_month(month[starts])
    new_visit = parts["first"].copy()  # a member's first basket, or first of a month
    new_visit[1:] |= month[1:] != month[:-1]
    active_members = per_month(month[np.flatnonzero(new_visit)])  # (faster than a mask)
    del new_visit
    rewards = parts["rewards"]  # issuing baskets only
    converted = rewards * parts["threshold_at"](issuing)
    cost_i = parts["cost_m"][c[issuing]]
    v_day, v_run, v_points = parts["validity_events"]
    run_member = parts["run_member"]
    lapsed = parts["lapse_day"] <= e_day
    lapse_day = parts["lapse_day"][lapsed]
    lapse_points = parts["lapse_points"][lapsed]
    lapse_member = run_member[lapsed]
    v_member = run_member[v_run]
    v_at, lapse_at = _locate(v_day, e_day, months), _locate(lapse_day, e_day, months)
    resolve_at = _locate(parts["resolve_day"], e_day, months)

    n = parts["n"]
    credit = parts["credit"]

    # Points credited (welcome bonus included): whole numbers, exact in float64 sums; and
    # their value: the change of balance of each basket at its member's cost per point.
    # One pass for both (each sum in basket order, as ``_k.sum_by``).
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
    discount = parts["discount"]
    tiers = programme.tiers
    return {
        "new_members": new_members,
        "active_members": active_members,
        "members_cents": _k.cents_by_row(n_months, n, month.__getitem__, parts["cents"]),
        "credited": credited,
        "change_value": change_sum,
        "converted": per_month(issue_month, converted),
        "expired_validity": _at(v_at, v_points, n_months),
        "expired_inactivity": _at(lapse_at, lapse_points, n_months),
        "expired_validity_value": _at(v_at, v_points * per_point[v_member], n_months),
        "expired_inactivity_value": _at(lapse_at, lapse_points * per_point[lapse_member], n_months),
        "rewards_issued": per_month(issue_month, rewards),
        "rewards_resolved": _at(resolve_at, rewards, n_months),
        "rewards_issued_cost": per_month(issue_month, rewards * cost_i),
        "rewards_resolved_cost": _at(resolve_at, rewards * cost_i, n_months),
        "rewards_issued_perceived": per_month(
            issue_month, rewards * parts["perceived_m"][c[issuing]]
        ),
        "discount_cost": (
            np.zeros(n_months)
            if discount is None
            else _k.sum_by(np.zeros(n_months), n, month.__getitem__, discount.__getitem__)
        ),
        "at_least": (
            parts["snapshot"]["at_least"] if tiers else np.zeros((0, n_months), dtype=np.int64)
        ),
    }


def _redemption_flows(
    issued: dict[str, Any], redeemed: np.ndarray, expired: np.ndarray, months: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Monthly flows of the rewards redeemed (on their resolve day) and expired, from the
    issuing baskets of one chunk (``issued``: ``cost``, ``resolve_day``, ``expiry_day``)."""
    n_months = len(months["first"])
    e_day, cost = issued["e_day"], issued["cost"]
    resolve_at = _locate(issued["resolve_day"], e_day, months)
    expiry_at = _locate(issued["expiry_day"], e_day, months)
    return {
        "rewards_redeemed": _at(resolve_at, redeemed, n_months),
        "redemption_cost": _at(resolve_at, redeemed * cost, n_months),
        "rewards_expired": _at(expiry_at, expired, n_months),
        "breakage": _at(expiry_at, expired * cost, n_months),
    }


def _issued(parts: dict[str, Any]) -> dict[str, Any]:
    """What the redemption (R9, drawn in member order) needs of a chunk's issuing baskets."""
    issuing = parts["issuing"]
    c_issuing = parts["c"][issuing]
    return {
        "rewards": parts["rewards"],
        "has_next": parts["has_next"],
        "member": c_issuing,
        "m": parts["m"],
        "cost": parts["cost_m"][c_issuing],
        "resolve_day": parts["resolve_day"],
        "expiry_day": parts["issue_day"] + parts["valid_days"],
        "e_day": parts["e_day"],
    }


def _ledger(
    programme: Programme,
    flows: dict[str, np.ndarray],
    revenue: np.ndarray,
    months: dict[str, Any],
    m: int,
    welcome_bonus: int,
    sampled: bool,
) -> pd.DataFrame:
    """The monthly ledger from the flows summed over the chunks of members."""
    n_months = len(months["first"])
    new_members = flows["new_members"]
    members = np.cumsum(new_members)
    credited = flows["credited"]
    welcome = new_members * float(welcome_bonus)
    # Outstanding points and pending rewards: every change dated, summed up to each snapshot.
    outstanding = np.cumsum(
        credited - flows["converted"] - flows["expired_validity"] - flows["expired_inactivity"]
    )
    points_value = np.cumsum(
        flows["change_value"] - flows["expired_validity_value"] - flows["expired_inactivity_value"]
    )
    pending = np.cumsum(flows["rewards_issued"] - flows["rewards_resolved"])
    pending_value = np.cumsum(flows["rewards_issued_cost"] - flows["rewards_resolved_cost"])
    redemption_rate = programme.redemption.rate

    tiers = programme.tiers
    tier_counts = np.zeros((len(tiers), n_months))
    thresholds = np.array([round(t.min_spend_12m * 100) for t in tiers], dtype=np.int64)
    if tiers:
        tier_counts = _tier_counts(flows["at_least"], thresholds, m, members)
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
    ledger = pd.DataFrame(
        {
            "month": months["month"].astype("datetime64[ns]"),
            "snapshot": (_EPOCH + months["snapshot"]).astype("datetime64[ns]"),
            "revenue": revenue,
            "members_revenue": flows["members_cents"] / 100,
            "new_members": new_members.astype(np.int64),
            "members": members.astype(np.int64),
            "active_members": flows["active_members"].astype(np.int64),
            "points_earned": (credited - welcome).round().astype(np.int64),
            "welcome_points": welcome.round().astype(np.int64),
            "points_expired_inactivity": flows["expired_inactivity"].round().astype(np.int64),
            "points_expired_validity": flows["expired_validity"].round().astype(np.int64),
            "points_converted": flows["converted"].round().astype(np.int64),
            "rewards_issued": flows["rewards_issued"].round().astype(np.int64),
            "rewards_issued_cost": flows["rewards_issued_cost"],
            "rewards_issued_perceived": flows["rewards_issued_perceived"],
            "rewards_redeemed": flows["rewards_redeemed"],
            "redemption_cost": flows["redemption_cost"],
            "rewards_expired": flows["rewards_expired"],
            "breakage": flows["breakage"],
            "discount_cost": flows["discount_cost"],
            "tier_benefit_cost": tier_benefit_cost + np.zeros(n_months),
            "running_cost": running_cost,
            "referral_cost": referral_cost,
        }
    )
    ledger["total_cost"] = (
        ledger["redemption_cost"] + ledger["discount_cost"] + ledger["tier_benefit_cost"]
        + ledger["running_cost"] + ledger["referral_cost"]
    )  # fmt: skip
    if sampled:  # whole rewards: counts are integers
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


def _customer_columns(programme: Programme, parts: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-member columns of one chunk of members (concatenated over chunks in order)."""
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
    _, v_run, v_points = parts["validity_events"]
    lapsed = parts["lapse_day"] <= e_day
    run_member = parts["run_member"]
    expired = per_member(v_points, run_member[v_run]) + per_member(
        parts["lapse_points"][lapsed], run_member[lapsed]
    )
    converted = rewards * parts["threshold_at"](issuing)
    points_earned = parts["credit_m"]
    balance_end = points_earned - per_member(converted, c_issuing) - expired
    if programme.tiers:
        tier_end = parts["snapshot"]["tier_end"]
        top = parts["snapshot"]["top"].copy()
        if m:
            np.maximum(top, np.maximum.reduceat(parts["tier"], starts), out=top)
    else:
        tier_end = top = np.zeros(m, dtype=np.int8)
    return {
        "enrolled": day[starts].astype(np.int64),
        "baskets": np.diff(np.append(starts, len(c))).astype(np.int64),
        "spend_cents": parts["spend_m"],
        "points_earned": points_earned,
        "points_expired": expired.round().astype(np.int64),
        "rewards_issued": per_member(rewards, c_issuing).round().astype(np.int64),
        "first_reward": first_reward,
        "first_advantage": first_advantage,
        "tier_end": tier_end,
        "top": top,
        "balance_end": balance_end.round().astype(np.int64),
    }


def _customers(
    programme: Programme,
    columns: dict[str, np.ndarray],
    ids: np.ndarray,
    member_choice: np.ndarray,
    sampled: bool,
) -> pd.DataFrame:
    """The members' summary from the columns of every chunk, concatenated in order."""
    never = np.iinfo(np.int64).max
    enrol = columns["enrolled"]
    first_reward, first_advantage = columns["first_reward"], columns["first_advantage"]
    has_reward, has_advantage = first_reward != never, first_advantage != never
    names = pd.array([t.name for t in programme.tiers] or [""], dtype="str")  # text once
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "enrolled": (_EPOCH + enrol).astype("datetime64[ns]"),
            "reward": member_choice.astype(np.int64),
            "baskets": columns["baskets"],
            "spend": columns["spend_cents"] / 100,
            "points_earned": columns["points_earned"],
            "points_expired": columns["points_expired"],
            "rewards_issued": columns["rewards_issued"],
            "rewards_redeemed": _counts(columns["rewards_redeemed"], sampled),
            "first_reward_date": _dates_or_nat(first_reward, has_reward),
            "days_to_first_reward": np.where(has_reward, first_reward - enrol, np.nan),
            "first_advantage_date": _dates_or_nat(first_advantage, has_advantage),
            "days_to_first_advantage": np.where(has_advantage, first_advantage - enrol, np.nan),
            "tier_end": names.take(columns["tier_end"].astype(np.intp)),
            "top_tier": names.take(columns["top"].astype(np.intp)),
            "balance_end": columns["balance_end"],
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
