"""Exact replay of a programme variant on historical baskets.

What the variant would have cost on the chain's own baskets, before any assumption about
behaviour. The rules below are the specification; ``tests/simulator/reference_replay.py``
implements them independently with plain Python loops and the tests require both to agree
exactly.

Input
-----
``baskets``: a DataFrame with ``customer_id`` (missing = anonymous), ``basket_id``,
``date`` (date or timestamp), ``amount``; optional ``department`` (needed when the
programme has department multipliers; a department without a multiplier counts 1).
Money is counted in cents: ``cents = round(amount * 100)``; spends and thresholds are
compared in cents, so no rounding error decides a tier.

Rules
-----
R1 Window. The replay runs from ``start`` (argument, else ``programme.start``, else the
   first basket's date) to ``end`` (argument, else the last basket's date), inclusive.
   Baskets outside the window are ignored. Revenue counts every basket in the window.
R2 Enrolment. The identified customers with a basket in the window, sorted by
   ``customer_id`` (as strings), receive ``u = rng.random(n)`` from
   ``numpy.random.default_rng(seed)``; a customer enrols iff ``u < uptake`` (all when
   uptake is 1). Then ``v = rng.random(n)`` (drawn even if unused) picks each customer's
   point reward by inverse CDF over the rewards' shares in catalogue order
   (``index = searchsorted(cumsum(shares), v, side='right')``, clipped to the last).
   A member enrols on the date of its first basket in the window.
R3 Order. A member's baskets are processed in order of (timestamp, basket_id); only
   baskets on or after enrolment (all of the member's baskets in the window) count.
R4 Tier. The tier of a basket is the highest tier whose ``min_spend_12m`` (in cents) is
   <= the member's spend in cents over the member's earlier baskets (in the order of R3)
   dated strictly after ``date - 365 days``. Returns count (net spend).
R5 Points. A basket with amount > 0 earns
   ``floor(cents * rate / 100 + 1e-9)`` points with
   ``rate = points_per_currency * department_multiplier * tier_multiplier`` (multiplied in
   that order). Returns and zero baskets earn nothing. The first basket also credits the
   welcome bonus. Points are integers.
R6 Inactivity expiry. If a member's next basket comes ``inactivity_days`` or more days
   after the previous one (by date), the whole balance lapses on day
   ``previous date + inactivity_days``, before that next basket. After the member's last
   basket the balance lapses on that day too if it is <= ``end``.
R7 Fixed validity (``validity_years = k``). At the end of every 31 December in the window
   (after that day's baskets), the points still in the balance that were credited in a
   year <= Y - k expire. Balances are used oldest first, so the expired amount is
   ``max(0, balance - points credited in years Y-k+1..Y since the balance last lapsed)``
   (for k = 0 the whole balance). On the same day an inactivity lapse comes first.
R8 Conversion. After a basket's points are credited, while the balance is >= the
   member's reward threshold a reward is issued and its points are deducted (several in
   one basket when due; the welcome bonus counts).
R9 Redemption. A reward issued on date d is redeemed at the member's next basket (the
   next in the order of R3) if that basket is dated <= d + validity_days, with
   probability ``redemption.rate``; otherwise it expires unredeemed on
   d + validity_days (breakage). In expected mode each reward counts ``rate`` redeemed
   and ``1 - rate`` expiring on d + validity_days even when a basket follows; in sampled
   mode the number redeemed among the n rewards issued at a basket is
   ``rng.binomial(n, rate)`` for the issuing baskets in (customer_id, order) sequence,
   drawn after R2's draws. A redeemed reward costs its face value (cash) or unit cost
   (gift); an expired one is breakage at the same valuation.
R10 Discounts. A member's basket costs ``cents / 100 * rate`` in discount with
   ``rate = discount card rate + progressive rate + tier benefit discount_rate``; the
   progressive rate is that of the highest step whose ``from_spend`` (cents) is <= the
   member's spend in cents over its earlier baskets of the same calendar year. Returns
   give the discount back (negative cost).
R11 Monthly costs. The ledger has one row per calendar month from the month of
   ``start`` to the month of ``end``; its snapshot day is min(month end, end). Events
   (lapses, expiries) count in the month of their day, and only when the day is
   <= ``end``. For each month: running cost
   ``running_cost_per_member_year / 12`` per member enrolled on or before that day; tier
   benefit cost ``cost_per_member_year / 12`` per member in that tier on that day (tier
   from the spend over baskets dated in (day - 365, day]); expected referral cost
   ``rate_per_member_year / 12 * members * (bonus_referrer + bonus_referee) *
   point_value * redemption.rate`` with ``point_value`` the share-weighted cost per point
   of the point rewards; "members" and "tier" are taken on the snapshot day, and the
   month of ``end`` counts whole.
R12 Liability (IFRS 15 style, on each snapshot day, in both modes): outstanding points
   valued at the member's reward cost per point times the redemption rate, plus, for each
   reward still pending (issued on or before the day and not yet resolved), its cost
   times the redemption rate. A reward is resolved on its next basket's date when that
   basket comes within the validity, else on d + validity_days. The expected breakage is
   not a liability.

Readings of the rules (both implementations agree on them)
-----------------------------------------------------------
- R1: the default window runs from the first to the last basket of *all* baskets
  (anonymous ones included); ``end < start`` is an error.
- R2: customer ids are compared and reported as text (an integer id 9 becomes "9").
- R4 / R10: a negative rolling or calendar-year spend gets the first tier / first step.
- R5: the welcome bonus is credited on the first basket even if it is a return.
- R7: "since the balance last lapsed" means an R6 lapse; a 31 December expiry is not a
  lapse (points are used oldest first).
- R9: the binomial draw is made for every issuing basket, even when no basket follows
  within the validity (the draw is then unused). The next basket follows R3's order, so
  it can be on the same day. When it comes within the validity, the share not redeemed
  (``1 - rate``, or ``n - k`` sampled) expires on d + validity_days, while for the
  liability (R12) the whole group is resolved on the next basket's date.
- R11: when ``start`` is mid-month, the first month's running, tier and referral costs
  also count whole. Snapshot values are taken at the end of the snapshot day. Rewards
  expiring and balances lapsing after ``end`` are not counted (still pending / held).
- Tier columns are named ``members_tier_<slug(name)>`` (``Gold-Plus`` ->
  ``members_tier_gold_plus``).
- A "discounted purchase" (first advantage) is a basket with amount > 0 and a total
  discount rate > 0.
- Types: counts of points, members and issued rewards are int64; money is float64;
  ``rewards_redeemed`` and ``rewards_expired`` are float64 in expected mode and int64
  in sampled mode. Revenue, spend and discounts are ``cents / 100`` (not rounded again);
  ``cents = round(amount * 100)`` with halves to even.

Output
------
``ReplayResult.ledger``: one row per month with ``month`` (first day), ``snapshot``,
``revenue`` (all baskets of the month in the window), ``members_revenue``,
``new_members``, ``members`` (enrolled on or before the snapshot), ``active_members``
(members with a basket in the month), ``points_earned`` (R5, without the welcome bonus),
``welcome_points``, ``points_expired_inactivity`` (R6), ``points_expired_validity``
(R7), ``points_converted``, ``rewards_issued`` (count), ``rewards_issued_cost``,
``rewards_issued_perceived`` (gifts at retail value), ``rewards_redeemed`` (count,
expected or sampled), ``redemption_cost``, ``rewards_expired`` (count), ``breakage``
(at cost), ``discount_cost``, ``tier_benefit_cost``, ``running_cost``, ``referral_cost``,
``total_cost`` (redemption + discount + tier benefit + running + referral),
``outstanding_points``, ``pending_rewards``, ``liability`` and, with tiers, one
``members_tier_<name>`` column per tier (members in the tier on the snapshot day).

``ReplayResult.customers``: one row per member, sorted by ``customer_id``:
``customer_id``, ``enrolled`` (date), ``reward`` (index of the chosen point reward, -1
without point rewards), ``baskets``, ``spend``, ``points_earned`` (with the welcome
bonus), ``points_expired``, ``rewards_issued``, ``rewards_redeemed``,
``first_reward_date`` (NaT if none), ``days_to_first_reward`` (NaN if none),
``first_advantage_date`` and ``days_to_first_advantage`` (the first reward issued or
discounted purchase, whichever comes first; what the SMART check times),
``tier_end`` (tier on the last snapshot, "" without tiers), ``top_tier`` (highest tier
of any of its baskets or snapshots, "" without tiers), ``balance_end``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_pilot.simulator.programme import (
    Programme,
    reward_cost,
    reward_perceived,
    slug,
)

_BIG = np.int64(1 << 32)  # customer stride in the composite (customer, day) key
_EPOCH = np.datetime64("1970-01-01", "D")

LEDGER_COLUMNS = (
    "month", "snapshot", "revenue", "members_revenue", "new_members", "members",
    "active_members", "points_earned", "welcome_points", "points_expired_inactivity",
    "points_expired_validity", "points_converted", "rewards_issued", "rewards_issued_cost",
    "rewards_issued_perceived", "rewards_redeemed", "redemption_cost", "rewards_expired",
    "breakage", "discount_cost", "tier_benefit_cost", "running_cost", "referral_cost",
    "total_cost", "outstanding_points", "pending_rewards", "liability",
)  # fmt: skip
CUSTOMER_COLUMNS = (
    "customer_id", "enrolled", "reward", "baskets", "spend", "points_earned",
    "points_expired", "rewards_issued", "rewards_redeemed", "first_reward_date",
    "days_to_first_reward", "first_advantage_date", "days_to_first_advantage", "tier_end",
    "top_tier", "balance_end",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """The replay of one programme: monthly ledger and per-member summary (see above)."""

    programme: Programme
    ledger: pd.DataFrame
    customers: pd.DataFrame
    start: dt.date
    end: dt.date
    seed: int
    sampled: bool
    identified_customers: int = 0
    totals: dict[str, Any] = field(default_factory=dict)


def replay(
    baskets: pd.DataFrame,
    programme: Programme,
    *,
    seed: int = 0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sample: bool = False,
) -> ReplayResult:
    """Replay ``programme`` on ``baskets`` following rules R1-R12 (module docstring).

    Vectorized: sorts and segmented cumulative sums over all baskets at once; the only
    Python loop runs over calendar years when points have a fixed validity (R7).
    """
    data = _prepare(baskets, programme)
    day_all = data["day"]
    if len(day_all) == 0:
        raise ValueError("baskets is empty: nothing to replay")
    start = start or programme.start or _to_date(day_all.min())
    end = end or _to_date(day_all.max())
    if end < start:
        raise ValueError(f"end == {end}, must be on or after start {start}.")
    s_day, e_day = _day(start), _day(end)
    window = (day_all >= s_day) & (day_all <= e_day)
    months = _months(s_day, e_day)
    n_months = len(months["first"])
    month_all = _month_index(day_all[window], months)
    revenue = np.bincount(month_all, weights=data["cents"][window] / 100.0, minlength=n_months)

    # R2: enrolment and reward choice, over identified customers in the window.
    ident = window & data["identified"]
    codes = data["customer_code"][ident]
    uniques = data["customer_uniques"]
    present = np.flatnonzero(np.bincount(codes, minlength=len(uniques)))
    order = np.argsort(uniques[present].astype(str), kind="stable")
    customers = present[order]  # codes sorted by customer_id as text
    n_ident = len(customers)
    rng = np.random.default_rng(seed)
    u = rng.random(n_ident)
    v = rng.random(n_ident)
    enrolled = u < programme.enrolment.uptake
    shares = programme.reward_shares
    if shares:
        choice = np.minimum(np.searchsorted(np.cumsum(shares), v, side="right"), len(shares) - 1)
    else:
        choice = np.full(n_ident, -1)
    member_codes = customers[enrolled]
    member_choice = choice[enrolled]
    rank = np.full(len(uniques), -1, dtype=np.int64)
    rank[member_codes] = np.arange(len(member_codes))

    # R3: the members' baskets in order (member, timestamp, basket_id).
    sel = np.flatnonzero(ident)
    c_all = rank[data["customer_code"][sel]]
    sel = sel[c_all >= 0]
    c = rank[data["customer_code"][sel]]
    ts = data["ts"][sel]
    order = _member_time_order(c, ts)
    sel, c, ts = sel[order], c[order], ts[order]
    sel, c = _break_ties(sel, c, ts, data["basket_id"])
    parts = _member_events(
        programme, data, sel, c, member_choice, s_day, e_day, months, sample, rng
    )
    ledger = _ledger(programme, parts, revenue, months)
    customers = _customers(programme, parts, uniques[member_codes], member_choice)
    totals = _totals(ledger, n_ident, len(member_codes))
    return ReplayResult(programme, ledger, customers, start, end, seed, sample, n_ident, totals)


# ----------------------------------------------------------------------------- input


def _prepare(baskets: pd.DataFrame, programme: Programme) -> dict[str, Any]:
    for column in ("customer_id", "basket_id", "date", "amount"):
        if column not in baskets.columns:
            raise ValueError(f"baskets has no column {column!r}")
    amount = pd.to_numeric(baskets["amount"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(amount).all():
        raise ValueError("baskets column 'amount' has missing or non-numeric values")
    dates = pd.to_datetime(baskets["date"])
    if dates.isna().any():
        raise ValueError("baskets column 'date' has missing values")
    ts_source = pd.to_datetime(baskets["ts"]) if "ts" in baskets.columns else dates
    day = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
    ts = ts_source.to_numpy().astype("datetime64[ns]").astype(np.int64)
    customer = baskets["customer_id"]
    identified = customer.notna().to_numpy().copy()
    if not (pd.api.types.is_numeric_dtype(customer) or pd.api.types.is_bool_dtype(customer)):
        customer = customer.astype("string")
        identified &= (customer.str.len() > 0).fillna(False).to_numpy(dtype=bool)
        customer = customer.where(identified)
    codes, uniques = pd.factorize(customer)
    uniques = np.asarray(uniques.astype(str), dtype=object)
    dept = np.ones(len(baskets))
    multipliers = programme.earn.department_multipliers if programme.earn else {}
    if multipliers:
        if "department" not in baskets.columns:
            raise ValueError("the programme has department multipliers: baskets need 'department'")
        dept = baskets["department"].map(multipliers).fillna(1.0).to_numpy(dtype=float)
    return {
        "day": day,
        "ts": ts,
        "cents": np.rint(amount * 100).astype(np.int64),
        "identified": identified,
        "customer_code": np.asarray(codes, dtype=np.int64),
        "customer_uniques": uniques,
        "basket_id": baskets["basket_id"],
        "dept": dept,
    }


def _day(value: dt.date) -> int:
    return int((np.datetime64(value, "D") - _EPOCH).astype(np.int64))


def _to_date(day: int) -> dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)


def _months(s_day: int, e_day: int) -> dict[str, np.ndarray]:
    first_month = (_EPOCH + s_day).astype("datetime64[M]")
    last_month = (_EPOCH + e_day).astype("datetime64[M]")
    month = np.arange(first_month, last_month + 1)
    first = month.astype("datetime64[D]")
    month_end = (month + 1).astype("datetime64[D]") - 1
    first_days = np.maximum((first - _EPOCH).astype(np.int64), s_day)
    snapshot = np.minimum((month_end - _EPOCH).astype(np.int64), e_day)
    return {"month": first, "first": first_days, "snapshot": snapshot}


def _month_index(day: np.ndarray, months: dict[str, np.ndarray]) -> np.ndarray:
    """Ledger row of each day (days must lie in the window)."""
    first = months["first"]
    lut = np.repeat(np.arange(len(first)), np.diff(np.append(first, months["snapshot"][-1] + 1)))
    return lut[day - first[0]]


def _member_time_order(c: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Order by (member, timestamp); equal pairs are ordered afterwards by basket_id.

    One int64 key (member in the high bits, seconds in the low ones) when timestamps are
    whole seconds over less than 2**36 s, which argsort sorts much faster than lexsort.
    """
    if len(ts) > 1:
        same = c[1:] == c[:-1]
        if (c[1:] >= c[:-1]).all() and (ts[1:][same] >= ts[:-1][same]).all():
            return np.arange(len(ts))  # already in order (e.g. read with ORDER BY)
    if len(ts):
        seconds, rest = np.divmod(ts - ts.min(), 1_000_000_000)
        if not rest.any() and seconds.max() < (1 << 36) and c.max() < (1 << 26):
            return np.argsort((c << 36) | seconds)
    return np.lexsort((ts, c))


