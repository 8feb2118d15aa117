"""The replay's rules R4-R10 on the members' baskets in order (see the replay's docstring).

Every function works on whole arrays in (member, timestamp, basket_id) order: segmented
cumulative sums, binary searches and bincounts, no Python loop per basket or member.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np

from loyalty_pilot.simulator import _replay_kernels as _k
from loyalty_pilot.simulator._replay_input import _EPOCH, _day, _month_index
from loyalty_pilot.simulator.programme import Programme, reward_cost, reward_perceived


def _member_events(
    programme: Programme,
    c: np.ndarray,
    day: np.ndarray,
    cents: np.ndarray,
    dept: np.ndarray | None,
    member_choice: np.ndarray,
    s_day: int,
    e_day: int,
    months: dict[str, np.ndarray],
    month: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every rule on the members' baskets in order (``c`` member, ``day``, ``cents``).

    Per-basket arrays kept: ``c``, ``day``, ``cents``, ``month``, ``credit``, ``tier``
    and the discount; rewards are kept only for the (few) baskets that issue rewards
    (``issuing`` positions). How many of them are redeemed (R9: a draw in sampled mode)
    is left to :func:`_redemption`, called in member order, so the members can be
    replayed in chunks and the draws still follow the order of the whole replay.
    """
    n = len(c)
    m = len(member_choice)
    first = np.ones(n, dtype=bool)
    np.not_equal(c[1:], c[:-1], out=first[1:])
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    starts = np.flatnonzero(first)  # every member has a basket: one start per member
    if month is None:
        month = _month_index(day, months)

    # R4 tier of each basket
    tiers = programme.tiers
    thresholds = np.array([round(t.min_spend_12m * 100) for t in tiers], dtype=np.int64)
    tier = np.zeros(n, dtype=np.int8)
    if len(tiers) > 1 and n:
        tier, spend_m = _rolling_tier(c, day, cents, thresholds, starts)
    else:
        spend_m = np.add.reduceat(cents, starts, dtype=np.int64) if m else np.zeros(0, np.int64)
    # Tiers on the snapshot days (R11)
    snapshot = _snapshot_tiers(c, month, day, cents, starts, thresholds, months) if tiers else None

    # R5 points
    credit = np.zeros(n, dtype=np.int64)
    welcome_bonus = 0
    if programme.earn is not None:
        credit = _points(programme, tier, cents, dept)
        welcome_bonus = programme.earn.welcome_bonus
        credit[starts] += welcome_bonus
    del dept

    # Reward threshold and valuation per member
    point_rewards = programme.point_rewards
    no_reward = np.int64(1 << 62)
    if point_rewards:
        t_by_reward = np.array([r.points for r in point_rewards], dtype=np.int64)
        cost_by_reward = np.array([reward_cost(r) for r in point_rewards])
        seen_by_reward = np.array([reward_perceived(r) for r in point_rewards])
        threshold_m = t_by_reward[member_choice]
        cost_m = cost_by_reward[member_choice]
        perceived_m = seen_by_reward[member_choice]
        per_point_m = cost_m / threshold_m
    else:
        threshold_m = np.full(m, no_reward)
        cost_m = perceived_m = per_point_m = np.zeros(m)
    uniform = len(np.unique(threshold_m)) <= 1

    def threshold_at(positions: np.ndarray | None) -> np.ndarray | np.int64:
        """Reward threshold of the members of these baskets (all when None)."""
        if uniform:
            return threshold_m[0] if m else no_reward
        return threshold_m[c] if positions is None else threshold_m[c[positions]]

    # R6 runs between inactivity lapses
    inactivity = programme.expiry.inactivity_days
    run_start = first.copy()
    if inactivity and n:
        run_start[1:] |= np.diff(day) >= inactivity
    run_first = np.flatnonzero(run_start)
    n_runs = len(run_first)
    run_last = np.append(run_first[1:] - 1, n - 1) if n_runs else run_first
    run_member = c[run_first].astype(np.int64) if n_runs else np.zeros(0, dtype=np.int64)
    never = np.iinfo(np.int64).max
    lapse_day = np.full(n_runs, never, dtype=np.int64)
    if inactivity and n_runs:
        candidate = day[run_last].astype(np.int64) + inactivity
        followed = ~last[run_last]  # the next run of the same member started by a lapse
        lapse_day = np.where(followed | (candidate <= e_day), candidate, never)

    # R7 + R8: balance, conversions and fixed-validity expiry
    validity = programme.expiry.validity_years
    y0 = int((_EPOCH + s_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    year = months["year"][month] if validity is not None or programme.progressive else None
    if validity is None:
        issuing, rewards, balance, run_total = _conversions(
            credit, run_start, run_last, threshold_at
        )
        validity_events = (np.zeros(0, dtype=np.int64),) * 3
        # each member's credit: the sum of its runs' (every member has a first run)
        credit_m = np.add.reduceat(run_total, np.flatnonzero(first[run_first])) if m else run_total
        del run_total
    else:
        rewards, balance, validity_events = _conversions_by_year(
            credit, run_start, run_first, run_last, day, year, y0, e_day, lapse_day,
            validity, threshold_at,
        )  # fmt: skip
        issuing = np.flatnonzero(rewards)
        rewards = rewards[issuing]
        credit_m = np.add.reduceat(credit, starts, dtype=np.int64) if m else np.zeros(0, np.int64)
    del run_start
    lapsed = lapse_day <= e_day
    lapse_points = np.where(lapsed, balance, 0)

    # R9 redemption at the next basket within the validity (issuing baskets only)
    valid_days = programme.redemption.validity_days
    issue_day = day[issuing].astype(np.int64)
    next_day = day[np.minimum(issuing + 1, max(n - 1, 0))].astype(np.int64)
    has_next = ~last[issuing] & (next_day <= issue_day + valid_days)
    del last
    resolve_day = np.where(has_next, next_day, issue_day + valid_days)

    # R10 discounts
    discount = _discounts(programme, tier, cents, first, year)

    return {
        "n": n, "m": m, "c": c, "day": day, "month": month, "cents": cents, "starts": starts,
        "tier": tier, "thresholds": thresholds, "credit": credit,
        "welcome_bonus": welcome_bonus, "issuing": issuing, "rewards": rewards,
        "issue_day": issue_day, "threshold_at": threshold_at, "has_next": has_next,
        "resolve_day": resolve_day,
        "discount": discount, "run_member": run_member, "lapse_day": lapse_day,
        "lapse_points": lapse_points, "validity_events": validity_events, "cost_m": cost_m,
        "perceived_m": perceived_m, "per_point_m": per_point_m,
        "snapshot": snapshot, "valid_days": valid_days, "e_day": e_day,
        "months": months, "spend_m": spend_m, "credit_m": credit_m,
        "first": first,
    }  # fmt: skip


def _redemption(
    rewards: np.ndarray, has_next: np.ndarray, rate: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """R9: rewards redeemed and expired (float) of the issuing baskets, in member order.

    Expected mode (``rng`` None): ``rate`` of each reward followed by a basket within the
    validity. Sampled mode: ``rng.binomial(rewards, rate)`` for every issuing basket, used
    when a basket follows; drawn in pieces in member order, the draws are those of one
    call over all the issuing baskets.
    """
    if rng is not None:
        draws = rng.binomial(rewards, rate)
        redeemed = np.where(has_next, draws, 0).astype(float)
    else:
        redeemed = np.where(has_next, rewards * rate, 0.0)
    return redeemed, rewards - redeemed


def _rolling_tier(
    c: np.ndarray, day: np.ndarray, cents: np.ndarray, thresholds: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """R4: tier (int8) from the member's spend over earlier baskets in (day - 365, day).

    Also returns each member's total spend (int64 cents), a by-product of the running sum.

    Only baskets whose member has spent (positive amounts) at least the second threshold
    before them can be above the first tier; for those, the member's first basket dated
    after ``day - 365`` is found by one binary search of the sorted (member, day) keys.
    The keys are int32 when member and day fit in 31 bits (days counted from the first
    day - 365, so ``key - 365`` stays within the member).
    """
    n = len(c)
    cc0 = np.zeros(n + 1, dtype=np.int64)  # spend before each basket
    cc0[1:] = cents
    np.cumsum(cc0, out=cc0)
    spend_m = cc0[np.append(starts[1:], n)]
    spend_m -= cc0[starts]
    if cents.min() >= 0:
        positive0 = cc0
    else:
        positive0 = np.zeros(n + 1, dtype=np.int64)
        np.maximum(cents, 0, out=positive0[1:], casting="unsafe")
        np.cumsum(positive0, out=positive0)
    base = positive0[starts]
    found = []
    for part in _k.blocks(n):  # bound >= the spend over any window before the basket
        bound = positive0[part] - base[c[part]]
        found.append(np.flatnonzero(bound >= thresholds[1]) + part.start)
    candidates = np.concatenate(found)
    del found, positive0
    tier = np.zeros(n, dtype=np.int8)
    if len(candidates) == 0:
        return tier, spend_m
    d0 = int(day.min()) - 365
    width = _k.bits(int(day.max()) - d0)
    key_t = np.int32 if _k.bits(int(c[-1])) + width <= 31 else np.int64
    key = c.astype(key_t)
    key <<= width
    key += day
    key -= key_t(d0)
    needles = key[candidates]
    needles -= key_t(365)
    # The answer for a basket lies between its member's first basket and itself: each
    # chunk of (sorted) needles is searched in the small slice of keys that holds its
    # answers, which stays in cache (same result as one search of all keys).
    lo = np.empty(len(candidates), dtype=np.intp)
    for j in _k.blocks(len(candidates), 1 << 16):
        a, z = int(starts[c[candidates[j.start]]]), int(candidates[j.stop - 1]) + 1
        np.add(np.searchsorted(key[a:z], needles[j], side="right"), a, out=lo[j])
    del key, needles
    spend = cc0[candidates]
    spend -= cc0[lo]
    tier[candidates] = _k.tier_of_sorted(thresholds, spend)
    return tier, spend_m


def _points(
    programme: Programme, tier: np.ndarray, cents: np.ndarray, dept: np.ndarray | None
) -> np.ndarray:
    """R5: ``floor(cents * rate / 100 + 1e-9)`` for amount > 0, else 0 (int64).

    ``rate = points_per_currency * department * tier multiplier``, in that order; without
    department multipliers the department counts 1.0, which changes no product.
    """
    earn = programme.earn
    tier_mult = np.array([t.multiplier for t in programme.tiers] or [1.0])
    rate_by_tier = earn.points_per_currency * tier_mult
    nonnegative = earn.points_per_currency >= 0 and (tier_mult >= 0).all() and dept is None
    points = np.empty(len(cents), dtype=np.int64)
    for part in _k.blocks(len(cents)):
        if dept is None:
            rate = np.take(rate_by_tier, tier[part])
        else:
            rate = dept[part] * earn.points_per_currency
            rate *= np.take(tier_mult, tier[part])
        rate *= cents[part]
        rate /= 100
        rate += 1e-9
        points[part] = np.floor(rate, out=rate)
    if nonnegative:
        np.maximum(points, 0, out=points)  # rates >= 0: returns and zeros earn <= 0
    else:
        points[cents <= 0] = 0
    return points


def _conversions(
    credit: np.ndarray, run_start: np.ndarray, run_last: np.ndarray, threshold_at: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R8 without fixed validity: issuing baskets, their rewards, each run's final balance
    and each run's total credit.

    With ``total`` the balance after each basket (before conversions) and ``k = total //
    threshold`` the rewards issued so far in the run, a basket issues ``k - k[previous]``
    (its ``before // threshold``, the balance before it being the previous ``total``).
    """
    total = _k.segment_cumsum(credit, run_start)  # balance after each basket
    run_total = total[run_last]
    balance = run_total % threshold_at(run_last)
    k = np.floor_divide(total, threshold_at(None), out=total)
    issuing, rewards = [], []
    for part in _k.blocks(len(k)):  # the nonzero k - k[previous], block by block
        kp = k[part]
        issued = np.empty_like(kp)
        np.subtract(kp[1:], kp[:-1], out=issued[1:])
        issued[0] = kp[0] - k[part.start - 1] if part.start else kp[0]
        restart = run_start[part]
        issued[restart] = k[part][restart]
        at = np.flatnonzero(issued)
        issuing.append(at + part.start)
        rewards.append(issued[at])
    if not issuing:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64), balance, run_total
    return np.concatenate(issuing), np.concatenate(rewards), balance, run_total


def _conversions_by_year(
    credit: np.ndarray,
    run_start: np.ndarray,
    run_first: np.ndarray,
    run_last: np.ndarray,
    day: np.ndarray,
    year: np.ndarray,
    y0: int,
    e_day: int,
    lapse_day: np.ndarray,
    validity: int,
    threshold_at: Any,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """R7 + R8 with fixed validity: balances carried year by year, 31 December expiries."""
    n, n_runs = len(credit), len(run_first)
    y1 = int((_EPOCH + e_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    n_years = y1 - y0 + 1
    run = np.cumsum(run_start) - 1
    balance = np.zeros(n_runs, dtype=np.int64)
    rewards = np.zeros(n, dtype=np.int64)
    credit_by_year = np.zeros((n_runs, n_years), dtype=np.int64)
    if n:
        credit_by_year = (
            np.bincount(run * n_years + (year - y0), weights=credit, minlength=n_runs * n_years)
            .round()
            .astype(np.int64)
            .reshape(n_runs, n_years)
        )
    expiry_day: list[np.ndarray] = []
    expiry_run: list[np.ndarray] = []
    expiry_points: list[np.ndarray] = []
    for p in range(n_years):
        idx = np.flatnonzero(year == y0 + p)
        if len(idx):
            r = run[idx]
            starts = np.ones(len(idx), dtype=bool)
            starts[1:] = r[1:] != r[:-1]
            total = balance[r] + _k.segment_cumsum(credit[idx], starts)
            before = total - credit[idx]
            t = threshold_at(idx)
            rewards[idx] = total // t - before // t
            ends = np.append(starts[1:], True)
            balance[r[ends]] = (total % t)[ends]
        dec31 = _day(dt.date(y0 + p, 12, 31))
        if dec31 > e_day or not n_runs:
            continue
        alive = (day[run_first] <= dec31) & (lapse_day > dec31)
        kept = credit_by_year[:, max(0, p - validity + 1) : p + 1].sum(axis=1) if validity else 0
        expired = np.where(alive, np.maximum(balance - kept, 0), 0)
        hit = np.flatnonzero(expired > 0)
        balance[hit] -= expired[hit]
        expiry_day.append(np.full(len(hit), dec31, dtype=np.int64))
        expiry_run.append(hit)
        expiry_points.append(expired[hit])
    events = (
        np.concatenate(expiry_day) if expiry_day else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_run) if expiry_run else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_points) if expiry_points else np.zeros(0, dtype=np.int64),
    )
    return rewards, balance, events


def _discounts(
    programme: Programme,
    tier: np.ndarray,
    cents: np.ndarray,
    first: np.ndarray,
    year: np.ndarray | None,
) -> np.ndarray | None:
    """R10: ``cents / 100 * rate`` per basket (float64), None when every rate is 0.

    ``rate = discount card + progressive step + tier discount``, added in that order.
    """
    tiers = programme.tiers
    tier_discount = np.array([t.benefit.discount_rate if t.benefit else 0.0 for t in tiers])
    progressive = programme.progressive
    if progressive is None:
        by_tier = np.full(max(len(tiers), 1), float(programme.discount_rate))
        if tiers:
            by_tier = by_tier + tier_discount
        if not by_tier.any():
            return None
        discount = cents / 100
        discount *= by_tier[0] if len(by_tier) == 1 else np.take(by_tier, tier)
        return discount
    # progressive step from the spend of the member's earlier baskets of the same year
    new_year = first.copy()
    new_year[1:] |= year[1:] != year[:-1]
    spend = _k.segment_cumsum(cents, new_year)
    spend -= cents
    steps = np.array([round(s.from_spend * 100) for s in progressive.scale], dtype=np.int64)
    step_rates = np.array([s.rate for s in progressive.scale])
    rate = np.full(len(cents), float(programme.discount_rate))
    rate += step_rates[_tier_of(steps, spend)]
    if tiers:
        rate += np.take(tier_discount, tier)
    rate *= cents / 100
    return rate


def _snapshot_tiers(
    c: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    cents: np.ndarray,
    starts: np.ndarray,
    thresholds: np.ndarray,
    months: Any,
) -> dict[str, np.ndarray]:
    """Tiers on the snapshot days (R11) from the spend over (snapshot - 365, snapshot].

    A basket of month ``a`` counts on the snapshots ``a <= s < b``, ``b`` the first snapshot
    with ``snapshot - 365 >= day`` (a look-up table over the window's days): a bincount of
    +cents at (a, member) and of -cents at (b, member), then a cumulative sum down the
    months gives each member's spend on each snapshot day (whole cents: exact in float64).
    Members are taken in blocks of about a million baskets, so the (months x members)
    spend never exists whole; each block leaves only what the ledger and the customers
    need. Returns ``at_least`` (members whose spend reaches each threshold, thresholds x
    months), ``tier_end`` (tier on the last snapshot) and ``top`` (highest snapshot tier).
    """
    snapshots = months["snapshot"]
    n_snap, m, n = len(snapshots), len(starts), len(c)
    window_days = np.arange(months["first"][0], snapshots[-1] + 1)
    drop = np.searchsorted(snapshots - 365, window_days, side="left")  # n_snap: never
    at_least = np.zeros((len(thresholds), n_snap), dtype=np.int64)
    tier_end = np.zeros(m, dtype=np.int8)
    top = np.zeros(m, dtype=np.int8)
    edges = np.unique(np.append(np.searchsorted(starts, np.arange(0, n, 1 << 20)), m))
    for m0, m1 in itertools.pairwise(edges):  # blocks of members
        b0 = starts[m0]
        b1 = starts[m1] if m1 < m else n
        members = m1 - m0
        size = (n_snap + 1) * members  # row n_snap: baskets that never drop out
        weights = cents[b0:b1].astype(float)
        member = c[b0:b1] - m0
        cell = month[b0:b1] * members
        cell += member
        grid = np.bincount(cell, weights=weights, minlength=size)
        offset = np.subtract(day[b0:b1], months["first"][0], dtype=np.int32)
        np.take(drop, offset, out=cell, mode="clip")  # (an unbuffered out; offsets valid)
        cell *= members
        cell += member
        grid -= np.bincount(cell, weights=weights, minlength=size)
        del cell, weights, member
        spend = grid.reshape(n_snap + 1, members)[:n_snap]
        for i in range(1, n_snap):  # cumsum down the months, row by row (much faster
            np.add(spend[i], spend[i - 1], out=spend[i])  # than axis=0; the same sums)
        for i, threshold in enumerate(thresholds):  # a handful of tiers
            at_least[i] += (spend >= threshold).sum(axis=1)
        tier_end[m0:m1] = _k.tier_of_sorted(thresholds, spend[-1])
        top[m0:m1] = _k.tier_of_sorted(thresholds, spend.max(axis=0))
    return {"at_least": at_least, "tier_end": tier_end, "top": top}


def _tier_of(thresholds: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Index of the highest threshold <= spend (the lowest when the spend is below all)."""
    return np.maximum(np.searchsorted(thresholds, spend, side="right") - 1, 0)