def _break_ties(
    sel: np.ndarray, c: np.ndarray, ts: np.ndarray, basket_id: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Order baskets of one member with the same timestamp by basket_id (as text)."""
    tie = np.zeros(len(sel), dtype=bool)
    tie[1:] = (c[1:] == c[:-1]) & (ts[1:] == ts[:-1])
    if not tie.any():
        return sel, c
    in_group = tie.copy()
    in_group[:-1] |= tie[1:]
    idx = np.flatnonzero(in_group)
    group = np.cumsum(~tie)[idx]
    ids = basket_id.iloc[sel[idx]].astype(str).to_numpy()
    _, id_rank = np.unique(ids, return_inverse=True)
    order = np.lexsort((id_rank, group))
    sel = sel.copy()
    sel[idx] = sel[idx][order]
    return sel, c


# ----------------------------------------------------------------------------- rules


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at every True of ``starts`` (``starts[0]`` is True)."""
    total = np.cumsum(values)
    begin = np.flatnonzero(starts)
    before = total[begin] - values[begin]
    return total - before[np.cumsum(starts) - 1]


def _member_events(
    programme: Programme,
    data: dict[str, Any],
    sel: np.ndarray,
    c: np.ndarray,
    member_choice: np.ndarray,
    s_day: int,
    e_day: int,
    months: dict[str, np.ndarray],
    sample: bool,
    rng: np.random.Generator,
) -> dict[str, Any]:
    n = len(sel)
    m = len(member_choice)
    day = data["day"][sel]
    cents = data["cents"][sel]
    first = np.ones(n, dtype=bool)
    first[1:] = c[1:] != c[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    key = c * _BIG + day
    cc0 = np.concatenate(([0], np.cumsum(cents)))
    position = np.arange(n)

    # R4 tier of each basket
    tiers = programme.tiers
    thresholds = np.array([round(t.min_spend_12m * 100) for t in tiers], dtype=np.int64)
    if tiers:
        lo = np.searchsorted(key, key - 365, side="right")
        tier = _tier_of(thresholds, cc0[:-1] - cc0[lo])
    else:
        tier = np.zeros(n, dtype=np.int64)

    # R5 points
    credit = np.zeros(n, dtype=np.int64)
    welcome = np.zeros(n, dtype=np.int64)
    if programme.earn is not None:
        tier_mult = np.array([t.multiplier for t in tiers] or [1.0])
        rate = programme.earn.points_per_currency * data["dept"][sel] * tier_mult[tier]
        points = np.floor(cents * rate / 100 + 1e-9).astype(np.int64)
        credit = np.where(cents > 0, points, 0)
        welcome = np.where(first, programme.earn.welcome_bonus, 0).astype(np.int64)
    earned = credit.copy()
    credit = credit + welcome

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
    threshold = threshold_m[c]

    # R6 runs between inactivity lapses
    inactivity = programme.expiry.inactivity_days
    run_start = first.copy()
    if inactivity:
        gap = np.diff(day, prepend=day[:1])
        run_start |= ~first & (gap >= inactivity)
    run = np.cumsum(run_start) - 1
    run_first = np.flatnonzero(run_start)
    n_runs = len(run_first)
    run_last = np.append(run_first[1:] - 1, n - 1) if n_runs else run_first
    run_member = c[run_first] if n_runs else np.zeros(0, dtype=np.int64)
    never = np.iinfo(np.int64).max
    lapse_day = np.full(n_runs, never, dtype=np.int64)
    if inactivity and n_runs:
        candidate = day[run_last] + inactivity
        followed = ~last[run_last]  # the next run of the same member started by a lapse
        lapse_day = np.where(followed | (candidate <= e_day), candidate, never)

    # R7 + R8: balance, conversions and fixed-validity expiry, year by year
    validity = programme.expiry.validity_years
    progressive = programme.progressive
    needs_year = validity is not None or progressive is not None
    year = (_EPOCH + day).astype("datetime64[Y]").astype(np.int64) + 1970 if needs_year else None
    y0 = int((_EPOCH + s_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    y1 = int((_EPOCH + e_day).astype("datetime64[Y]").astype(np.int64)) + 1970
    n_years = y1 - y0 + 1
    n_periods = n_years if validity is not None else 1
    balance = np.zeros(n_runs, dtype=np.int64)
    rewards = np.zeros(n, dtype=np.int64)
    credit_by_year = np.zeros((n_runs, n_years), dtype=np.int64)
    if validity is not None and n:
        credit_by_year = (
            np.bincount(run * n_years + (year - y0), weights=credit, minlength=n_runs * n_years)
            .round()
            .astype(np.int64)
            .reshape(n_runs, n_years)
        )
    expiry_day: list[np.ndarray] = []
    expiry_run: list[np.ndarray] = []
    expiry_points: list[np.ndarray] = []
    for p in range(n_periods):
        idx = np.flatnonzero(year == y0 + p) if n_periods > 1 else position
        if len(idx):
            r = run[idx]
            starts = np.ones(len(idx), dtype=bool)
            starts[1:] = r[1:] != r[:-1]
            total = balance[r] + _segment_cumsum(credit[idx], starts)
            before = total - credit[idx]
            t = threshold[idx]
            rewards[idx] = total // t - before // t
            ends = np.append(starts[1:], True)
            balance[r[ends]] = (total % t)[ends]
        if validity is None:
            continue
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
    lapsed = lapse_day <= e_day
    lapse_points = np.where(lapsed, balance, 0)
    validity_events = (
        np.concatenate(expiry_day) if expiry_day else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_run) if expiry_run else np.zeros(0, dtype=np.int64),
        np.concatenate(expiry_points) if expiry_points else np.zeros(0, dtype=np.int64),
    )

    # R9 redemption at the next basket within the validity
    valid_days = programme.redemption.validity_days
    redemption_rate = programme.redemption.rate
    next_day = np.append(day[1:], never)
    has_next = ~last & (next_day <= day + valid_days)
    issuing = rewards > 0
    if sample:
        draws = np.zeros(n, dtype=np.int64)
        draws[issuing] = rng.binomial(rewards[issuing], redemption_rate)
        redeemed = np.where(has_next, draws, 0).astype(float)
    else:
        redeemed = np.where(has_next, rewards * redemption_rate, 0.0)
    expired_rewards = rewards - redeemed
    resolve_day = np.where(has_next, next_day, day + valid_days)

    # R10 discounts
    rate = np.full(n, programme.discount_rate)
    if progressive is not None:
        jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
        lo_year = np.searchsorted(key, c * _BIG + jan1, side="left")
        steps = np.array([round(s.from_spend * 100) for s in progressive.scale], dtype=np.int64)
        step_rates = np.array([s.rate for s in progressive.scale])
        rate = rate + step_rates[_tier_of(steps, cc0[:-1] - cc0[lo_year])]
    if tiers:
        tier_discount = np.array([t.benefit.discount_rate if t.benefit else 0.0 for t in tiers])
        rate = rate + tier_discount[tier]
    discount = cents / 100 * rate

    # Tier of every member on every snapshot day (R11)
    enrol_day = day[first]
    snapshots = months["snapshot"]
    enrolled_by = enrol_day[:, None] <= snapshots[None, :]
    snapshot_tier = np.zeros((m, len(snapshots)), dtype=np.int64)
    if tiers and m:
        base = np.arange(m, dtype=np.int64)[:, None] * _BIG
        hi = np.searchsorted(key, base + snapshots[None, :], side="right")
        lo = np.searchsorted(key, base + snapshots[None, :] - 365, side="right")
        snapshot_tier = _tier_of(thresholds, cc0[hi] - cc0[lo])

    return {
        "n": n, "m": m, "c": c, "day": day, "cents": cents, "first": first, "tier": tier,
        "earned": earned, "welcome": welcome, "credit": credit, "rewards": rewards,
        "threshold": threshold, "redeemed": redeemed, "expired_rewards": expired_rewards,
        "resolve_day": resolve_day, "discount": discount, "enrol_day": enrol_day,
        "run_member": run_member, "lapse_day": lapse_day, "lapse_points": lapse_points,
        "validity_events": validity_events, "cost_m": cost_m, "perceived_m": perceived_m,
        "per_point_m": per_point_m, "enrolled_by": enrolled_by,
        "snapshot_tier": snapshot_tier, "valid_days": valid_days, "e_day": e_day,
        "months": months, "sampled": sample,
    }  # fmt: skip


def _tier_of(thresholds: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Index of the highest threshold <= spend (the lowest when the spend is below all)."""
    return np.maximum(np.searchsorted(thresholds, spend, side="right") - 1, 0)


# ----------------------------------------------------------------------------- output


def _ledger(
    programme: Programme, parts: dict[str, Any], revenue: np.ndarray, months: dict[str, Any]
) -> pd.DataFrame:
    n_months = len(months["first"])
    e_day = parts["e_day"]
    c, day = parts["c"], parts["day"]

    located: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}

    def by_month(days: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum ``weights`` (or count) by the month of ``days``; days after ``end`` drop out."""
        if id(days) not in located:  # each array of days is located once
            inside = None if (len(days) == 0 or days.max() <= e_day) else days <= e_day
            chosen = days if inside is None else days[inside]
            located[id(days)] = (inside, _month_index(chosen, months))
        inside, index = located[id(days)]
        w = None if weights is None else np.asarray(weights, dtype=float)
        if w is not None and inside is not None:
            w = w[inside]
        counts = np.bincount(index, weights=w, minlength=n_months)
        return counts if w is None else counts.astype(float)  # money stays float when empty

    month = _month_index(day, months)
    cost_b = parts["cost_m"][c]
    rewards = parts["rewards"]
    new_members = by_month(parts["enrol_day"])
    members = np.cumsum(new_members)
    new_visit = np.ones(len(day), dtype=bool)
    new_visit[1:] = (c[1:] != c[:-1]) | (month[1:] != month[:-1])
    expiry_day = day + parts["valid_days"]
    resolve_day = parts["resolve_day"]
    v_day, v_run, v_points = parts["validity_events"]
    run_member = parts["run_member"]
    lapsed = parts["lapse_day"] <= e_day
    lapse_day = parts["lapse_day"][lapsed]
    lapse_points = parts["lapse_points"][lapsed]
    lapse_member = run_member[lapsed]
    v_member = run_member[v_run]

    # Outstanding points and pending rewards: every change dated, summed up to each snapshot.
    delta_points = parts["credit"] - rewards * parts["threshold"]
    per_point = parts["per_point_m"]
    outstanding = np.cumsum(
        by_month(day, delta_points) - by_month(v_day, v_points) - by_month(lapse_day, lapse_points)
    )
    points_value = np.cumsum(
        by_month(day, delta_points * per_point[c])
        - by_month(v_day, v_points * per_point[v_member])
        - by_month(lapse_day, lapse_points * per_point[lapse_member])
    )
    pending = np.cumsum(by_month(day, rewards) - by_month(resolve_day, rewards))
    pending_value = np.cumsum(
        by_month(day, rewards * cost_b) - by_month(resolve_day, rewards * cost_b)
    )
    redemption_rate = programme.redemption.rate

    tiers = programme.tiers
    snapshot_tier = parts["snapshot_tier"]
    enrolled_by = parts["enrolled_by"]
    tier_counts = np.zeros((len(tiers), n_months))
    for i in range(len(tiers)):  # a handful of tiers
        tier_counts[i] = ((snapshot_tier == i) & enrolled_by).sum(axis=0)
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
            "members_revenue": by_month(day, parts["cents"] / 100),
            "new_members": new_members.astype(np.int64),
            "members": members.astype(np.int64),
            "active_members": by_month(day[new_visit]).astype(np.int64),
            "points_earned": by_month(day, parts["earned"]).round().astype(np.int64),
            "welcome_points": by_month(day, parts["welcome"]).round().astype(np.int64),
            "points_expired_inactivity": by_month(lapse_day, lapse_points).round().astype(np.int64),
            "points_expired_validity": by_month(v_day, v_points).round().astype(np.int64),
            "points_converted": by_month(day, rewards * parts["threshold"])
            .round()
            .astype(np.int64),
            "rewards_issued": by_month(day, rewards).round().astype(np.int64),
            "rewards_issued_cost": by_month(day, rewards * cost_b),
            "rewards_issued_perceived": by_month(day, rewards * parts["perceived_m"][c]),
            "rewards_redeemed": by_month(resolve_day, parts["redeemed"]),
            "redemption_cost": by_month(resolve_day, parts["redeemed"] * cost_b),
            "rewards_expired": by_month(expiry_day, parts["expired_rewards"]),
            "breakage": by_month(expiry_day, parts["expired_rewards"] * cost_b),
            "discount_cost": by_month(day, parts["discount"]),
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


def _customers(
    programme: Programme, parts: dict[str, Any], ids: np.ndarray, member_choice: np.ndarray
) -> pd.DataFrame:
    m = parts["m"]
    c, day = parts["c"], parts["day"]
    e_day = parts["e_day"]

    def per_member(values: np.ndarray, members: np.ndarray = c) -> np.ndarray:
        return np.bincount(members, weights=np.asarray(values, dtype=float), minlength=m)

    rewards = parts["rewards"]
    first_reward = np.full(m, np.iinfo(np.int64).max)
    issuing = rewards > 0
    np.minimum.at(first_reward, c[issuing], day[issuing])
    has_reward = first_reward != np.iinfo(np.int64).max
    first_advantage = np.full(m, np.iinfo(np.int64).max)
    advantaged = issuing | ((parts["discount"] > 0) & (parts["cents"] > 0))
    np.minimum.at(first_advantage, c[advantaged], day[advantaged])
    has_advantage = first_advantage != np.iinfo(np.int64).max
    _, v_run, v_points = parts["validity_events"]
    lapsed = parts["lapse_day"] <= e_day
    run_member = parts["run_member"]
    expired = per_member(v_points, run_member[v_run]) + per_member(
        parts["lapse_points"][lapsed], run_member[lapsed]
    )
    delta = parts["credit"] - rewards * parts["threshold"]
    balance_end = per_member(delta) - expired
    enrol = parts["enrol_day"]
    tiers = programme.tiers
    names = np.array([t.name for t in tiers] or [""], dtype=object)
    if tiers:
        tier_end = names[parts["snapshot_tier"][:, -1]]
        top = parts["snapshot_tier"].max(axis=1, initial=0)
        np.maximum.at(top, c, parts["tier"])
        top_tier = names[top]
    else:
        tier_end = top_tier = np.full(m, "", dtype=object)
    frame = pd.DataFrame(
        {
            "customer_id": ids.astype(str),
            "enrolled": (_EPOCH + enrol).astype("datetime64[ns]"),
            "reward": member_choice.astype(np.int64),
            "baskets": np.bincount(c, minlength=m).astype(np.int64),
            "spend": per_member(parts["cents"]) / 100,
            "points_earned": per_member(parts["credit"]).round().astype(np.int64),
            "points_expired": expired.round().astype(np.int64),
            "rewards_issued": per_member(rewards).round().astype(np.int64),
            "rewards_redeemed": _counts(per_member(parts["redeemed"]), parts["sampled"]),
            "first_reward_date": _dates_or_nat(first_reward, has_reward),
            "days_to_first_reward": np.where(has_reward, first_reward - enrol, np.nan),
            "first_advantage_date": _dates_or_nat(first_advantage, has_advantage),
            "days_to_first_advantage": np.where(has_advantage, first_advantage - enrol, np.nan),
            "tier_end": tier_end,
            "top_tier": top_tier,
            "balance_end": balance_end.round().astype(np.int64),
        }
    )
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


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
